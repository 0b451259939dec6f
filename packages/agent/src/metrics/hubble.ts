// Hubble's flow metrics (hubble-api.md §5): the same metric names, labels and handler options,
// so dashboards and alerts written for Hubble work against flowctl unchanged.
//
//   --metrics 'dns:query;ignoreAAAA drop tcp flow:sourceContext=namespace;destinationContext=pod icmp http'
//   --metrics dns,drop,tcp,flow,icmp,http
//
// Cardinality: every metric keeps at most `maxSeries` label sets (default 5,000). Past that, new
// label sets have their context labels (source, destination, labelsContext) replaced by
// "overflow" and flowctl_metrics_series_overflow_total{metric} counts them, so a flood of pods
// or IPs cannot grow the exposition without bound.
import { Counter, Histogram, type Registry } from 'prom-client';
import {
  DropReason,
  FlowType,
  IPVersion,
  L7FlowType,
  LostEventSource,
  TrafficDirection,
  Verdict,
  connNumbers,
  type Endpoint,
  type Flow,
} from '@flowctl/flow';
import { classify } from '@flowctl/flow/servicemap/classify';
import { countedHere } from '../aggregate/counted-here.js';
import { FlowctlError } from '../errors.js';
import { DNS_RCODE_NAMES } from '../parser/l7/dns.js';
import { icmpTypeName } from '../parser/summary.js';

export const HANDLERS = [
  'flow', 'drop', 'dns', 'tcp', 'icmp', 'http', 'httpV2', 'port-distribution', 'flows-to-world', 'tcp-health', 'dns-latency',
] as const;
export type HandlerName = (typeof HANDLERS)[number];

export interface HandlerSpec {
  name: HandlerName;
  options: Map<string, string>;
}

const CONTEXT_OPTIONS = new Set(['sourceContext', 'destinationContext', 'labelsContext']);
const HANDLER_OPTIONS: Record<HandlerName, Set<string>> = {
  flow: new Set(),
  drop: new Set(),
  dns: new Set(['query', 'ignoreAAAA']),
  tcp: new Set(),
  icmp: new Set(),
  http: new Set(['exemplars']),
  httpV2: new Set(['exemplars']),
  'port-distribution': new Set(),
  'tcp-health': new Set(),
  'dns-latency': new Set(),
  'flows-to-world': new Set(['any-drop', 'syn-only', 'port']),
};
const CONTEXT_IDS = new Set(['identity', 'namespace', 'pod', 'pod-short', 'pod-name', 'dns', 'ip', 'reserved-identity', 'workload-name', 'app']);
const LABELS_CONTEXT = [
  'source_ip', 'source_pod', 'source_namespace', 'source_workload', 'source_app',
  'destination_ip', 'destination_pod', 'destination_namespace', 'destination_workload', 'destination_app',
  'traffic_direction',
];

