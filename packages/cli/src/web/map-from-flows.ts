// The service map computed from the flows a GetFlows call returns (the server's ring), in the
// JSON shape of `flowctl map -o json` (issue 24): `{window, nodes, edges}`. It answers only for
// what the ring still holds; the aggregation service of the agents answers for longer windows.
import { DropReason, dropReasonToJSON, L7FlowType, Verdict, type Endpoint, type Flow } from '@flowctl/flow/gen/flow/flow';
import type { GetFlowsRequest, GetFlowsResponse } from '@flowctl/flow/gen/observer/observer';
import type { Timestamp } from '@flowctl/flow/gen/google/protobuf/timestamp';

export interface MapNode {
  id: string;
  namespace?: string;
  workload?: string;
  pods: number;
}

export interface MapEdge {
  source: string;
  destination: string;
  port: number;
  protocol: string;
  flows: number;
  connections: number;
  bytes_sent: number;
  bytes_received: number;
  drops: number;
  drop_reasons: Record<string, number>;
  http_requests: number;
  http_errors: number;
  http_latency_p50_ms: number;
  http_latency_p99_ms: number;
  dns_queries: number;
  dns_errors: number;
  tcp_rtt_p50_us: number;
  tcp_retransmits: number;
}

export interface ServiceMap {
  window: { since: string; until: string };
  nodes: MapNode[];
  edges: MapEdge[];
}

export interface MapQuery {
  since: Timestamp;
  until?: Timestamp;
  whitelist: GetFlowsRequest['whitelist'];
  blacklist: GetFlowsRequest['blacklist'];
}

export interface FlowSource {
  getFlows(req: GetFlowsRequest, signal?: AbortSignal): AsyncIterable<GetFlowsResponse>;
}

const RESERVED = ['host', 'world', 'remote-node', 'kube-apiserver', 'health', 'init', 'ingress', 'unmanaged'];

/** The map node an endpoint belongs to: `namespace/workload`, a reserved identity, or the IP's /24 (/64). */
export function nodeIdOf(ep: Endpoint | undefined, ip: string | undefined): { id: string; namespace?: string; workload?: string; pod?: string } {
  if (ep?.namespace) {
    const workload = ep.workloads?.[0]?.name || ep.pod_name || 'unknown';
    return { id: `${ep.namespace}/${workload}`, namespace: ep.namespace, workload, pod: ep.pod_name || undefined };
  }
  for (const name of RESERVED) if (ep?.labels?.includes(`reserved:${name}`)) return { id: name };
  return { id: ip ? cidrOf(ip) : 'unknown' };
}

function cidrOf(ip: string): string {
  if (ip.includes(':')) {
    const groups = ip.split('::')[0]!.split(':');
    while (groups.length < 4) groups.push('0');
    return `${groups.slice(0, 4).join(':')}::/64`;
  }
  const p = ip.split('.');
  return `${p[0]}.${p[1]}.${p[2]}.0/24`;
}

export interface FlowEnds {
  client: ReturnType<typeof nodeIdOf>;
  server: ReturnType<typeof nodeIdOf>;
  port: number;
  protocol: string;
}

/** Client and server side of the connection a flow belongs to (replies and responses point back). */
export function flowEnds(f: Flow): FlowEnds {
  const src = nodeIdOf(f.source, f.IP?.source);
  const dst = nodeIdOf(f.destination, f.IP?.destination);
  const l4 = f.l4;
  let protocol = 'other';
  let sport = 0;
  let dport = 0;
  if (l4?.TCP) [protocol, sport, dport] = ['TCP', l4.TCP.source_port ?? 0, l4.TCP.destination_port ?? 0];
  else if (l4?.UDP) [protocol, sport, dport] = ['UDP', l4.UDP.source_port ?? 0, l4.UDP.destination_port ?? 0];
  else if (l4?.SCTP) [protocol, sport, dport] = ['SCTP', l4.SCTP.source_port ?? 0, l4.SCTP.destination_port ?? 0];
  else if (l4?.ICMPv4) protocol = 'ICMPv4';
  else if (l4?.ICMPv6) protocol = 'ICMPv6';
  // An ephemeral port (Linux's default range starts at 32768) facing a lower one names the client
  // whatever is_reply says; is_reply and the L7 type decide the rest.
  const ephemeralSrc = sport >= 32768;
  const reply = sport && dport && ephemeralSrc !== dport >= 32768 ? !ephemeralSrc : f.is_reply === true || f.l7?.type === L7FlowType.RESPONSE;
  return reply ? { client: dst, server: src, port: sport, protocol } : { client: src, server: dst, port: dport, protocol };
}

