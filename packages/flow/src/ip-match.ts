// Exact-address and CIDR matching for flow filters, with Go netip semantics (ip.ts): an IPv4 address
// never matches an IPv6 prefix (IPv4-mapped IPv6 addresses included), and a prefix need not be masked.
import { parseIp, parsePrefix, type ParsedIp } from './ip.js';

export interface IpMatcher {
  (ip: string | undefined): boolean;
}

/**
 * Builds a matcher for a list of IPs and CIDRs (OR). Throws with a reason for an invalid entry.
 */
export function compileIpMatcher(values: string[], onError: (value: string, reason: string) => never): IpMatcher {
  const exact: ParsedIp[] = [];
  const prefixes: { v6: boolean; net: bigint; mask: bigint }[] = [];
  for (const v of values) {
    if (v.includes('/')) {
      const addr = v.slice(0, v.indexOf('/'));
      if (!parseIp(addr) || addr.includes('%')) onError(v, 'invalid CIDR');
      const p = parsePrefix(v);
      if (!p) onError(v, 'invalid CIDR prefix length');
      const max = BigInt(p.v6 ? 128 : 32);
      const all = (1n << max) - 1n;
      prefixes.push({ v6: p.v6, net: p.addr, mask: (all << (max - BigInt(p.bits))) & all });
    } else {
      const ip = parseIp(v);
      if (!ip) onError(v, 'invalid IP address');
      exact.push(ip);
    }
  }
  // Flow addresses repeat endlessly (a handful of pods), so parsing is memoised; clearing the cache
  // when it grows bounds memory on a node that sees many distinct addresses.
  const cache = new Map<string, ParsedIp | null>();
  return (s) => {
    if (!s) return false;
    let ip = cache.get(s);
    if (ip === undefined) {
      if (cache.size > 16384) cache.clear();
      ip = parseIp(s) ?? null;
      cache.set(s, ip);
    }
    if (ip === null) return false;
    for (const e of exact) if (e.v6 === ip.v6 && e.value === ip.value) return true;
    for (const p of prefixes) if (p.v6 === ip.v6 && (ip.value & p.mask) === p.net) return true;
    return false;
  };
}
