// IP addresses and prefixes, parsed once for all of flowctl with Go netip's rules (those of Hubble's
// filters): no leading zeros in IPv4, an IPv4-mapped IPv6 address stays IPv6, a zone only on a bare
// IPv6 address, and no leading zeros in a prefix length.

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

export interface Prefix {
  v6: boolean;
  /** The network address (host bits cleared). */
  addr: bigint;
  bits: number;
}

/** `addr/bits`, or a bare address as a host prefix; undefined when `s` is not one. Host bits are cleared. */
export function parsePrefix(s: string): Prefix | undefined {
  const slash = s.indexOf('/');
  const addrText = slash < 0 ? s : s.slice(0, slash);
  if (slash >= 0 && addrText.includes('%')) return undefined;
  const ip = parseIp(addrText);
  if (!ip) return undefined;
  const max = ip.v6 ? 128 : 32;
  let bits = max;
  if (slash >= 0) {
    const t = s.slice(slash + 1);
    if (!/^(0|[1-9][0-9]{0,2})$/.test(t) || Number(t) > max) return undefined;
    bits = Number(t);
  }
  const host = BigInt(max - bits);
  return { v6: ip.v6, addr: (ip.value >> host) << host, bits };
}

/** True when every address of `inner` is in `outer`. */
export function prefixContains(outer: Prefix, inner: Prefix): boolean {
  if (outer.v6 !== inner.v6 || inner.bits < outer.bits) return false;
  const host = BigInt((outer.v6 ? 128 : 32) - outer.bits);
  return inner.addr >> host === outer.addr >> host;
}

/** Canonical text: dotted quad, or RFC 5952 IPv6. */
export function formatIp(v6: boolean, value: bigint): string {
  if (!v6) return [24n, 16n, 8n, 0n].map((s) => String((value >> s) & 0xffn)).join('.');
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((value >> BigInt(i * 16)) & 0xffffn));
  return formatIpv6Groups(groups);
}

/** RFC 5952 text of eight 16-bit groups: the longest run of two or more zero groups compressed, lower-case hex, IPv4-mapped addresses ending in a dotted quad. */
export function formatIpv6Groups(g: readonly number[]): string {
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best === 0 && bestLen === 5 && g[5] === 0xffff) return `::ffff:${g[6]! >> 8}.${g[6]! & 0xff}.${g[7]! >> 8}.${g[7]! & 0xff}`;
  const hex = g.map((x) => x.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

/** The address in network byte order (4 or 16 bytes). */
export function ipBytes(v6: boolean, value: bigint): Uint8Array {
  const out = new Uint8Array(v6 ? 16 : 4);
  for (let i = out.length - 1; i >= 0; i--) {
    out[i] = Number(value & 0xffn);
    value >>= 8n;
  }
  return out;
}
