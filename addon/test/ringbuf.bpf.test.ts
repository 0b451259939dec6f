// Ring-buffer delivery: many events from a writer program run with test_run repeat, delivered in
// batches (one JS call per wake-up), with pause/resume, discard and the async iterator.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BpfObject, forEachRecord, records } from '../lib/index.js';
import { skipReason, testObject, u32 } from './helpers.js';

const skip = skipReason();
const PKT = Buffer.alloc(64);

function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const tick = (): void => {
      if (cond()) resolve();
      else if (Date.now() > end) reject(new Error('timed out waiting for ring-buffer delivery'));
      else setTimeout(tick, 5);
    };
    tick();
  });
}

describe.skipIf(skip)('ring buffer (real kernel)', () => {
  let obj: BpfObject;
  beforeEach(() => {
    obj = BpfObject.open(testObject)
      .setRodata('events_per_run', 100)
      .setRodata('tag64', 0xfeedn)
      .setMaxEntries('events', 8 << 20);
    obj.load();
  });
  afterEach(() => obj.close());

  it('delivers every event in order, in few batches', async () => {
    const seqs: bigint[] = [];
    let calls = 0;
    const rb = obj.ringBuffer('events', (batch, count) => {
      calls++;
      forEachRecord(batch, count, (buf, off, len) => {
        // Plain checks: expect() per record would dominate the test's run time.
        if (len !== 16 || buf.readBigUInt64LE(off + 8) !== 0xfeedn) throw new Error(`bad record at ${off}`);
        seqs.push(buf.readBigUInt64LE(off));
      });
    });
    const N = 100 * 1000;
    obj.program('writer').testRun({ data: PKT, repeat: 1000 });
    await until(() => seqs.length >= N);
    expect(seqs.length).toBe(N);
    for (let i = 0; i < N; i++) if (seqs[i] !== BigInt(i)) throw new Error(`event ${i} has seq ${seqs[i]}`);
    expect(rb.consumed).toBe(N);
    expect(rb.calls).toBe(calls);
    expect(calls).toBeLessThan(N / 100);
    expect(obj.map('stats').lookup(u32(2))!.readBigUInt64LE()).toBe(0n); // nothing lost
  });

  it('caps batches at maxBatchBytes without losing records', async () => {
    let n = 0;
    let maxBatch = 0;
    const rb = obj.ringBuffer(
      'events',
      (batch, count) => {
        maxBatch = Math.max(maxBatch, batch.length);
        n += records(batch, count).length;
      },
      { maxBatchBytes: 4096 },
    );
    obj.program('writer').testRun({ data: PKT, repeat: 100 });
    await until(() => n >= 10_000);
    expect(n).toBe(10_000);
    // The cap is checked after each record: a batch ends at the first record that reaches it.
    expect(maxBatch).toBeLessThanOrEqual(4096 + 24);
    expect(rb.calls).toBeGreaterThanOrEqual(10_000 * 24 / 4096);
  });

  it('pause holds events in the ring, resume delivers them, discard drops them counted', async () => {
    let n = 0;
    const rb = obj.ringBuffer('events', (_b, count) => (n += count));
    rb.pause();
    obj.program('writer').testRun({ data: PKT, repeat: 10 });
    await new Promise((r) => setTimeout(r, 50));
    expect(n).toBe(0);
    rb.resume();
    await until(() => n >= 1000);
    expect(n).toBe(1000);

    rb.pause();
    obj.program('writer').testRun({ data: PKT, repeat: 5 });
    expect(rb.discard()).toBe(500);
    expect(rb.discarded).toBe(500);
    rb.resume();
    await new Promise((r) => setTimeout(r, 30));
    expect(n).toBe(1000);
    rb.close();
    rb.close();
    expect(rb.closed).toBe(true);
  });

  it('counts failed reservations when the ring is full (lost events)', () => {
    const small = BpfObject.open(testObject).setRodata('events_per_run', 100).setMaxEntries('events', 4096);
    try {
      small.load();
      small.program('writer').testRun({ data: PKT, repeat: 10 });
      const lost = small.map('stats').lookup(u32(2))!.readBigUInt64LE();
      // 4 KiB holds 170 records of 24 bytes; the rest of the 1000 failed to reserve.
      expect(lost).toBeGreaterThan(800n);
      let got = 0;
      const rb = small.ringBuffer('events', (_b, c) => (got += c));
      expect(rb.discard() + got + Number(lost)).toBe(1000);
    } finally {
      small.close();
    }
  });

  it('async iterator with backpressure', async () => {
    const it = obj.ringBatches('events', { highWaterMark: 2, maxBatchBytes: 4096 });
    obj.program('writer').testRun({ data: PKT, repeat: 50 });
    let n = 0;
    for await (const { count } of it) {
      n += count;
      if (n >= 5000) break;
    }
    expect(n).toBe(5000);
    expect(it.ring.closed).toBe(true);
  });

  it('an exception in the callback surfaces as uncaughtException, not a crash', async () => {
    const seen: unknown[] = [];
    const handler = (e: unknown): void => void seen.push(e);
    const prev = process.listeners('uncaughtException');
    process.removeAllListeners('uncaughtException');
    process.on('uncaughtException', handler);
    try {
      obj.ringBuffer('events', () => {
        throw new Error('consumer bug');
      });
      obj.program('writer').testRun({ data: PKT, repeat: 1 });
      await until(() => seen.length > 0);
      expect((seen[0] as Error).message).toBe('consumer bug');
    } finally {
      process.removeListener('uncaughtException', handler);
      for (const l of prev) process.on('uncaughtException', l);
    }
  });
});
