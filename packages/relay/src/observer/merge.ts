// The GetFlows pipeline of Hubble's relay (cilium pkg/hubble/relay/observer/observer.go) as
// async-generator stages over batches: per-node bounded inlets → FanIn (k-way merge) →
// aggregateErrors → sortFlows → the client's stream. Batches keep the per-flow cost to a heap
// operation; each node sends in time order, so merging what the inlets hold by their heads hands
// the 100-entry heap an almost sorted sequence even when one node's batch spans more than 100 flows.
import { NodeState } from '@flowctl/flow';
import type { GetFlowsResponse, NodeStatusEvent } from '@flowctl/flow';
import { PriorityQueue, less } from '../queue/priority-queue.js';
import type { Timed } from '../queue/priority-queue.js';
import { varintLength, writeVarint } from '@flowctl/flow/batch';
import { encodeResponse } from './wire.js';

/** One GetFlowsResponse on its way through the relay: raw bytes from a node, or a relay event. */
export interface RelayItem extends Timed {
  /** The encoded response: all of `raw`, or bytes [start, end) of it when `start` is set (a
   * response inside a node's FlowBatch, left where it arrived instead of a view per flow). */
  raw?: Buffer;
  start?: number;
  end?: number;
  msg?: GetFlowsResponse;
  /** Counters of the node it came from (absent on relay-generated events). */
  src?: { forwarded: number };
  /** When it reached the relay (Date.now()), stamped by Inlet.push for the merge wait. */
  at?: number;
}

/** The item's encoded response as one Buffer (a view for items inside a node's batch). */
export function itemBytes(item: RelayItem): Buffer {
  if (!item.raw) item.raw = encodeResponse(item.msg ?? {});
  if (item.start === undefined) return item.raw;
  return item.raw.subarray(item.start, item.end);
}

function itemLength(item: RelayItem): number {
  if (!item.raw) item.raw = encodeResponse(item.msg ?? {});
  return item.start === undefined ? item.raw.length : item.end! - item.start;
}

/** Batches up to this size are built in the reused buffer. */
const SCRATCH_MAX = 8 << 20;

/**
 * Encodes items as one FlowBatch into a buffer it reuses from call to call and returns a view of
 * it. Only for a serializer whose caller copies the bytes before anything else runs (grpc-js's
 * server copies each message behind its frame header at once): a fresh buffer per batch cost more
 * in allocation and page faults than the copy itself.
 */
export class ScratchBatchEncoder {
  private scratch = Buffer.allocUnsafe(1 << 20);

  /** items[from, to) as one FlowBatch; valid until the next call. */
  encode(items: readonly RelayItem[], from = 0, to = items.length): Buffer {
    let total = 0;
    for (let i = from; i < to; i++) {
      const len = itemLength(items[i]!);
      total += 1 + varintLength(len) + len;
    }
    let out = this.scratch;
    if (total > out.length) {
      out = Buffer.allocUnsafe(total);
      if (total <= SCRATCH_MAX) this.scratch = out;
    }
    let pos = 0;
    for (let i = from; i < to; i++) {
      const it = items[i]!;
      const raw = it.raw!;
      const start = it.start ?? 0;
      const end = it.start === undefined ? raw.length : it.end!;
      out[pos++] = 0x0a;
      pos = writeVarint(out, pos, end - start);
      pos += raw.copy(out, pos, start, end);
    }
    return out.subarray(0, pos);
  }
}

export type Clock = () => number;

export function timeOf(ms: number): Timed {
  const sec = Math.floor(ms / 1000);
  return { sec, nsec: Math.round((ms - sec * 1000) * 1e6) };
}

/** A relay-generated node_status response, stamped with the relay's node name and `now`. */
export function nodeStatusItem(
  state: NodeState,
  nodes: string[],
  relayNode: string,
  nowMs: number,
  message?: string,
): RelayItem {
  const t = timeOf(nowMs);
  const status: NodeStatusEvent = { state_change: state, node_names: nodes };
  if (message !== undefined) status.message = message;
  return {
    ...t,
    msg: { node_status: status, node_name: relayNode, time: { seconds: BigInt(t.sec), nanos: t.nsec } },
  };
}

