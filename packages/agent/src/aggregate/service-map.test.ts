import { describe, expect, it } from 'vitest';
import { FlowType, TraceReason, TrafficDirection, Verdict, attachConnNumbers, type Endpoint, type Flow } from '@flowctl/flow';
import { ServiceMapStore } from './service-map.js';

const client: Endpoint = { namespace: 'shop', pod_name: 'web-1', workloads: [{ name: 'web', kind: 'Deployment' }] };
const server: Endpoint = { namespace: 'shop', pod_name: 'api-1', workloads: [{ name: 'api', kind: 'Deployment' }] };

/** A stats flow of one connection from web-1 (10.0.0.1:sport) to api-1 (10.0.0.2:8080) with running totals. */
function stats(sport: number, sent: number, received: number, opts: { reply?: boolean; ifindex?: number } = {}): Flow {
  const reply = opts.reply === true;
  const f: Flow = {
    Type: FlowType.L3_L4, verdict: Verdict.FORWARDED, traffic_direction: TrafficDirection.EGRESS,
    trace_reason: TraceReason.ESTABLISHED, is_reply: reply,
    IP: reply ? { source: '10.0.0.2', destination: '10.0.0.1' } : { source: '10.0.0.1', destination: '10.0.0.2' },
    l4: { TCP: reply ? { source_port: 8080, destination_port: sport } : { source_port: sport, destination_port: 8080 } },
    source: reply ? server : client, destination: reply ? client : server,
    interface: { index: opts.ifindex ?? 7, name: 'lxc1' },
  };
  // A reply's numbers are its own direction's: what it sent is what the server sent.
  attachConnNumbers(f, reply
    ? { bytes_sent: received, bytes_received: sent, packets_sent: 1, packets_received: 1 }
    : { bytes_sent: sent, bytes_received: received, packets_sent: 1, packets_received: 1 });
  return f;
}

function edgeBytes(store: ServiceMapStore): { sent: number; received: number } {
  const edges = store.query({}).edges ?? [];
  expect(edges.map((e) => `${e.source}->${e.destination}:${e.port}`)).toEqual(['shop/web->shop/api:8080']);
  return { sent: Number(edges[0]!.bytes_sent ?? 0n), received: Number(edges[0]!.bytes_received ?? 0n) };
}

describe('ServiceMapStore bytes', () => {
  const now = 1_700_000_000_000;

  it('adds what running totals grew by, per connection, from either direction', () => {
    const store = new ServiceMapStore({ nodeName: 'n', isLocalIp: () => true, now: () => now });
    store.observe(stats(40000, 100, 1000));
    store.observe(stats(40001, 10, 20));
    store.observe(stats(40000, 150, 1500));
    store.observe(stats(40000, 160, 1800, { reply: true }));
    expect(edgeBytes(store)).toEqual({ sent: 160 + 10, received: 1800 + 20 });
    expect(store.stats().connections).toBe(2);
  });

  it('counts totals that shrink as a new connection on the same addresses and ports', () => {
    const store = new ServiceMapStore({ nodeName: 'n', isLocalIp: () => true, now: () => now });
    store.observe(stats(40000, 500, 500));
    store.observe(stats(40000, 30, 40));
    expect(edgeBytes(store)).toEqual({ sent: 530, received: 540 });
  });

  it('keeps one connection per interface it is seen on', () => {
    const store = new ServiceMapStore({ nodeName: 'n', isLocalIp: () => true, now: () => now });
    store.observe(stats(40000, 100, 100, { ifindex: 7 }));
    store.observe(stats(40000, 100, 100, { ifindex: 9 }));
    expect(store.stats().connections).toBe(2);
    expect(edgeBytes(store)).toEqual({ sent: 200, received: 200 });
  });

  it('forgets the oldest connection when full, and counts it', () => {
    const store = new ServiceMapStore({ nodeName: 'n', isLocalIp: () => true, now: () => now, maxConnections: 2 });
    store.observe(stats(40000, 100, 100));
    store.observe(stats(40001, 100, 100));
    store.observe(stats(40002, 100, 100)); // forgets 40000
    store.observe(stats(40001, 120, 130)); // still known: adds 20 and 30
    store.observe(stats(40000, 110, 110)); // forgotten: counted from its running totals again, forgets 40001
    expect(store.connEvictions).toBe(2);
    expect(store.stats().connections).toBe(2);
    expect(edgeBytes(store)).toEqual({ sent: 300 + 20 + 110, received: 300 + 30 + 110 });
    store.observe(stats(40002, 105, 105)); // known: adds 5
    store.observe(stats(40001, 125, 135)); // forgotten: its running totals again, forgets 40002
    expect(store.connEvictions).toBe(3);
    expect(edgeBytes(store)).toEqual({ sent: 430 + 5 + 125, received: 440 + 5 + 135 });
  });

  it('files a new connection even where forgetting the oldest emptied its place', () => {
    // With room for one, each new connection forgets the previous one of the same address pair.
    const store = new ServiceMapStore({ nodeName: 'n', isLocalIp: () => true, now: () => now, maxConnections: 1 });
    store.observe(stats(40000, 100, 100));
    store.observe(stats(40001, 100, 100));
    store.observe(stats(40001, 150, 100)); // known: adds 50
    expect(edgeBytes(store)).toEqual({ sent: 250, received: 200 });
    expect(store.stats().connections).toBe(1);
  });
});
