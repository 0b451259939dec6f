// Per-edge counters of the service map: what an agent adds up per time bucket, a relay sums over
// nodes and the CLI turns into the map's JSON. One shape for all three, so merging is addition.
import type { MapEdge } from '../gen/flowctl/servicemap.js';
import { fromSketch, mergeCounts, toSketch, type Counts } from './sketch.js';

/** The counters of an edge that are plain numbers, in the order the map's JSON prints them. */
export const EDGE_SCALARS = [
  'flows', 'connections', 'bytes_sent', 'bytes_received', 'packets_sent', 'packets_received', 'drops',
  'http_requests', 'http_errors', 'dns_queries', 'dns_errors', 'tcp_retransmits',
] as const;
export type EdgeScalars = Record<(typeof EDGE_SCALARS)[number], number>;

export interface EdgeCounters extends EdgeScalars {
  drop_reasons: Map<string, number>;
  http_latency_us: Counts;
  dns_latency_us: Counts;
  tcp_rtt_us: Counts;
}

export function newCounters(): EdgeCounters {
  return {
    flows: 0, connections: 0, bytes_sent: 0, bytes_received: 0, packets_sent: 0, packets_received: 0,
    drops: 0, drop_reasons: new Map(), http_requests: 0, http_errors: 0, http_latency_us: new Map(),
    dns_queries: 0, dns_errors: 0, dns_latency_us: new Map(), tcp_rtt_us: new Map(), tcp_retransmits: 0,
  };
}

export function addCounters(into: EdgeCounters, from: EdgeCounters): void {
  // Spelled out: a loop over EDGE_SCALARS reads the fields by computed name, several times slower here.
  into.flows += from.flows;
  into.connections += from.connections;
  into.bytes_sent += from.bytes_sent;
  into.bytes_received += from.bytes_received;
  into.packets_sent += from.packets_sent;
  into.packets_received += from.packets_received;
  into.drops += from.drops;
  into.http_requests += from.http_requests;
  into.http_errors += from.http_errors;
  into.dns_queries += from.dns_queries;
  into.dns_errors += from.dns_errors;
  into.tcp_retransmits += from.tcp_retransmits;
  // Most aggregates have no drops or latencies: an empty Map's iterator still costs an allocation.
  if (from.drop_reasons.size) for (const [r, n] of from.drop_reasons) into.drop_reasons.set(r, (into.drop_reasons.get(r) ?? 0) + n);
  if (from.http_latency_us.size) mergeCounts(into.http_latency_us, from.http_latency_us);
  if (from.dns_latency_us.size) mergeCounts(into.dns_latency_us, from.dns_latency_us);
  if (from.tcp_rtt_us.size) mergeCounts(into.tcp_rtt_us, from.tcp_rtt_us);
}

/** The identity of an edge: source and destination map node, server port, L4 protocol. */
export interface EdgeKey {
  source: string;
  destination: string;
  port: number;
  protocol: string;
}

export function edgeKeyString(k: EdgeKey): string {
  return `${k.source}\u0000${k.destination}\u0000${k.port}\u0000${k.protocol}`;
}

/** Edges in the map's order: by source, destination, port, then protocol. */
export function compareEdgeKeys(a: EdgeKey, b: EdgeKey): number {
  return a.source.localeCompare(b.source) || a.destination.localeCompare(b.destination) || a.port - b.port || a.protocol.localeCompare(b.protocol);
}

export function toMapEdge(k: EdgeKey, c: EdgeCounters): MapEdge {
  const e: MapEdge = { source: k.source, destination: k.destination, port: k.port, protocol: k.protocol };
  for (const s of EDGE_SCALARS) if (c[s]) e[s] = BigInt(c[s]);
  if (c.drop_reasons.size) e.drop_reasons = Object.fromEntries([...c.drop_reasons].map(([r, n]) => [r, BigInt(n)]));
  if (c.http_latency_us.size) e.http_latency_us = toSketch(c.http_latency_us);
  if (c.dns_latency_us.size) e.dns_latency_us = toSketch(c.dns_latency_us);
  if (c.tcp_rtt_us.size) e.tcp_rtt_us = toSketch(c.tcp_rtt_us);
  return e;
}

export function fromMapEdge(e: MapEdge): { key: EdgeKey; counters: EdgeCounters } {
  const c = newCounters();
  for (const s of EDGE_SCALARS) c[s] = Number(e[s] ?? 0n);
  for (const [r, n] of Object.entries(e.drop_reasons ?? {})) c.drop_reasons.set(r, Number(n));
  fromSketch(e.http_latency_us, c.http_latency_us);
  fromSketch(e.dns_latency_us, c.dns_latency_us);
  fromSketch(e.tcp_rtt_us, c.tcp_rtt_us);
  return { key: { source: e.source ?? '', destination: e.destination ?? '', port: e.port ?? 0, protocol: e.protocol ?? '' }, counters: c };
}
