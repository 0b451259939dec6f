import { describe, expect, it } from 'vitest';
import { DropReason, L7FlowType, Verdict, type Endpoint, type Flow } from '@flowctl/flow/gen/flow/flow';
import { aggregateFlows, flowEnds, nodeIdOf } from './map-from-flows.js';

const pod = (ns: string, name: string, workload: string): Endpoint => ({ namespace: ns, pod_name: name, workloads: [{ name: workload, kind: 'Deployment' }], labels: [`k8s:app=${workload}`] });
const FE1 = pod('shop', 'frontend-1', 'frontend');
const FE2 = pod('shop', 'frontend-2', 'frontend');
const API = pod('shop', 'api-1', 'api');
const DNS = pod('kube-system', 'coredns-1', 'coredns');
const WORLD: Endpoint = { identity: 2, labels: ['reserved:world'] };

function tcp(src: Endpoint, dst: Endpoint, sport: number, dport: number, extra: Partial<Flow> = {}): Flow {
  return { source: src, destination: dst, IP: { source: '10.0.0.1', destination: '10.0.0.2' }, l4: { TCP: { source_port: sport, destination_port: dport } }, verdict: Verdict.FORWARDED, ...extra };
}

const W = { since: '2026-01-01T00:00:00.000Z', until: '2026-01-01T00:05:00.000Z' };

describe('service map from flows', () => {
  it('names nodes by namespace/workload, reserved identity or the IP\'s /24 and /64', () => {
    expect(nodeIdOf(FE1, '10.0.0.1').id).toBe('shop/frontend');
    expect(nodeIdOf({ namespace: 'x', pod_name: 'solo' }, undefined).id).toBe('x/solo');
    expect(nodeIdOf(WORLD, '1.2.3.4').id).toBe('world');
    expect(nodeIdOf({ labels: ['reserved:host'] }, '10.0.0.9').id).toBe('host');
    expect(nodeIdOf(undefined, '192.168.7.9').id).toBe('192.168.7.0/24');
    expect(nodeIdOf({}, 'fd00:1:2:3:4::5').id).toBe('fd00:1:2:3::/64');
    expect(nodeIdOf({}, 'fd00::5').id).toBe('fd00:0:0:0::/64');
  });

  it('puts replies and HTTP responses on the edge of the connection that carried them', () => {
    const reply = tcp(API, FE1, 8080, 40000, { is_reply: true });
    expect(flowEnds(reply)).toMatchObject({ client: { id: 'shop/frontend' }, server: { id: 'shop/api' }, port: 8080, protocol: 'TCP' });
    const resp = tcp(API, FE1, 8080, 40000, { l7: { type: L7FlowType.RESPONSE, http: { code: 200 } } });
    expect(flowEnds(resp)).toMatchObject({ client: { id: 'shop/frontend' }, server: { id: 'shop/api' }, port: 8080 });
  });

  it('counts flows, connections, drops by reason, HTTP requests, 5xx and latency, DNS queries and errors', () => {
    const flows: Flow[] = [
      tcp(FE1, API, 40000, 8080, { l4: { TCP: { source_port: 40000, destination_port: 8080, flags: { SYN: true } } } }),
      tcp(API, FE1, 8080, 40000, { is_reply: true, l4: { TCP: { source_port: 8080, destination_port: 40000, flags: { SYN: true, ACK: true } } } }),
      tcp(FE2, API, 40001, 8080, { l7: { type: L7FlowType.REQUEST, http: { method: 'GET', url: '/a' } } }),
      tcp(API, FE2, 8080, 40001, { l7: { type: L7FlowType.RESPONSE, latency_ns: 2_000_000n, http: { code: 200 } } }),
      tcp(FE1, API, 40002, 8080, { l7: { type: L7FlowType.REQUEST, http: { method: 'GET', url: '/b' } } }),
      tcp(API, FE1, 8080, 40002, { l7: { type: L7FlowType.RESPONSE, latency_ns: 9_000_000n, http: { code: 503 } } }),
      tcp(WORLD, API, 5555, 8080, { verdict: Verdict.DROPPED, drop_reason_desc: DropReason.POLICY_DENIED }),
      tcp(WORLD, API, 5556, 8080, { verdict: Verdict.DROPPED, drop_reason_desc: DropReason.POLICY_DENIED }),
      { source: FE1, destination: DNS, l4: { UDP: { source_port: 5353, destination_port: 53 } }, l7: { type: L7FlowType.REQUEST, dns: { query: 'x.' } } },
      { source: DNS, destination: FE1, l4: { UDP: { source_port: 53, destination_port: 5353 } }, l7: { type: L7FlowType.RESPONSE, dns: { query: 'x.', rcode: 3 } } },
    ];
    const m = aggregateFlows(flows, W);
    expect(m.window).toEqual(W);
    expect(m.nodes).toEqual([
      { id: 'kube-system/coredns', namespace: 'kube-system', workload: 'coredns', pods: 1 },
      { id: 'shop/api', namespace: 'shop', workload: 'api', pods: 1 },
      { id: 'shop/frontend', namespace: 'shop', workload: 'frontend', pods: 2 },
      { id: 'world', pods: 0 },
    ]);
    const edge = (s: string, d: string) => m.edges.find((e) => e.source === s && e.destination === d)!;
    expect(m.edges).toHaveLength(3);
    expect(edge('shop/frontend', 'shop/api')).toMatchObject({ port: 8080, protocol: 'TCP', flows: 6, connections: 1, drops: 0, http_requests: 2, http_errors: 1, http_latency_p50_ms: 2, http_latency_p99_ms: 9 });
    expect(edge('world', 'shop/api')).toMatchObject({ flows: 2, drops: 2, drop_reasons: { POLICY_DENIED: 2 }, connections: 0 });
    expect(edge('shop/frontend', 'kube-system/coredns')).toMatchObject({ port: 53, protocol: 'UDP', flows: 2, dns_queries: 1, dns_errors: 1 });
  });
});
