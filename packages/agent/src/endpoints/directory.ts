// Who owns an IP, as flow.Endpoint values built once per endpoints-file version and shared by
// every flow (flows treat them as immutable), so a full ring does not hold 65k label arrays.
import type { Endpoint } from '@flowctl/flow';
import { cidrContains, parseCidr, type Cidr, type EndpointSet, type ResolvedEndpoint } from '@flowctl/policy';

export const HOST_IDENTITY = 1;
export const WORLD_IDENTITY = 2;

const HOST: Endpoint = Object.freeze({ identity: HOST_IDENTITY, labels: ['reserved:host'] });
const WORLD: Endpoint = Object.freeze({ identity: WORLD_IDENTITY, labels: ['reserved:world'] });

export function toFlowEndpoint(ep: ResolvedEndpoint, identity = ep.identity): Endpoint {
  const out: Endpoint = {
    ID: ep.id,
    identity,
    namespace: ep.namespace,
    labels: ep.labelList,
    pod_name: ep.name,
  };
  if (ep.workloads.length) out.workloads = ep.workloads;
  return Object.freeze(out);
}

/** Peers matched by toCIDR/fromCIDR/ipBlock: labelled as Cilium labels CIDR identities. */
function cidrEndpoint(c: Cidr, identity: number): Endpoint {
  // Label values cannot hold ':' nor end in '-'; Cilium writes IPv6 prefixes as cidr:fd00--0/64.
  const [addr, len] = c.text.split('/') as [string, string];
  let v = addr.replaceAll(':', '-');
  if (v.endsWith('-')) v += '0';
  return Object.freeze({ identity, labels: [`cidr:${v}/${len}`, 'reserved:world'] });
}

/** Bound of the per-IP CIDR lookup cache (world IPs are unbounded in number). */
const CIDR_CACHE_MAX = 16384;

export class EndpointDirectory {
  /** Longest prefix first, so the first containing CIDR is the one the kernel's LPM picks. */
  private cidrs: { cidr: Cidr; ep: Endpoint }[] = [];
  private cidrCache = new Map<string, Endpoint>();
  private byIp = new Map<string, Endpoint>();
  private byNetns = new Map<number, Endpoint>();
  private local = new Set<string>();
  private hostIps = new Set<string>();
  private set: EndpointSet = { endpoints: [], byIp: new Map() };
  /** Addresses the policy in force gives their own identity (CompiledPolicy.addressIdentities). */
  private addressIdentities: ReadonlyMap<string, number> = new Map();
  private netnsEndpoints = new Map<number, ResolvedEndpoint>();

  constructor(readonly nodeName: string) {}

  /** Replaces the endpoint set (a reload of the endpoints file). */
  setEndpoints(set: EndpointSet): void {
    this.set = set;
    this.rebuild();
  }

  /** Addresses with an identity of their own under the policy in force; see setEndpoints. */
  setAddressIdentities(m: ReadonlyMap<string, number>): void {
    this.addressIdentities = m;
    this.rebuild();
  }

  private rebuild(): void {
    const byIp = new Map<string, Endpoint>();
    const local = new Set<string>();
    const shared = new Map<string, Endpoint>();
    // byIp holds canonical IP text, the form the datapath decoder produces.
    for (const [ip, ep] of this.set.byIp) {
      const identity = this.addressIdentities.get(ip) ?? ep.identity;
      const key = `${ep.namespace}/${ep.name}/${identity}`;
      let fe = shared.get(key);
      if (!fe) shared.set(key, (fe = toFlowEndpoint(ep, identity)));
      byIp.set(ip, fe);
      if (ep.node === this.nodeName) local.add(ip);
    }
    this.byIp = byIp;
    this.local = local;
    if (this.netnsEndpoints.size) this.setNetnsInodes(this.netnsEndpoints);
  }

  setHostIps(ips: Iterable<string>): void {
    this.hostIps = new Set(ips);
  }

  /** Pod network namespace inodes → endpoint, for socket-level attribution. */
  setNetnsInodes(map: Map<number, ResolvedEndpoint>): void {
    this.netnsEndpoints = map;
    const m = new Map<number, Endpoint>();
    for (const [ino, ep] of map) {
      const fe = this.byIp.get(ep.ips[0] ?? '') ?? toFlowEndpoint(ep);
      m.set(ino, fe);
    }
    this.byNetns = m;
  }

  get endpoints(): EndpointSet {
    return this.set;
  }

  /** Endpoints this node owns (their interfaces get the datapath). */
  localEndpoints(): ResolvedEndpoint[] {
    return this.set.endpoints.filter((e) => e.node === this.nodeName);
  }

  /** CIDR identities of the policy in force (CompiledPolicy.cidrIdentities). */
  setCidrIdentities(rows: readonly { cidr: string; identity: number }[]): void {
    const out: { cidr: Cidr; ep: Endpoint }[] = [];
    for (const r of rows) {
      const c = parseCidr(r.cidr);
      if (c) out.push({ cidr: c, ep: cidrEndpoint(c, r.identity) });
    }
    out.sort((a, b) => b.cidr.prefix - a.cidr.prefix);
    this.cidrs = out;
    this.cidrCache = new Map();
  }

  forIp(ip: string): Endpoint {
    const ep = this.byIp.get(ip);
    if (ep) return ep;
    if (this.hostIps.has(ip)) return HOST;
    if (this.cidrs.length === 0) return WORLD;
    let hit = this.cidrCache.get(ip);
    if (hit) return hit;
    const addr = parseCidr(ip);
    hit = WORLD;
    if (addr) {
      for (const c of this.cidrs) {
        if (cidrContains(c.cidr, addr)) {
          hit = c.ep;
          break;
        }
      }
    }
    if (this.cidrCache.size >= CIDR_CACHE_MAX) this.cidrCache.clear();
    this.cidrCache.set(ip, hit);
    return hit;
  }

  forNetns(ino: number): Endpoint | undefined {
    return this.byNetns.get(ino);
  }

  isLocal(ip: string): boolean {
    return this.local.has(ip);
  }

  /** IP → identity rows for the datapath's ipcache: endpoints, then this node's own IPs as host. */
  identities(): { cidr: string; identity: number }[] {
    const out: { cidr: string; identity: number }[] = [];
    for (const [ip, ep] of this.set.byIp) {
      out.push({ cidr: ip.includes(':') ? `${ip}/128` : `${ip}/32`, identity: this.addressIdentities.get(ip) ?? ep.identity });
    }
    for (const ip of this.hostIps) {
      if (!this.byIp.has(ip)) out.push({ cidr: ip.includes(':') ? `${ip}/128` : `${ip}/32`, identity: HOST_IDENTITY });
    }
    return out;
  }
}
