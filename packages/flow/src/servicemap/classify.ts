// Which service-map edge a flow belongs to: an edge runs from the connection's client to its
// server, between map nodes (workloads, reserved identities, address groups). Shared by the
// agent's aggregation and by `flowctl ui`, which narrows flows to a map node or edge.
import { FlowType, L7FlowType, TrafficDirection, type Endpoint, type Flow } from '../gen/flow/flow.js';

/** One end of an edge: the map node it belongs to and what filters are matched against. */
export interface Side {
  /** Map node id: "namespace/workload", "host", "world", a CIDR, or a reserved identity's name. */
  node: string;
  /** Aggregation key: the pod ("namespace/pod") for endpoints, else the node id. */
  key: string;
  kind: string;
  namespace: string;
  workload: string;
  pod: string;
  endpoint: Endpoint | undefined;
  ip: string;
}

export interface Classified {
  client: Side;
  server: Side;
  port: number;
  protocol: string;
}

const nodeOfEndpoint = new WeakMap<Endpoint, Omit<Side, 'ip' | 'endpoint'>>();

/** The workload a pod belongs to: its first workload, else the pod's own name. */
export function workloadOf(ep: Endpoint): string {
  return ep.workloads?.[0]?.name || ep.pod_name || '';
}

function reservedName(ep: Endpoint | undefined): string | undefined {
  for (const l of ep?.labels ?? []) if (l.startsWith('reserved:')) return l.slice('reserved:'.length);
  return undefined;
}

function isPrivate(ip: string): boolean {
  if (ip.includes(':')) return /^f[cd]/i.test(ip) || /^fe80:/i.test(ip);
  const [a, b] = ip.split('.').map(Number) as [number, number];
  return a === 10 || (a === 172 && b >= 16 && b < 32) || (a === 192 && b === 168) || (a === 100 && b >= 64 && b < 128) || a === 127;
}

// Groups of addresses seen lately: world IPs are unbounded in number, so the cache starts over when full.
const groupCache = new Map<string, string>();
const GROUP_CACHE_MAX = 16384;

/** Unknown addresses are grouped: private ones by /24 (IPv4) or /64 (IPv6), public ones as "world". */
export function cidrGroup(ip: string): string {
  let g = groupCache.get(ip);
  if (g === undefined) {
    if (groupCache.size >= GROUP_CACHE_MAX) groupCache.clear();
    groupCache.set(ip, (g = computeGroup(ip)));
  }
  return g;
}

function computeGroup(ip: string): string {
  if (!isPrivate(ip)) return 'world';
  if (!ip.includes(':')) return `${ip.split('.').slice(0, 3).join('.')}.0/24`;
  const full = expand6(ip);
  return `${full.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '')).join(':')}::/64`;
}

function expand6(ip: string): string[] {
  const [head, tail] = ip.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  return [...h, ...Array(Math.max(0, 8 - h.length - t.length)).fill('0'), ...t];
}

export function sideOf(ep: Endpoint | undefined, ip: string): Side {
  if (ep?.pod_name) {
    let n = nodeOfEndpoint.get(ep);
    if (!n) {
      const ns = ep.namespace ?? '';
      const workload = workloadOf(ep);
      n = { node: `${ns}/${workload}`, key: `${ns}/${ep.pod_name}`, kind: 'workload', namespace: ns, workload, pod: ep.pod_name };
      nodeOfEndpoint.set(ep, n);
    }
    // A literal, not a spread: spreading into a literal with more keys takes V8's slow path (µs).
    return { node: n.node, key: n.key, kind: n.kind, namespace: n.namespace, workload: n.workload, pod: n.pod, endpoint: ep, ip };
  }
  const reserved = reservedName(ep);
  let node: string;
  let kind: string;
  if (reserved && reserved !== 'world') {
    node = reserved;
    kind = reserved;
  } else {
    node = cidrGroup(ip);
    kind = node === 'world' ? 'world' : 'cidr';
  }
  return { node, key: node, kind, namespace: '', workload: '', pod: '', endpoint: ep, ip };
}

function l4Of(f: Flow): { protocol: string; sport: number; dport: number } | undefined {
  const l4 = f.l4;
  if (!l4) return undefined;
  const p = l4.TCP ?? l4.UDP ?? l4.SCTP;
  if (p) return { protocol: l4.TCP ? 'TCP' : l4.UDP ? 'UDP' : 'SCTP', sport: p.source_port ?? 0, dport: p.destination_port ?? 0 };
  if (l4.ICMPv4) return { protocol: 'ICMPv4', sport: 0, dport: 0 };
  if (l4.ICMPv6) return { protocol: 'ICMPv6', sport: 0, dport: 0 };
  return undefined;
}

/** True when the flow runs from server to client (so the edge is its reverse). */
export function isServerToClient(f: Flow): boolean {
  if (f.Type === FlowType.L7) return f.l7?.type === L7FlowType.RESPONSE;
  if (f.Type === FlowType.SOCK) return f.traffic_direction === TrafficDirection.INGRESS;
  return f.is_reply === true;
}

export function classify(f: Flow): Classified | undefined {
  const l4 = l4Of(f);
  const ips = f.IP;
  if (!l4 || !ips?.source || !ips.destination) return undefined;
  const src = sideOf(f.source, ips.source);
  const dst = sideOf(f.destination, ips.destination);
  const rev = isServerToClient(f);
  const icmp = l4.protocol.startsWith('ICMP');
  return rev
    ? { client: dst, server: src, port: icmp ? 0 : l4.sport, protocol: l4.protocol }
    : { client: src, server: dst, port: icmp ? 0 : l4.dport, protocol: l4.protocol };
}
