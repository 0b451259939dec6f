import { describe, expect, it } from 'vitest';
import { GetFlowsResponse } from '@flowctl/flow';
import { decodeBatch, encodeBatch, readResponseTime, ResponseTimeReader } from './wire.js';

describe('wire', () => {
  it('reads GetFlowsResponse.time without decoding the flow', () => {
    const raw = GetFlowsResponse.encode({
      flow: { Summary: 'x', time: { seconds: 1n, nanos: 2 } },
      node_name: 'n',
      time: { seconds: 1_714_564_800n, nanos: 123_456_789 },
    }).finish();
    const t = { sec: 0, nsec: 0 };
    readResponseTime(raw, t);
    expect(t).toEqual({ sec: 1_714_564_800, nsec: 123_456_789 });
  });

  it('reads the time of a response lying inside a larger buffer', () => {
    const a = Buffer.from(GetFlowsResponse.encode({ node_name: 'a', time: { seconds: 7n, nanos: 8 } }).finish());
    const b = Buffer.from(GetFlowsResponse.encode({ node_name: 'b', time: { seconds: 9n, nanos: 10 } }).finish());
    const buf = Buffer.concat([a, b]);
    const t = { sec: 0, nsec: 0 };
    new ResponseTimeReader().read(buf, a.length, buf.length, t);
    expect(t).toEqual({ sec: 9, nsec: 10 });
    new ResponseTimeReader().read(buf, 0, a.length, t);
    expect(t).toEqual({ sec: 7, nsec: 8 });
  });

  it('rejects truncated input with a MALFORMED FlowctlError', () => {
    const raw = GetFlowsResponse.encode({ node_name: 'node-1', time: { seconds: 5n } }).finish();
    expect(() => readResponseTime(raw.subarray(0, raw.length - 2), { sec: 0, nsec: 0 })).toThrow(expect.objectContaining({ name: 'FlowctlError', code: 'MALFORMED' }));
  });

  it('round-trips a FlowBatch as repeated GetFlowsResponse', () => {
    const items = [1, 2, 3].map((i) => Buffer.from(GetFlowsResponse.encode({ node_name: `n${i}`, time: { seconds: BigInt(i) } }).finish()));
    const back = decodeBatch(encodeBatch(items));
    expect(back.map((b) => GetFlowsResponse.decode(b).node_name)).toEqual(['n1', 'n2', 'n3']);
  });
});
