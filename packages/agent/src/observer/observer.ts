// The local observer: owns the ring, answers GetFlows / ServerStatus / GetNamespaces with Hubble's
// semantics (cilium pkg/hubble/observer/local_observer.go, hubble-api.md §1.2 and §6).
import {
  LostEventSource,
  type Flow,
  type GetFlowsRequest,
  type GetFlowsResponse,
  type LostEvent,
  type Namespace,
  type ServerStatusResponse,
} from '@flowctl/flow';
import { compileFilters } from '@flowctl/flow/filters';
import { Ring } from '../container/ring.js';
import { FlowctlError } from '../errors.js';
import { cmpTs, msToTimestamp, tsToMs } from './timestamp.js';

export { msToTimestamp } from './timestamp.js';

export const AGENT_VERSION = 'flowctl-agent v0.1.0';

export interface ObserverOptions {
  nodeName: string;
  capacity: number;
  /** Wall clock in ms (tests pass their own). */
  now?: () => number;
}

export const WAIT: unique symbol = Symbol('wait');
export const DONE: unique symbol = Symbol('done');

export interface FlowCursor {
  next(): GetFlowsResponse | typeof WAIT | typeof DONE;
  /** Resolves at the next write into the ring (or when `signal` aborts). */
  waitForWrite(signal: AbortSignal): Promise<void>;
}

export interface ObserverStats {
  /** HUBBLE_RING_BUFFER losses reported to readers that were lapped. */
  ringLapped: number;
}

/** Events lost by LostEventSource over every lost-event record written so far, and (last) the
 * number of those records. Replaced on each write, never changed: ring positions share them. */
type LossTotals = readonly number[];
const RECORDS = 4;

export class Observer {
  readonly ring: Ring<GetFlowsResponse>;
  readonly nodeName: string;
  readonly stats: ObserverStats = { ringLapped: 0 };
  private seen = 0;
  private readonly startMs: number;
  private readonly now: () => number;
  private waiters: (() => void)[] = [];
  private wakeScheduled = false;
  private totals: LossTotals = [0, 0, 0, 0, 0];
  /** For each ring position, the loss totals before its entry: a lapped reader learns the losses
   * of the lost-event records that were overwritten before it read them. */
  private readonly marks: LossTotals[];

  constructor(opts: ObserverOptions) {
    this.ring = new Ring(opts.capacity);
    this.marks = new Array<LossTotals>(opts.capacity + 1).fill(this.totals);
    this.nodeName = opts.nodeName;
    this.now = opts.now ?? Date.now;
    this.startMs = this.now();
  }

  writeFlow(flow: Flow): void {
    this.seen++;
    this.marks[this.ring.head % this.marks.length] = this.totals;
    this.ring.write({ flow, node_name: flow.node_name ?? this.nodeName, time: flow.time });
    this.scheduleWake();
  }

  /** Lost events live in the ring too, so every reader (including late ones) learns about the loss. */
  writeLost(ev: LostEvent): void {
    this.marks[this.ring.head % this.marks.length] = this.totals;
    const t = [...this.totals];
    t[ev.source ?? 0] = (t[ev.source ?? 0] ?? 0) + Number(ev.num_events_lost ?? 0);
    t[RECORDS]! += 1;
    this.totals = t;
    this.ring.write({ lost_events: ev, node_name: this.nodeName, time: msToTimestamp(this.now()) });
    this.scheduleWake();
  }

  /** Loss totals before ring position `seq` (the current ones past the newest entry). */
  private totalsBefore(seq: number): LossTotals {
    return seq < this.ring.head ? this.marks[seq % this.marks.length]! : this.totals;
  }

  get seenFlows(): number {
    return this.seen;
  }

  private scheduleWake(): void {
    if (this.wakeScheduled || this.waiters.length === 0) return;
    this.wakeScheduled = true;
    queueMicrotask(() => {
      this.wakeScheduled = false;
      const w = this.waiters;
      this.waiters = [];
      for (const f of w) f();
    });
  }

  private nextWrite(signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal.aborted) return resolve();
      const done = () => {
        signal.removeEventListener('abort', done);
        resolve();
      };
      this.waiters.push(done);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  /** Validates a request up front so the server can answer InvalidArgument before streaming. */
  prepare(req: GetFlowsRequest): (r: GetFlowsResponse) => boolean {
    if (req.first && req.follow) throw new FlowctlError('INVALID_ARGUMENT', 'first cannot be specified with follow');
    try {
      return compileFilters(req.whitelist ?? [], req.blacklist ?? []);
    } catch (e) {
      throw new FlowctlError('INVALID_ARGUMENT', e instanceof Error ? e.message : String(e), { cause: e });
    }
  }

  /** The GetFlows stream. Ends when the request is satisfied or `signal` aborts. */
  async *getFlows(req: GetFlowsRequest, signal: AbortSignal): AsyncGenerator<GetFlowsResponse> {
    const cursor = this.cursor(req);
    while (!signal.aborted) {
      const r = cursor.next();
      if (r === DONE) return;
      if (r === WAIT) {
        await this.nextWrite(signal);
        continue;
      }
      yield r;
    }
  }

