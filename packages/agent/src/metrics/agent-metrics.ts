// The agent's /metrics: Hubble's flow metrics (hubble.ts) fed with every decoded flow, plus the
// agent's own health (health.ts). Counters the pipeline already keeps (parser, datapath, observer)
// are read at scrape time and turned into counter increments, so the hot path pays only for the
// flow handlers the user enabled.
import type { Server } from 'node:http';
import { Counter, Gauge, Registry } from 'prom-client';
import { LostEventSource, type Flow, type LostEvent } from '@flowctl/flow';
import { serveMetrics, type MetricsSource } from '@flowctl/flow/metrics-server';
import type { DatapathCounters, DatapathEvent } from '../datapath/events.js';
import type { ParserCounters } from '../parser/context.js';
import { AgentHealthMetrics } from './health.js';
import { FlowMetrics, parseMetricsSpec } from './hubble.js';
import { registerDetectMetrics } from './detect-metrics.js';
import type { Detection } from '../detect/index.js';

export const DEFAULT_METRICS = 'flow,drop,tcp,icmp,dns,http';
export const DEFAULT_METRICS_ADDRESS = ':9965';

/** flowctl_agent_lost_events_total{stage}: where in the pipeline an event was lost. */
export type LostStage = 'kernel_ringbuf' | 'kernel_flow_map' | 'agent_queue' | 'hubble_ring';

/** What the metrics read from the running agent at scrape time (every getter may be absent). */
export interface AgentMetricSources {
  ring(): { len: number; cap: number };
  parserCounters?(): ParserCounters | undefined;
  datapathCounters?(): DatapathCounters | undefined;
  /** HUBBLE_RING_BUFFER events reported to lapped readers so far. */
  ringLapped?(): number;
  mapFill?(): { map: string; entries: number; max: number }[];
  /** The detectors and their alert store (absent with detection off). */
  detection?(): Detection | undefined;
}

export interface AgentMetricsOptions {
  /** Hubble's --metrics syntax; '' enables none of the flow handlers. */
  spec?: string;
  maxSeries?: number;
  sources: AgentMetricSources;
}

const STAGE_OF_SOURCE: Partial<Record<LostEventSource, LostStage>> = {
  [LostEventSource.PERF_EVENT_RING_BUFFER]: 'kernel_ringbuf',
  [LostEventSource.OBSERVER_EVENTS_QUEUE]: 'agent_queue',
  [LostEventSource.HUBBLE_RING_BUFFER]: 'hubble_ring',
};

export class AgentMetrics implements MetricsSource {
  readonly registry = new Registry();
  readonly flows: FlowMetrics;
  readonly health: AgentHealthMetrics;
  private readonly eventsByKind = { flow: 0, sock: 0, kdrop: 0, xdrop: 0, suppressed: 0 };
  private readonly eventsSeen = { flow: 0, sock: 0, kdrop: 0, xdrop: 0, suppressed: 0 };
  /** Last values read from cumulative sources, so each scrape adds only the difference. */
  private readonly last = new Map<string, number>();
  private server: Server | undefined;
  private readonly kernelCounters: Counter<'name'>;

