// Who owns an IP, as flow.Endpoint values built once per endpoints-file version and shared by
// every flow (flows treat them as immutable), so a full ring does not hold 65k label arrays.
import type { Endpoint } from '@flowctl/flow';
import type { EndpointSet, ResolvedEndpoint } from '@flowctl/policy';

export const HOST_IDENTITY = 1;
export const WORLD_IDENTITY = 2;

const HOST: Endpoint = Object.freeze({ identity: HOST_IDENTITY, labels: ['reserved:host'] });
const WORLD: Endpoint = Object.freeze({ identity: WORLD_IDENTITY, labels: ['reserved:world'] });

export function toFlowEndpoint(ep: ResolvedEndpoint): Endpoint {
  const out: Endpoint = {
    ID: ep.id,
    identity: ep.identity,
    namespace: ep.namespace,
    labels: ep.labelList,
    pod_name: ep.name,
  };
  if (ep.workloads.length) out.workloads = ep.workloads;
  return Object.freeze(out);
}

export class EndpointDirectory {
  private byIp = new Map<string, Endpoint>();
  private byNetns = new Map<number, Endpoint>();
  private local = new Set<string>();
  private hostIps = new Set<string>();
  private set: EndpointSet = { endpoints: [], byIp: new Map() };

  constructor(readonly nodeName: string) {}

  /** Replaces the endpoint set (a reload of the endpoints file). */
  setEndpoints(set: EndpointSet): void {
    const byIp = new Map<string, Endpoint>();
    const local = new Set<string>();
    const shared = new Map<ResolvedEndpoint, Endpoint>();
    // byIp holds canonical IP text, the form the datapath decoder produces.
    for (const [ip, ep] of set.byIp) {
      let fe = shared.get(ep);
      if (!fe) shared.set(ep, (fe = toFlowEndpoint(ep)));
      byIp.set(ip, fe);
      if (ep.node === this.nodeName) local.add(ip);
    }
    this.set = set;
    this.byIp = byIp;
    this.local = local;
  }

  setHostIps(ips: Iterable<string>): void {
    this.hostIps = new Set(ips);
  }

  /** Pod network namespace inodes → endpoint, for socket-level attribution. */
  setNetnsInodes(map: Map<number, ResolvedEndpoint>): void {
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

  forIp(ip: string): Endpoint {
    return this.byIp.get(ip) ?? (this.hostIps.has(ip) ? HOST : WORLD);
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
      out.push({ cidr: ip.includes(':') ? `${ip}/128` : `${ip}/32`, identity: ep.identity });
    }
    for (const ip of this.hostIps) {
      if (!this.byIp.has(ip)) out.push({ cidr: ip.includes(':') ? `${ip}/128` : `${ip}/32`, identity: HOST_IDENTITY });
    }
    return out;
  }
}
