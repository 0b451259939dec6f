// IP and CIDR handling shared by the endpoints file and CIDR policy peers, on @flowctl/flow's one IP
// parser. Addresses are kept as canonical strings (dotted quad, RFC 5952 IPv6) so that lookups by
// string agree everywhere.
import { formatIp, parseIp, parsePrefix, prefixContains } from '@flowctl/flow/ip';

export interface Cidr {
  family: 4 | 6;
  /** Network address as a bigint (host bits cleared). */
  addr: bigint;
  prefix: number;
  /** Canonical text, e.g. `10.0.0.0/8`, `2001:db8::/32`. */
  text: string;
}

/** Canonical form of an IP address, or undefined when `s` is not one. */
export function canonicalIp(s: string): string | undefined {
  const ip = parseIp(s);
  return ip && formatIp(ip.v6, ip.value);
}

/** Parses `a.b.c.d/n` or `x::/n` (a bare address means a host route); undefined when invalid. */
export function parseCidr(s: string): Cidr | undefined {
  const p = parsePrefix(s);
  return p && { family: p.v6 ? 6 : 4, addr: p.addr, prefix: p.bits, text: `${formatIp(p.v6, p.addr)}/${p.bits}` };
}

/** True when `inner` lies entirely inside `outer`. */
export function cidrContains(outer: Cidr, inner: Cidr): boolean {
  return prefixContains({ v6: outer.family === 6, addr: outer.addr, bits: outer.prefix }, { v6: inner.family === 6, addr: inner.addr, bits: inner.prefix });
}
