// The detectors on flows shaped as the agent parses them (the recorded nmap run is in recorded.test.ts).
import { describe, expect, it } from 'vitest';
import { DropReason, FlowType, TraceObservationPoint, TrafficDirection, Verdict, attachSuppressed, type Flow } from '@flowctl/flow';
import { ConnectionRateDetector } from './connection-rate.js';
import type { Finding } from './detector.js';
import { PortScanDetector } from './port-scan.js';
import { SynFloodDetector } from './syn-flood.js';

const pod = (ip: string, name: string) => ({ ip, ep: { namespace: 'default', pod_name: name, labels: [`k8s:app=${name}`] } });
const SCANNER = pod('10.0.1.70', 'scanner');
const WEB = pod('10.0.2.10', 'web');
const CLIENT = pod('10.0.1.10', 'client');
const local = () => true;
/** A flow's end: its address and its endpoint, empty for an address outside the cluster. */
type Host = { ip: string; ep: object };

function tcp(src: Host, dst: Host, sport: number, dport: number, flags: Record<string, boolean>, extra: Partial<Flow> = {}): Flow {
  return {
    Type: FlowType.L3_L4,
    verdict: Verdict.FORWARDED,
    IP: { source: src.ip, destination: dst.ip },
    l4: { TCP: { source_port: sport, destination_port: dport, flags } },
    source: src.ep,
    destination: dst.ep,
    trace_observation_point: TraceObservationPoint.FROM_ENDPOINT,
    ...extra,
  };
}
const syn = (src: Host = SCANNER, dst: Host = WEB, sport = 40000, dport = 80, extra: Partial<Flow> = {}) => tcp(src, dst, sport, dport, { SYN: true }, { is_reply: false, ...extra });
const rst = (port: number, from: Host = WEB, to: Host = SCANNER) => tcp(from, to, port, 40000, { RST: true, ACK: true }, { is_reply: true });
const denied = (port: number, src: Host = SCANNER, dst: Host = WEB) =>
  tcp(src, dst, 40000, port, { SYN: true }, { verdict: Verdict.DROPPED, drop_reason_desc: DropReason.POLICY_DENIED, is_reply: false });

const portScan = () => new PortScanDetector({ windowMs: 300_000, ports: 15, hosts: 25, maxSources: 100, maxHosts: 16, maxPorts: 64, updateMs: 1000 }, local);

function feed(d: { observe(f: Flow, now: number): Finding[] | undefined }, flows: [Flow, number][]): Finding[] {
  const out: Finding[] = [];
  for (const [f, t] of flows) out.push(...(d.observe(f, t) ?? []));
  return out;
}