/** Parses Hubble's metrics list; handlers separated by spaces or commas. */
export function parseMetricsSpec(spec: string): HandlerSpec[] {
  // A comma separates handlers, except inside labelsContext's own comma-separated list.
  const handlerSep = new RegExp(`,(?!(?:${LABELS_CONTEXT.join('|')})\\b)`);
  const tokens = spec.trim().split(/\s+/).flatMap((t) => t.split(handlerSep)).filter(Boolean);
  const out: HandlerSpec[] = [];
  for (const token of tokens) {
    const colon = token.indexOf(':');
    const name = (colon < 0 ? token : token.slice(0, colon)) as HandlerName;
    if (!HANDLERS.includes(name)) {
      throw new FlowctlError('CONFIG', `--metrics: unknown handler "${name}" (known: ${HANDLERS.join(', ')})`);
    }
    if (out.some((h) => h.name === name)) throw new FlowctlError('CONFIG', `--metrics: handler "${name}" given twice`);
    // Both write hubble_http_requests_total, with different labels (as in Hubble).
    if ((name === 'http' && out.some((h) => h.name === 'httpV2')) || (name === 'httpV2' && out.some((h) => h.name === 'http'))) {
      throw new FlowctlError('CONFIG', '--metrics: handlers "http" and "httpV2" exclude each other');
    }
    const options = new Map<string, string>();
    if (colon >= 0) {
      for (const opt of token.slice(colon + 1).split(';').filter(Boolean)) {
        const eq = opt.indexOf('=');
        const key = eq < 0 ? opt : opt.slice(0, eq);
        const value = eq < 0 ? '' : opt.slice(eq + 1);
        if (!CONTEXT_OPTIONS.has(key) && !HANDLER_OPTIONS[name].has(key)) {
          throw new FlowctlError('CONFIG', `--metrics: handler "${name}" has no option "${key}"`);
        }
        if (key === 'sourceContext' || key === 'destinationContext') {
          for (const id of value.split('|')) {
            if (!CONTEXT_IDS.has(id)) throw new FlowctlError('CONFIG', `--metrics: ${name}: ${key}: unknown context "${id}"`);
          }
        }
        if (key === 'labelsContext') {
          for (const l of value.split(',')) {
            if (!LABELS_CONTEXT.includes(l)) throw new FlowctlError('CONFIG', `--metrics: ${name}: labelsContext: unknown label "${l}"`);
          }
        }
        options.set(key, value);
      }
    }
    out.push({ name, options });
  }
  return out;
}

// ---- context labels (pkg/hubble/metrics/api/context.go) --------------------------------------

function workloadName(ep: Endpoint | undefined): string {
  return ep?.workloads?.[0]?.name ?? '';
}

function appLabel(ep: Endpoint | undefined): string {
  for (const l of ep?.labels ?? []) {
    const m = /^(?:k8s:)?(?:app|app\.kubernetes\.io\/name)=(.*)$/.exec(l);
    if (m) return m[1]!;
  }
  return '';
}

function reservedIdentity(ep: Endpoint | undefined): string {
  const l = ep?.labels?.find((x) => x.startsWith('reserved:'));
  return l ?? '';
}

function contextValue(id: string, ep: Endpoint | undefined, ip: string | undefined, names: string[] | undefined): string {
  switch (id) {
    case 'identity': return ep?.identity ? String(ep.identity) : '';
    case 'namespace': return ep?.namespace ?? '';
    case 'pod': return ep?.pod_name ? `${ep.namespace ?? ''}/${ep.pod_name}` : '';
    case 'pod-short': {
      const pod = ep?.pod_name ?? '';
      const short = pod.replace(/-[a-z0-9]{5,10}(-[a-z0-9]{5})?$/, '');
      return pod ? `${ep?.namespace ?? ''}/${short}` : '';
    }
    case 'pod-name': return ep?.pod_name ?? '';
    case 'dns': return names?.join(',') ?? '';
    case 'ip': return ip ?? '';
    case 'reserved-identity': return reservedIdentity(ep);
    case 'workload-name': return workloadName(ep);
    case 'app': return appLabel(ep);
    default: return '';
  }
}

interface ContextOptions {
  source: string[] | undefined;
  destination: string[] | undefined;
  labels: string[];
}

function contextOptions(opts: Map<string, string>): ContextOptions {
  return {
    source: opts.get('sourceContext')?.split('|'),
    destination: opts.get('destinationContext')?.split('|'),
    labels: opts.get('labelsContext')?.split(',').filter(Boolean) ?? [],
  };
}

function contextLabelNames(c: ContextOptions): string[] {
  const names = [...c.labels];
  if (c.source) names.push('source');
  if (c.destination) names.push('destination');
  return names;
}

