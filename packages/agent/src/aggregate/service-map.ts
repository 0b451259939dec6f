// The agent's service-map aggregates: per-edge counters in time buckets (15 s, an hour by
// default; Calico Goldmane's model), so `flowctl map --since 30m` is answered for the whole half
// hour however little the flow ring holds. Memory is bounded: each bucket holds at most
// `maxEdgesPerBucket` aggregates, and flows past that are counted in `overflow`, not stored.
import {
  DropReason,
  FlowType,
  L7FlowType,
  TraceReason,
  Verdict,
  compileFlowPredicate,
  connNumbers,
  timestampFromMs,
  timestampToMs,
  type Flow,
} from '@flowctl/flow';
import type { GetServiceMapRequest, GetServiceMapResponse, MapNode } from '@flowctl/flow/gen/flowctl/servicemap';
import { addCounters, edgeKeyString, newCounters, toMapEdge, type EdgeCounters, type EdgeKey } from '@flowctl/flow/servicemap/edges';
import { addValue } from '@flowctl/flow/servicemap/sketch';
import { classify, type Classified, type Side } from '@flowctl/flow/servicemap/classify';
import { countedHere } from './counted-here.js';

export interface ServiceMapOptions {
  bucketMs?: number;
  /** How far back buckets are kept. */
  retentionMs?: number;
  maxEdgesPerBucket?: number;
  /** Connections whose byte counters are remembered to turn running totals into increments. */
  maxConnections?: number;
  nodeName: string;
  isLocalIp: (ip: string) => boolean;
  now?: () => number;
}

/** One aggregate: a pod (or address group) pair, port, protocol and verdict. */
interface Aggregate {
  client: Side;
  server: Side;
  port: number;
  protocol: string;
  verdict: Verdict;
  counters: EdgeCounters;
  /** The map edge it adds to, and that edge's key (made once, not per query). */
  edge: EdgeKey;
  edgeKey: string;
}

interface Bucket {
  startMs: number;
  /** client key → server key → port, protocol and verdict → aggregate. Nested rather than one
   * joined key: the side keys are the same string objects flow after flow (their hashes cached),
   * where a joined key would be a new string to build and hash per flow. */
  aggs: Map<string, Map<string, Map<number, Aggregate>>>;
  size: number;
}

const PROTO_CODE: Record<string, number> = { TCP: 0, UDP: 1, SCTP: 2, ICMPv4: 3, ICMPv6: 4 };

/** A connection's last running totals, and where it is filed (to forget it when it is the oldest). */
interface ConnTotals {
  bs: number;
  br: number;
  ps: number;
  pr: number;
  clientIp: string;
  serverIp: string;
  byServer: Map<string, Map<number, ConnTotals>>;
  byPorts: Map<number, ConnTotals>;
  ports: number;
}

const EV_POLICY_VERDICT = 5;

export class ServiceMapStore {
  private readonly bucketMs: number;
  private readonly maxBuckets: number;
  private readonly maxEdges: number;
  private readonly maxConns: number;
  private readonly now: () => number;
  /** Oldest first; the last is the current bucket. */
  private readonly buckets: Bucket[] = [];
  /** Last running totals per connection and observation point (client→server orientation): client IP
   * → server IP → interface, protocol and ports. Nested, as the buckets, for the parser's interned
   * address strings (hashes cached) rather than a joined key per flow. */
  private readonly conns = new Map<string, Map<string, Map<number, ConnTotals>>>();
  /** The connections in the order they came, a ring: the oldest is forgotten first when it is full. */
  private readonly connOrder: (ConnTotals | undefined)[];
  private connNext = 0;
  private connCount = 0;
  overflow = 0;
  /** Connections forgotten before their close (their later increments start from zero again). */
  connEvictions = 0;

  constructor(private readonly opts: ServiceMapOptions) {
    this.bucketMs = opts.bucketMs ?? 15_000;
    this.maxBuckets = Math.max(1, Math.ceil((opts.retentionMs ?? 3_600_000) / this.bucketMs) + 1);
    this.maxEdges = opts.maxEdgesPerBucket ?? 4096;
    this.maxConns = Math.max(1, opts.maxConnections ?? 65_536);
    this.connOrder = new Array<ConnTotals | undefined>(this.maxConns);
    this.now = opts.now ?? Date.now;
  }

  private current(): Bucket {
    const start = Math.floor(this.now() / this.bucketMs) * this.bucketMs;
    let b = this.buckets[this.buckets.length - 1];
    if (b && b.startMs === start) return b;
    if (b && b.startMs > start) return b; // the clock went back: keep adding to the newest
    b = { startMs: start, aggs: new Map(), size: 0 };
    this.buckets.push(b);
    const oldest = start - (this.maxBuckets - 1) * this.bucketMs;
    while (this.buckets.length > 0 && this.buckets[0]!.startMs < oldest) this.buckets.shift();
    return b;
  }