describe('port-scan', () => {
  it('finds a vertical scan at the 15th refused port, naming scanner and host', () => {
    const d = portScan();
    const found = feed(d, Array.from({ length: 14 }, (_, i) => [rst(1000 + i), 1000 + i] as [Flow, number]));
    expect(found).toEqual([]);
    const [f] = feed(d, [[rst(2000), 2000]]);
    expect(f).toMatchObject({ kind: 'port-scan', severity: 'medium', target: 'scan', source: { ip: SCANNER.ip, endpoint: { pod_name: 'scanner' } }, destination: { ip: WEB.ip } });
    expect(f!.evidence).toMatchObject({ type: 'vertical', failed_attempts: 15, top_host: { ip: WEB.ip, ports: 15 } });
    expect(f!.summary).toBe('10.0.1.70 (default/scanner) scanned 15 ports of 10.0.2.10 (default/web) in 1.0s (15 failed attempts)');
  });

  it('counts policy drops and kernel drops of SYNs as failed attempts, not drops of replies', () => {
    const d = portScan();
    const kernel = (port: number) => ({ ...denied(port), drop_reason_desc: DropReason.SOCKET_LOOKUP_FAILED });
    const found = feed(d, [
      ...Array.from({ length: 10 }, (_, i) => [denied(i + 1), i] as [Flow, number]),
      ...Array.from({ length: 4 }, (_, i) => [kernel(i + 100), 20 + i] as [Flow, number]),
      [{ ...denied(555), is_reply: true }, 30],
      [{ ...denied(556), drop_reason_desc: DropReason.CT_NO_MAP_FOUND }, 31],
    ]);
    expect(found).toEqual([]);
    expect(feed(d, [[kernel(200), 40]])).toHaveLength(1);
  });

  it('finds a horizontal scan at the 25th host refusing one port', () => {
    const d = portScan();
    const hosts = Array.from({ length: 25 }, (_, i) => pod(`10.0.3.${i + 1}`, `h${i}`));
    const found = feed(d, hosts.map((h, i) => [rst(22, h), i * 100] as [Flow, number]));
    expect(found).toHaveLength(1);
    expect(found[0]!.evidence).toMatchObject({ type: 'horizontal', top_port: { port: 22, hosts: 25 } });
    expect(found[0]!.destination).toBeUndefined();
  });

  it('never alerts on a client retrying one refused service, or on answered connections', () => {
    const d = portScan();
    const retries: [Flow, number][] = [];
    for (let i = 0; i < 500; i++) retries.push([syn(CLIENT, WEB, 30000 + i, 9090), i * 200], [rst(9090, WEB, CLIENT), i * 200 + 1]);
    // SYN-ACKs and RSTs of established connections sent by the client are not failures.
    for (let p = 1; p < 100; p++) retries.push([tcp(WEB, CLIENT, p, 30000, { SYN: true, ACK: true }, { is_reply: true }), 100_000 + p], [tcp(CLIENT, WEB, 30000, p, { RST: true }, { is_reply: false }), 100_000 + p]);
    expect(feed(d, retries)).toEqual([]);
  });

  it('updates a scanner at most once per update interval, with the growing count', () => {
    const d = portScan();
    const found = feed(d, Array.from({ length: 1000 }, (_, i) => [rst(i + 1), i * 5] as [Flow, number]));
    expect(found.length).toBeGreaterThan(1);
    expect(found.length).toBeLessThanOrEqual(5);
    // The last changes since the latest update come with the next tick once the interval has passed.
    expect(d.tick(5000)).toBeUndefined();
    found.push(...(d.tick(6000) ?? []));
    expect(d.tick(8000)).toBeUndefined();
    expect(found.at(-1)!.evidence.top_host).toEqual({ ip: WEB.ip, ports: 1000 });
    expect(found.at(-1)!.severity).toBe('high');
  });

  it('reports a pod scanning from another node on that node, an outside scanner everywhere', () => {
    const d = new PortScanDetector({ windowMs: 300_000, ports: 15, hosts: 25, maxSources: 100, maxHosts: 16, maxPorts: 64, updateMs: 1000 }, (ip) => ip === WEB.ip);
    expect(feed(d, Array.from({ length: 20 }, (_, i) => [rst(i + 1), i] as [Flow, number]))).toEqual([]);
    const outside = { ip: '192.0.2.9', ep: {} };
    expect(feed(d, Array.from({ length: 20 }, (_, i) => [rst(i + 1, WEB, outside), i] as [Flow, number]))).toHaveLength(1);
  });

  it('reports drops of a pod from another node where they happen: closed UDP ports, policy; not closed TCP ports', () => {
    const d = new PortScanDetector({ windowMs: 300_000, ports: 15, hosts: 25, maxSources: 100, maxHosts: 16, maxPorts: 64, updateMs: 1000 }, (ip) => ip === WEB.ip);
    const closedUdp = (port: number): Flow => ({
      Type: FlowType.L3_L4, verdict: Verdict.DROPPED, drop_reason_desc: DropReason.SOCKET_LOOKUP_FAILED,
      IP: { source: SCANNER.ip, destination: WEB.ip }, l4: { UDP: { source_port: 52183, destination_port: port } }, source: SCANNER.ep, destination: WEB.ep,
    });
    const closedTcp = (port: number) => ({ ...denied(port), drop_reason_desc: DropReason.SOCKET_LOOKUP_FAILED });
    expect(feed(d, Array.from({ length: 20 }, (_, i) => [closedTcp(i + 1), i] as [Flow, number]))).toEqual([]);
    const [udp] = feed(d, Array.from({ length: 15 }, (_, i) => [closedUdp(i + 1), 100 + i] as [Flow, number]));
    expect(udp).toMatchObject({ kind: 'port-scan', source: { ip: SCANNER.ip, endpoint: { pod_name: 'scanner' } }, destination: { ip: WEB.ip } });
    const p = new PortScanDetector({ windowMs: 300_000, ports: 15, hosts: 25, maxSources: 100, maxHosts: 16, maxPorts: 64, updateMs: 1000 }, (ip) => ip === WEB.ip);
    expect(feed(p, Array.from({ length: 15 }, (_, i) => [denied(i + 1), i] as [Flow, number]))).toHaveLength(1);
  });

  it('keeps its state bounded under a 65,535-port scan from many sources', () => {
    const d = portScan();
    for (let s = 0; s < 200; s++) {
      const src = pod(`10.9.${s >> 8}.${s & 255}`, `s${s}`);
      for (let p = 1; p <= 2000; p++) d.observe(rst(p, WEB, src), s * 10_000 + p);
    }
    expect(d.stateSize()).toBe(100);
    expect(d.stateEvicted()).toBe(100);
    const big = portScan();
    for (let p = 1; p <= 65_535; p++) big.observe(rst(p), p);
    expect(big.stateBytes()).toBeLessThan(64 * 1024);
  });
});