function contextLabelValues(c: ContextOptions, f: Flow): string[] {
  const values: string[] = [];
  for (const l of c.labels) {
    switch (l) {
      case 'source_ip': values.push(f.IP?.source ?? ''); break;
      case 'source_pod': values.push(f.source?.pod_name ?? ''); break;
      case 'source_namespace': values.push(f.source?.namespace ?? ''); break;
      case 'source_workload': values.push(workloadName(f.source)); break;
      case 'source_app': values.push(appLabel(f.source)); break;
      case 'destination_ip': values.push(f.IP?.destination ?? ''); break;
      case 'destination_pod': values.push(f.destination?.pod_name ?? ''); break;
      case 'destination_namespace': values.push(f.destination?.namespace ?? ''); break;
      case 'destination_workload': values.push(workloadName(f.destination)); break;
      case 'destination_app': values.push(appLabel(f.destination)); break;
      case 'traffic_direction': values.push(trafficDirectionLabel(f.traffic_direction)); break;
    }
  }
  const first = (ids: string[], ep: Endpoint | undefined, ip: string | undefined, names: string[] | undefined) => {
    for (const id of ids) {
      const v = contextValue(id, ep, ip, names);
      if (v) return v;
    }
    return '';
  };
  if (c.source) values.push(first(c.source, f.source, f.IP?.source, f.source_names));
  if (c.destination) values.push(first(c.destination, f.destination, f.IP?.destination, f.destination_names));
  return values;
}

function trafficDirectionLabel(d: TrafficDirection | undefined): string {
  if (d === TrafficDirection.INGRESS) return 'ingress';
  if (d === TrafficDirection.EGRESS) return 'egress';
  return 'unknown';
}

// ---- flow classification (pkg/hubble/api/v1/flow.go FlowProtocol) ---------------------------

const EV_DROP = 1;
const EV_CAPTURE = 3;
const EV_TRACE = 4;
const EV_POLICY_VERDICT = 5;
const EV_L7 = 129;

const OBS_POINTS = [
  'to-endpoint', 'to-proxy', 'to-host', 'to-stack', 'to-overlay', 'from-endpoint', 'from-proxy',
  'from-host', 'from-stack', 'from-overlay', 'from-network', 'to-network', 'from-crypto', 'to-crypto',
];

export function flowProtocol(f: Flow): string {
  const t = f.event_type?.type ?? 0;
  if (t === EV_L7) {
    if (f.l7?.dns) return 'DNS';
    if (f.l7?.http) return 'HTTP';
    if (f.l7?.kafka) return 'Kafka';
    return 'Unknown L7';
  }
  if (t === EV_DROP || t === EV_TRACE || t === EV_POLICY_VERDICT || t === EV_CAPTURE) {
    const l4 = f.l4;
    if (l4?.TCP) return 'TCP';
    if (l4?.UDP) return 'UDP';
    if (l4?.ICMPv4) return 'ICMPv4';
    if (l4?.ICMPv6) return 'ICMPv6';
    if (l4?.SCTP) return 'SCTP';
    if (l4?.VRRP) return 'VRRP';
    if (l4?.IGMP) return 'IGMP';
    return 'Unknown L4';
  }
  return 'Unknown flow';
}

function typeAndSubtype(f: Flow): [string, string] {
  const t = f.event_type?.type ?? 0;
  switch (t) {
    case EV_L7: return ['L7', f.l7?.dns ? 'DNS' : f.l7?.http ? 'HTTP' : f.l7?.kafka ? 'Kafka' : ''];
    case EV_DROP: return ['Drop', ''];
    case EV_CAPTURE: return ['Capture', ''];
    case EV_TRACE: return ['Trace', OBS_POINTS[f.event_type?.sub_type ?? 0] ?? ''];
    case EV_POLICY_VERDICT: return ['PolicyVerdict', ''];
    default: return ['Unknown', String(t)];
  }
}

function verdictName(v: Verdict | undefined): string {
  return Verdict[v ?? 0] ?? String(v);
}

function family(f: Flow): string {
  return f.IP?.ipVersion === IPVersion.IPv6 ? 'IPv6' : 'IPv4';
}

// ---- bounded series ----------------------------------------------------------------------------

const OVERFLOW = 'overflow';

