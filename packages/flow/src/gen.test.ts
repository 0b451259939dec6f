import { describe, expect, it } from 'vitest';
import { Flow, GetFlowsRequest, Verdict } from './index.js';

describe('generated API', () => {
  it('round-trips a Flow through the protobuf wire format', () => {
    const f: Flow = { verdict: Verdict.DROPPED, drop_reason_desc: 133, l4: { TCP: { source_port: 1, destination_port: 80 } } };
    const back = Flow.decode(Flow.encode(f).finish());
    expect(back.verdict).toBe(Verdict.DROPPED);
    expect(back.l4?.TCP?.destination_port).toBe(80);
  });
  it('keeps uint64 number = 2^64-1 (hubble observe --all) exact', () => {
    const all = 2n ** 64n - 1n;
    const back = GetFlowsRequest.decode(GetFlowsRequest.encode({ number: all }).finish());
    expect(back.number).toBe(all);
  });
});
