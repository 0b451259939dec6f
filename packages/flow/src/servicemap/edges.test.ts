import { describe, expect, it } from 'vitest';
import { addCounters, compareEdgeKeys, edgeKeyString, newCounters, type EdgeCounters, type EdgeKey } from './edges.js';

describe('addCounters', () => {
  it('adds every numeric counter and merges the maps', () => {
    const from = newCounters();
    const numeric = Object.keys(from).filter((k) => typeof from[k as keyof EdgeCounters] === 'number') as (keyof EdgeCounters)[];
    numeric.forEach((k, i) => ((from as unknown as Record<string, number>)[k] = i + 1));
    from.drop_reasons.set('POLICY_DENIED', 2);
    from.tcp_rtt_us.set(10, 3);
    const into = newCounters();
    addCounters(into, from);
    addCounters(into, from);
    for (const [i, k] of numeric.entries()) expect(into[k], k).toBe(2 * (i + 1));
    expect(into.drop_reasons.get('POLICY_DENIED')).toBe(4);
    expect(into.tcp_rtt_us.get(10)).toBe(6);
    expect(into.http_latency_us.size).toBe(0);
  });
});

describe('edge keys', () => {
  it('order edges by source, destination, port, then protocol; equal keys compare 0 and join alike', () => {
    const k = (source: string, destination: string, port: number, protocol: string): EdgeKey => ({ source, destination, port, protocol });
    const keys = [k('shop/web', 'shop/api', 8080, 'UDP'), k('shop/web', 'shop/api', 443, 'TCP'), k('shop/api', 'world', 443, 'TCP'), k('shop/web', 'shop/api', 8080, 'TCP'), k('shop/web', 'kube-system/kube-dns', 53, 'UDP')];
    expect([...keys].sort(compareEdgeKeys).map(edgeKeyString).map((s) => s.split('\u0000').join(' '))).toEqual([
      'shop/api world 443 TCP', 'shop/web kube-system/kube-dns 53 UDP', 'shop/web shop/api 443 TCP', 'shop/web shop/api 8080 TCP', 'shop/web shop/api 8080 UDP',
    ]);
    expect(compareEdgeKeys(k('a', 'b', 1, 'TCP'), k('a', 'b', 1, 'TCP'))).toBe(0);
  });
});
