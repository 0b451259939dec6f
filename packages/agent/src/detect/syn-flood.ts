// SYN floods: half-open connections per destination (address and port) per interval. A SYN opens
// an attempt; a handshake the agent sees complete (the server's or client's socket reaching
// ESTABLISHED, from the SOCK records) closes one; what is left over at the end of an interval was
// never completed. A busy server completes its handshakes, so its SYN rate alone never alerts.
import { FlowType, TrafficDirection, type Flow } from '@flowctl/flow';
import type { AlertPeer, DetectContext, Detector, DetectorSpec, Finding } from './detector.js';
import type { SectionValues } from './config.js';
import { DistinctCounter } from './distinct.js';
import { HeldUpdates } from './held-updates.js';
import { LruMap } from './lru.js';
import { describePeer, peerOf } from './peer.js';
import { countedAt, ownedHere, synCount } from './syn.js';

export interface SynFloodOptions {
  intervalMs: number;
  /** Half-open connections in one interval that make a flood. */
  halfOpen: number;
  maxDestinations: number;
  updateMs: number;
}

/** Heavy hitters kept per destination (Misra-Gries): the flood's main sources, approximately. */
const TOP = 8;

interface DestState {
  peer: AlertPeer;
  ip: string;
  port: number;
  bucketStart: number;
  syns: number;
  estIn: number;
  estOut: number;
  top: Map<string, { peer: AlertPeer; n: number }>;
  sources: DistinctCounter;
  /** The flood in progress: who it is charged to, and its totals. */
  source: AlertPeer | undefined;
  startMs: number;
  synsTotal: number;
  halfOpenTotal: number;
  last: number;
  peak: number;
  reportedMs: number;
}

export class SynFloodDetector implements Detector {
  readonly name = 'syn-flood';
  private readonly dests: LruMap<string, DestState>;
  /** Destinations under a flood: their intervals are closed on tick even when no flow comes. */
  private readonly flooded = new Set<DestState>();
  private readonly held: HeldUpdates<DestState>;

  constructor(private readonly o: SynFloodOptions, private readonly isLocalIp: (ip: string) => boolean) {
    this.held = new HeldUpdates(o.updateMs);
    this.dests = new LruMap(o.maxDestinations, (d) => {
      this.flooded.delete(d);
      this.held.forget(d);
    });
  }

  stateSize(): number {
    return this.dests.size;
  }

  stateEvicted(): number {
    return this.dests.evicted;
  }

  observe(flow: Flow, nowMs: number): Finding[] | undefined {
    const syns = synCount(flow, true);
    if (syns) {
      if (!countedAt(flow, 'destination', this.isLocalIp) || !ownedHere(flow, 'destination', this.isLocalIp)) return undefined;
      const ip = flow.IP!.destination!;
      const port = flow.l4!.TCP!.destination_port ?? 0;
      const d = this.dests.getOrCreate(`${ip}:${port}`, () => newDest(peerOf(flow, 'destination'), ip, port, nowMs));
      const found = this.roll(d, nowMs);
      d.syns += syns;
      const src = flow.IP!.source!;
      d.sources.add(src);
      const t = d.top.get(src);
      if (t) t.n += syns;
      else if (d.top.size < TOP) d.top.set(src, { peer: peerOf(flow, 'source'), n: syns });
      else {
        // Misra-Gries with weights: take the smallest count (or the weight) off every counter.
        let m = syns;
        for (const v of d.top.values()) m = Math.min(m, v.n);
        for (const [k, v] of d.top) if ((v.n -= m) <= 0) d.top.delete(k);
        if (syns > m) d.top.set(src, { peer: peerOf(flow, 'source'), n: syns - m });
      }
      return found;
    }
    if (flow.Type !== FlowType.SOCK || flow.Summary !== 'TCP ESTABLISHED' || !flow.IP) return undefined;
    // The server's socket names itself as source; the client's names the server as destination.
    const inbound = flow.traffic_direction === TrafficDirection.INGRESS;
    const ip = inbound ? flow.IP.source : flow.IP.destination;
    const port = inbound ? flow.l4?.TCP?.source_port : flow.l4?.TCP?.destination_port;
    const d = this.dests.get(`${ip}:${port}`);
    if (!d) return undefined;
    const found = this.roll(d, nowMs);
    if (inbound) d.estIn++;
    else d.estOut++;
    return found;
  }

