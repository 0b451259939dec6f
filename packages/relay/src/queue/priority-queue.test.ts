import { describe, expect, it } from 'vitest';
import { PriorityQueue } from './priority-queue.js';

const t = (sec: number, nsec = 0) => ({ sec, nsec });

describe('PriorityQueue', () => {
  it('pops in (sec, nsec) order whatever the push order', () => {
    const q = new PriorityQueue<{ sec: number; nsec: number }>();
    const xs = Array.from({ length: 500 }, (_, i) => t(1_700_000_000 + ((i * 7919) % 97), (i * 104729) % 1e9));
    for (const x of xs) q.push(x);
    const out = [];
    for (let x = q.pop(); x; x = q.pop()) out.push(x);
    expect(out).toHaveLength(500);
    const sorted = [...xs].sort((a, b) => a.sec - b.sec || a.nsec - b.nsec);
    expect(out).toEqual(sorted);
  });

  it('orders on nanoseconds within the same second', () => {
    const q = new PriorityQueue<{ sec: number; nsec: number }>();
    q.push(t(5, 900));
    q.push(t(5, 100));
    q.push(t(4, 999_999_999));
    expect([q.pop(), q.pop(), q.pop(), q.pop()]).toEqual([t(4, 999_999_999), t(5, 100), t(5, 900), undefined]);
  });

  it('popOlderThan takes only entries strictly older than the cut', () => {
    const q = new PriorityQueue<{ sec: number; nsec: number }>();
    for (const x of [t(3), t(1), t(2), t(2, 5)]) q.push(x);
    expect(q.popOlderThan(t(2, 5))).toEqual([t(1), t(2)]);
    expect(q.length).toBe(2);
    expect(q.peek()).toEqual(t(2, 5));
  });
});
