// Min-heap on GetFlowsResponse.time, the sort buffer of Hubble's relay
// (cilium pkg/hubble/relay/queue/priority_queue.go). Times are (sec, nsec) number pairs because
// nanoseconds since 1970 do not fit a double and bigint comparisons cost ~10x more per flow.

export interface Timed {
  sec: number;
  nsec: number;
}

export function less(a: Timed, b: Timed): boolean {
  return a.sec < b.sec || (a.sec === b.sec && a.nsec < b.nsec);
}

export class PriorityQueue<T extends Timed> {
  private readonly heap: T[] = [];

  get length(): number {
    return this.heap.length;
  }

  push(item: T): void {
    const h = this.heap;
    let i = h.length;
    h.push(item);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = h[parent]!;
      if (!less(item, p)) break;
      h[i] = p;
      i = parent;
    }
    h[i] = item;
  }

  peek(): T | undefined {
    return this.heap[0];
  }

  pop(): T | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (top === undefined || last === undefined || h.length === 0) return top;
    const n = h.length;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      let c = l;
      if (r < n && less(h[r]!, h[l]!)) c = r;
      if (!less(h[c]!, last)) break;
      h[i] = h[c]!;
      i = c;
    }
    h[i] = last;
    return top;
  }

  /** Pops, in order, every item strictly older than `t`. */
  popOlderThan(t: Timed, out: T[] = []): T[] {
    for (let top = this.heap[0]; top !== undefined && less(top, t); top = this.heap[0]) out.push(this.pop()!);
    return out;
  }
}