  /**
   * GetFlows as a pull cursor: `next()` returns the next response, WAIT when a follow request has
   * read everything written so far (await `waitForWrite`), or DONE. GetFlows and the batched
   * GetFlows both read through it, so they cannot disagree; the batched server uses WAIT to know
   * when to send a partial batch.
   */
  cursor(req: GetFlowsRequest): FlowCursor {
    const match = this.prepare(req);
    const ring = this.ring;
    const follow = req.follow === true;
    const number = req.number === undefined || req.number > BigInt(Number.MAX_SAFE_INTEGER)
      ? (req.number === undefined ? 0 : Number.MAX_SAFE_INTEGER)
      : Number(req.number);
    const since = req.since;
    const until = req.until;

    let seq: number;
    if (req.first) {
      seq = ring.tail;
    } else if (follow && number === 0 && !since) {
      seq = ring.head;
    } else {
      // Walk back from the newest entry counting matching flows, as Hubble does, then read forward.
      seq = ring.tail;
      let count = 0;
      for (let s = ring.head - 1; s >= ring.tail; s--) {
        const e = ring.read(s);
        if (!e || e.lost_events) continue;
        if (since && e.time && cmpTs(e.time, since) < 0) {
          seq = s + 1;
          break;
        }
        if (match(e)) {
          count++;
          if (number > 0 && count >= number) {
            seq = s;
            break;
          }
        }
      }
    }

    let sent = 0;
    let done = false;
    const limited = number > 0 && !follow;
    let known = this.totalsBefore(seq);
    const notices: GetFlowsResponse[] = [];
    const notice = (source: LostEventSource, n: number): GetFlowsResponse => ({
      lost_events: { source, num_events_lost: BigInt(n) },
      node_name: this.nodeName,
      time: msToTimestamp(this.now()),
    });
    const next = (): GetFlowsResponse | typeof WAIT | typeof DONE => {
      while (!done) {
        if (notices.length) return notices.shift()!;
        if (seq < ring.tail) {
          // This reader was lapped: the writer overwrote entries it had not read yet. Flows are
          // reported as HUBBLE_RING_BUFFER losses, overwritten lost-event records as their own.
          const now = this.totalsBefore(ring.tail);
          const lost = ring.tail - seq - (now[RECORDS]! - known[RECORDS]!);
          if (lost > 0) {
            this.stats.ringLapped += lost;
            notices.push(notice(LostEventSource.HUBBLE_RING_BUFFER, lost));
          }
          for (let src = 0; src < RECORDS; src++) {
            if (now[src]! > known[src]!) notices.push(notice(src, now[src]! - known[src]!));
          }
          seq = ring.tail;
          known = now;
          continue;
        }
        if (seq >= ring.head) {
          if (follow) return WAIT;
          break;
        }
        const e = ring.read(seq++);
        known = this.totalsBefore(seq);
        if (!e) continue;
        if (e.lost_events) return e; // never filtered, never counted against number
        if (until && e.time && cmpTs(e.time, until) > 0) break;
        if (since && e.time && cmpTs(e.time, since) < 0) continue;
        if (!match(e)) continue;
        sent++;
        if (limited && sent >= number) done = true;
        return e;
      }
      done = true;
      return DONE;
    };
    return { next, waitForWrite: (signal) => this.nextWrite(signal) };
  }

  serverStatus(): ServerStatusResponse {
    return {
      num_flows: BigInt(this.ring.length),
      max_flows: BigInt(this.ring.capacity),
      seen_flows: BigInt(this.seen),
      uptime_ns: BigInt(Math.max(0, this.now() - this.startMs)) * 1_000_000n,
      version: AGENT_VERSION,
      flows_rate: this.flowsRate(),
    };
  }

  /** Flows with a timestamp in the last minute per second; the window shrinks to the ring's span if it wrapped sooner. */
  flowsRate(): number {
    const nowMs = this.now();
    const cutoff = nowMs - 60_000;
    let count = 0;
    let oldestMs = nowMs;
    for (let s = this.ring.head - 1; s >= this.ring.tail; s--) {
      const e = this.ring.read(s);
      if (!e?.flow || !e.time) continue;
      const t = tsToMs(e.time);
      if (t < cutoff) {
        oldestMs = cutoff;
        break;
      }
      count++;
      oldestMs = t;
    }
    if (count === 0) return 0;
    const wrapped = this.ring.head > this.ring.capacity;
    const windowMs = wrapped && oldestMs > cutoff ? nowMs - oldestMs : 60_000;
    return windowMs > 0 ? count / (windowMs / 1000) : 0;
  }

  /** Namespaces seen in flows of the last hour, sorted (GetNamespaces). */
  namespaces(): Namespace[] {
    const cutoff = this.now() - 3_600_000;
    const seen = new Set<string>();
    for (let s = this.ring.head - 1; s >= this.ring.tail; s--) {
      const e = this.ring.read(s);
      if (!e?.flow) continue;
      if (e.time && tsToMs(e.time) < cutoff) break;
      const a = e.flow.source?.namespace;
      const b = e.flow.destination?.namespace;
      if (a) seen.add(a);
      if (b) seen.add(b);
    }
    return [...seen].sort().map((namespace) => ({ namespace }));
  }
}
