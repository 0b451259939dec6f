// The relay's Prometheus metrics (--metrics-address; Hubble's relay serves its own on :9966).
// Everything is read from the relay's plain counters at scrape time, so the hot path pays an
// integer increment per flow and never a prom-client call. The only label with open-ended values
// is `node`, and its values are the peers in the pool right now: a node that leaves the pool
// drops out of the next scrape, so cardinality is bounded by the cluster size.
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { RelayObserver } from './observer/server.js';
import type { PeerManager } from './pool/manager.js';

const NS = 'flowctl_relay';

export function createRelayMetrics(observer: RelayObserver, manager: PeerManager): Registry {
  const registry = new Registry();
  // Standard process_* and nodejs_* names, as dashboards expect them; minus the three gauges
  // prom-client names *_total, which promtool rejects (a gauge must not end in _total).
  collectDefaultMetrics({ register: registry });
  for (const m of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) registry.removeSingleMetric(m);
  const stats = observer.stats;
  const registers = [registry];

  const nodesByState = () => {
    let connected = 0;
    let unavailable = 0;
    for (const p of manager.list()) {
      if (p.state === 'ready') connected++;
      else unavailable++;
    }
    return { connected, unavailable };
  };
  new Gauge({
    name: `${NS}_connected_nodes`,
    help: 'Peers with a ready connection',
    registers,
    collect() {
      this.set(nodesByState().connected);
    },
  });
  new Gauge({
    name: `${NS}_unavailable_nodes`,
    help: 'Peers without a usable connection (connecting or unreachable)',
    registers,
    collect() {
      this.set(nodesByState().unavailable);
    },
  });
  new Gauge({
    name: `${NS}_node_connected`,
    help: '1 when the relay has a ready connection to the node, else 0',
    labelNames: ['node'],
    registers,
    collect() {
      this.reset();
      for (const p of manager.list()) this.set({ node: p.name }, p.state === 'ready' ? 1 : 0);
    },
  });
  new Counter({
    name: `${NS}_flows_forwarded_total`,
    help: 'Responses from nodes (flows and lost events) written to clients',
    registers,
    collect() {
      this.reset();
      this.inc(stats.forwarded);
    },
  });
  const perNode = (pick: (n: NonNullable<ReturnType<typeof stats.nodes.get>>) => number) => (c: Counter<'node'>) => {
    c.reset();
    const live = new Set(manager.list().map((p) => p.name));
    for (const [node, n] of stats.nodes) if (live.has(node)) c.inc({ node }, pick(n));
  };
  const forwardedPerNode = perNode((n) => n.forwarded);
  new Counter({
    name: `${NS}_node_flows_forwarded_total`,
    help: 'Responses from this node written to clients',
    labelNames: ['node'],
    registers,
    collect() {
      forwardedPerNode(this);
    },
  });
  new Counter({
    name: `${NS}_node_errors_total`,
    help: 'Failures per node: kind=stream (GetFlows failed or idle), call (unary call failed), connect (connection became unavailable)',
    labelNames: ['node', 'kind'],
    registers,
    collect() {
      this.reset();
      const live = new Set(manager.list().map((p) => p.name));
      for (const [node, n] of stats.nodes) {
        if (!live.has(node)) continue;
        for (const kind of ['stream', 'call', 'connect'] as const) this.inc({ node, kind }, n.errors[kind]);
      }
    },
  });
  new Gauge({
    name: `${NS}_client_streams`,
    help: 'Client GetFlows streams open now',
    registers,
    collect() {
      this.set(stats.openClientStreams);
    },
  });
  new Gauge({
    name: `${NS}_upstream_streams`,
    help: 'GetFlows streams from the relay to nodes open now',
    registers,
    collect() {
      this.set(stats.openUpstreamStreams);
    },
  });
  new Counter({
    name: `${NS}_sort_buffer_overflow_total`,
    help: 'Flows sent out of the sort buffer early because it was full (ordering is best-effort beyond its length)',
    registers,
    collect() {
      this.reset();
      this.inc(stats.sort.overflow);
    },
  });
  new Counter({
    name: `${NS}_sort_buffer_drains_total`,
    help: 'Drain-timeout flushes of the sort buffer that released at least one flow',
    registers,
    collect() {
      this.reset();
      this.inc(stats.sort.drains);
    },
  });
  new Counter({
    name: `${NS}_sort_buffer_drained_flows_total`,
    help: 'Flows released by drain-timeout flushes',
    registers,
    collect() {
      this.reset();
      this.inc(stats.sort.drained);
    },
  });
  new Counter({
    name: `${NS}_dropped_total`,
    help: 'Responses from nodes dropped by the relay, by reason',
    labelNames: ['reason'],
    registers,
    collect() {
      this.reset();
      this.inc({ reason: 'malformed' }, stats.malformedDropped);
    },
  });
  return registry;
}
