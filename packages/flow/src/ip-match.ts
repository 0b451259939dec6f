// Exact-address and CIDR matching with Go netip semantics: an IPv4 address never matches an IPv6
// prefix (IPv4-mapped IPv6 addresses included), and a prefix need not be masked ("1.2.3.4/16").

export interface ParsedIp {
  v6: boolean;
  /** IPv4 as a 32-bit value, IPv6 as a 128-bit value. */
  value: bigint;
}

const V4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

function parseV4(s: string): bigint | undefined {
  const m = V4.exec(s);
  if (!m) return undefined;
  let v = 0n;
  for (let i = 1; i <= 4; i++) {
    const part = m[i]!;
    // netip rejects leading zeros ("01.2.3.4"), which older parsers read as octal.
    if (part.length > 1 && part[0] === '0') return undefined;
    const n = Number(part);
    if (n > 255) return undefined;
    v = (v << 8n) | BigInt(n);
  }
  return v;
}

function parseV6(input: string): bigint | undefined {
  let s = input;
  const zone = s.indexOf('%');
  if (zone >= 0) {
    if (zone === s.length - 1) return undefined;
    s = s.slice(0, zone);
  }
  let tailV4: bigint | undefined;
  const lastColon = s.lastIndexOf(':');
  if (lastColon >= 0 && s.indexOf('.', lastColon) > 0) {
    tailV4 = parseV4(s.slice(lastColon + 1));
    if (tailV4 === undefined) return undefined;
    s = `${s.slice(0, lastColon + 1)}0:0`;
  }
  const dbl = s.indexOf('::');
  if (dbl >= 0 && s.indexOf('::', dbl + 1) >= 0) return undefined;
  const parseGroups = (part: string): number[] | undefined => {
    if (part === '') return [];
    const gs = part.split(':');
    const out: number[] = [];
    for (const g of gs) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  let groups: number[];
  if (dbl >= 0) {
    const head = parseGroups(s.slice(0, dbl));
    const tail = parseGroups(s.slice(dbl + 2));
    if (!head || !tail || head.length + tail.length > 7) return undefined;
    groups = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  } else {
    const all = parseGroups(s);
    if (!all || all.length !== 8) return undefined;
    groups = all;
  }
  let v = 0n;
  for (const g of groups) v = (v << 16n) | BigInt(g);
  if (tailV4 !== undefined) v = (v & ~0xffffffffn) | tailV4;
  return v;
}

export function parseIp(s: string): ParsedIp | undefined {
  if (s.includes(':')) {
    const v = parseV6(s);
    return v === undefined ? undefined : { v6: true, value: v };
  }
  const v = parseV4(s);
  return v === undefined ? undefined : { v6: false, value: v };
}

export interface IpMatcher {
  (ip: string | undefined): boolean;
}

// Flow addresses repeat endlessly (a handful of pods), so parsing is memoised; the cache is
// cleared when it grows, which bounds memory on a node that sees many distinct addresses.
const cache = new Map<string, ParsedIp | null>();
function cachedParse(s: string): ParsedIp | null {
  let p = cache.get(s);
  if (p === undefined) {
    if (cache.size > 16384) cache.clear();
    p = parseIp(s) ?? null;
    cache.set(s, p);
  }
  return p;
}

/**
 * Builds a matcher for a list of IPs and CIDRs (OR). Throws with a reason for an invalid entry.
 */
export function compileIpMatcher(values: string[], onError: (value: string, reason: string) => never): IpMatcher {
  const exact: ParsedIp[] = [];
  const prefixes: { v6: boolean; net: bigint; mask: bigint }[] = [];
  for (const v of values) {
    const slash = v.indexOf('/');
    if (slash >= 0) {
      const ip = parseIp(v.slice(0, slash));
      const bitsText = v.slice(slash + 1);
      if (!ip || ip.value === undefined || v.slice(0, slash).includes('%')) onError(v, 'invalid CIDR');
      const max = ip.v6 ? 128 : 32;
      if (!/^(0|[1-9][0-9]*)$/.test(bitsText) || Number(bitsText) > max) onError(v, 'invalid CIDR prefix length');
      const bits = BigInt(bitsText);
      const all = (1n << BigInt(max)) - 1n;
      const mask = (all << (BigInt(max) - bits)) & all;
      prefixes.push({ v6: ip.v6, net: ip.value & mask, mask });
    } else {
      const ip = parseIp(v);
      if (!ip) onError(v, 'invalid IP address');
      exact.push(ip);
    }
  }
  return (s) => {
    if (!s) return false;
    const ip = cachedParse(s);
    if (ip === null) return false;
    for (const e of exact) if (e.v6 === ip.v6 && e.value === ip.value) return true;
    for (const p of prefixes) if (p.v6 === ip.v6 && (ip.value & p.mask) === p.net) return true;
    return false;
  };
}
