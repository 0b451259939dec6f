// One direction of a TCP connection as a byte stream, from the payload events of its segments:
// where the next byte is (by TCP sequence number), what an event adds, and what it skips. The
// same packet seen twice (a retransmission) is old data the second time and adds nothing; a
// segment that starts past the next byte waits for the bytes before it (a drop upstream of the
// observation point is retransmitted later), and is placed after a gap when they do not come.

/** Signed distance a - b of two 32-bit TCP sequence numbers. */
export function seqDiff(a: number, b: number): number {
  return (a - b) | 0;
}

/** A segment's payload event as a stream needs it. */
export interface Piece {
  seq: number;
  /** Payload bytes in the segment; `bytes` holds the first of them, as copied by the kernel. */
  len: number;
  bytes: Buffer;
  tsNs: bigint;
}

/** What a segment's event brings to its stream. */
export type SegmentNews =
  /** Bytes [from, seg end) are new; those at [from, from + visible) were captured. */
  | { kind: 'new'; from: number; visible: number }
  /** Nothing new: a copy of bytes already consumed (retransmission). */
  | { kind: 'old' }
  /** Bytes between the stream's next byte and this segment never arrived; the segment follows. */
  | { kind: 'gap'; missing: number };

/** Segments held waiting for earlier bytes; past that (or after HELD_NS) the bytes are missed. */
const MAX_HELD = 16;
const HELD_NS = 1_000_000_000n;

export class TcpStream<P extends Piece = Piece> {
  /** Sequence number of the next byte not yet consumed. */
  next: number;
  private held: P[] = [];

  constructor(firstSeq: number) {
    this.next = firstSeq >>> 0;
  }

  /** Places a segment; returns it and any held ones it released, in stream order. */
  push(p: P): { seg: P; news: SegmentNews }[] {
    if (seqDiff(p.seq, this.next) > 0) {
      if (!this.held.some((h) => h.seq === p.seq)) {
        const i = this.held.findIndex((h) => seqDiff(h.seq, p.seq) > 0);
        this.held.splice(i < 0 ? this.held.length : i, 0, p);
      }
      const late = this.held.length > MAX_HELD || p.tsNs - this.held[0]!.tsNs > HELD_NS;
      return late ? this.flush() : [];
    }
    const out = [{ seg: p, news: this.accept(p) }];
    this.release(out);
    return out;
  }

  /** Whether `p` is held, waiting for earlier bytes. */
  holds(p: P): boolean {
    return this.held.includes(p);
  }

  /** Gives up waiting: places every held segment, after the gaps before them. */
  flush(): { seg: P; news: SegmentNews }[] {
    const out: { seg: P; news: SegmentNews }[] = [];
    while (this.held.length > 0) {
      const h = this.held[0]!;
      const missing = seqDiff(h.seq, this.next);
      if (missing > 0) {
        out.push({ seg: h, news: { kind: 'gap', missing } });
        this.next = h.seq >>> 0;
      }
      this.release(out);
    }
    return out;
  }

  private release(out: { seg: P; news: SegmentNews }[]): void {
    while (this.held.length > 0 && seqDiff(this.held[0]!.seq, this.next) <= 0) {
      const h = this.held.shift()!;
      out.push({ seg: h, news: this.accept(h) });
    }
  }

  private accept(p: P): SegmentNews {
    const d = seqDiff(p.seq, this.next);
    if (d + p.len <= 0) return { kind: 'old' };
    this.next = (p.seq + p.len) >>> 0;
    return { kind: 'new', from: -d, visible: Math.max(0, p.bytes.length + d) };
  }
}

/** Bounded map that forgets its oldest entries first (connection state the agent cannot free
 * on a close it never sees). */
export class BoundedMap<V> extends Map<string, V> {
  constructor(private readonly cap: number) {
    super();
  }

  override set(key: string, value: V): this {
    if (!this.has(key) && this.size >= this.cap) this.delete(this.keys().next().value as string);
    return super.set(key, value);
  }
}