/** Counts label sets per metric and folds context labels to "overflow" past the bound. */
class SeriesBound {
  private readonly seen = new Set<string>();
  constructor(
    private readonly metric: string,
    private readonly max: number,
    private readonly contextCount: number,
    private readonly overflow: Counter<'metric'>,
  ) {}

  /** `values` = handler labels followed by `contextCount` context labels. */
  apply(values: string[]): string[] {
    const key = values.join('\u0000');
    if (this.seen.has(key)) return values;
    if (this.seen.size < this.max) {
      this.seen.add(key);
      return values;
    }
    this.overflow.inc({ metric: this.metric });
    const folded = values.slice(0, values.length - this.contextCount).concat(Array(this.contextCount).fill(OVERFLOW));
    this.seen.add(folded.join('\u0000'));
    return folded;
  }
}

interface MetricHandler {
  process(f: Flow): void;
}

export interface FlowMetricsOptions {
  registry: Registry;
  handlers: HandlerSpec[];
  maxSeries?: number;
}

/** Hubble's flow metrics over one registry; feed every flow to `observe`. */
export class FlowMetrics {
  private readonly handlers: MetricHandler[] = [];
  private readonly lost: Counter<'source'>;
  private readonly overflow: Counter<'metric'>;
  private readonly maxSeries: number;

  constructor(private readonly opts: FlowMetricsOptions) {
    const registers = [opts.registry];
    this.maxSeries = opts.maxSeries ?? 5000;
    this.lost = new Counter({ name: 'hubble_lost_events_total', help: 'Number of lost events', labelNames: ['source'], registers });
    this.overflow = new Counter({
      name: 'flowctl_metrics_series_overflow_total',
      help: 'Observations whose context labels were folded to "overflow" because the metric reached its series bound',
      labelNames: ['metric'],
      registers,
    });
    for (const spec of opts.handlers) this.handlers.push(this.build(spec));
  }

  observe(f: Flow): void {
    for (const h of this.handlers) h.process(f);
  }

  lostEvents(source: LostEventSource, n: number | bigint): void {
    const name = (LostEventSource[source] ?? 'UNKNOWN_LOST_EVENT_SOURCE').toLowerCase();
    this.lost.inc({ source: name }, Number(n));
  }

  private counter(name: string, help: string, labels: string[], ctx: ContextOptions) {
    const ctxNames = contextLabelNames(ctx);
    const names = [...labels, ...ctxNames];
    // Counts accumulate in a plain map keyed by the label values and reach prom-client only at
    // scrape time: its inc(labels) hashes the label object on every call, too slow per flow.
    const pending = new Map<string, { labels: Record<string, string>; n: number }>();
    new Counter({
      name, help, labelNames: names, registers: [this.opts.registry],
      collect() {
        for (const p of pending.values()) {
          if (p.n === 0) continue;
          this.inc(p.labels, p.n);
          p.n = 0;
        }
      },
    });
    const bound = new SeriesBound(name, this.maxSeries, ctxNames.length, this.overflow);
    const noCtx = ctxNames.length === 0;
    return (values: string[], f: Flow, by = 1) => {
      const all = noCtx ? values : [...values, ...contextLabelValues(ctx, f)];
      const key = all.join('\u0000');
      let p = pending.get(key);
      if (!p) {
        const folded = bound.apply(all);
        const foldedKey = folded === all ? key : folded.join('\u0000');
        p = pending.get(foldedKey);
        if (!p) {
          const obj: Record<string, string> = {};
          for (let i = 0; i < names.length; i++) obj[names[i]!] = folded[i]!;
          p = { labels: obj, n: 0 };
          pending.set(foldedKey, p);
        }
        // Past the bound an unseen label set folds to "overflow" on every observation (counted each time).
        if (folded === all) pending.set(key, p);
      }
      p.n += by;
    };
  }

