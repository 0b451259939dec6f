// One direction of a TCP connection as a byte stream, from the payload events of its segments:
// where the next byte is (by TCP sequence number), what an event adds, and what it skips. The
// same packet seen at two observation points (two veths of one node) is old data the second
// time and adds nothing; a segment that starts past the next byte means bytes were missed.

/** Signed distance a - b of two 32-bit TCP sequence numbers. */
export function seqDiff(a: number, b: number): number {
  return (a - b) | 0;
}

/** What a segment's event brings to its stream. */
export type SegmentNews =
  /** Bytes [from, seg end) are new; those at [from, from + visible) were captured. */
  | { kind: 'new'; from: number; visible: number }
  /** Nothing new: a copy of bytes already consumed (retransmission, second observation point). */
  | { kind: 'old' }
  /** Bytes between the stream's next byte and this segment never arrived. */
  | { kind: 'gap'; missing: number };

export class TcpStream {
  /** Sequence number of the next byte not yet consumed. */
  next: number;

  constructor(firstSeq: number) {
    this.next = firstSeq >>> 0;
  }

  /** Places a segment of `len` payload bytes at `seq`, of which `captured` were copied; advances. */
  accept(seq: number, len: number, captured: number): SegmentNews {
    const d = seqDiff(seq, this.next);
    if (d > 0) return { kind: 'gap', missing: d };
    if (d + len <= 0) return { kind: 'old' };
    this.next = (seq + len) >>> 0;
    const from = -d;
    return { kind: 'new', from, visible: Math.max(0, captured - from) };
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
