// New connections per source per second, averaged over a sliding window of one-second slots, so
// a burst (a connection pool filling at start-up) does not alert but a sustained rate does.
import type { Flow } from '@flowctl/flow';
import type { AlertPeer, DetectContext, Detector, DetectorSpec, Finding } from './detector.js';
import type { SectionValues } from './config.js';
import { DistinctCounter } from './distinct.js';
import { HeldUpdates } from './held-updates.js';
import { LruMap } from './lru.js';
import { describePeer, peerOf } from './peer.js';
import { countedAt, ownedHere, synCount } from './syn.js';

export interface ConnectionRateOptions {
  /** Whole seconds. */
  windowS: number;
  /** New connections per second, averaged over the window, that alert. */
  rate: number;
  maxSources: number;
  updateMs: number;
}

interface SourceState {
  peer: AlertPeer;
  slots: Uint32Array;
  /** The second slot `sec % slots.length` counts. */
  sec: number;
  sum: number;
  destinations: DistinctCounter;
  sample: string[];
  peak: number;
  total: number;
  startMs: number;
  reportedMs: number;
}

export class ConnectionRateDetector implements Detector {
  readonly name = 'connection-rate';
  private readonly sources: LruMap<string, SourceState>;
  private readonly held: HeldUpdates<SourceState>;

  constructor(private readonly o: ConnectionRateOptions, private readonly isLocalIp: (ip: string) => boolean) {
    this.held = new HeldUpdates(o.updateMs);
    this.sources = new LruMap(o.maxSources, (s) => this.held.forget(s));
  }

  stateSize(): number {
    return this.sources.size;
  }

  stateEvicted(): number {
    return this.sources.evicted;
  }

  observe(flow: Flow, nowMs: number): Finding[] | undefined {
    const syns = synCount(flow, false);
    if (!syns || !countedAt(flow, 'source', this.isLocalIp) || !ownedHere(flow, 'source', this.isLocalIp)) return undefined;
    const o = this.o;
    const sec = Math.floor(nowMs / 1000);
    const s = this.sources.getOrCreate(flow.IP!.source!, () => ({
      peer: peerOf(flow, 'source'), slots: new Uint32Array(o.windowS), sec, sum: 0, destinations: new DistinctCounter(),
      sample: [], peak: 0, total: 0, startMs: nowMs, reportedMs: -Infinity,
    }));
    if (sec !== s.sec) {
      // Clear the slots of the seconds that passed (all of them after a long pause).
      const n = s.slots.length;
      for (let t = s.sec + 1, i = 0; t <= sec && i < n; t++, i++) {
        s.sum -= s.slots[t % n]!;
        s.slots[t % n] = 0;
      }
      s.sec = sec;
    }
    s.slots[sec % s.slots.length]! += syns;
    s.sum += syns;
    const dst = flow.IP!.destination!;
    s.destinations.add(dst);
    if (s.sample.length < 5 && !s.sample.includes(dst)) s.sample.push(dst);
    const perSec = s.sum / o.windowS;
    if (perSec < o.rate) {
      if (s.sum === syns) {
        // A fresh start after a quiet window: the next alert's figures begin here.
        s.total = 0;
        s.peak = 0;
        s.startMs = nowMs;
        s.destinations = new DistinctCounter();
        s.sample = [dst];
        s.destinations.add(dst);
      }
      s.total += syns;
      return undefined;
    }
    s.total += syns;
    s.peak = Math.max(s.peak, perSec);
    return this.held.due(s, nowMs) ? this.finding(s, nowMs) : undefined;
  }

  tick(nowMs: number): Finding[] | undefined {
    return this.held.tick(nowMs, (s) => this.finding(s, nowMs));
  }

  private finding(s: SourceState, nowMs: number): Finding[] {
    const o = this.o;
    const perSec = s.sum / o.windowS;
    s.reportedMs = nowMs;
    const hosts = s.destinations.estimate;
    return [
      {
        kind: 'connection-rate',
        severity: perSec >= o.rate * 10 ? 'high' : 'medium',
        source: s.peer,
        target: 'new-connections',
        summary: `${describePeer(s.peer)} opened ${s.sum} connections in ${o.windowS}s (${perSec.toFixed(0)}/s, peak ${s.peak.toFixed(0)}/s) to ${hosts === 1 ? '1 host' : `~${hosts} hosts`}`,
        evidence: {
          per_second: Math.round(perSec),
          peak_per_second: Math.round(s.peak),
          window_s: o.windowS,
          connections_in_window: s.sum,
          connections_total: s.total,
          distinct_destinations: hosts,
          sample_destinations: [...s.sample],
          since: new Date(s.startMs).toISOString(),
        },
      },
    ];
  }
}

export const connectionRate: DetectorSpec = {
  name: 'connection-rate',
  help: 'new TCP connections per source per second, averaged over a sliding window',
  options: {
    window: { kind: 'duration', default: 10_000, help: 'the sliding window (whole seconds)' },
    rate: { kind: 'number', default: 100, min: 1, help: 'new connections per second over the window that alert' },
    'max-sources': { kind: 'count', default: 16_384, help: 'sources tracked at once; the least recently active is forgotten first' },
    'update-interval': { kind: 'duration', default: 1000, help: "least time between two updates of a source's alert" },
  },
  create: (c: SectionValues, ctx: DetectContext) =>
    new ConnectionRateDetector(
      {
        windowS: Math.max(1, Math.round((c.window as number) / 1000)),
        rate: c.rate as number,
        maxSources: c['max-sources'] as number,
        updateMs: c['update-interval'] as number,
      },
      ctx.isLocalIp,
    ),
};
