// The agent's own health next to Hubble's flow metrics: what it read, what it lost and where,
// how full its ring and BPF maps are, attach errors, and process CPU and memory.
import { collectDefaultMetrics, Counter, Gauge, type Registry } from 'prom-client';

export interface HealthSources {
  /** Flows stored in the ring and its capacity. */
  ring(): { len: number; cap: number };
  /** BPF map fill: entries in use and capacity, by map name (optional; may be costly). */
  mapFill?(): { map: string; entries: number; max: number }[];
}

export class AgentHealthMetrics {
  readonly eventsRead: Counter<'source'>;
  readonly lost: Counter<'stage'>;
  readonly attachErrors: Counter<'interface'>;
  readonly parseErrors: Counter<'kind'>;
  readonly l7Lost: Counter<'kind'>;

  constructor(registry: Registry, sources: HealthSources) {
    const registers = [registry];
    collectDefaultMetrics({ register: registry, prefix: 'flowctl_agent_' });
    // prom-client names these gauges *_total, which promtool (and OpenMetrics) reserve for counters.
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
      registry.removeSingleMetric(`flowctl_agent_${name}`);
    }
    this.eventsRead = new Counter({ name: 'flowctl_agent_events_read_total', help: 'Kernel events read from the BPF ring buffers', labelNames: ['source'], registers });
    this.lost = new Counter({
      name: 'flowctl_agent_lost_events_total',
      help: 'Events lost, by pipeline stage (kernel_ringbuf, kernel_flow_map, agent_queue, hubble_ring)',
      labelNames: ['stage'],
      registers,
    });
    this.attachErrors = new Counter({ name: 'flowctl_agent_attach_errors_total', help: 'Failed attachments of the datapath to an interface', labelNames: ['interface'], registers });
    this.l7Lost = new Counter({
      name: 'flowctl_agent_l7_messages_lost_total',
      help: 'L7 messages never reported as flows, in the kernel or the agent (http_request, http_response, dns)',
      labelNames: ['kind'],
      registers,
    });
    this.parseErrors = new Counter({ name: 'flowctl_agent_parse_errors_total', help: 'Events or payloads that could not be decoded (kept without the failing part where possible)', labelNames: ['kind'], registers });
    new Gauge({
      name: 'flowctl_agent_ring_flows', help: 'Flows currently stored in the flow ring', registers,
      collect() { this.set(sources.ring().len); },
    });
    new Gauge({
      name: 'flowctl_agent_ring_capacity', help: 'Capacity of the flow ring', registers,
      collect() { this.set(sources.ring().cap); },
    });
    if (sources.mapFill) {
      const fill = sources.mapFill;
      new Gauge({
        name: 'flowctl_agent_bpf_map_fill_ratio', help: 'Entries in use divided by max entries, per BPF map', labelNames: ['map'], registers,
        collect() {
          for (const m of fill()) this.set({ map: m.map }, m.max > 0 ? m.entries / m.max : 0);
        },
      });
    }
  }
}
