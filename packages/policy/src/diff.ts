// What changes in the kernel maps from one compiled policy to the next. A reload usually changes a
// few policies while the maps hold hundreds of thousands of rows; a writer that applies only the
// difference, from its own record of what it wrote, needs no read-back of the maps and one syscall
// (or one batch) per changed row instead of two per row.
import type { CompiledPolicy, PolicyEntry } from './compile.js';

export interface EnforceBits {
  ingress: boolean;
  egress: boolean;
  /** egress has toFQDNs rules: the ruleRef flows name (CompiledPolicy.enforced) */
  fqdn?: number;
}

export interface PolicyDiff {
  /** Rows whose key is new or whose value (deny, ruleRef) changed: write these first. */
  upserts: PolicyEntry[];
  /** Rows whose key is gone (as they were in `prev`): delete these last. */
  deletes: PolicyEntry[];
  /** Identities whose enforcement bits are new or changed (never both false). */
  enforceUpserts: { identity: number; dirs: EnforceBits }[];
  /** Identities no longer enforced in either direction. */
  enforceDeletes: number[];
}

const P24 = 2 ** 24;

const outerKey = (e: PolicyEntry): number => e.endpointIdentity * 2 + (e.direction === 'egress' ? 1 : 0);
// (peer, port, proto) as one exact integer: peer identities stay below 2^29 (CIDR identities
// start at 2^24). The value is ruleRef * 2 + deny.
const innerKey = (e: PolicyEntry): number => e.peerIdentity * P24 + e.port * 256 + e.proto;
const value = (e: PolicyEntry): number => e.ruleRef * 2 + (e.deny ? 1 : 0);

/**
 * Where the rows of each (identity, direction) are: compilePolicies emits them together, so one
 * range each. Undefined when some group is split (entries made by other means).
 */
function groups(entries: readonly PolicyEntry[]): Map<number, [number, number]> | undefined {
  const out = new Map<number, [number, number]>();
  let start = 0;
  for (let i = 1; i <= entries.length; i++) {
    if (i < entries.length && outerKey(entries[i]!) === outerKey(entries[start]!)) continue;
    if (start < entries.length) {
      const k = outerKey(entries[start]!);
      if (out.has(k)) return undefined;
      out.set(k, [start, i]);
    }
    start = i;
  }
  return out;
}

/** One group's rows, key → value; when a key repeats, deny wins, as the map writer does. */
function rowsOf(entries: readonly PolicyEntry[], from: number, to: number): Map<number, number> {
  const rows = new Map<number, number>();
  for (let i = from; i < to; i++) {
    const e = entries[i]!;
    const v = value(e);
    const prev = rows.get(innerKey(e));
    if (prev === undefined || ((prev & 1) === 0 && (v & 1) === 1)) rows.set(innerKey(e), v);
  }
  return rows;
}

function sameRange(a: readonly PolicyEntry[], [a0, a1]: [number, number], b: readonly PolicyEntry[], [b0, b1]: [number, number]): boolean {
  if (a1 - a0 !== b1 - b0) return false;
  for (let i = 0; i < a1 - a0; i++) {
    const x = a[a0 + i]!;
    const y = b[b0 + i]!;
    if (x.peerIdentity !== y.peerIdentity || x.port !== y.port || x.proto !== y.proto || x.deny !== y.deny || x.ruleRef !== y.ruleRef) return false;
  }
  return true;
}

/** Every group as one range over a copy sorted by group, for entries not already grouped. */
function grouped(entries: readonly PolicyEntry[]): { entries: readonly PolicyEntry[]; groups: Map<number, [number, number]> } {
  const g = groups(entries);
  if (g) return { entries, groups: g };
  const sorted = [...entries].sort((x, y) => outerKey(x) - outerKey(y));
  return { entries: sorted, groups: groups(sorted)! };
}

function entry(outer: number, key: number, v: number): PolicyEntry {
  return {
    endpointIdentity: Math.floor(outer / 2),
    peerIdentity: Math.floor(key / P24),
    port: Math.floor(key / 256) % 65536,
    proto: key % 256,
    direction: outer % 2 ? 'egress' : 'ingress',
    deny: (v & 1) === 1,
    ruleRef: Math.floor(v / 2),
  };
}

/**
 * The changes that turn the maps written for `prev` (nothing, when undefined) into those for
 * `next`. Applying upserts, then enforceUpserts, then enforceDeletes, then deletes keeps the
 * order PolicyMapWriter.writePolicy documents: no moment denies what both policies allow.
 */
export function diffCompiled(prev: CompiledPolicy | undefined, next: CompiledPolicy): PolicyDiff {
  const before = grouped(prev?.entries ?? []);
  const after = grouped(next.entries);
  const upserts: PolicyEntry[] = [];
  const deletes: PolicyEntry[] = [];
  // A recompile leaves most groups exactly as they were, row for row: compare those in place and
  // build key maps only for the groups that differ.
  for (const [outer, range] of after.groups) {
    const oldRange = before.groups.get(outer);
    if (oldRange && sameRange(before.entries, oldRange, after.entries, range)) continue;
    const old = oldRange ? rowsOf(before.entries, oldRange[0], oldRange[1]) : new Map<number, number>();
    const now = rowsOf(after.entries, range[0], range[1]);
    for (const [key, v] of now) if (old.get(key) !== v) upserts.push(entry(outer, key, v));
    for (const [key, v] of old) if (!now.has(key)) deletes.push(entry(outer, key, v));
  }
  for (const [outer, [from, to]] of before.groups) {
    if (after.groups.has(outer)) continue;
    for (const [key, v] of rowsOf(before.entries, from, to)) deletes.push(entry(outer, key, v));
  }
  const on = (d: EnforceBits | undefined): boolean => d !== undefined && (d.ingress || d.egress);
  const enforceUpserts: PolicyDiff['enforceUpserts'] = [];
  const enforceDeletes: number[] = [];
  for (const [identity, dirs] of next.enforced) {
    if (!on(dirs)) continue;
    const old = prev?.enforced.get(identity);
    if (!on(old) || old!.ingress !== dirs.ingress || old!.egress !== dirs.egress || old!.fqdn !== dirs.fqdn) {
      enforceUpserts.push({ identity, dirs: { ingress: dirs.ingress, egress: dirs.egress, ...(dirs.fqdn && { fqdn: dirs.fqdn }) } });
    }
  }
  for (const [identity, dirs] of prev?.enforced ?? []) if (on(dirs) && !on(next.enforced.get(identity))) enforceDeletes.push(identity);
  return { upserts, deletes, enforceUpserts, enforceDeletes };
}
