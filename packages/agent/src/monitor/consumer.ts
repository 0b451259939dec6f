// Between the datapath and the parser, as Hubble's pkg/hubble/monitor/consumer.go: a bounded queue
// so a slow parser cannot stall the ring-buffer callback, and lost-event accounting so that no
// loss is silent (kernel ring buffer full, agent queue full), aggregated per interval.
import { LostEventSource, type Flow, type LostEvent } from '@flowctl/flow';
import type { Datapath } from '../datapath/datapath.js';
import type { DatapathEvent } from '../datapath/events.js';
import { msToTimestamp } from '../observer/timestamp.js';

export interface ConsumerSink {
  writeFlow(flow: Flow): void;
  writeLost(ev: LostEvent): void;
}

export interface ConsumerOptions {
  /** Queue length at which the datapath is paused (Hubble's queue: numCPU × 1024, capped at 16384). */
  queueSize?: number;
  /** Hard bound: events beyond it are dropped and reported (default 4 × queueSize). Batches already
   *  in flight when the datapath pauses land between the two bounds instead of being lost. */
  maxQueue?: number;
  /** How often aggregated lost events are emitted (Hubble: hubble-lost-event-send-interval, 1 s). */
  lostIntervalMs?: number;
  /** Events decoded per macrotask, so gRPC streams get the event loop in between. */
  chunk?: number;
  /** After each batch, the datapath rests this long before the next read (0: reads on every
   *  wake-up): every read has fixed costs downstream (a drain, a gRPC write per follower and the
   *  follower's own wake-up), which a few events per wake-up multiplied. */
  readIntervalMs?: number;
  now?: () => number;
  /** Sees every batch as read from the datapath, before the queue can drop any of it (metrics). */
  countRead?: (batch: readonly DatapathEvent[]) => void;
  /** Sees each event the queue dropped (the parser counts the L7 messages it carried). */
  dropped?: (ev: DatapathEvent) => void;
}

export interface ConsumerStats {
  received: number;
  decoded: number;
  flows: number;
  queueDropped: number;
  kernelLost: bigint;
}

interface Loss {
  count: number;
  firstMs: number;
  lastMs: number;
}

export class MonitorConsumer {
  readonly stats: ConsumerStats = { received: 0, decoded: 0, flows: 0, queueDropped: 0, kernelLost: 0n };
  private readonly queue: DatapathEvent[][] = [];
  private queueHeadPos = 0;
  private queued = 0;
  private paused = false;
  /** Paused until the read interval is over (independent of the backpressure pause). */
  private resting = false;
  private stopped = false;
  private draining = false;
  private queueLoss: Loss | undefined;
  private kernelSeen = 0n;
  private timer: NodeJS.Timeout | undefined;
  private readonly queueSize: number;
  private readonly maxQueue: number;
  private readonly chunk: number;
  private readonly readIntervalMs: number;
  private readonly lostIntervalMs: number;
  private readonly now: () => number;
  private readonly countRead: ((batch: readonly DatapathEvent[]) => void) | undefined;
  private readonly dropped: ((ev: DatapathEvent) => void) | undefined;

  constructor(
    private readonly datapath: Datapath,
    private readonly decode: (ev: DatapathEvent) => Flow[],
    private readonly sink: ConsumerSink,
    opts: ConsumerOptions = {},
  ) {
    this.queueSize = opts.queueSize ?? 16384;
    this.maxQueue = Math.max(this.queueSize, opts.maxQueue ?? this.queueSize * 4);
    this.chunk = opts.chunk ?? 4096;
    this.readIntervalMs = opts.readIntervalMs ?? 0;
    this.lostIntervalMs = opts.lostIntervalMs ?? 1000;
    this.now = opts.now ?? Date.now;
    this.countRead = opts.countRead;
    this.dropped = opts.dropped;
  }

  start(): void {
    this.kernelSeen = this.datapath.counters().ringbufFull ?? 0n;
    this.datapath.start((batch) => this.enqueue(batch));
    this.timer = setInterval(() => this.flushLost(), this.lostIntervalMs);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.flushLost();
  }

  /** Called once per ring-buffer wake-up; must return quickly. */
  enqueue(batch: DatapathEvent[]): void {
    this.stats.received += batch.length;
    this.countRead?.(batch);
    const room = this.maxQueue - this.queued;
    if (batch.length > room) {
      const dropped = batch.length - Math.max(0, room);
      this.recordQueueLoss(dropped);
      if (this.dropped) for (let i = Math.max(0, room); i < batch.length; i++) this.dropped(batch[i]!);
      batch = room > 0 ? batch.slice(0, room) : [];
    }
    if (batch.length) {
      this.queue.push(batch);
      this.queued += batch.length;
    }
    if (!this.paused && this.queued >= this.queueSize) {
      // Backpressure first: the kernel ring buffer absorbs the burst while we catch up.
      this.paused = true;
      if (!this.resting) this.datapath.pause();
    }
    if (this.readIntervalMs > 0 && !this.resting && !this.stopped) {
      this.resting = true;
      if (!this.paused) this.datapath.pause();
      setTimeout(() => {
        this.resting = false;
        if (!this.paused && !this.stopped) this.datapath.resume();
      }, this.readIntervalMs);
    }
    this.scheduleDrain();
  }

  private recordQueueLoss(n: number): void {
    this.stats.queueDropped += n;
    const t = this.now();
    if (this.queueLoss) {
      this.queueLoss.count += n;
      this.queueLoss.lastMs = t;
    } else this.queueLoss = { count: n, firstMs: t, lastMs: t };
  }

  private scheduleDrain(): void {
    if (this.draining || this.queued === 0) return;
    this.draining = true;
    setImmediate(() => this.drain());
  }

  /** Decodes up to `chunk` events, then yields to the event loop. */
  drain(): void {
    this.draining = false;
    let budget = this.chunk;
    while (budget > 0 && this.queue.length > 0) {
      const batch = this.queue[0]!;
      while (budget > 0 && this.queueHeadPos < batch.length) {
        const ev = batch[this.queueHeadPos++]!;
        budget--;
        this.queued--;
        this.stats.decoded++;
        const flows = this.decode(ev);
        for (const f of flows) this.sink.writeFlow(f);
        this.stats.flows += flows.length;
      }
      if (this.queueHeadPos >= batch.length) {
        this.queue.shift();
        this.queueHeadPos = 0;
      }
    }
    if (this.paused && this.queued <= this.queueSize / 2) {
      this.paused = false;
      if (!this.resting) this.datapath.resume();
    }
    this.scheduleDrain();
  }

  /** Emits the aggregated losses of the last interval as lost_events. */
  flushLost(): void {
    const ql = this.queueLoss;
    if (ql) {
      this.queueLoss = undefined;
      this.sink.writeLost({
        source: LostEventSource.OBSERVER_EVENTS_QUEUE,
        num_events_lost: BigInt(ql.count),
        first: msToTimestamp(ql.firstMs),
        last: msToTimestamp(ql.lastMs),
      });
    }
    let kernel: bigint;
    try {
      kernel = this.datapath.counters().ringbufFull ?? 0n;
    } catch {
      return;
    }
    if (kernel > this.kernelSeen) {
      const n = kernel - this.kernelSeen;
      this.kernelSeen = kernel;
      this.stats.kernelLost += n;
      this.sink.writeLost({ source: LostEventSource.PERF_EVENT_RING_BUFFER, num_events_lost: n });
    }
  }

  get queueLength(): number {
    return this.queued;
  }
}
