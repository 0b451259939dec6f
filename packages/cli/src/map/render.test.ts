import { describe, expect, it } from 'vitest';
import { buildServiceMap } from './model.js';
import { renderDot, renderMermaid, renderTable } from './render.js';
import type { GetServiceMapResponse } from '@flowctl/flow/gen/flowctl/servicemap';
import { NodeState } from '@flowctl/flow/gen/relay/relay';

const resp: GetServiceMapResponse = {
  nodes: [
    { id: 'shop/order-service', namespace: 'shop', workload: 'order-service', kind: 'workload', pods: ['shop/order-service-1'], labels: ['k8s:app=order'] },
    { id: 'shop/api-gateway', namespace: 'shop', workload: 'api-gateway', kind: 'workload', pods: ['shop/api-gateway-1', 'shop/api-gateway-2'], labels: ['k8s:app=gw'] },
    { id: 'monitoring/prometheus', namespace: 'monitoring', workload: 'prometheus', kind: 'workload', pods: ['monitoring/prometheus-0'], labels: ['k8s:app=prometheus'] },
    { id: 'world', kind: 'world', namespace: '', workload: '', pods: [], labels: [] },
  ],
  edges: [
    {
      source: 'shop/api-gateway', destination: 'shop/order-service', port: 8080, protocol: 'TCP', flows: 10n, connections: 5n,
      bytes_sent: 1000n, bytes_received: 5000n, drops: 2n, drop_reasons: { POLICY_DENIED: 2n }, http_requests: 5n, http_errors: 1n,
      http_latency_us: { index: [100, 120], count: [3n, 1n] }, tcp_rtt_us: { index: [150], count: [5n] },
    },
    { source: 'world', destination: 'shop/api-gateway', port: 443, protocol: 'TCP', flows: 3n, connections: 1n, bytes_sent: 10n, bytes_received: 20n },
    { source: 'monitoring/prometheus', destination: 'shop/api-gateway', port: 9090, protocol: 'TCP', flows: 7n },
  ],
  overflow: 0n,
  node_status: [{ state_change: NodeState.NODE_UNAVAILABLE, node_names: ['node-3'], message: 'gone' }],
};

const m = buildServiceMap(resp, { since: '2026-01-01T00:00:00.000Z', until: '2026-01-01T00:05:00.000Z' }, { exclude: ['app=prometheus'] });

describe('service map model and renderers', () => {
  it('builds the JSON shape: quantiles from sketches, excluded nodes gone, unavailable nodes named', () => {
    expect(m.nodes.map((n) => n.id)).toEqual(['shop/api-gateway', 'shop/order-service', 'world']);
    expect(m.nodes[0]).toMatchObject({ namespace: 'shop', workload: 'api-gateway', pods: 2 });
    expect(m.edges).toHaveLength(2);
    const e = m.edges[0]!;
    expect(e).toMatchObject({ flows: 10, connections: 5, drops: 2, drop_reasons: { POLICY_DENIED: 2 }, http_requests: 5, http_errors: 1 });
    // Bucket 100 (about 50 µs) holds the p50 (3 of 4 values), bucket 120 (about 110 µs) the p99.
    expect(e.http_latency_p50_ms).toBeCloseTo((2 * 1.04 ** 100) / 2.04 / 1000, 2);
    expect(e.http_latency_p99_ms).toBeCloseTo((2 * 1.04 ** 120) / 2.04 / 1000, 2);
    expect(e.tcp_rtt_p50_us).toBe(Math.round((2 * 1.04 ** 150) / 2.04));
    expect(m.unavailable_nodes).toEqual(['node-3']);
  });

  it('prints a table', () => {
    expect(renderTable(m)).toMatchInlineSnapshot(`
      "Service map 2026-01-01T00:00:00.000Z .. 2026-01-01T00:05:00.000Z: 3 nodes, 2 edges
      SOURCE              DESTINATION           PORT        FLOWS    CONNS    SENT      RECEIVED    DROPS                HTTP REQ    HTTP 5XX    HTTP P50/P99    DNS Q/ERR    RTT P50    RETRANS
      shop/api-gateway    shop/order-service    8080/TCP    10       5        1000 B    4.9 KiB     2 (POLICY_DENIED)    5           1           0.05/0.108ms    -            352µs      -
      world               shop/api-gateway      443/TCP     3        1        10 B      20 B        -                    -           -           -               -            -          -
      warning: 1 node did not answer: node-3
      "
    `);
  });

  it('prints dot and mermaid', () => {
    expect(renderDot(m)).toMatchInlineSnapshot(`
      "digraph flowctl_map {
        rankdir=LR;
        node [shape=box, style=rounded, fontname="sans-serif"];
        edge [fontname="sans-serif", fontsize=10];
        "world" [label="world", shape=ellipse];
        subgraph cluster_0 {
          label="shop";
          "shop/api-gateway" [label="api-gateway\\n(2 pods)"];
          "shop/order-service" [label="order-service\\n(1 pod)"];
        }
        "shop/api-gateway" -> "shop/order-service" [label="8080/TCP\\n5 req, 1 5xx, p50 0.05ms\\n2 dropped", color=red, fontcolor=red];
        "world" -> "shop/api-gateway" [label="443/TCP\\n30 B"];
      }
      "
    `);
    expect(renderMermaid(m)).toMatchInlineSnapshot(`
      "flowchart LR
        n2(["world"])
        subgraph ns0["shop"]
          n0["api-gateway<br/>(2 pods)"]
          n1["order-service<br/>(1 pod)"]
        end
        n0 -->|"8080/TCP<br/>5 req, 1 5xx, p50 0.05ms<br/>2 dropped"| n1
        n2 -->|"443/TCP<br/>30 B"| n0
        linkStyle 0 stroke:#d00,color:#d00
      "
    `);
  });
});