  /** Adds one parsed flow. Never throws on odd flows: what it cannot place it skips. */
  observe(f: Flow): void {
    const c = classify(f);
    if (!c) return;
    const verdict = f.verdict ?? Verdict.VERDICT_UNKNOWN;
    if (!countedHere(f, c, this.opts.isLocalIp, verdict)) return;
    const dropped = verdict === Verdict.DROPPED;
    // An allowed policy verdict repeats a trace flow of the same packet.
    if (!dropped && f.event_type?.type === EV_POLICY_VERDICT) return;
    const bucket = this.current();
    let byServer = bucket.aggs.get(c.client.key);
    if (!byServer) bucket.aggs.set(c.client.key, (byServer = new Map()));
    let byPort = byServer.get(c.server.key);
    if (!byPort) byServer.set(c.server.key, (byPort = new Map()));
    const portKey = (c.port * 8 + (PROTO_CODE[c.protocol] ?? 7)) * 16 + verdict;
    let agg = byPort.get(portKey);
    if (!agg) {
      if (bucket.size >= this.maxEdges) {
        this.overflow++;
        return;
      }
      const edge: EdgeKey = { source: c.client.node, destination: c.server.node, port: c.port, protocol: c.protocol };
      agg = { client: c.client, server: c.server, port: c.port, protocol: c.protocol, verdict, counters: newCounters(), edge, edgeKey: edgeKeyString(edge) };
      byPort.set(portKey, agg);
      bucket.size++;
    }
    const k = agg.counters;
    k.flows++;
    if (dropped) {
      k.drops++;
      const reason = DropReason[f.drop_reason_desc ?? 0] ?? String(f.drop_reason_desc);
      k.drop_reasons.set(reason, (k.drop_reasons.get(reason) ?? 0) + 1);
      return;
    }
    switch (c.type) {
      case FlowType.L3_L4:
        if (f.trace_reason === TraceReason.NEW && f.is_reply === false) k.connections++;
        this.addBytes(f, c, k);
        return;
      case FlowType.SOCK: {
        const n = connNumbers(f);
        if (n?.state === 'CLOSED') {
          if (n.srtt_us !== undefined && n.srtt_us > 0) addValue(k.tcp_rtt_us, n.srtt_us);
          k.tcp_retransmits += n.retransmits ?? 0;
        }
        return;
      }
      case FlowType.L7: {
        const l7 = f.l7;
        const response = l7?.type === L7FlowType.RESPONSE;
        const latencyUs = Number(l7?.latency_ns ?? 0n) / 1000;
        if (l7?.http) {
          if (!response) k.http_requests++;
          else {
            if ((l7.http.code ?? 0) >= 500) k.http_errors++;
            if (latencyUs > 0) addValue(k.http_latency_us, latencyUs);
          }
        } else if (l7?.dns) {
          if (!response) k.dns_queries++;
          else {
            if ((l7.dns.rcode ?? 0) !== 0) k.dns_errors++;
            if (latencyUs > 0) addValue(k.dns_latency_us, latencyUs);
          }
        }
        return;
      }
    }
  }

  /** Running totals since the connection started → what this flow adds, per direction. */
  private addBytes(f: Flow, c: Classified, k: EdgeCounters): void {
    const n = connNumbers(f);
    if (!n || n.bytes_sent === undefined) return;
    const reply = c.reversed;
    // Interface, UDP-or-not and both ports in one exact number (< 2^53: ifindex taken mod 2^20).
    const ifindex = f.interface?.index ?? 0;
    const ports = (((ifindex % 0x100000) * 2 + (c.protocol === 'TCP' ? 0 : 1)) * 0x10000 + (c.clientPort & 0xffff)) * 0x10000 + (c.port & 0xffff);
    const clientIp = c.client.ip;
    const serverIp = c.server.ip;
    const bs = (reply ? n.bytes_received : n.bytes_sent) ?? 0;
    const br = (reply ? n.bytes_sent : n.bytes_received) ?? 0;
    const ps = (reply ? n.packets_received : n.packets_sent) ?? 0;
    const pr = (reply ? n.packets_sent : n.packets_received) ?? 0;
    let byServer = this.conns.get(clientIp);
    if (!byServer) this.conns.set(clientIp, (byServer = new Map()));
    let byPorts = byServer.get(serverIp);
    if (!byPorts) byServer.set(serverIp, (byPorts = new Map()));
    const last = byPorts.get(ports);
    if (!last) {
      this.remember({ bs, br, ps, pr, clientIp, serverIp, byServer, byPorts, ports });
      k.bytes_sent += bs;
      k.bytes_received += br;
      k.packets_sent += ps;
      k.packets_received += pr;
      return;
    }
    // Totals only grow; smaller ones are a new connection on the same addresses and ports.
    k.bytes_sent += bs < last.bs ? bs : bs - last.bs;
    k.bytes_received += br < last.br ? br : br - last.br;
    k.packets_sent += ps < last.ps ? ps : ps - last.ps;
    k.packets_received += pr < last.pr ? pr : pr - last.pr;
    last.bs = bs;
    last.br = br;
    last.ps = ps;
    last.pr = pr;
  }