describe('syn-flood', () => {
  const flood = () => new SynFloodDetector({ intervalMs: 1000, halfOpen: 100, maxDestinations: 64, updateMs: 1000 }, local);

  it('alerts on SYNs that never complete, charged to the main source', () => {
    const d = flood();
    const flows: [Flow, number][] = [];
    for (let i = 0; i < 300; i++) flows.push([syn(SCANNER, WEB, 1024 + i, 8080, { trace_observation_point: TraceObservationPoint.TO_ENDPOINT }), i * 5]);
    const found = feed(d, flows);
    expect(found).toHaveLength(1);
    expect(found[0]).toMatchObject({ kind: 'syn-flood', severity: 'high', source: { ip: SCANNER.ip }, destination: { ip: WEB.ip }, target: '10.0.2.10:8080/TCP' });
    expect(found[0]!.evidence).toMatchObject({ half_open: 200, distinct_sources: 1 });
  });

  it('counts the SYNs of the kernel\'s summaries of suppressed attempts (docs/flows.md)', () => {
    const d = flood();
    const summary = (syns: number, sources: 'one' | 'many') => {
      const f = syn(SCANNER, WEB, 0, 8080, { trace_observation_point: TraceObservationPoint.TO_ENDPOINT, is_reply: undefined });
      attachSuppressed(f, { events: 'new-connection', packets: syns, syns, dropped: 0, window_ms: 1000, sources });
      return f;
    };
    // 50 SYN flows the budget let through, then one summary of the 250 it suppressed.
    const flows: [Flow, number][] = [];
    for (let i = 0; i < 50; i++) flows.push([syn(SCANNER, WEB, 1024 + i, 8080, { trace_observation_point: TraceObservationPoint.TO_ENDPOINT }), i * 10]);
    flows.push([summary(250, 'one'), 900], [syn(SCANNER, WEB, 5000, 8080, { trace_observation_point: TraceObservationPoint.TO_ENDPOINT }), 1500]);
    const found = feed(d, flows);
    expect(found).toHaveLength(1);
    expect(found[0]).toMatchObject({ kind: 'syn-flood', source: { ip: SCANNER.ip }, destination: { ip: WEB.ip } });
    expect(found[0]!.evidence).toMatchObject({ half_open: 300 });
    // A connection-rate source is one address: a summary of many sources is not charged to its last.
    const rate = new ConnectionRateDetector({ windowS: 10, rate: 20, maxSources: 100, updateMs: 1000 }, local);
    const fromOne = summary(250, 'one');
    fromOne.trace_observation_point = TraceObservationPoint.FROM_ENDPOINT;
    const fromMany = summary(250, 'many');
    fromMany.trace_observation_point = TraceObservationPoint.FROM_ENDPOINT;
    expect(feed(rate, [[fromMany, 0]])).toEqual([]);
    expect(feed(rate, [[fromOne, 10]])).toHaveLength(1);
  });

  it('does not alert on a busy server that completes its handshakes', () => {
    const d = flood();
    const flows: [Flow, number][] = [];
    for (let i = 0; i < 3000; i++) {
      flows.push([syn(CLIENT, WEB, 1024 + (i % 60000), 8080), i]);
      flows.push([{ Type: FlowType.SOCK, Summary: 'TCP ESTABLISHED', traffic_direction: TrafficDirection.INGRESS, IP: { source: WEB.ip, destination: CLIENT.ip }, l4: { TCP: { source_port: 8080, destination_port: 1024 } } }, i]);
    }
    expect(feed(d, flows)).toEqual([]);
  });

  it('counts a SYN seen at both veths of a node once', () => {
    const d = new SynFloodDetector({ intervalMs: 1000, halfOpen: 150, maxDestinations: 64, updateMs: 1000 }, local);
    const flows: [Flow, number][] = [];
    for (let i = 0; i < 100; i++) {
      flows.push([syn(SCANNER, WEB, 1024 + i, 8080, { trace_observation_point: TraceObservationPoint.FROM_ENDPOINT }), i]);
      flows.push([syn(SCANNER, WEB, 1024 + i, 8080, { trace_observation_point: TraceObservationPoint.TO_ENDPOINT }), i]);
    }
    flows.push([syn(SCANNER, WEB, 5000, 8080, { trace_observation_point: TraceObservationPoint.TO_ENDPOINT }), 1500]);
    expect(feed(d, flows)).toEqual([]);
  });

  it('sends the figures of an interval held back by the update interval on a later tick', () => {
    const d = new SynFloodDetector({ intervalMs: 1000, halfOpen: 100, maxDestinations: 64, updateMs: 3000 }, local);
    const at = (n: number, from: number): [Flow, number][] =>
      Array.from({ length: n }, (_, i) => [syn(SCANNER, WEB, 1024 + i, 8080, { trace_observation_point: TraceObservationPoint.TO_ENDPOINT }), from + i]);
    // Intervals of 200, 400 and 300 half-open: the first is raised, the next held back until a
    // tick past the update interval; then quiet: the flood's last figures go out as it ends.
    const found = feed(d, [...at(200, 0), ...at(400, 1000), ...at(300, 2000), ...at(500, 3000)]);
    expect(found.map((f) => f.evidence.half_open)).toEqual([200]);
    expect(d.tick(2500)).toBeUndefined();
    expect(d.tick(4100)?.map((f) => f.evidence.half_open)).toEqual([500]);
    const flood2 = new SynFloodDetector({ intervalMs: 1000, halfOpen: 100, maxDestinations: 64, updateMs: 3000 }, local);
    expect(feed(flood2, [...at(200, 0), ...at(400, 1000), ...at(1, 2000)]).map((f) => f.evidence.half_open)).toEqual([200]);
    expect(flood2.tick(3500)?.map((f) => f.evidence.half_open)).toEqual([400]);
    expect(flood2.tick(8000)).toBeUndefined();
  });

  it('keeps its state bounded under a flood from 10,000 spoofed sources', () => {
    const d = flood();
    const found: Finding[] = [];
    for (let i = 0; i < 10_000; i++) {
      const src = { ip: `198.51.${i >> 8}.${i & 255}`, ep: {} };
      found.push(...(d.observe(syn(src, WEB, 1024 + i, 80, { trace_observation_point: TraceObservationPoint.TO_ENDPOINT }), i / 5) ?? []));
    }
    expect(d.stateSize()).toBe(1);
    expect(found).toHaveLength(1);
    expect(found[0]!.evidence.distinct_sources).toBeGreaterThan(800);
  });
});

describe('connection-rate', () => {
  const rate = () => new ConnectionRateDetector({ windowS: 10, rate: 100, maxSources: 64, updateMs: 1000 }, local);

  it('alerts when a source sustains the rate over the window', () => {
    const d = rate();
    const found = feed(d, Array.from({ length: 1200 }, (_, i) => [syn(CLIENT, WEB, 1024 + i, 443), i * 5] as [Flow, number]));
    expect(found.length).toBeGreaterThanOrEqual(1);
    expect(found[0]).toMatchObject({ kind: 'connection-rate', source: { ip: CLIENT.ip }, target: 'new-connections' });
    expect(found[0]!.evidence.connections_in_window).toBe(1000);
  });

  it('lets a burst pass that stays under the rate over the window', () => {
    const d = rate();
    const flows: [Flow, number][] = [];
    for (let b = 0; b < 5; b++) for (let i = 0; i < 200; i++) flows.push([syn(CLIENT, WEB, 1024 + i, 443), b * 30_000 + i]);
    expect(feed(d, flows)).toEqual([]);
  });
});