  constructor(private readonly opts: AgentMetricsOptions) {
    const handlers = parseMetricsSpec(opts.spec ?? DEFAULT_METRICS);
    this.flows = new FlowMetrics({ registry: this.registry, handlers, ...(opts.maxSeries !== undefined && { maxSeries: opts.maxSeries }) });
    const src = opts.sources;
    this.health = new AgentHealthMetrics(this.registry, { ring: () => src.ring(), ...(src.mapFill && { mapFill: () => src.mapFill!() }) });
    const registers = [this.registry];
    new Gauge({
      name: 'flowctl_agent_bpf_map_entries', help: 'Entries in use per BPF map (ipcache, policy, policy_enforce from what the agent wrote; flows by walking the map)', labelNames: ['map'], registers,
      collect() {
        for (const m of src.mapFill?.() ?? []) this.set({ map: m.map }, m.entries);
      },
    });
    new Gauge({
      name: 'flowctl_agent_bpf_map_max_entries', help: 'Capacity per BPF map', labelNames: ['map'], registers,
      collect() {
        for (const m of src.mapFill?.() ?? []) this.set({ map: m.map }, m.max);
      },
    });
    registerDetectMetrics(this.registry, () => src.detection?.());
    this.kernelCounters = new Counter({
      name: 'flowctl_agent_datapath_stats_total', help: 'The datapath\'s own counters (bpf/flowctl.h enum), by name', labelNames: ['name'], registers,
    });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** Every flow the parser produced (and every replayed flow). */
  observe(flow: Flow): void {
    this.flows.observe(flow);
  }

  /** A ring-buffer batch as read, before the agent queue can drop any of it. */
  eventsRead(batch: readonly DatapathEvent[]): void {
    for (const ev of batch) this.eventsByKind[ev.kind]++;
  }

  /** A lost_events response the agent wrote into its ring. */
  lostEvents(ev: LostEvent): void {
    const n = Number(ev.num_events_lost ?? 0n);
    const source = ev.source ?? LostEventSource.UNKNOWN_LOST_EVENT_SOURCE;
    this.flows.lostEvents(source, n);
    const stage = STAGE_OF_SOURCE[source];
    if (stage) this.health.lost.inc({ stage }, n);
  }

  attachError(ifname: string): void {
    this.health.attachErrors.inc({ interface: ifname });
  }

  /** Brings the cumulative counters kept elsewhere up to date; called before each scrape. */
  refresh(): void {
    for (const kind of ['flow', 'sock', 'kdrop', 'xdrop', 'suppressed'] as const) {
      const d = this.eventsByKind[kind] - this.eventsSeen[kind];
      // Zero increments still create the series, so a scrape shows every source from the start.
      this.health.eventsRead.inc({ source: kind }, d);
      this.eventsSeen[kind] = this.eventsByKind[kind];
    }
    const src = this.opts.sources;
    const pc = src.parserCounters?.();
    const dc = src.datapathCounters?.();
    this.delta('parse:event', pc?.malformedEvents, (d) => this.health.parseErrors.inc({ kind: 'event' }, d));
    this.delta('parse:l7', pc?.malformedL7, (d) => this.health.parseErrors.inc({ kind: 'l7' }, d));
    this.delta('parse:l7_stream', pc?.l7StreamLost, (d) => this.health.parseErrors.inc({ kind: 'l7_stream' }, d));
    // Each lost L7 message is counted once: by the kernel if its event was not sent, else by the agent.
    const l7Lost = (agent: number | undefined, kernel: bigint | undefined) =>
      agent === undefined && kernel === undefined ? undefined : (agent ?? 0) + Number(kernel ?? 0n);
    this.delta('l7lost:req', l7Lost(pc?.l7LostHttpRequests, dc?.l7LostHttpRequests), (d) => this.health.l7Lost.inc({ kind: 'http_request' }, d));
    this.delta('l7lost:resp', l7Lost(pc?.l7LostHttpResponses, dc?.l7LostHttpResponses), (d) => this.health.l7Lost.inc({ kind: 'http_response' }, d));
    this.delta('l7lost:dns', l7Lost(pc?.l7LostDns, dc?.l7LostDns), (d) => this.health.l7Lost.inc({ kind: 'dns' }, d));
    this.delta('parse:decode', dc?.decodeErrors, (d) => this.health.parseErrors.inc({ kind: 'ring_record' }, d));
    this.delta('lost:flowmap', dc?.flowMapFull, (d) => this.health.lost.inc({ stage: 'kernel_flow_map' }, d));
    if (dc) {
      for (const [name, v] of Object.entries(dc)) this.delta(`dp:${name}`, v, (d) => this.kernelCounters.inc({ name }, d));
    }
    // Lapped readers learn their loss in their own stream; it is counted here, not in the ring.
    this.delta('lost:ring', src.ringLapped?.(), (d) => {
      this.flows.lostEvents(LostEventSource.HUBBLE_RING_BUFFER, d);
      this.health.lost.inc({ stage: 'hubble_ring' }, d);
    });
    for (const stage of ['kernel_ringbuf', 'kernel_flow_map', 'agent_queue', 'hubble_ring'] as const) this.health.lost.inc({ stage }, 0);
  }

  private delta(key: string, value: number | bigint | undefined, inc: (d: number) => void): void {
    if (value === undefined) return;
    const v = Number(value);
    const d = v - (this.last.get(key) ?? 0);
    this.last.set(key, v);
    inc(Math.max(0, d));
  }

  async metrics(): Promise<string> {
    this.refresh();
    return this.registry.metrics();
  }

  /** Serves /metrics; returns the bound port. Throws on a bad address or a failed bind. */
  async listen(address: string): Promise<number> {
    this.server = await serveMetrics(address, this);
    const a = this.server.address();
    return typeof a === 'object' && a ? a.port : 0;
  }

  async close(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    await new Promise<void>((resolve) => {
      s.close(() => resolve());
      s.closeAllConnections();
    });
  }
}
