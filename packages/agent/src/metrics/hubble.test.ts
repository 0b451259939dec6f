import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { DropReason, FlowType, L7FlowType, LostEventSource, TrafficDirection, Verdict, attachConnNumbers, type Flow } from '@flowctl/flow';
import { makeCorpus } from '@flowctl/flow/testing';
import { FlowMetrics, parseMetricsSpec } from './hubble.js';

async function valueOf(reg: Registry, name: string, labels: Record<string, string>): Promise<number | undefined> {
  const all = (await reg.getMetricsAsJSON()).flatMap((m) =>
    (m.values as { labels: Record<string, string | number>; value: number; metricName?: string }[]).map((v) => ({ ...v, metricName: v.metricName ?? m.name })));
  const v = all.find((x) => x.metricName === name && Object.entries(labels).every(([k, val]) => String(x.labels[k]) === val));
  return v?.value;
}

const dropped: Flow = {
  verdict: Verdict.DROPPED, drop_reason_desc: DropReason.POLICY_DENIED, event_type: { type: 1, sub_type: 133 },
  l4: { TCP: { source_port: 40000, destination_port: 8080, flags: { SYN: true } } }, IP: { source: '10.10.2.66', destination: '10.10.1.11', ipVersion: 1 },
  source: { namespace: 'default', pod_name: 'intruder-9x8z7', labels: ['k8s:app=intruder'] },
  destination: { namespace: 'shop', pod_name: 'order-service-5d8f7', labels: ['k8s:app=order-service'] },
};

describe('metrics spec', () => {
  it('parses Hubble space-separated and comma-separated lists with options', () => {
    const s = parseMetricsSpec('dns:query;ignoreAAAA drop,tcp,flow:sourceContext=namespace|pod;destinationContext=pod,icmp http');
    expect(s.map((h) => h.name)).toEqual(['dns', 'drop', 'tcp', 'flow', 'icmp', 'http']);
    expect(s[0]!.options.has('ignoreAAAA')).toBe(true);
    expect(s[3]!.options.get('sourceContext')).toBe('namespace|pod');
    expect(parseMetricsSpec('flow:labelsContext=source_namespace,destination_namespace,drop')[0]!.options.get('labelsContext')).toBe('source_namespace,destination_namespace');
  });
  it('rejects unknown handlers, options and contexts with the offending word', () => {
    expect(() => parseMetricsSpec('dns,bogus')).toThrow(/unknown handler "bogus"/);
    expect(() => parseMetricsSpec('drop:query')).toThrow(/no option "query"/);
    expect(() => parseMetricsSpec('flow:sourceContext=galaxy')).toThrow(expect.objectContaining({ name: 'FlowctlError', code: 'CONFIG' }));
  });
});