  private build(spec: HandlerSpec): MetricHandler {
    const ctx = contextOptions(spec.options);
    switch (spec.name) {
      case 'flow': {
        const inc = this.counter('hubble_flows_processed_total', 'Total number of flows processed', ['protocol', 'type', 'subtype', 'verdict'], ctx);
        return { process: (f) => { const [t, s] = typeAndSubtype(f); inc([flowProtocol(f), t, s, verdictName(f.verdict)], f); } };
      }
      case 'drop': {
        const inc = this.counter('hubble_drop_total', 'Number of drops', ['reason', 'protocol'], ctx);
        return {
          process: (f) => {
            if (f.verdict !== Verdict.DROPPED) return;
            inc([DropReason[f.drop_reason_desc ?? 0] ?? String(f.drop_reason_desc), flowProtocol(f)], f);
          },
        };
      }
      case 'dns': return this.dnsHandler(spec, ctx);
      case 'tcp': {
        const inc = this.counter('hubble_tcp_flags_total', 'TCP flag occurrences', ['flag', 'family'], ctx);
        return {
          process: (f) => {
            if (f.verdict !== Verdict.FORWARDED && f.verdict !== Verdict.REDIRECTED) return;
            const fl = f.l4?.TCP?.flags;
            if (!fl) return;
            if (fl.SYN) inc([fl.ACK ? 'SYN-ACK' : 'SYN', family(f)], f);
            if (fl.FIN) inc(['FIN', family(f)], f);
            if (fl.RST) inc(['RST', family(f)], f);
          },
        };
      }
      case 'icmp': {
        const inc = this.counter('hubble_icmp_total', 'Number of ICMP messages', ['family', 'type'], ctx);
        return {
          process: (f) => {
            const v4 = f.l4?.ICMPv4;
            const v6 = f.l4?.ICMPv6;
            if (v4) inc(['IPv4', icmpTypeName(false, v4.type ?? 0) ?? String(v4.type ?? 0)], f);
            else if (v6) inc(['IPv6', icmpTypeName(true, v6.type ?? 0) ?? String(v6.type ?? 0)], f);
          },
        };
      }
      case 'http': return this.httpHandler(ctx);
      case 'httpV2': return this.httpV2Handler(ctx);
      case 'tcp-health': return this.tcpHealthHandler(ctx);
      case 'dns-latency': return this.dnsLatencyHandler(ctx);
      case 'port-distribution': {
        const inc = this.counter('hubble_port_distribution_total', 'Numbers of packets distributed by destination port', ['protocol', 'port'], ctx);
        return {
          process: (f) => {
            if (f.verdict !== Verdict.FORWARDED && f.verdict !== Verdict.REDIRECTED) return;
            if (f.is_reply !== false || f.Type === FlowType.L7) return;
            const l4 = f.l4;
            const port = l4?.TCP?.destination_port ?? l4?.UDP?.destination_port ?? l4?.SCTP?.destination_port ?? 0;
            inc([flowProtocol(f), String(port)], f);
          },
        };
      }
      case 'flows-to-world': {
        const withPort = spec.options.has('port');
        const anyDrop = spec.options.has('any-drop');
        const synOnly = spec.options.has('syn-only');
        const inc = this.counter('hubble_flows_to_world_total', 'Total number of flows to reserved:world', withPort ? ['protocol', 'verdict', 'port'] : ['protocol', 'verdict'], ctx);
        return {
          process: (f) => {
            if (!f.destination?.labels?.includes('reserved:world')) return;
            if (f.verdict === Verdict.DROPPED && !anyDrop && f.drop_reason_desc !== DropReason.POLICY_DENIED) return;
            if (f.verdict !== Verdict.DROPPED && f.verdict !== Verdict.FORWARDED) return;
            if (synOnly && !(f.l4?.TCP?.flags?.SYN && !f.l4.TCP.flags.ACK)) return;
            const values = [flowProtocol(f), verdictName(f.verdict)];
            if (withPort) values.push(String(f.l4?.TCP?.destination_port ?? f.l4?.UDP?.destination_port ?? 0));
            inc(values, f);
          },
        };
      }
    }
  }

