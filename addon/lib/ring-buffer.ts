// Consumer side of a BPF ring buffer: batches from the native poller, record iteration, and an
// async iterator with backpressure.
import type { NativeRing } from './native.js';

export type RingCallback = (batch: Buffer, count: number) => void;

/**
 * Walks a batch: `count` records, each `u32 len (LE)`, `u32 reserved`, `len` bytes, padded to 8.
 * `fn` gets the batch itself and the offset of the sample, so no per-record Buffer is allocated.
 */
export function forEachRecord(batch: Buffer, count: number, fn: (buf: Buffer, offset: number, len: number) => void): void {
  let off = 0;
  for (let i = 0; i < count; i++) {
    if (off + 8 > batch.length) throw new RangeError(`ring batch truncated at record ${i} of ${count} (offset ${off})`);
    const len = batch.readUInt32LE(off);
    if (off + 8 + len > batch.length) throw new RangeError(`ring batch record ${i} of ${len} bytes overruns the batch at offset ${off}`);
    fn(batch, off + 8, len);
    off += 8 + ((len + 7) & ~7);
  }
}

/** Splits a batch into per-record Buffers (views, no copy). */
export function records(batch: Buffer, count: number): Buffer[] {
  const out: Buffer[] = [];
  forEachRecord(batch, count, (b, o, l) => out.push(b.subarray(o, o + l)));
  return out;
}

export class RingBuffer {
  /** @internal */
  constructor(
    private readonly ring: NativeRing,
    readonly mapName: string,
  ) {}

  /** Stops draining (the kernel side keeps filling the ring, then counts failed reservations). */
  pause(): void {
    this.ring.pause();
  }
  resume(): void {
    this.ring.resume();
  }
  close(): void {
    this.ring.close();
  }
  /** Drops everything pending without calling JS; returns how many samples were dropped. */
  discard(): number {
    return this.ring.discard();
  }
  /** Whether the poll keeps the event loop alive (default: yes, like a socket). */
  ref(): this {
    this.ring.ref();
    return this;
  }
  unref(): this {
    this.ring.unref();
    return this;
  }
  /** Samples delivered to JS so far. */
  get consumed(): number {
    return this.ring.stats().consumed;
  }
  /** JS calls made (one per wake-up). */
  get calls(): number {
    return this.ring.stats().calls;
  }
  get discarded(): number {
    return this.ring.stats().discarded;
  }
  get paused(): boolean {
    return this.ring.stats().paused;
  }
  get closed(): boolean {
    return this.ring.stats().closed;
  }
}

export interface RingBatch {
  batch: Buffer;
  count: number;
}

/**
 * Adapts the callback API to an async iterator: batches queue up to `highWaterMark`, then the ring
 * is paused until the consumer catches up. Ending the iteration closes the ring.
 */
export function iterateRing(
  open: (cb: RingCallback) => RingBuffer,
  { highWaterMark = 16 }: { highWaterMark?: number } = {},
): AsyncIterableIterator<RingBatch> & { ring: RingBuffer } {
  const queue: RingBatch[] = [];
  let wake: ((r: IteratorResult<RingBatch>) => void) | undefined;
  let done = false;
  const ring = open((batch, count) => {
    if (wake) {
      const w = wake;
      wake = undefined;
      w({ value: { batch, count }, done: false });
      return;
    }
    queue.push({ batch, count });
    if (queue.length >= highWaterMark) ring.pause();
  });
  const finish = (): IteratorResult<RingBatch> => {
    done = true;
    ring.close();
    queue.length = 0;
    if (wake) wake({ value: undefined, done: true });
    wake = undefined;
    return { value: undefined, done: true };
  };
  return {
    ring,
    next(): Promise<IteratorResult<RingBatch>> {
      const item = queue.shift();
      if (item) {
        if (queue.length < highWaterMark / 2 && ring.paused && !done) ring.resume();
        return Promise.resolve({ value: item, done: false });
      }
      if (done || ring.closed) return Promise.resolve({ value: undefined, done: true });
      if (ring.paused) ring.resume();
      return new Promise((resolve) => (wake = resolve));
    },
    return(): Promise<IteratorResult<RingBatch>> {
      return Promise.resolve(finish());
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}
