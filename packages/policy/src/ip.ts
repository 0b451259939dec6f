// IP and CIDR handling shared by the endpoints file and CIDR policy peers. Addresses are kept as
// canonical strings (dotted quad, RFC 5952 IPv6) so that lookups by string agree everywhere.
import { isIP } from 'node:net';

export interface Cidr {
  family: 4 | 6;
  /** Network address as a bigint (host bits cleared). */
  addr: bigint;
  prefix: number;
  /** Canonical text, e.g. `10.0.0.0/8`, `2001:db8::/32`. */
  text: string;
}

function v4ToBig(ip: string): bigint {
  let n = 0n;
  for (const part of ip.split('.')) n = (n << 8n) | BigInt(Number(part));
  return n;
}

function v6ToBig(ip: string): bigint {
  let s = ip;
  // An embedded IPv4 tail (`::ffff:1.2.3.4`) becomes two hex groups.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (v4) {
    const n = v4ToBig(v4[1]!);
    s = s.slice(0, v4.index) + ((n >> 16n) & 0xffffn).toString(16) + ':' + (n & 0xffffn).toString(16);
  }
  const [head, tail] = s.includes('::') ? s.split('::') : [s, undefined];
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  let n = 0n;
  for (const g of groups) n = (n << 16n) | BigInt(parseInt(g, 16));
  return n;
}

function bigToV4(n: bigint): string {
  return [24n, 16n, 8n, 0n].map((s) => String((n >> s) & 0xffn)).join('.');
}

function bigToV6(n: bigint): string {
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((n >> BigInt(i * 16)) & 0xffffn));
  // RFC 5952: compress the longest run (>= 2) of zero groups, the first one on ties.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) { best = i; bestLen = j - i; }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

/** Canonical form of an IP address, or undefined when `s` is not one. */
export function canonicalIp(s: string): string | undefined {
  const fam = isIP(s);
  if (fam === 4) return bigToV4(v4ToBig(s));
  if (fam === 6) return bigToV6(v6ToBig(s));
  return undefined;
}

export function ipToBig(ip: string): { family: 4 | 6; addr: bigint } | undefined {
  const fam = isIP(ip);
  if (fam === 4) return { family: 4, addr: v4ToBig(ip) };
  if (fam === 6) return { family: 6, addr: v6ToBig(ip) };
  return undefined;
}

/** Parses `a.b.c.d/n` or `x::/n` (a bare address means a host route); undefined when invalid. */
export function parseCidr(s: string): Cidr | undefined {
  const slash = s.indexOf('/');
  const ipPart = slash < 0 ? s : s.slice(0, slash);
  const ip = ipToBig(ipPart);
  if (!ip) return undefined;
  const bits = ip.family === 4 ? 32 : 128;
  let prefix = bits;
  if (slash >= 0) {
    const p = s.slice(slash + 1);
    if (!/^\d{1,3}$/.test(p)) return undefined;
    prefix = Number(p);
    if (prefix > bits) return undefined;
  }
  const hostBits = BigInt(bits - prefix);
  const addr = (ip.addr >> hostBits) << hostBits;
  const text = `${ip.family === 4 ? bigToV4(addr) : bigToV6(addr)}/${prefix}`;
  return { family: ip.family, addr, prefix, text };
}

/** True when `inner` lies entirely inside `outer`. */
export function cidrContains(outer: Cidr, inner: Cidr): boolean {
  if (outer.family !== inner.family || inner.prefix < outer.prefix) return false;
  const bits = BigInt((outer.family === 4 ? 32 : 128) - outer.prefix);
  return inner.addr >> bits === outer.addr >> bits;
}
