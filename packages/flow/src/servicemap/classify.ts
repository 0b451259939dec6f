// Which service-map edge a flow belongs to: an edge runs from the connection's client to its
// server, between map nodes (workloads, reserved identities, address groups). Shared by the
// agent's aggregation and by `flowctl ui`, which narrows flows to a map node or edge.
import { FlowType, L7FlowType, TrafficDirection, type Endpoint, type Flow } from '../gen/flow/flow.js';

/** One end of an edge: the map node it belongs to and what filters are matched against. */
export interface Side {
  /** Map node id: "namespace/workload", "host", "world", a CIDR, or a reserved identity's name. */
  readonly node: string;
  /** Aggregation key: the pod ("namespace/pod") for endpoints, else the node id. */
  readonly key: string;
  readonly kind: string;
  readonly namespace: string;
  readonly workload: string;
  readonly pod: string;
  readonly endpoint: Endpoint | undefined;
  readonly ip: string;
}

export interface Classified {
  client: Side;
  server: Side;
  /** The server's port (0 for ICMP) and the client's. */
  port: number;
  clientPort: number;
  protocol: string;
  /** The flow's Type, read once here for the callers (a flow's fields are costly to read: many shapes). */
  type: FlowType | undefined;
  /** Whether the flow runs from server to client. */
  reversed: boolean;
}

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

// Sides are immutable and shared: flows of one address and endpoint get the same Side (and its
// key strings, hashes cached), so classifying a flow allocates only its Classified. Keyed by
// address, as the agent hands out one endpoint object for all of the world.
const sideCache = new Map<string, Side>();
const SIDE_CACHE_MAX = 16384;

export function sideOf(ep: Endpoint | undefined, ip: string): Side {
  let s = sideCache.get(ip);
  if (s === undefined || s.endpoint !== ep) {
    if (s === undefined && sideCache.size >= SIDE_CACHE_MAX) sideCache.clear();
    sideCache.set(ip, (s = newSide(ep, ip)));
  }
  return s;
}

function newSide(ep: Endpoint | undefined, ip: string): Side {
  if (ep?.pod_name) {
    const ns = ep.namespace ?? '';
    const workload = workloadOf(ep);
    return { node: `${ns}/${workload}`, key: `${ns}/${ep.pod_name}`, kind: 'workload', namespace: ns, workload, pod: ep.pod_name, endpoint: ep, ip };
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

/** True when the flow runs from server to client (so the edge is its reverse). */
export function isServerToClient(f: Flow, type = f.Type): boolean {
  if (type === FlowType.L7) return f.l7?.type === L7FlowType.RESPONSE;
  if (type === FlowType.SOCK) return f.traffic_direction === TrafficDirection.INGRESS;
  return f.is_reply === true;
}

export function classify(f: Flow): Classified | undefined {
  const l4 = f.l4;
  const ips = f.IP;
  if (!l4 || !ips?.source || !ips.destination) return undefined;
  let protocol: string;
  let sport = 0;
  let dport = 0;
  const p = l4.TCP ?? l4.UDP ?? l4.SCTP;
  if (p) {
    protocol = l4.TCP ? 'TCP' : l4.UDP ? 'UDP' : 'SCTP';
    sport = p.source_port ?? 0;
    dport = p.destination_port ?? 0;
  } else if (l4.ICMPv4) protocol = 'ICMPv4';
  else if (l4.ICMPv6) protocol = 'ICMPv6';
  else return undefined;
  const src = sideOf(f.source, ips.source);
  const dst = sideOf(f.destination, ips.destination);
  const type = f.Type;
  const reversed = isServerToClient(f, type);
  return reversed
    ? { client: dst, server: src, port: sport, clientPort: dport, protocol, type, reversed }
    : { client: src, server: dst, port: dport, clientPort: sport, protocol, type, reversed };
}
