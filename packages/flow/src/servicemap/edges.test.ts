import { describe, expect, it } from 'vitest';
import { addCounters, newCounters, type EdgeCounters } from './edges.js';

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