/** Producer side of one node's bounded channel. */
export class Inlet {
  private items: RelayItem[] = [];
  private head = 0;
  ended = false;
  /** Called when the consumer made room after push() returned false. */
  onResume: (() => void) | undefined;
  /** Cancels the node's upstream stream (set by whoever opened it). */
  cancel: (() => void) | undefined;
  private paused = false;
  /** Time of the newest item pushed: a node streams in time order, so its next item is no older.
   * (-1, 0) until the node sent anything. */
  lastSec = -1;
  lastNsec = 0;

  constructor(
    readonly name: string,
    private readonly fan: FanIn,
  ) {}

  get length(): number {
    return this.items.length - this.head;
  }

  /** Queues items; false means the channel is full and the producer must pause until onResume. */
  push(items: readonly RelayItem[]): boolean {
    if (this.ended) return false;
    const at = this.fan.now();
    for (const it of items) {
      it.at = at;
      this.items.push(it);
      if (it.sec > this.lastSec || (it.sec === this.lastSec && it.nsec > this.lastNsec)) {
        this.lastSec = it.sec;
        this.lastNsec = it.nsec;
      }
    }
    this.fan.wake();
    if (this.length >= this.fan.capacity) {
      this.paused = true;
      return false;
    }
    return true;
  }

  /** The node's stream ended; an error (anything but a cancel) becomes a NODE_ERROR event. */
  end(err?: Error): void {
    if (this.ended) return;
    this.ended = true;
    this.onResume = undefined;
    this.cancel = undefined;
    this.fan.ended(this, err);
  }

  peek(): RelayItem | undefined {
    return this.head < this.items.length ? this.items[this.head] : undefined;
  }

  shift(): RelayItem | undefined {
    if (this.head >= this.items.length) return undefined;
    const it = this.items[this.head]!;
    this.items[this.head++] = undefined as unknown as RelayItem;
    if (this.head === this.items.length) {
      this.items.length = 0;
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return it;
  }

  maybeResume(): void {
    // Resume at half capacity, not one below it: a node sends whole batches, and resuming it for
    // every few flows taken would pause it again at once, a round trip per batch.
    if (this.paused && this.length <= this.fan.capacity >> 1) {
      this.paused = false;
      this.onResume?.();
    }
  }
}

export interface FanInOptions {
  /** Per-node channel capacity in responses (Hubble: qlen; the relay allows at least a few batches). */
  capacity: number;
  relayNode: string;
  now?: Clock;
  /** Most items handed to the next stage at once. */
  maxBatch?: number;
  /**
   * How long a flow may wait for a node that has nothing buffered and whose last flow is older
   * (0 = never wait, Hubble's behaviour). Every node streams in time order, so waiting for the
   * quiet one's next batch lets the merge emit a time-ordered sequence instead of leaving the
   * 100-entry sort buffer to undo whole batches from different nodes; the wait bounds how long a
   * slow or idle node can hold the others back.
   */
  waitMs?: number;
}

/** Merges node inlets oldest head first; ends when sealed and every inlet has ended and drained. */
export class FanIn implements AsyncIterable<RelayItem[]> {
  readonly capacity: number;
  readonly now: Clock;
  private readonly inlets: Inlet[] = [];
  private readonly events: RelayItem[] = [];
  private waiter: (() => void) | undefined;
  private wakeQueued = false;
  private sealed = false;
  private closed = false;
  private readonly maxBatch: number;
  private readonly waitMs: number;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = 0;

  constructor(private readonly opts: FanInOptions) {
    this.capacity = Math.max(1, opts.capacity);
    this.now = opts.now ?? Date.now;
    this.maxBatch = opts.maxBatch ?? 1024;
    this.waitMs = Math.max(0, opts.waitMs ?? 0);
  }

  add(name: string): Inlet {
    const inlet = new Inlet(name, this);
    this.inlets.push(inlet);
    return inlet;
  }

  /** No more inlets will be added (non-follow requests). */
  seal(): void {
    this.sealed = true;
    this.wake();
  }

  /** Queues a relay-generated event (e.g. NODE_GONE) ahead of the next round of flows. */
  event(item: RelayItem): void {
    this.events.push(item);
    this.wake();
  }

  /** Stops the merge now (client went away). */
  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.wake();
  }