  private dnsHandler(spec: HandlerSpec, ctx: ContextOptions): MetricHandler {
    const withQuery = spec.options.has('query');
    const ignoreAAAA = spec.options.has('ignoreAAAA');
    const extra = withQuery ? ['query'] : [];
    const queries = this.counter('hubble_dns_queries_total', 'Number of DNS queries observed', ['rcode', 'qtypes', 'ips_returned', ...extra], ctx);
    const responses = this.counter('hubble_dns_responses_total', 'Number of DNS responses observed', ['rcode', 'qtypes', 'ips_returned', ...extra], ctx);
    const types = this.counter('hubble_dns_response_types_total', 'Number of DNS response types', ['type', 'qtypes', ...extra], ctx);
    return {
      process: (f) => {
        const dns = f.l7?.dns;
        if (!dns) return;
        const qtypes = (dns.qtypes ?? []).join(',');
        if (ignoreAAAA && dns.qtypes?.length === 1 && dns.qtypes[0] === 'AAAA') return;
        const q = withQuery ? [dns.query ?? ''] : [];
        if (f.verdict === Verdict.DROPPED) {
          queries(['Policy denied', qtypes, '0', ...q], f);
        } else if (f.l7?.type === L7FlowType.REQUEST || f.is_reply === false) {
          queries(['', qtypes, '0', ...q], f);
        } else {
          const rcode = DNS_RCODE_NAMES[dns.rcode ?? 0] ?? String(dns.rcode);
          responses([rcode, qtypes, String(dns.ips?.length ?? 0), ...q], f);
          for (const t of dns.rrtypes ?? []) types([t, qtypes, ...q], f);
        }
      },
    };
  }

  private httpHandler(ctx: ContextOptions): MetricHandler {
    const requests = this.counter('hubble_http_requests_total', 'Count of HTTP requests', ['method', 'protocol', 'reporter'], ctx);
    const responses = this.counter('hubble_http_responses_total', 'Count of HTTP responses', ['method', 'protocol', 'status', 'reporter'], ctx);
    const duration = this.histogram('hubble_http_request_duration_seconds', 'Quantiles of HTTP request duration in seconds', ['method', 'reporter'], ctx);
    return {
      process: (f) => {
        const http = f.l7?.http;
        if (!http || f.Type !== FlowType.L7) return;
        const reporter = f.traffic_direction === TrafficDirection.EGRESS ? 'client'
          : f.traffic_direction === TrafficDirection.INGRESS ? 'server' : 'unknown';
        const method = http.method ?? '';
        const protocol = http.protocol ?? '';
        if (f.l7?.type === L7FlowType.REQUEST) {
          requests([method, protocol, reporter], f);
        } else if (f.l7?.type === L7FlowType.RESPONSE) {
          responses([method, protocol, String(http.code ?? 0), reporter], f);
          duration([method, reporter], f, Number(f.l7.latency_ns ?? 0n) / 1e9);
        }
      },
    };
  }

  /** A histogram with the handler's context labels, bounded like the counters. */
  private histogram(name: string, help: string, labels: string[], ctx: ContextOptions, buckets?: number[]) {
    const ctxNames = contextLabelNames(ctx);
    const names = [...labels, ...ctxNames];
    const h = new Histogram({ name, help, labelNames: names, registers: [this.opts.registry], ...(buckets && { buckets }) });
    const bound = new SeriesBound(name, this.maxSeries, ctxNames.length, this.overflow);
    return (values: string[], f: Flow, v: number) => {
      const all = bound.apply(ctxNames.length ? [...values, ...contextLabelValues(ctx, f)] : values);
      const obj: Record<string, string> = {};
      for (let i = 0; i < names.length; i++) obj[names[i]!] = all[i]!;
      h.observe(obj, v);
    };
  }

