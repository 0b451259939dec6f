import { describe, expect, it } from 'vitest';
import { makeCorpus } from './corpus.js';
import { DropReason, FlowType, Verdict } from '../gen/flow/flow.js';
import { GetFlowsResponse } from '../gen/observer/observer.js';

describe('makeCorpus', () => {
  const c = makeCorpus(3000, 7);

  it('is deterministic per seed and differs across seeds', () => {
    const bin = (xs: GetFlowsResponse[]) => Buffer.concat(xs.map((x) => GetFlowsResponse.encode(x).finish())).toString('hex');
    expect(bin(makeCorpus(200, 7))).toBe(bin(c.slice(0, 200)));
    expect(bin(makeCorpus(200, 8))).not.toBe(bin(c.slice(0, 200)));
  });

  it('covers every kind of event the tests rely on', () => {
    const flows = c.flatMap((r) => (r.flow ? [r.flow] : []));
    expect(c.some((r) => r.lost_events)).toBe(true);
    for (const p of ['TCP', 'UDP', 'ICMPv4', 'ICMPv6'] as const) expect(flows.some((f) => f.l4?.[p])).toBe(true);
    expect(flows.some((f) => f.Type === FlowType.L7 && f.l7?.dns)).toBe(true);
    expect(flows.some((f) => f.Type === FlowType.L7 && f.l7?.http?.code)).toBe(true);
    expect(flows.some((f) => f.verdict === Verdict.DROPPED && f.drop_reason_desc === DropReason.POLICY_DENIED)).toBe(true);
    expect(flows.some((f) => f.source?.labels?.includes('reserved:world'))).toBe(true);
    expect(flows.some((f) => f.source?.labels?.includes('reserved:host'))).toBe(true);
    expect(new Set(flows.map((f) => f.is_reply))).toEqual(new Set([true, false, undefined]));
    expect(new Set(flows.map((f) => f.source?.namespace).filter(Boolean))).toEqual(new Set(['shop', 'kube-system', 'default']));
    expect(new Set(c.map((r) => r.node_name))).toEqual(new Set(['node-1', 'node-2', 'node-3']));
    // every fraction width of RFC 3339 appears: whole seconds, ms, µs, ns
    const widths = new Set(c.map((r) => { const n = r.time!.nanos!; return n === 0 ? 0 : n % 1e6 === 0 ? 3 : n % 1e3 === 0 ? 6 : 9; }));
    expect(widths).toEqual(new Set([0, 3, 6, 9]));
  });

  it('has strictly increasing times', () => {
    for (let i = 1; i < c.length; i++) {
      const a = c[i - 1]!.time!, b = c[i]!.time!;
      expect(a.seconds! * 1_000_000_000n + BigInt(a.nanos!) < b.seconds! * 1_000_000_000n + BigInt(b.nanos!)).toBe(true);
    }
  });

  it('can use absolute node names', () => {
    expect(makeCorpus(50, 1, { clusterPrefix: true }).every((r) => r.node_name!.startsWith('default/node-'))).toBe(true);
  });
});
