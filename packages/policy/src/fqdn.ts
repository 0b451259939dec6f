// toFQDNs selectors: Cilium's matchName and matchPattern, what names they match, and the form the
// kernel matches answers by (bpf/fqdn.bpf.h): a hash of the name (or of the name after its first
// label) in DNS wire format, else the pattern itself, so the datapath learns an address as the
// answer passes.

/** A toFQDNs selector, normalised: lower case, no trailing dot. */
export interface FqdnSelector {
  /** `matchName` (a literal) or `matchPattern` (with `*`); a pattern without `*` is a name. */
  matchName?: string;
  matchPattern?: string;
}

/**
 * How the kernel matches a selector: the whole name, one label then a suffix, or any name (by
 * hash, fqdn_names); or any other pattern, matched as text (fqdn_globs).
 */
export const FQDN_MATCH_NAME = 1;
export const FQDN_MATCH_LABEL = 2;
export const FQDN_MATCH_ANY = 3;
export const FQDN_MATCH_GLOB = 4;

export type KernelMatch =
  | {
      kind: typeof FQDN_MATCH_NAME | typeof FQDN_MATCH_LABEL | typeof FQDN_MATCH_ANY;
      /** FNV-1a 64 of the lower-cased wire-format name (0 for any) */
      hash: bigint;
    }
  | { kind: typeof FQDN_MATCH_GLOB; glob: string };

const NAME_CHARS = /^[-a-z0-9_.]+$/;
const PATTERN_CHARS = /^[-a-z0-9_.*]+$/;

/** The canonical text of a selector (a name, or a pattern that has a `*`), or an error message. */
export function canonicalFqdn(raw: string, pattern: boolean): string | { error: string } {
  let s = raw.toLowerCase();
  if (s.endsWith('.') && s !== '.') s = s.slice(0, -1);
  if (!(pattern ? PATTERN_CHARS : NAME_CHARS).test(s)) {
    return { error: `invalid ${pattern ? 'matchPattern' : 'matchName'} ${JSON.stringify(raw)} (letters, digits, '-', '_', '.'${pattern ? ", '*'" : ''})` };
  }
  if (s.length > 253) return { error: `${JSON.stringify(raw)} is longer than 253 characters` };
  for (const label of s.split('.')) {
    if (label === '') return { error: `${JSON.stringify(raw)} has an empty label` };
    if (label.length > 63) return { error: `${JSON.stringify(raw)} has a label longer than 63 characters` };
  }
  return s;
}

/** The selector's text as users write it, e.g. `matchPattern: *.example.com`. */
export function fqdnText(s: FqdnSelector): string {
  return s.matchName !== undefined ? `matchName: ${s.matchName}` : `matchPattern: ${s.matchPattern}`;
}

/** One key per meaning: a pattern without `*` is the name it spells. */
export function fqdnKey(s: FqdnSelector): string {
  const p = s.matchPattern;
  return p !== undefined && p.includes('*') ? `pattern:${p}` : `name:${s.matchName ?? p}`;
}

const regexCache = new Map<string, RegExp>();

/**
 * Cilium's semantics: `*` matches zero or more name characters other than `.`; a lone `*` matches
 * every name. Case-insensitive.
 */
export function fqdnMatches(s: FqdnSelector, name: string): boolean {
  let n = name.toLowerCase();
  if (n.endsWith('.')) n = n.slice(0, -1);
  if (s.matchName !== undefined) return n === s.matchName;
  const p = s.matchPattern!;
  if (p === '*') return n.length > 0;
  let re = regexCache.get(p);
  if (!re) {
    re = new RegExp('^' + p.split('*').map((part) => part.replace(/[.]/g, '\\.')).join('[-a-z0-9_]*') + '$');
    regexCache.set(p, re);
  }
  return re.test(n);
}

const FNV64_OFFSET = 0xcbf29ce484222325n;
const FNV64_PRIME = 0x100000001b3n;
const M64 = (1n << 64n) - 1n;

/** FNV-1a 64 over the wire form of `name` (length-prefixed labels, no root byte), as the kernel hashes it. */
export function wireNameHash(name: string): bigint {
  let h = FNV64_OFFSET;
  for (const label of name.split('.')) {
    const bytes = [label.length, ...Buffer.from(label, 'latin1')];
    for (const b of bytes) {
      h ^= BigInt(b);
      h = (h * FNV64_PRIME) & M64;
    }
  }
  return h;
}

/** How the kernel matches this selector: by hash where one says it, else by the pattern's text. */
export function kernelMatch(s: FqdnSelector): KernelMatch {
  const p = s.matchName ?? s.matchPattern!;
  if (!p.includes('*')) return { kind: FQDN_MATCH_NAME, hash: wireNameHash(p) };
  if (p === '*') return { kind: FQDN_MATCH_ANY, hash: 0n };
  if (p.startsWith('*.') && !p.slice(2).includes('*')) return { kind: FQDN_MATCH_LABEL, hash: wireNameHash(p.slice(2)) };
  return { kind: FQDN_MATCH_GLOB, glob: p };
}