  /**
   * Hubble's httpV2: responses only, counted with their status, and the context of the request's
   * direction (source = the client), so the latency histogram is per client/server pair.
   */
  private httpV2Handler(ctx: ContextOptions): MetricHandler {
    const requests = this.counter('hubble_http_requests_total', 'Count of HTTP requests', ['method', 'protocol', 'status', 'reporter'], ctx);
    const duration = this.histogram('hubble_http_request_duration_seconds', 'Quantiles of HTTP request duration in seconds', ['method', 'reporter'], ctx);
    return {
      process: (f) => {
        const http = f.l7?.http;
        if (!http || f.Type !== FlowType.L7 || f.l7?.type !== L7FlowType.RESPONSE) return;
        const reporter = f.traffic_direction === TrafficDirection.EGRESS ? 'client'
          : f.traffic_direction === TrafficDirection.INGRESS ? 'server' : 'unknown';
        const req = swapped(f);
        requests([http.method ?? '', http.protocol ?? '', String(http.code ?? 0), reporter], req);
        duration([http.method ?? '', reporter], req, Number(f.l7.latency_ns ?? 0n) / 1e9);
      },
    };
  }

  /**
   * TCP connection health from SOCK records (docs/metrics.md), per client/server pair: how
   * connections ended, their RTT, retransmits and bytes. A connection with both ends on this node
   * is counted once, at the client's socket (the service map's rule).
   */
  private tcpHealthHandler(ctx: ContextOptions): MetricHandler {
    const conns = this.counter('flowctl_tcp_connections_total', 'TCP connections by how they were established or ended', ['result'], ctx);
    const retrans = this.counter('flowctl_tcp_retransmits_total', 'Retransmitted TCP segments of closed connections', [], ctx);
    const bytes = this.counter('flowctl_tcp_bytes_total', 'TCP payload bytes of closed connections, sent (client to server) or received', ['direction'], ctx);
    const rtt = this.histogram('flowctl_tcp_rtt_seconds', 'Smoothed RTT of TCP connections at their close', [], ctx,
      [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1]);
    return {
      process: (f) => {
        if (f.Type !== FlowType.SOCK || f.Summary?.startsWith('TCP RETRANSMIT')) return;
        const c = classify(f);
        if (!c || !countedHere(f, c, () => false)) return;
        const n = connNumbers(f);
        if (!n) return;
        const fromClient = f.traffic_direction === TrafficDirection.EGRESS;
        const oriented = fromClient ? f : swapped(f);
        if (n.state === 'ESTABLISHED') {
          conns(['established'], oriented);
          return;
        }
        if (n.state !== 'CLOSED') return;
        if (n.close_reason) conns([n.close_reason], oriented);
        if (n.close_reason === 'refused' || n.close_reason === 'timed out') return;
        if (n.srtt_us) rtt([], oriented, n.srtt_us / 1e6);
        if (n.retransmits) retrans([], oriented, n.retransmits);
        const [sent, received] = fromClient ? [n.bytes_sent ?? 0, n.bytes_received ?? 0] : [n.bytes_received ?? 0, n.bytes_sent ?? 0];
        if (sent) bytes(['sent'], oriented, sent);
        if (received) bytes(['received'], oriented, received);
      },
    };
  }

  /** DNS response latency (query to answer), per client/server pair. */
  private dnsLatencyHandler(ctx: ContextOptions): MetricHandler {
    const latency = this.histogram('flowctl_dns_response_latency_seconds', 'DNS query to response latency in seconds', ['rcode'], ctx,
      [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]);
    return {
      process: (f) => {
        const dns = f.l7?.dns;
        if (!dns || f.l7?.type !== L7FlowType.RESPONSE || !f.l7.latency_ns) return;
        latency([DNS_RCODE_NAMES[dns.rcode ?? 0] ?? String(dns.rcode)], swapped(f), Number(f.l7.latency_ns) / 1e9);
      },
    };
  }
}

/** The flow seen from the other end: what the context labels of a response's request are. */
function swapped(f: Flow): Flow {
  return {
    ...f,
    source: f.destination,
    destination: f.source,
    source_names: f.destination_names,
    destination_names: f.source_names,
    IP: f.IP ? { ...f.IP, source: f.IP.destination, destination: f.IP.source } : undefined,
  };
}