  /** Files a new connection; when full, the oldest is forgotten (it starts again from its running totals). */
  private remember(c: ConnTotals): void {
    const old = this.connOrder[this.connNext];
    if (old) {
      old.byPorts.delete(old.ports);
      if (old.byPorts.size === 0) {
        old.byServer.delete(old.serverIp);
        if (old.byServer.size === 0) this.conns.delete(old.clientIp);
      }
      this.connEvictions++;
      this.connCount--;
      // It may have emptied, and so unfiled, the maps this one goes in (a no-op otherwise).
      if (c.byServer.size === 0) this.conns.set(c.clientIp, c.byServer);
      if (c.byPorts.size === 0) c.byServer.set(c.serverIp, c.byPorts);
    }
    c.byPorts.set(c.ports, c);
    this.connOrder[this.connNext] = c;
    this.connNext = (this.connNext + 1) % this.maxConns;
    this.connCount++;
  }

  /** Buckets held and edges stored, for metrics and tests. */
  stats(): { buckets: number; aggregates: number; connections: number; overflow: number } {
    let aggregates = 0;
    for (const b of this.buckets) aggregates += b.size;
    return { buckets: this.buckets.length, aggregates, connections: this.connCount, overflow: this.overflow };
  }

  /** The map of the requested window, filtered as GetFlows filters flows. Throws FilterError. */
  query(req: GetServiceMapRequest): GetServiceMapResponse {
    const match = compileFlowPredicate(req.whitelist ?? [], req.blacklist ?? []);
    const filtered = (req.whitelist?.length ?? 0) + (req.blacklist?.length ?? 0) > 0;
    const sinceMs = req.since ? timestampToMs(req.since) : -Infinity;
    const untilMs = req.until ? timestampToMs(req.until) : Infinity;
    this.current(); // drops buckets that aged out
    const edges = new Map<string, { key: EdgeKey; counters: EdgeCounters }>();
    const nodes = new Map<string, MapNode>();
    const pods = new Map<string, Set<string>>();
    const verdictOk = new Map<string, boolean>();
    const addNode = (s: Side) => {
      if (!nodes.has(s.node)) {
        nodes.set(s.node, {
          id: s.node, namespace: s.namespace, workload: s.workload, kind: s.kind, pods: [],
          labels: s.kind === 'workload' ? [...(s.endpoint?.labels ?? [])].sort() : [],
        });
      }
      if (s.pod) {
        let set = pods.get(s.node);
        if (!set) pods.set(s.node, (set = new Set()));
        set.add(s.key); // "namespace/pod"
      }
    };
    for (const b of this.buckets) {
      // A bucket belongs to the window when any of it does.
      if (b.startMs + this.bucketMs <= sinceMs || b.startMs > untilMs) continue;
      for (const a of aggregatesOf(b)) {
        if (filtered) {
          const aggKey = `${a.client.key}\u0000${a.server.key}\u0000${a.port}\u0000${a.protocol}\u0000${a.verdict}`;
          let ok = verdictOk.get(aggKey);
          if (ok === undefined) verdictOk.set(aggKey, (ok = match(this.representative(a))));
          if (!ok) continue;
        }
        const e = edges.get(a.edgeKey);
        if (e) addCounters(e.counters, a.counters);
        else {
          const counters = newCounters();
          addCounters(counters, a.counters);
          edges.set(a.edgeKey, { key: a.edge, counters });
        }
        addNode(a.client);
        addNode(a.server);
      }
    }
    for (const [id, set] of pods) nodes.get(id)!.pods = [...set].sort();
    const first = this.buckets[0];
    return {
      nodes: [...nodes.values()],
      edges: [...edges.values()].map(({ key, counters }) => toMapEdge(key, counters)),
      covered_since: first ? timestampFromMs(first.startMs) : timestampFromMs(this.now()),
      overflow: BigInt(this.overflow),
      node_status: [],
    };
  }

  /** A flow standing for an aggregate, for observe's filters (endpoints, port, protocol, verdict, node). */
  private representative(a: Aggregate): Flow {
    const ports = { source_port: 0, destination_port: a.port };
    const l4 = a.protocol === 'TCP' ? { TCP: ports } : a.protocol === 'UDP' ? { UDP: ports } : a.protocol === 'SCTP' ? { SCTP: ports }
      : a.protocol === 'ICMPv4' ? { ICMPv4: {} } : a.protocol === 'ICMPv6' ? { ICMPv6: {} } : undefined;
    return {
      verdict: a.verdict,
      IP: { source: a.client.ip, destination: a.server.ip },
      l4,
      source: a.client.endpoint,
      destination: a.server.endpoint,
      Type: FlowType.L3_L4,
      node_name: this.opts.nodeName,
      event_type: { type: a.verdict === Verdict.DROPPED ? 1 : 4 },
    };
  }
}

function* aggregatesOf(b: Bucket): Generator<Aggregate> {
  for (const byServer of b.aggs.values()) for (const byPort of byServer.values()) yield* byPort.values();
}
