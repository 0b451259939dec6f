import { afterEach, describe, expect, it } from 'vitest';
import type { Alert } from '@flowctl/flow/gen/flowctl/alerts';
import type { Finding } from './detector.js';
import { AlertStore } from './store.js';

const finding = (over: Partial<Finding> = {}): Finding => ({
  kind: 'port-scan',
  severity: 'medium',
  source: { ip: '10.0.0.5', endpoint: { namespace: 'default', pod_name: 'scanner', labels: ['k8s:app=scanner'] } },
  target: 'scan',
  summary: 'scanned 20 ports',
  evidence: { ports: 20 },
  ...over,
});

let store: AlertStore | undefined;
afterEach(() => store?.close());

function newStore(now = () => 0): AlertStore {
  store = new AlertStore({ nodeName: 'node-1', windowMs: 60_000, maxAlerts: 3, publishIntervalMs: 1000, now });
  return store;
}

describe('AlertStore', () => {
  it('raises once per (kind, source, target) and updates it in place', () => {
    const s = newStore();
    const events: [Alert, boolean][] = [];
    s.subscribe((a, raised) => events.push([a, raised]));
    s.record(finding(), 1000);
    s.record(finding({ summary: 'scanned 40 ports', severity: 'high' }), 3000);
    const list = s.list();
    expect(list).toHaveLength(1);
    expect(list[0]).toMatchObject({ kind: 'port-scan', severity: 'high', summary: 'scanned 40 ports', updates: 1, action: 'none', node: 'node-1', source: { ip: '10.0.0.5', pod_name: 'scanner', namespace: 'default' } });
    expect(list[0]!.raised).toEqual({ seconds: 1n, nanos: 0 });
    expect(list[0]!.updated).toEqual({ seconds: 3n, nanos: 0 });
    expect(events.map(([a, r]) => [a.id, a.updates, r])).toEqual([[list[0]!.id, 0, true], [list[0]!.id, 1, false]]);
    expect(s.stats.raised.get('port-scan/medium')).toBe(1);
  });

  it('keeps different sources, targets and kinds apart', () => {
    const s = newStore();
    s.record(finding(), 0);
    s.record(finding({ source: { ip: '10.0.0.6' } }), 0);
    s.record(finding({ kind: 'connection-rate', target: 'new-connections' }), 0);
    expect(new Set(s.list().map((a) => a.id)).size).toBe(3);
    expect(s.list(undefined, new Set(['connection-rate']))).toHaveLength(1);
  });

  it('raises a new alert after a window without findings', () => {
    const s = newStore();
    s.record(finding(), 0);
    s.record(finding(), 61_000);
    const [a, b] = s.list();
    expect(a!.id).not.toBe(b!.id);
    expect(b!.updates).toBe(0);
  });

  it('publishes updates to followers at most once per interval, the latest state', async () => {
    let t = 0;
    const s = newStore(() => t);
    const seen: number[] = [];
    s.subscribe((a) => seen.push(a.updates!));
    s.record(finding(), 0);
    for (let i = 1; i <= 5; i++) s.record(finding({ summary: `#${i}` }), 100 * i);
    expect(seen).toEqual([0]);
    t = 1500;
    await new Promise((r) => setTimeout(r, 1100));
    expect(seen).toEqual([0, 5]);
  });

  it('lists alerts updated since a time, oldest update first', () => {
    const s = newStore();
    s.record(finding({ source: { ip: 'a' } }), 0);
    s.record(finding({ source: { ip: 'b' } }), 5000);
    s.record(finding({ source: { ip: 'a' } }), 9000);
    expect(s.list(4000).map((a) => a.source!.ip)).toEqual(['b', 'a']);
    expect(s.list(6000).map((a) => a.source!.ip)).toEqual(['a']);
  });

  it('forgets the least recently updated alert past its bound, and counts it', () => {
    const s = newStore();
    for (const ip of ['a', 'b', 'c']) s.record(finding({ source: { ip } }), 0);
    s.record(finding({ source: { ip: 'a' } }), 10);
    s.record(finding({ source: { ip: 'd' } }), 20);
    expect(s.list().map((a) => a.source!.ip)).toEqual(['c', 'a', 'd']);
    expect(s.stats.evicted).toBe(1);
  });
});