  /**
   * Lets the consumer run once the current I/O callbacks are done: batches from every node that
   * arrived in the same event-loop turn are then merged in one round (bigger, better-ordered
   * batches downstream, one hop through the pipeline instead of one per node message).
   */
  wake(): void {
    if (this.wakeQueued || !this.waiter) return;
    this.wakeQueued = true;
    setImmediate(() => {
      this.wakeQueued = false;
      const w = this.waiter;
      this.waiter = undefined;
      w?.();
    });
  }

  ended(inlet: Inlet, err?: Error): void {
    if (err) {
      this.events.push(
        nodeStatusItem(NodeState.NODE_ERROR, [inlet.name], this.opts.relayNode, this.now(), err.message),
      );
    }
    this.wake();
  }

  /** Wakes the consumer at `at` (ms) unless an earlier wake-up is already set. */
  private wakeAt(at: number): void {
    if (this.timer && this.timerAt <= at) return;
    clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.wake();
    }, Math.max(1, at - this.now()));
  }

  private take(): RelayItem[] {
    const out: RelayItem[] = this.events.splice(0);
    // k-way merge of what is buffered now. It waits for an empty inlet only up to waitMs (a quiet
    // node must not delay everyone); sortFlows' bounded heap and drain timeout stay the outer
    // bound, exactly Hubble's semantics. A linear scan: k is the node count and a heap of inlets
    // only pays off beyond a few dozen nodes.
    const inlets = this.inlets;
    const waitMs = this.waitMs;
    const now = waitMs > 0 ? this.now() : 0;
    while (out.length < this.maxBatch) {
      let best: Inlet | undefined;
      let head: RelayItem | undefined;
      // Oldest "last flow" among live inlets holding nothing: nothing older can come from them.
      let floorSec = Infinity;
      let floorNsec = 0;
      for (let i = 0; i < inlets.length; i++) {
        const inlet = inlets[i]!;
        const h = inlet.peek();
        if (h) {
          if (!head || less(h, head)) {
            best = inlet;
            head = h;
          }
        } else if (waitMs > 0 && !inlet.ended && (inlet.lastSec < floorSec || (inlet.lastSec === floorSec && inlet.lastNsec < floorNsec))) {
          floorSec = inlet.lastSec;
          floorNsec = inlet.lastNsec;
        }
      }
      if (!best || !head) break;
      if (floorSec < head.sec || (floorSec === head.sec && floorNsec < head.nsec)) {
        const until = (head.at ?? 0) + waitMs;
        if (until > now) {
          this.wakeAt(until);
          break;
        }
      }
      out.push(best.shift()!);
    }
    let live = 0;
    for (const inlet of this.inlets) {
      inlet.maybeResume();
      if (!inlet.ended || inlet.length > 0) live++;
    }
    if (live < this.inlets.length) {
      // Drop finished inlets so the merge stays cheap in long follow streams.
      for (let i = this.inlets.length - 1; i >= 0; i--) {
        const inlet = this.inlets[i]!;
        if (inlet.ended && inlet.length === 0) this.inlets.splice(i, 1);
      }
    }
    return out;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<RelayItem[]> {
    try {
      while (!this.closed) {
        const items = this.take();
        if (items.length > 0) {
          yield items;
          continue;
        }
        if (this.sealed && this.inlets.length === 0) return;
        await new Promise<void>((resolve) => (this.waiter = resolve));
      }
    } finally {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
  }
}

type Next<T> = Promise<IteratorResult<T, unknown>>;

function sleep(ms: number): { promise: Promise<'timeout'>; cancel: () => void } {
  let t: NodeJS.Timeout | undefined;
  const promise = new Promise<'timeout'>((resolve) => (t = setTimeout(() => resolve('timeout'), ms)));
  return { promise, cancel: () => clearTimeout(t) };
}

async function nextOrTimeout<T>(next: Next<T>, ms: number | undefined): Promise<IteratorResult<T, unknown> | 'timeout'> {
  if (ms === undefined) return next;
  const timer = sleep(Math.max(0, ms));
  try {
    return await Promise.race([next, timer.promise]);
  } finally {
    timer.cancel();
  }
}

function isNodeError(item: RelayItem): boolean {
  return item.msg?.node_status?.state_change === NodeState.NODE_ERROR;
}

/**
 * Merges NODE_ERROR events with the same message that arrive within `windowMs` into one event
 * naming every node (Hubble's aggregateErrors, 10 s window). Everything else passes straight on.
 */
export async function* aggregateErrors(
  source: AsyncIterable<RelayItem[]>,
  windowMs: number,
  now: Clock = Date.now,
): AsyncGenerator<RelayItem[]> {
  const it = source[Symbol.asyncIterator]();
  let pending: RelayItem | undefined;
  let pendingSince = 0;
  let next: Next<RelayItem[]> | undefined;
  try {
    for (;;) {
      next ??= it.next();
      const r = await nextOrTimeout(next, pending ? pendingSince + windowMs - now() : undefined);
      if (r === 'timeout') {
        yield [pending!];
        pending = undefined;
        continue;
      }
      next = undefined;
      if (r.done) {
        if (pending) yield [pending];
        return;
      }
      let out: RelayItem[] | undefined;
      for (const item of r.value) {
        if (!isNodeError(item)) {
          (out ??= []).push(item);
          continue;
        }
        const cur = item.msg!.node_status!;
        const pend = pending?.msg?.node_status;
        if (pend && pend.message === cur.message) {
          pend.node_names = [...(pend.node_names ?? []), ...(cur.node_names ?? [])];
          continue;
        }
        if (pending) (out ??= []).push(pending);
        pending = item;
        pendingSince = now();
      }
      if (out) yield out;
    }
  } finally {
    await it.return?.();
  }
}

export interface SortOptions {
  /** Heap size before the oldest entry is forced out (Hubble --sort-buffer-len-max, 100). */
  qlen: number;
  /** Entries older than now − drainTimeoutMs leave the heap when input pauses (Hubble: 1 s). */
  drainTimeoutMs: number;
  now?: Clock;
  stats?: SortStats;
}

/** What the sort buffer did, for metrics: nothing is ever dropped, but early exits lose order. */
export interface SortStats {
  /** Entries sent before their time because the buffer was full (order is best-effort beyond qlen). */
  overflow: number;
  /** Drain-timeout flushes that released at least one entry. */
  drains: number;
  /** Entries released by those flushes. */
  drained: number;
}

/**
 * Best-effort time order inside a window of qlen entries or drainTimeoutMs (Hubble's sortFlows).
 * Unlike Hubble, the age check also runs every drainTimeoutMs while input keeps trickling in, so a
 * slow node cannot hold flows in the heap for longer than the timeout.
 */
export async function* sortFlows(source: AsyncIterable<RelayItem[]>, opts: SortOptions): AsyncGenerator<RelayItem[]> {
  const now = opts.now ?? Date.now;
  const qlen = Math.max(1, opts.qlen);
  const pq = new PriorityQueue<RelayItem>();
  const it = source[Symbol.asyncIterator]();
  let next: Next<RelayItem[]> | undefined;
  let lastDrain = now();
  const stats = opts.stats;
  const drain = (t: number, out: RelayItem[]) => {
    const before = out.length;
    pq.popOlderThan(timeOf(t - opts.drainTimeoutMs), out);
    lastDrain = t;
    if (stats && out.length > before) {
      stats.drains++;
      stats.drained += out.length - before;
    }
  };
  try {
    for (;;) {
      next ??= it.next();
      const r = await nextOrTimeout(next, pq.length > 0 ? opts.drainTimeoutMs : undefined);
      const out: RelayItem[] = [];
      if (r === 'timeout') {
        drain(now(), out);
        if (out.length) yield out;
        continue;
      }
      next = undefined;
      if (r.done) {
        for (let x = pq.pop(); x; x = pq.pop()) out.push(x);
        if (out.length) yield out;
        return;
      }
      const full = out.length;
      for (const item of r.value) {
        if (pq.length >= qlen) out.push(pq.pop()!);
        pq.push(item);
      }
      if (stats) stats.overflow += out.length - full;
      const t = now();
      if (t - lastDrain >= opts.drainTimeoutMs) drain(t, out);
      if (out.length) yield out;
    }
  } finally {
    await it.return?.();
  }
}
