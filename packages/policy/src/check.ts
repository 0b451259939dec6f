// What-if evaluation on a compiled policy, by the same lookup the kernel does: `flowctl policy
// check` and the agent's verdict attribution both go through here, so what users are told is what
// the datapath decides.
import type { CompiledPolicy, PolicyEntry, PolicyRef } from './compile.js';
import type { EndpointSet, ResolvedEndpoint } from './endpoints.js';
import { MIN_CIDR_IDENTITY, RESERVED_IDENTITIES } from './identity.js';
import { canonicalIp, cidrContains, parseCidr } from './ip.js';
import { fqdnMatches } from './fqdn.js';
import { IPPROTO } from './policy-doc.js';

export type Direction = 'ingress' | 'egress';

export interface DirectionVerdict {
  direction: Direction;
  /** false: no policy selects the endpoint for this direction, so everything passes */
  enforced: boolean;
  allowed: boolean;
  /** the map row that decided (the first hit), absent when not enforced or no row matched */
  entry?: PolicyEntry;
  /** enforced and no row matched: dropped by default deny */
  defaultDeny: boolean;
  /** Allowed: every policy with an allow row for this packet. Denied: the deny rows' policies, or
   *  for default deny the policies that select the endpoint. */
  policies: PolicyRef[];
  /** Allowed through a toFQDNs selector (the peer's address was learned through a name it matches). */
  fqdn?: string;
}

export interface ConnectionVerdict {
  allowed: boolean;
  /** the policies behind the decision: the denying direction's, or both directions' allows */
  policies: PolicyRef[];
  egress: DirectionVerdict;
  ingress: DirectionVerdict;
}

const P24 = 2 ** 24;
type Index = Map<number, Map<number, PolicyEntry>>;
const indexes = new WeakMap<CompiledPolicy, Index>();

function indexOf(c: CompiledPolicy): Index {
  let idx = indexes.get(c);
  if (idx) return idx;
  idx = new Map();
  for (const e of c.entries) {
    const bk = e.endpointIdentity * 2 + (e.direction === 'egress' ? 1 : 0);
    let m = idx.get(bk);
    if (!m) idx.set(bk, (m = new Map()));
    m.set(e.peerIdentity * P24 + e.port * 256 + e.proto, e);
  }
  indexes.set(c, idx);
  return idx;
}

/** Keys in the kernel's lookup order (contracts.md, "Policy maps"). */
export function lookupOrder(peer: number, port: number, proto: number): [number, number, number][] {
  return [
    [peer, port, proto],
    [peer, 0, proto],
    [peer, 0, 0],
    [0, port, proto],
    [0, 0, proto],
    [0, 0, 0],
  ];
}

export function protoNumber(p: number | string): number {
  if (typeof p === 'number') return p;
  const n = (IPPROTO as Record<string, number>)[p.toUpperCase()];
  if (n === undefined) throw new RangeError(`unknown protocol "${p}"`);
  return n;
}

export function lookupPolicy(c: CompiledPolicy, endpointIdentity: number, peerIdentity: number, port: number, proto: number, direction: Direction): DirectionVerdict {
  const enf = c.enforced.get(endpointIdentity);
  if (!enf || !enf[direction]) return { direction, enforced: false, allowed: true, defaultDeny: false, policies: [] };
  const rows = indexOf(c).get(endpointIdentity * 2 + (direction === 'egress' ? 1 : 0));
  const hits: PolicyEntry[] = [];
  for (const [pe, po, pr] of lookupOrder(peerIdentity, port, proto)) {
    // (peer, port, 0) is not a kernel lookup key: ported rows always carry a protocol.
    const e = rows?.get(pe * P24 + po * 256 + pr);
    if (e && !hits.includes(e)) hits.push(e);
  }
  const first = hits[0];
  if (!first) {
    const sel = c.selectedBy.get(endpointIdentity)?.[direction] ?? [];
    return { direction, enforced: true, allowed: false, defaultDeny: true, policies: refsOf(c, sel) };
  }
  const same = hits.filter((h) => h.deny === first.deny).map((h) => h.ruleRef);
  return { direction, enforced: true, allowed: !first.deny, entry: first, defaultDeny: false, policies: refsOf(c, same) };
}