function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

function iso(ts: Timestamp | undefined, fallbackMs: number): string {
  if (!ts) return new Date(fallbackMs).toISOString();
  return new Date(Number(ts.seconds ?? 0n) * 1000 + Math.floor((ts.nanos ?? 0) / 1e6)).toISOString();
}

/** Aggregates flows into nodes and (client, server, port, protocol) edges. */
export function aggregateFlows(flows: Iterable<Flow>, window: { since: string; until: string }): ServiceMap {
  const nodes = new Map<string, MapNode & { podSet: Set<string> }>();
  const edges = new Map<string, MapEdge & { latencies: number[] }>();
  const node = (n: ReturnType<typeof nodeIdOf>) => {
    let x = nodes.get(n.id);
    if (!x) {
      x = { id: n.id, pods: 0, podSet: new Set() };
      if (n.namespace) [x.namespace, x.workload] = [n.namespace, n.workload];
      nodes.set(n.id, x);
    }
    if (n.pod) x.podSet.add(n.pod);
  };
  for (const f of flows) {
    const e = flowEnds(f);
    node(e.client);
    node(e.server);
    const key = `${e.client.id}\u0000${e.server.id}\u0000${e.port}\u0000${e.protocol}`;
    let edge = edges.get(key);
    if (!edge) {
      edge = {
        source: e.client.id, destination: e.server.id, port: e.port, protocol: e.protocol,
        flows: 0, connections: 0, bytes_sent: 0, bytes_received: 0, drops: 0, drop_reasons: {},
        http_requests: 0, http_errors: 0, http_latency_p50_ms: 0, http_latency_p99_ms: 0,
        dns_queries: 0, dns_errors: 0, tcp_rtt_p50_us: 0, tcp_retransmits: 0, latencies: [],
      };
      edges.set(key, edge);
    }
    edge.flows++;
    if (f.verdict === Verdict.DROPPED) {
      edge.drops++;
      const reason = dropReasonToJSON(f.drop_reason_desc ?? DropReason.DROP_REASON_UNKNOWN);
      edge.drop_reasons[reason] = (edge.drop_reasons[reason] ?? 0) + 1;
    }
    const syn = f.l4?.TCP?.flags;
    if (syn?.SYN && !syn.ACK && f.verdict !== Verdict.DROPPED) edge.connections++;
    const l7 = f.l7;
    if (l7?.http) {
      if (l7.type === L7FlowType.REQUEST) edge.http_requests++;
      else if (l7.type === L7FlowType.RESPONSE) {
        if ((l7.http.code ?? 0) >= 500) edge.http_errors++;
        if (l7.latency_ns) edge.latencies.push(Number(l7.latency_ns) / 1e6);
      }
    } else if (l7?.dns) {
      if (l7.type === L7FlowType.REQUEST) edge.dns_queries++;
      else if (l7.type === L7FlowType.RESPONSE && (l7.dns.rcode ?? 0) !== 0) edge.dns_errors++;
    }
  }
  const outEdges: MapEdge[] = [];
  for (const { latencies, ...edge } of edges.values()) {
    latencies.sort((a, b) => a - b);
    edge.http_latency_p50_ms = percentile(latencies, 50);
    edge.http_latency_p99_ms = percentile(latencies, 99);
    outEdges.push(edge);
  }
  const outNodes = [...nodes.values()].map(({ podSet, ...n }) => ({ ...n, pods: podSet.size }));
  outNodes.sort((a, b) => a.id.localeCompare(b.id));
  outEdges.sort((a, b) => a.source.localeCompare(b.source) || a.destination.localeCompare(b.destination) || a.port - b.port || a.protocol.localeCompare(b.protocol));
  return { window, nodes: outNodes, edges: outEdges };
}

/** The map of the flows the server holds for the query's window. */
export async function queryMap(source: FlowSource, q: MapQuery, signal?: AbortSignal, nowMs = Date.now()): Promise<ServiceMap> {
  const flows: Flow[] = [];
  const req: GetFlowsRequest = { since: q.since, whitelist: q.whitelist, blacklist: q.blacklist, number: 0n };
  if (q.until) req.until = q.until;
  for await (const r of source.getFlows(req, signal)) if (r.flow) flows.push(r.flow);
  return aggregateFlows(flows, { since: iso(q.since, nowMs), until: iso(q.until, nowMs) });
}
