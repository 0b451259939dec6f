// The identities policy rows are written for: one per label set, except where a policy treats
// endpoints with the same labels differently. A Kubernetes ipBlock selects pods by address and a
// named port may stand for different numbers on two pods; the datapath keys policy on identities
// only, so such endpoints' addresses get identities of their own (the ipcache maps addresses).
import type { EndpointSet, ResolvedEndpoint } from './endpoints.js';
import { identityForLabels } from './identity.js';
import type { Cidr } from './ip.js';
import { cidrContains, parseCidr } from './ip.js';
import type { PolicyDoc } from './policy-doc.js';

export interface IdentityGroup {
  id: number;
  /** An endpoint of the group: its labels and namespace, and the ports its named ports resolve to. */
  endpoint: ResolvedEndpoint;
  /** An address of the group (every one is in the same ipBlocks), absent when it has none. */
  sample?: Cidr;
}

export interface PolicyIdentities {
  groups: IdentityGroup[];
  /** Addresses (canonical text) whose identity is not their endpoint's label identity. */
  byAddress: Map<string, number>;
}

export interface PodBlock {
  outer: Cidr;
  excepts: Cidr[];
}

export function inBlock(b: PodBlock, addr: Cidr): boolean {
  return cidrContains(b.outer, addr) && !b.excepts.some((e) => cidrContains(e, addr));
}

function forEachSection(policies: PolicyDoc[], f: (s: NonNullable<PolicyDoc['rules'][number]['ingress']>[number]) => void): void {
  for (const d of policies) for (const r of d.rules) for (const secs of [r.ingress, r.egress]) for (const s of secs ?? []) f(s);
}

/** The ipBlocks that select pod addresses (Kubernetes NetworkPolicy), each once. */
function podBlocks(policies: PolicyDoc[]): PodBlock[] {
  const out = new Map<string, PodBlock>();
  forEachSection(policies, (s) => {
    for (const p of s.peers) {
      if (p.type !== 'cidr' || !p.pods) continue;
      const key = [p.cidr, ...p.except].join(' ');
      if (!out.has(key)) out.set(key, { outer: parseCidr(p.cidr)!, excepts: p.except.map((e) => parseCidr(e)!) });
    }
  });
  return [...out.values()];
}

function portNames(policies: PolicyDoc[]): string[] {
  const out = new Set<string>();
  forEachSection(policies, (s) => {
    for (const p of s.ports ?? []) if (p.name !== undefined) out.add(p.name);
  });
  return [...out].sort();
}

/** What `ep` maps the named ports to, as text: equal texts resolve every name the same. */
function portSignature(ep: ResolvedEndpoint, names: readonly string[]): string {
  if (names.length === 0 || !ep.ports) return '';
  return names.map((n) => ep.ports!.filter((p) => p.name === n).map((p) => `${p.port}/${p.protocol}`).join('+')).join(',');
}

export function policyIdentities(endpoints: EndpointSet, policies: PolicyDoc[]): PolicyIdentities {
  const blocks = podBlocks(policies);
  const names = portNames(policies);
  const byIdentity = new Map<number, ResolvedEndpoint[]>();
  for (const ep of endpoints.endpoints) {
    const l = byIdentity.get(ep.identity);
    if (l) l.push(ep);
    else byIdentity.set(ep.identity, [ep]);
  }
  const groups: IdentityGroup[] = [];
  const byAddress = new Map<string, number>();
  if (blocks.length === 0 && names.length === 0) {
    for (const [id, eps] of byIdentity) groups.push({ id, endpoint: eps[0]! });
    return { groups, byAddress };
  }

  interface Part {
    endpoint: ResolvedEndpoint;
    sample: Cidr;
    addrs: string[];
  }
  const splits: { labelList: string[]; part: Part }[] = [];
  for (const [id, eps] of byIdentity) {
    const parts = new Map<string, Part>();
    for (const ep of eps) {
      const ports = portSignature(ep, names);
      for (const ip of ep.ips) {
        const addr = parseCidr(ip)!;
        const sig = `${blocks.map((b) => (inBlock(b, addr) ? '1' : '0')).join('')}|${ports}`;
        const part = parts.get(sig);
        if (part) part.addrs.push(ip);
        else parts.set(sig, { endpoint: ep, sample: addr, addrs: [ip] });
      }
    }
    // The part with most addresses keeps the label identity (fewest ipcache changes); endpoints
    // without addresses stay with it too.
    const ordered = [...parts.entries()].sort((a, b) => b[1].addrs.length - a[1].addrs.length || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    const keep = ordered[0]?.[1];
    groups.push({ id, endpoint: keep?.endpoint ?? eps[0]!, ...(keep && { sample: keep.sample }) });
    for (const [, part] of ordered.slice(1)) splits.push({ labelList: part.endpoint.labelList, part });
  }
  if (splits.length === 0) return { groups, byAddress };

  // Numbered like label identities, from the labels and the addresses, visited in a fixed order so
  // every node numbers them alike; label identities keep their numbers.
  const keyOf = (s: (typeof splits)[number]): string[] => [...s.labelList, `flowctl:addresses=${[...s.part.addrs].sort().join(',')}`];
  const keyed = splits.map((s) => ({ s, key: keyOf(s) })).sort((a, b) => (a.key.join('\n') < b.key.join('\n') ? -1 : 1));
  const taken = new Set<number>(byIdentity.keys());
  for (const { s, key } of keyed) {
    const id = identityForLabels(key, taken);
    if (taken.has(id)) throw new RangeError('no label identity left for pods told apart by address');
    taken.add(id);
    groups.push({ id, endpoint: s.part.endpoint, sample: s.part.sample });
    for (const a of s.part.addrs) byAddress.set(a, id);
  }
  return { groups, byAddress };
}