  tick(nowMs: number): Finding[] | undefined {
    let out: Finding[] | undefined;
    for (const d of this.flooded) {
      const f = this.roll(d, nowMs);
      if (f) (out ??= []).push(...f);
    }
    const late = this.held.tick(nowMs, (d) => this.report(d, nowMs));
    return late ? [...(out ?? []), ...late] : out;
  }

  /** Closes the interval when `nowMs` is past it; a finding when it held a flood. */
  private roll(d: DestState, nowMs: number): Finding[] | undefined {
    const o = this.o;
    if (nowMs - d.bucketStart < o.intervalMs) return undefined;
    const halfOpen = Math.max(0, d.syns - Math.max(d.estIn, d.estOut));
    const syns = d.syns;
    const quiet = nowMs - d.bucketStart >= 2 * o.intervalMs;
    d.bucketStart = quiet ? nowMs : d.bucketStart + o.intervalMs;
    d.syns = d.estIn = d.estOut = 0;
    if (halfOpen < o.halfOpen) {
      // The flood is over: its last figures go out now if they were held back.
      const last = this.held.has(d) ? this.report(d, nowMs) : undefined;
      // Sources are counted per flood: a quiet interval starts the count afresh.
      this.flooded.delete(d);
      this.held.forget(d);
      d.source = undefined;
      d.top.clear();
      d.sources = new DistinctCounter();
      return last;
    }
    if (!d.source) {
      let best: { peer: AlertPeer; n: number } | undefined;
      for (const t of d.top.values()) if (!best || t.n > best.n) best = t;
      d.source = best?.peer ?? { ip: '' };
      this.flooded.add(d);
      d.startMs = d.bucketStart;
      d.synsTotal = d.halfOpenTotal = d.peak = 0;
      d.reportedMs = -Infinity;
    }
    d.synsTotal += syns;
    d.halfOpenTotal += halfOpen;
    d.last = halfOpen;
    d.peak = Math.max(d.peak, halfOpen);
    return this.held.due(d, nowMs) ? this.report(d, nowMs) : undefined;
  }

  /** The finding of a flood in progress, with the figures of its last closed interval. */
  private report(d: DestState, nowMs: number): Finding[] | undefined {
    const o = this.o;
    const source = d.source;
    if (!source) return undefined;
    const halfOpen = d.last;
    d.reportedMs = nowMs;
    const secs = o.intervalMs / 1000;
    const n = d.sources.estimate;
    const top = [...d.top.entries()].sort((a, b) => b[1].n - a[1].n).slice(0, 5);
    return [
      {
        kind: 'syn-flood',
        severity: d.peak >= o.halfOpen * 10 ? 'critical' : 'high',
        source,
        destination: d.peer,
        target: `${d.ip}:${d.port}/TCP`,
        summary:
          `SYN flood on ${describePeer(d.peer)} port ${d.port}: ${halfOpen} half-open connections in ${secs}s ` +
          `(peak ${d.peak}) from ${n === 1 ? '1 source' : `~${n} sources`}, most from ${describePeer(source)}`,
        evidence: {
          half_open: halfOpen,
          peak_half_open: d.peak,
          interval_s: secs,
          syns_total: d.synsTotal,
          half_open_total: d.halfOpenTotal,
          distinct_sources: n,
          top_sources: top.map(([ip]) => ip),
          since: new Date(d.startMs).toISOString(),
        },
      },
    ];
  }
}

function newDest(peer: AlertPeer, ip: string, port: number, nowMs: number): DestState {
  return {
    peer, ip, port, bucketStart: nowMs, syns: 0, estIn: 0, estOut: 0, top: new Map(), sources: new DistinctCounter(),
    source: undefined, startMs: nowMs, synsTotal: 0, halfOpenTotal: 0, last: 0, peak: 0, reportedMs: -Infinity,
  };
}

export const synFlood: DetectorSpec = {
  name: 'syn-flood',
  help: 'half-open TCP connections per destination address and port',
  options: {
    interval: { kind: 'duration', default: 1000, help: 'half-open connections are counted per interval' },
    'half-open': { kind: 'count', default: 1000, help: 'half-open connections in one interval that make a flood' },
    'max-destinations': { kind: 'count', default: 4096, help: 'destinations tracked at once; the least recently active is forgotten first' },
    'update-interval': { kind: 'duration', default: 1000, help: "least time between two updates of a flood's alert" },
  },
  create: (c: SectionValues, ctx: DetectContext) =>
    new SynFloodDetector(
      { intervalMs: c.interval as number, halfOpen: c['half-open'] as number, maxDestinations: c['max-destinations'] as number, updateMs: c['update-interval'] as number },
      ctx.isLocalIp,
    ),
};
