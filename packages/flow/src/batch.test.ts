import { afterAll, describe, expect, it } from 'vitest';
import { Server, ServerCredentials, credentials } from '@grpc/grpc-js';
import type { ServerWritableStream } from '@grpc/grpc-js';
import { GetFlowsResponse } from './gen/observer/observer.js';
import type { GetFlowsRequest } from './gen/observer/observer.js';
import {
  BatchBuilder,
  BatchObserverClient,
  BatchObserverService,
  decodeBatch,
  decodeFlowBatch,
  encodeBatch,
  encodeFlowBatch,
  forEachResponse,
  readVarint,
} from './batch.js';

const resp = (i: number): GetFlowsResponse => ({
  node_name: `node-${i}`,
  time: { seconds: BigInt(1700000000 + i), nanos: i },
  flow: { node_name: `node-${i}`, Summary: 'x'.repeat(i * 50) },
});

describe('FlowBatch codec', () => {
  it('round-trips responses of every size, including ones needing multi-byte lengths', () => {
    const rs = [0, 1, 3, 200].map(resp);
    const back = decodeFlowBatch(encodeFlowBatch(rs));
    expect(back).toEqual(rs.map((r) => GetFlowsResponse.decode(GetFlowsResponse.encode(r).finish())));
  });

  it('splits without copying and skips unknown fields', () => {
    const a = Buffer.from(GetFlowsResponse.encode(resp(1)).finish());
    const unknown = Buffer.from([0x10, 0x05, 0x1a, 0x02, 0x01, 0x02]); // field 2 varint, field 3 bytes
    const parts = decodeBatch(Buffer.concat([encodeBatch([a]), unknown, encodeBatch([a])]));
    expect(parts).toHaveLength(2);
    expect(parts[0]!.equals(a)).toBe(true);
  });

  it('walks responses in place: ranges of the batch buffer, in order, unknown fields skipped', () => {
    const rs = [resp(0), resp(3), resp(1)].map((r) => Buffer.from(GetFlowsResponse.encode(r).finish()));
    const unknown = Buffer.from([0x15, 1, 2, 3, 4, 0x19, 1, 2, 3, 4, 5, 6, 7, 8]); // field 2 fixed32, field 3 fixed64
    const batch = Buffer.concat([encodeBatch(rs.slice(0, 2)), unknown, encodeBatch(rs.slice(2))]);
    const seen: Buffer[] = [];
    const n = forEachResponse(batch, (b, start, end) => {
      expect(b).toBe(batch);
      seen.push(batch.subarray(start, end));
    });
    expect(n).toBe(3);
    expect(seen.map((b, i) => b.equals(rs[i]!))).toEqual([true, true, true]);
    expect(() => forEachResponse(batch.subarray(0, batch.length - 1), () => {})).toThrow(expect.objectContaining({ name: 'FlowctlError', code: 'MALFORMED' }));
  });

  it('reads varints up to 2^53 and rejects overlong or truncated ones', () => {
    const big = Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f]);
    expect(readVarint(big, 0, big.length)).toEqual([2 ** 53 - 1, 8]);
    expect(readVarint(Buffer.from([0x96, 0x01]), 0, 2)).toEqual([150, 2]);
    expect(() => readVarint(Buffer.from([0x80, 0x80]), 0, 2)).toThrow(/truncated varint/);
    expect(() => readVarint(Buffer.alloc(11, 0x80), 0, 11)).toThrow(/longer than 10 bytes/);
  });

  it('rejects a truncated batch with a message naming where it came from', () => {
    const b = encodeFlowBatch([resp(2)]);
    expect(() => decodeBatch(b.subarray(0, b.length - 3))).toThrow(expect.objectContaining({ name: 'FlowctlError', code: 'MALFORMED' }));
    expect(() => decodeFlowBatch(b.subarray(0, b.length - 3), 'peer node-1')).toThrow(/^peer node-1: malformed FlowBatch/);
  });

  it('BatchBuilder flushes by count and by bytes, and starts over after take()', () => {
    const byCount = new BatchBuilder(2, 1 << 20);
    expect(byCount.push(resp(1))).toBe(false);
    expect(byCount.push(resp(2))).toBe(true);
    expect(decodeFlowBatch(byCount.take()!)).toHaveLength(2);
    expect(byCount.take()).toBeUndefined();
    const byBytes = new BatchBuilder(1000, 100);
    expect(byBytes.push(resp(3))).toBe(true); // 150-byte summary alone exceeds 100 bytes
  });
});

describe('BatchObserver service over gRPC', () => {
  const server = new Server();
  afterAll(() => server.forceShutdown());

  it('serves batches a generic client decodes', async () => {
    server.addService(BatchObserverService, {
      getFlowsBatched: (call: ServerWritableStream<GetFlowsRequest, Buffer>) => {
        const n = Number(call.request.number ?? 0n);
        const b = new BatchBuilder(3);
        for (let i = 0; i < n; i++) if (b.push(resp(i))) call.write(b.take()!);
        const rest = b.take();
        if (rest) call.write(rest);
        call.end();
      },
    });
    const port = await new Promise<number>((res, rej) =>
      server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))),
    );
    const client = new BatchObserverClient(`127.0.0.1:${port}`, credentials.createInsecure());
    const got: GetFlowsResponse[] = [];
    let messages = 0;
    await new Promise<void>((resolve, reject) => {
      const s = client.getFlowsBatched({ number: 7n });
      s.on('data', (buf: Buffer) => {
        messages++;
        got.push(...decodeFlowBatch(buf));
      });
      s.on('error', reject);
      s.on('end', resolve);
    });
    client.close();
    expect(messages).toBe(3);
    expect(got.map((r) => r.node_name)).toEqual([0, 1, 2, 3, 4, 5, 6].map((i) => `node-${i}`));
  });
});
