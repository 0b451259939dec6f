// The service map as `flowctl map -o json` prints it and `flowctl ui` draws it: one object with
// the window, the nodes (workloads and address groups) and the edges (client → server, port,
// protocol) with their counts. Built from a ServiceMap answer (proto/flowctl/servicemap.proto).
import type { GetServiceMapResponse, MapNode } from '@flowctl/flow/gen/flowctl/servicemap';
import { NodeState } from '@flowctl/flow/gen/relay/relay';
import { EDGE_SCALARS, compareEdgeKeys, fromMapEdge, type EdgeKey, type EdgeScalars } from '@flowctl/flow/servicemap/edges';
import { quantile } from '@flowctl/flow/servicemap/sketch';

export interface ServiceMapNode {
  /** "namespace/workload", "world", "host", a CIDR ("10.0.1.0/24") or a reserved identity's name. */
  id: string;
  /** "workload", "world", "host", "cidr", ... */
  kind: string;
  namespace?: string;
  workload?: string;
  /** Pods of the workload seen in the window. */
  pods?: number;
  pod_names?: string[];
  labels?: string[];
}

export interface ServiceMapEdge extends EdgeKey, EdgeScalars {
  drop_reasons?: Record<string, number>;
  http_latency_p50_ms?: number;
  http_latency_p99_ms?: number;
  dns_latency_p50_ms?: number;
  tcp_rtt_p50_us?: number;
}

export interface ServiceMap {
  window: { since: string; until: string };
  nodes: ServiceMapNode[];
  edges: ServiceMapEdge[];
  /** Nodes of a relay that did not answer: the map lacks what they saw. */
  unavailable_nodes?: string[];
  /** Flows an agent could not aggregate because a bucket was full. */
  overflow?: number;
  /** Set when the buckets do not reach back to `window.since`: the map covers only from here. */
  covered_since?: string;
}

const round = (v: number, digits: number) => Math.round(v * 10 ** digits) / 10 ** digits;

function toNode(n: MapNode): ServiceMapNode {
  const out: ServiceMapNode = { id: n.id ?? '', kind: n.kind ?? '' };
  if (n.kind === 'workload') {
    out.namespace = n.namespace ?? '';
    out.workload = n.workload ?? '';
    out.pods = n.pods?.length ?? 0;
    out.pod_names = n.pods ?? [];
    out.labels = n.labels ?? [];
  }
  return out;
}

/**
 * A selector of `--exclude`: a node id ("monitoring/prometheus", "world"), a namespace
 * ("monitoring/"), or a label ("app=prometheus", "k8s:app=prometheus").
 */
export function excludeMatcher(selectors: readonly string[]): (n: ServiceMapNode) => boolean {
  const preds = selectors.map((s): ((n: ServiceMapNode) => boolean) => {
    if (s.endsWith('/')) return (n) => n.namespace === s.slice(0, -1);
    if (s.includes('=')) {
      const bare = s.replace(/^k8s:/, '');
      return (n) => (n.labels ?? []).some((l) => l === s || l.replace(/^[a-z0-9-]+:/, '') === bare);
    }
    return (n) => n.id === s;
  });
  return (n) => preds.some((p) => p(n));
}

export function buildServiceMap(
  resp: GetServiceMapResponse,
  window: { since: string; until: string },
  opts: { exclude?: readonly string[]; sinceMs?: number } = {},
): ServiceMap {
  const excluded = excludeMatcher(opts.exclude ?? []);
  const nodes = new Map<string, ServiceMapNode>();
  for (const n of resp.nodes ?? []) nodes.set(n.id ?? '', toNode(n));
  const drop = new Set([...nodes.values()].filter(excluded).map((n) => n.id));
  const edges: ServiceMapEdge[] = [];
  for (const pe of resp.edges ?? []) {
    const { key, counters: c } = fromMapEdge(pe);
    if (drop.has(key.source) || drop.has(key.destination)) continue;
    const e = { ...key } as ServiceMapEdge;
    for (const k of EDGE_SCALARS) e[k] = c[k];
    if (c.drop_reasons.size) e.drop_reasons = Object.fromEntries([...c.drop_reasons].sort());
    const p50 = quantile(c.http_latency_us, 0.5);
    if (p50 !== undefined) {
      e.http_latency_p50_ms = round(p50 / 1000, 3);
      e.http_latency_p99_ms = round(quantile(c.http_latency_us, 0.99)! / 1000, 3);
    }
    const dns = quantile(c.dns_latency_us, 0.5);
    if (dns !== undefined) e.dns_latency_p50_ms = round(dns / 1000, 3);
    const rtt = quantile(c.tcp_rtt_us, 0.5);
    if (rtt !== undefined) e.tcp_rtt_p50_us = Math.round(rtt);
    edges.push(e);
  }
  edges.sort(compareEdgeKeys);
  const used = new Set(edges.flatMap((e) => [e.source, e.destination]));
  const out: ServiceMap = {
    window,
    nodes: [...nodes.values()].filter((n) => used.has(n.id)).sort((a, b) => a.id.localeCompare(b.id)),
    edges,
  };
  const unavailable = (resp.node_status ?? [])
    .filter((s) => s.state_change === NodeState.NODE_UNAVAILABLE || s.state_change === NodeState.NODE_ERROR)
    .flatMap((s) => s.node_names ?? []);
  if (unavailable.length) out.unavailable_nodes = [...new Set(unavailable)].sort();
  if (resp.overflow) out.overflow = Number(resp.overflow);
  if (resp.covered_since && opts.sinceMs !== undefined) {
    const coveredMs = Number(resp.covered_since.seconds ?? 0n) * 1000 + Math.floor((resp.covered_since.nanos ?? 0) / 1e6);
    if (coveredMs > opts.sinceMs) out.covered_since = new Date(coveredMs).toISOString();
  }
  return out;
}