function refsOf(c: CompiledPolicy, refNums: number[]): PolicyRef[] {
  return [...new Set(refNums)].sort((a, b) => a - b).map((r) => c.refs[r - 1]!).filter(Boolean);
}

type Party = number | { identity: number };
const idOf = (p: Party): number => (typeof p === 'number' ? p : p.identity);

/** Identities toFQDNs can reach: world and CIDR identities (as in Cilium, never endpoints). */
export function outsideCluster(identity: number): boolean {
  return identity === RESERVED_IDENTITIES.world || identity >= MIN_CIDR_IDENTITY;
}

/**
 * The egress verdict for a peer whose address the endpoint learned from DNS answers for `names`:
 * as the kernel decides it, the address's own identity first, then, when no row matched (default
 * deny) and the endpoint has toFQDNs rules, each selector matching one of the names in identity
 * order, the first that allows.
 */
export function lookupEgressFqdn(c: CompiledPolicy, endpointIdentity: number, peerIdentity: number, names: readonly string[], port: number, proto: number): DirectionVerdict {
  const v = lookupPolicy(c, endpointIdentity, peerIdentity, port, proto, 'egress');
  const fqdnRef = c.enforced.get(endpointIdentity)?.fqdn;
  if (!v.defaultDeny || !fqdnRef || !outsideCluster(peerIdentity)) return v;
  for (const f of c.fqdnSelectors) {
    if (!names.some((n) => fqdnMatches(f.selector, n))) continue;
    const w = lookupPolicy(c, endpointIdentity, f.identity, port, proto, 'egress');
    if (w.allowed) return { ...w, fqdn: f.selector.matchName ?? f.selector.matchPattern! };
  }
  // The kernel names the first policy with toFQDNs rules in such a drop (bpf/fqdn.bpf.h).
  return { ...v, policies: refsOf(c, [fqdnRef]) };
}

/**
 * Would a connection from `from` to `to` on `port`/`proto` pass? Both checks the datapath makes:
 * the source's egress policy and the destination's ingress policy. `toNames`: the names the
 * source resolved to the destination's address (toFQDNs).
 */
export function checkConnection(c: CompiledPolicy, from: Party, to: Party, port: number, proto: number | string, toNames: readonly string[] = []): ConnectionVerdict {
  const pr = protoNumber(proto);
  const egress = lookupEgressFqdn(c, idOf(from), idOf(to), toNames, port, pr);
  const ingress = lookupPolicy(c, idOf(to), idOf(from), port, pr, 'ingress');
  const allowed = egress.allowed && ingress.allowed;
  const policies = allowed ? [...egress.policies, ...ingress.policies] : !egress.allowed ? egress.policies : ingress.policies;
  return { allowed, policies: [...new Map(policies.map((p) => [`${p.kind}/${p.namespace}/${p.name}`, p])).values()], egress, ingress };
}

/** The identities an endpoint's addresses have under `c` (its label identity when it has none). */
export function endpointIdentities(c: CompiledPolicy, ep: ResolvedEndpoint): number[] {
  const ids = new Set(ep.ips.map((ip) => c.addressIdentities.get(ip) ?? ep.identity));
  return ids.size ? [...ids] : [ep.identity];
}

/**
 * The identity the ipcache gives an address: an endpoint's identity (its label identity, or the
 * one of its address when a policy tells it apart), else the longest CIDR identity containing it,
 * else host for the node's own addresses, else world.
 */
export function identityForIp(c: CompiledPolicy, endpoints: EndpointSet, ip: string, hostIps: readonly string[] = []): number {
  const canon = canonicalIp(ip);
  if (canon === undefined) throw new RangeError(`invalid IP address "${ip}"`);
  const ep = endpoints.byIp.get(canon);
  if (ep) return c.addressIdentities.get(canon) ?? ep.identity;
  if (hostIps.some((h) => canonicalIp(h) === canon)) return RESERVED_IDENTITIES.host;
  const host = parseCidr(canon)!;
  let best: { prefix: number; identity: number } | undefined;
  for (const ci of c.cidrIdentities) {
    const cidr = parseCidr(ci.cidr)!;
    if (cidrContains(cidr, host) && (!best || cidr.prefix > best.prefix)) best = { prefix: cidr.prefix, identity: ci.identity };
  }
  return best?.identity ?? RESERVED_IDENTITIES.world;
}
