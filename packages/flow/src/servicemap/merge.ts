// Sums service maps of several nodes (the relay's fan-in, and the CLI when it asks nodes itself).
// Each agent counts a connection at one end only, so the sum counts it once.
import type { GetServiceMapResponse, MapNode } from '../gen/flowctl/servicemap.js';
import { compareTimestamps } from '../time.js';
import { addCounters, edgeKeyString, fromMapEdge, toMapEdge, type EdgeCounters, type EdgeKey } from './edges.js';

export function mergeNodes(into: Map<string, MapNode>, nodes: readonly MapNode[]): void {
  for (const n of nodes) {
    const id = n.id ?? '';
    const have = into.get(id);
    if (!have) {
      into.set(id, { ...n, pods: [...(n.pods ?? [])], labels: [...(n.labels ?? [])] });
      continue;
    }
    const pods = new Set(have.pods);
    for (const p of n.pods ?? []) if (!pods.has(p)) have.pods!.push(p);
    const labels = new Set(have.labels);
    for (const l of n.labels ?? []) if (!labels.has(l)) have.labels!.push(l);
  }
}

export function mergeServiceMaps(parts: readonly GetServiceMapResponse[]): GetServiceMapResponse {
  const nodes = new Map<string, MapNode>();
  const edges = new Map<string, { key: EdgeKey; counters: EdgeCounters }>();
  const out: GetServiceMapResponse = { nodes: [], edges: [], overflow: 0n, node_status: [] };
  for (const p of parts) {
    mergeNodes(nodes, p.nodes ?? []);
    for (const e of p.edges ?? []) {
      const { key, counters } = fromMapEdge(e);
      const k = edgeKeyString(key);
      const have = edges.get(k);
      if (have) addCounters(have.counters, counters);
      else edges.set(k, { key, counters });
    }
    // The window every part covers starts at the latest of their oldest buckets.
    if (p.covered_since && (!out.covered_since || compareTimestamps(p.covered_since, out.covered_since) > 0)) out.covered_since = p.covered_since;
    out.overflow! += p.overflow ?? 0n;
    out.node_status!.push(...(p.node_status ?? []));
  }
  for (const n of nodes.values()) n.pods!.sort();
  out.nodes = [...nodes.values()].sort((a, b) => (a.id ?? '').localeCompare(b.id ?? ''));
  out.edges = [...edges.values()].map(({ key, counters }) => toMapEdge(key, counters));
  return out;
}