describe('FlowMetrics', () => {
  it("counts flows, drops, TCP flags, DNS and HTTP with Hubble's names and labels", async () => {
    const reg = new Registry();
    const m = new FlowMetrics({ registry: reg, handlers: parseMetricsSpec('flow drop tcp dns http icmp:destinationContext=namespace') });
    m.observe(dropped);
    m.observe(dropped);
    m.observe({ verdict: Verdict.FORWARDED, event_type: { type: 4 }, l4: { TCP: { flags: { SYN: true, ACK: true } } }, IP: { ipVersion: 1 } });
    m.observe({ verdict: Verdict.FORWARDED, Type: FlowType.L7, event_type: { type: 129 }, is_reply: false, l7: { type: L7FlowType.REQUEST, dns: { query: 'a.b.', qtypes: ['A'] } } });
    m.observe({ verdict: Verdict.FORWARDED, Type: FlowType.L7, event_type: { type: 129 }, is_reply: true, l7: { type: L7FlowType.RESPONSE, dns: { query: 'a.b.', qtypes: ['A'], rcode: 3 } } });
    m.observe({ verdict: Verdict.FORWARDED, Type: FlowType.L7, event_type: { type: 129 }, traffic_direction: TrafficDirection.INGRESS, l7: { type: L7FlowType.RESPONSE, latency_ns: 2_500_000n, http: { code: 500, method: 'GET', protocol: 'HTTP/1.1' } } });
    m.observe({ verdict: Verdict.FORWARDED, event_type: { type: 4 }, l4: { ICMPv4: { type: 8 } }, destination: { namespace: 'shop' } });
    m.lostEvents(LostEventSource.HUBBLE_RING_BUFFER, 3);
    expect(await valueOf(reg, 'hubble_drop_total', { reason: 'POLICY_DENIED', protocol: 'TCP' })).toBe(2);
    expect(await valueOf(reg, 'hubble_flows_processed_total', { protocol: 'TCP', type: 'Drop', verdict: 'DROPPED' })).toBe(2);
    expect(await valueOf(reg, 'hubble_flows_processed_total', { protocol: 'TCP', type: 'Trace', subtype: 'to-endpoint', verdict: 'FORWARDED' })).toBe(1);
    expect(await valueOf(reg, 'hubble_tcp_flags_total', { flag: 'SYN-ACK', family: 'IPv4' })).toBe(1);
    expect(await valueOf(reg, 'hubble_tcp_flags_total', { flag: 'SYN' })).toBeUndefined(); // drops are not counted
    expect(await valueOf(reg, 'hubble_dns_queries_total', { qtypes: 'A', rcode: '' })).toBe(1);
    expect(await valueOf(reg, 'hubble_dns_responses_total', { rcode: 'Non-Existent Domain', ips_returned: '0' })).toBe(1);
    expect(await valueOf(reg, 'hubble_http_responses_total', { method: 'GET', status: '500', reporter: 'server' })).toBe(1);
    expect(await valueOf(reg, 'hubble_http_request_duration_seconds_sum', { method: 'GET', reporter: 'server' })).toBeCloseTo(0.0025);
    expect(await valueOf(reg, 'hubble_icmp_total', { family: 'IPv4', type: 'EchoRequest', destination: 'shop' })).toBe(1);
    expect(await valueOf(reg, 'hubble_lost_events_total', { source: 'hubble_ring_buffer' })).toBe(3);
  });

  it('labels socket (SOCK) events as Hubble does: no case of their own, so Unknown flow / Unknown / 7', async () => {
    // cilium pkg/hubble/metrics/flow/handler.go: event types without a case get type "Unknown" and
    // the type number as subtype; pkg/hubble/api/v1 FlowProtocol gives "Unknown flow".
    const reg = new Registry();
    const m = new FlowMetrics({ registry: reg, handlers: parseMetricsSpec('flow drop') });
    m.observe({ Type: FlowType.SOCK, event_type: { type: 7, sub_type: 0 }, verdict: Verdict.FORWARDED, l4: { TCP: { destination_port: 8080 } }, sock_xlate_point: 0 });
    expect(await valueOf(reg, 'hubble_flows_processed_total', { protocol: 'Unknown flow', type: 'Unknown', subtype: '7', verdict: 'FORWARDED' })).toBe(1);
    expect(await valueOf(reg, 'hubble_flows_processed_total', { type: 'Sock' })).toBeUndefined();
  });

  it('bounds label cardinality by folding context labels to "overflow"', async () => {
    const reg = new Registry();
    const m = new FlowMetrics({ registry: reg, handlers: parseMetricsSpec('drop:sourceContext=pod'), maxSeries: 3 });
    for (let i = 0; i < 50; i++) m.observe({ ...dropped, source: { namespace: 'default', pod_name: `pod-${i}` } });
    const series = (await reg.getMetricsAsJSON()).find((x) => x.name === 'hubble_drop_total')!.values;
    expect(series).toHaveLength(4);
    expect(await valueOf(reg, 'hubble_drop_total', { source: 'overflow' })).toBe(47);
    expect(await valueOf(reg, 'flowctl_metrics_series_overflow_total', { metric: 'hubble_drop_total' })).toBe(47);
  });

  it('produces an exposition that promtool accepts, over a realistic corpus', async () => {
    const reg = new Registry();
    const m = new FlowMetrics({ registry: reg, handlers: parseMetricsSpec('flow:sourceContext=namespace drop tcp dns:query http icmp port-distribution flows-to-world:port') });
    for (const r of makeCorpus(2000, 7)) if (r.flow) m.observe(r.flow);
    const text = await reg.metrics();
    expect(text).toContain('hubble_flows_processed_total{');
    const promtool = ['/usr/bin/promtool', '/usr/local/bin/promtool'].find(existsSync);
    expect(promtool, 'promtool not found: make deps installs Debian\'s prometheus package').toBeDefined();
    const dir = mkdtempSync(join(tmpdir(), 'fc-metrics-'));
    try {
      writeFileSync(join(dir, 'm.txt'), text);
      execFileSync('sh', ['-c', `${promtool} check metrics < ${join(dir, 'm.txt')}`], { stdio: 'pipe' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('tcp-health, dns-latency and httpV2 count per client/server pair, the client as source', async () => {
    const reg = new Registry();
    const pair = 'sourceContext=pod-name;destinationContext=pod-name';
    const m = new FlowMetrics({ registry: reg, handlers: parseMetricsSpec(`tcp-health:${pair} dns-latency:${pair} httpV2:${pair}`) });
    const client = { namespace: 'shop', pod_name: 'gw-1' };
    const server = { namespace: 'shop', pod_name: 'order-1' };
    const sock = (summary: string, dir: TrafficDirection, n: Parameters<typeof attachConnNumbers>[1]): Flow => {
      const atClient = dir === TrafficDirection.EGRESS;
      const f: Flow = {
        Type: FlowType.SOCK, verdict: Verdict.FORWARDED, traffic_direction: dir, Summary: summary,
        IP: atClient ? { source: '10.0.0.1', destination: '10.0.0.2' } : { source: '10.0.0.2', destination: '10.0.0.1' },
        l4: { TCP: atClient ? { source_port: 40000, destination_port: 8080 } : { source_port: 8080, destination_port: 40000 } },
        source: atClient ? client : server, destination: atClient ? server : client,
      };
      attachConnNumbers(f, n);
      return f;
    };
    m.observe(sock('TCP ESTABLISHED', TrafficDirection.EGRESS, { state: 'ESTABLISHED' }));
    // The server's socket of the same connection: not counted again.
    m.observe(sock('TCP ESTABLISHED', TrafficDirection.INGRESS, { state: 'ESTABLISHED' }));
    m.observe(sock('TCP CLOSED', TrafficDirection.EGRESS, { state: 'CLOSED', srtt_us: 250, retransmits: 2, bytes_sent: 100, bytes_received: 900 }));
    m.observe(sock('TCP CLOSED', TrafficDirection.EGRESS, { state: 'CLOSED', close_reason: 'refused' }));
    const l = { source: 'gw-1', destination: 'order-1' };
    expect(await valueOf(reg, 'flowctl_tcp_connections_total', { ...l, result: 'established' })).toBe(1);
    expect(await valueOf(reg, 'flowctl_tcp_connections_total', { ...l, result: 'refused' })).toBe(1);
    expect(await valueOf(reg, 'flowctl_tcp_retransmits_total', l)).toBe(2);
    expect(await valueOf(reg, 'flowctl_tcp_bytes_total', { ...l, direction: 'sent' })).toBe(100);
    expect(await valueOf(reg, 'flowctl_tcp_bytes_total', { ...l, direction: 'received' })).toBe(900);
    expect(await valueOf(reg, 'flowctl_tcp_rtt_seconds_count', l)).toBe(1);
    expect(await valueOf(reg, 'flowctl_tcp_rtt_seconds_sum', l)).toBeCloseTo(0.00025);

    // Responses run server → client; their context is the request's.
    const resp = (l7: Flow['l7']): Flow => ({
      Type: FlowType.L7, verdict: Verdict.FORWARDED, traffic_direction: TrafficDirection.EGRESS, event_type: { type: 129 },
      IP: { source: '10.0.0.2', destination: '10.0.0.1' }, source: server, destination: client, l7,
    });
    m.observe(resp({ type: L7FlowType.RESPONSE, latency_ns: 3_000_000n, http: { code: 503, method: 'GET', protocol: 'HTTP/1.1', url: 'http://order/x' } }));
    m.observe(resp({ type: L7FlowType.RESPONSE, latency_ns: 2_000_000n, dns: { rcode: 3, query: 'x.', qtypes: ['A'] } }));
    expect(await valueOf(reg, 'hubble_http_requests_total', { ...l, status: '503', method: 'GET', reporter: 'client' })).toBe(1);
    expect(await valueOf(reg, 'hubble_http_request_duration_seconds_count', { ...l, method: 'GET', reporter: 'client' })).toBe(1);
    expect(await valueOf(reg, 'flowctl_dns_response_latency_seconds_count', { ...l, rcode: 'Non-Existent Domain' })).toBe(1);
    expect(() => parseMetricsSpec('http httpV2')).toThrow(/exclude each other/);
  });
});
