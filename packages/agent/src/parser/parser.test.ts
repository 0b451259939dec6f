import { statSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { connNumbers, DropReason, FlowType, IPVersion, TraceObservationPoint, TrafficDirection, Verdict, suppressedNumbers, type Flow } from '@flowctl/flow';
import { parseEndpoints } from '@flowctl/policy';
import { EndpointDirectory } from '../endpoints/directory.js';
import type { DatapathEvent } from '../datapath/events.js';
import { fixtures, flowEvent, kernelDrop, sockEvent } from './fixtures.js';
import { LiveContext } from './live-context.js';
import { Parser } from './parser.js';

const ENDPOINTS = `endpoints:
  - name: client-7d9f8b6c5-bcdfg
    namespace: shop
    node: node-a
    labels: { app: client }
    ips: [10.203.1.10, fd00:203::10]
    interface: fca-veth1
  - name: web-0
    namespace: shop
    node: node-b
    labels: { app: web, tier: backend }
    ips: [10.203.1.20, fd00:203::20]
`;

function setup() {
  const dir = new EndpointDirectory('node-a');
  dir.setEndpoints(parseEndpoints(ENDPOINTS, 'endpoints.yaml'));
  dir.setHostIps(['10.203.0.1']);
  const ctx = new LiveContext(dir);
  ctx.setPolicyRefs([{ name: 'deny-web', namespace: 'shop', kind: 'CiliumNetworkPolicy', labels: ['k8s:io.cilium.k8s.policy.name=deny-web'], revision: 3n }]);
  return { ctx, parser: new Parser(ctx) };
}

function one(ev: DatapathEvent): Flow {
  const flows = setup().parser.decode(ev);
  expect(flows).toHaveLength(1);
  return flows[0]!;
}

describe('Parser: L3/L4', () => {
  it('decodes a TCP SYN leaving a pod, enriched with both endpoints', () => {
    const f = one(fixtures.tcpSyn);
    expect(f.verdict).toBe(Verdict.FORWARDED);
    expect(f.Type).toBe(FlowType.L3_L4);
    expect(f.uuid).toMatch(/^[0-9a-f-]{36}$/);
    expect(f.IP).toEqual({ source: '10.203.1.10', destination: '10.203.1.20', ipVersion: IPVersion.IPv4 });
    expect(f.l4?.TCP).toEqual({ source_port: 41234, destination_port: 8080, flags: { SYN: true } });
    expect(f.ethernet).toEqual({ source: '02:00:00:00:00:01', destination: '02:00:00:00:00:02' });
    expect(f.source?.pod_name).toBe('client-7d9f8b6c5-bcdfg');
    expect(f.source?.namespace).toBe('shop');
    expect(f.source?.labels).toEqual(['k8s:app=client', 'k8s:io.kubernetes.pod.namespace=shop']);
    expect(f.source?.workloads).toEqual([{ name: 'client', kind: 'Deployment' }]);
    expect(f.source?.identity).toBeGreaterThanOrEqual(256);
    expect(f.destination?.pod_name).toBe('web-0');
    expect(f.destination?.labels).toContain('k8s:tier=backend');
    expect(f.node_name).toBe('node-a');
    expect(f.event_type).toEqual({ type: 4, sub_type: 5 });
    expect(f.trace_observation_point).toBe(TraceObservationPoint.FROM_ENDPOINT);
    expect(f.traffic_direction).toBe(TrafficDirection.EGRESS);
    expect(f.is_reply).toBe(false);
    expect(f.Summary).toBe('TCP Flags: SYN');
    expect(f.drop_reason_desc).toBeUndefined();
  });

  it('carries the kernel\'s payload byte counts as they are, whatever the headers were', () => {
    // Ten full segments without TCP timestamps each way (a 20-byte TCP header): the kernel counted
    // their payload, which no per-packet header estimate can recover.
    const f = one(flowEvent({ reason: 4, tcpFlags: 0x10, tcpFlagsSeen: 0x12, packets: 10n, bytes: 14600n, replyPackets: 12n, replyBytes: 0n }));
    expect(connNumbers(f)).toMatchObject({ bytes_sent: 14600, bytes_received: 0, packets_sent: 10, packets_received: 12 });
  });

  it('maps ktime to wall time through the monotonic offset', () => {
    const { parser } = setup();
    const now = process.hrtime.bigint();
    const [f] = parser.decode(flowEvent({ tsNs: now }));
    const ms = Number(f!.time!.seconds) * 1000 + f!.time!.nanos! / 1e6;
    expect(Math.abs(ms - Date.now())).toBeLessThan(50);
  });

  it('marks a SYN-ACK reply at to-endpoint as a reply, direction of the connection', () => {
    const f = one(fixtures.tcpSynAckReply);
    expect(f.is_reply).toBe(true);
    expect(f.reply).toBe(true);
    expect(f.Summary).toBe('TCP Flags: SYN, ACK');
    expect(f.trace_observation_point).toBe(TraceObservationPoint.TO_ENDPOINT);
    expect(f.event_type).toEqual({ type: 4, sub_type: 0 });
    // a reply entering the client pod belongs to an egress connection
    expect(f.traffic_direction).toBe(TrafficDirection.EGRESS);
  });

  it('orders flags as Hubble does (SYN ACK RST FIN PSH ...)', () => {
    expect(one(fixtures.tcpFinAck).Summary).toBe('TCP Flags: ACK, FIN');
    expect(one(flowEvent({ tcpFlags: 0x1f })).Summary).toBe('TCP Flags: SYN, ACK, RST, FIN, PSH');
    expect(one(fixtures.tcpToEndpoint).traffic_direction).toBe(TrafficDirection.INGRESS);
  });

  it('decodes UDP, ICMPv4, ICMPv6 and SCTP', () => {
    const udp = one(fixtures.udp);
    expect(udp.l4).toEqual({ UDP: { source_port: 53000, destination_port: 53 } });
    expect(udp.Summary).toBe('UDP');
    const icmp = one(fixtures.icmpEcho);
    expect(icmp.l4).toEqual({ ICMPv4: { type: 8, code: 0 } });
    expect(icmp.Summary).toBe('ICMPv4 EchoRequest');
    const unreach = one(fixtures.icmpUnreach);
    expect(unreach.Summary).toBe('ICMPv4 DestinationUnreachable(Port)');
    expect(unreach.is_reply).toBeUndefined();
    const v6 = one(fixtures.icmpv6Echo);
    expect(v6.IP?.ipVersion).toBe(IPVersion.IPv6);
    expect(v6.l4).toEqual({ ICMPv6: { type: 128, code: 0 } });
    expect(v6.Summary).toBe('ICMPv6 EchoRequest');
    expect(v6.source?.pod_name).toBe('client-7d9f8b6c5-bcdfg');
    const sctp = one(fixtures.sctp);
    expect(sctp.l4).toEqual({ SCTP: { source_port: 5000, destination_port: 6000 } });
    expect(sctp.Summary).toBe('SCTP');
  });

  it('labels unknown IPs reserved:world and node IPs reserved:host', () => {
    const f = one(fixtures.toWorld);
    expect(f.destination).toEqual({ identity: 2, labels: ['reserved:world'] });
    const h = one(flowEvent({ srcIp: '10.203.0.1' }));
    expect(h.source).toEqual({ identity: 1, labels: ['reserved:host'] });
  });
});

describe('Parser: verdicts and policy', () => {
  it('turns a policy drop into a DROPPED flow with reason and the denying policy', () => {
    const f = one(fixtures.policyDrop);
    expect(f.verdict).toBe(Verdict.DROPPED);
    expect(f.drop_reason).toBe(133);
    expect(f.drop_reason_desc).toBe(DropReason.POLICY_DENIED);
    expect(f.event_type).toEqual({ type: 1, sub_type: 133 });
    expect(f.traffic_direction).toBe(TrafficDirection.EGRESS);
    expect(f.egress_denied_by).toEqual([{ name: 'deny-web', namespace: 'shop', kind: 'CiliumNetworkPolicy', labels: ['k8s:io.cilium.k8s.policy.name=deny-web'], revision: 3n }]);
    expect(f.ingress_denied_by).toBeUndefined();
    expect(f.trace_observation_point).toBeUndefined();
    const g = one(fixtures.policyDropIngress);
    expect(g.ingress_denied_by?.[0]?.name).toBe('deny-web');
    expect(g.traffic_direction).toBe(TrafficDirection.INGRESS);
  });

  it('reports audited verdicts as policy-verdict events with the allowing policy', () => {
    const f = one(fixtures.policyAudit);
    expect(f.verdict).toBe(Verdict.AUDIT);
    expect(f.event_type?.type).toBe(5);
    expect(f.ingress_allowed_by?.[0]?.name).toBe('deny-web');
  });

  it('ignores a policy ref the agent does not know instead of inventing one', () => {
    const f = one(flowEvent({ verdict: 2, dropReason: 133, policyRef: 99, policyDirection: 2 }));
    expect(f.egress_denied_by).toBeUndefined();
  });

  it('turns a kernel drop into a DROPPED flow with the mapped reason', () => {
    const f = one({ ...kernelDrop, dropReason: 134 });
    expect(f.verdict).toBe(Verdict.DROPPED);
    expect(f.drop_reason_desc).toBe(DropReason.INVALID_PACKET_DROPPED);
    expect(f.event_type).toEqual({ type: 1, sub_type: 134 });
    expect(f.traffic_direction).toBe(TrafficDirection.EGRESS); // source is a local endpoint
    expect(f.Summary).toBe('UDP');
    const unknown = one(kernelDrop);
    expect(unknown.drop_reason_desc).toBe(DropReason.DROP_REASON_UNKNOWN);
  });
});

describe('Parser: kernel drop interfaces', () => {
  // Index 1 is `lo` in every namespace, this test's too: a pod's index names no interface here.
  it('names the interface of a drop in this node\'s namespace', () => {
    const { ctx, parser } = setup();
    expect(ctx.nodeNetnsIno).toBe(statSync('/proc/self/ns/net').ino);
    const [f] = parser.decode({ ...kernelDrop, netnsIno: ctx.nodeNetnsIno, ifindex: 1 });
    expect(f!.interface).toEqual({ index: 1, name: 'lo' });
  });

  it('leaves out the interface of a drop in a pod\'s namespace (its index is not this node\'s)', () => {
    const { ctx, parser } = setup();
    const [f] = parser.decode({ ...kernelDrop, netnsIno: ctx.nodeNetnsIno + 1, ifindex: 1 });
    expect(f!.verdict).toBe(Verdict.DROPPED);
    expect(f!.interface).toBeUndefined();
  });
});

describe('Parser: seams and garbage', () => {
  it('hands L7 events to l7Flows; an L3/L4 flow only when the kernel had another reason', () => {
    const { parser } = setup();
    const l7Only = parser.decode(fixtures.dnsQuery); // reason L7: its payload is the only news
    expect(l7Only.map((f) => f.Type)).toEqual([FlowType.L7]);
    const first = parser.decode({ ...fixtures.dnsQuery, reason: 1, srcPort: 40001 }); // NEW, with its payload
    expect(first.map((f) => f.Type)).toEqual([FlowType.L3_L4, FlowType.L7]);
    expect(first[0]?.l4?.UDP?.destination_port).toBe(53);
  });

  it('hands SOCK events to sockFlow without crashing', () => {
    const { parser, ctx } = setup();
    expect(() => parser.decode(sockEvent)).not.toThrow();
    expect(ctx.counters.malformedEvents).toBe(0);
  });

  it('counts garbage instead of crashing', () => {
    const { parser, ctx } = setup();
    const garbage: unknown[] = [
      null, undefined, {}, { kind: 'nope' }, { kind: 'flow' },
      { ...fixtures.tcpSyn, srcIp: undefined }, { ...fixtures.tcpSyn, ipVersion: 5 },
      { ...fixtures.tcpSyn, tsNs: 'x' }, { ...kernelDrop, dstIp: '' },
    ];
    for (const g of garbage) expect(parser.decode(g as DatapathEvent)).toEqual([]);
    expect(ctx.counters.malformedEvents).toBe(garbage.length);
    expect(parser.decode(fixtures.tcpSyn)).toHaveLength(1);
  });
});

describe('flat strings', () => {
  it('generates distinct RFC 4122 v4 UUIDs', async () => {
    const { UuidSource } = await import('./strings.js');
    const uuids = new UuidSource();
    const seen = new Set<string>();
    for (let i = 0; i < 10_000; i++) {
      const u = uuids.next();
      expect(u).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      seen.add(u);
    }
    expect(seen.size).toBe(10_000);
  });

  it('interns equal strings to one instance and stays bounded', async () => {
    const { Interner } = await import('./strings.js');
    const i = new Interner(3);
    const a = i.get(['10.203.1.', '100'].join(''));
    expect(i.get('10.203.1.100')).toBe(a);
    for (const s of ['x', 'y', 'z', 'w']) i.get(s);
    expect(i.get('10.203.1.100')).toBe('10.203.1.100');
  });
});

describe('Parser: XDP drop list', () => {
  const ev = {
    kind: 'xdrop', tsNs: 2_000_000_000n, ifindex: 0, entryId: 1, matched: 'source', packets: 41n, bytes: 2460n, ipVersion: 4,
    srcIp: '203.0.113.9', dstIp: '10.203.1.20', proto: 6, srcPort: 40000, dstPort: 8080, tcpFlags: 0x02, icmpType: 0, icmpCode: 0,
  } as const;

  it('turns a drop into a DROPPED flow with POLICY_DENY and the entry and counts in extensions', async () => {
    const { ctx, parser } = setup();
    const { BlockList } = await import('../respond/block-list.js');
    const { blockInfo } = await import('@flowctl/flow/block');
    const list = new BlockList();
    const e = list.add('203.0.113.0/24', { reason: 'scanner' });
    ctx.setBlockList(list);
    const [f] = parser.decode({ ...ev, entryId: e.id });
    expect(f).toMatchObject({
      verdict: Verdict.DROPPED,
      drop_reason: 181,
      drop_reason_desc: DropReason.POLICY_DENY,
      event_type: { type: 1, sub_type: 181 },
      traffic_direction: TrafficDirection.INGRESS,
      IP: { source: '203.0.113.9', destination: '10.203.1.20', ipVersion: IPVersion.IPv4 },
      l4: { TCP: { source_port: 40000, destination_port: 8080, flags: { SYN: true } } },
      Summary: 'TCP Flags: SYN',
      node_name: 'node-a',
    });
    expect(f!.destination?.pod_name).toBe('web-0');
    expect(blockInfo(f!)).toEqual({ cidr: '203.0.113.0/24', reason: 'scanner', packets: 41, bytes: 2460, matched: 'source' });
  });

  it('keeps the flow when the entry is unknown, and counts an event without addresses as malformed', () => {
    const { ctx, parser } = setup();
    expect(parser.decode({ ...ev, entryId: 99 })).toHaveLength(1);
    expect(parser.decode({ ...ev, srcIp: '' })).toEqual([]);
    expect(ctx.counters.malformedEvents).toBe(1);
  });
});

describe('Parser: summaries of suppressed new-connection packets', () => {
  const summary = {
    kind: 'suppressed', origin: 'tc', tsNs: 3_000_000_000n, ifindex: 7, scope: 7, proto: 6, obsPoint: 2, verdict: 1, dropReason: 0, manySources: false,
    ipVersion: 4, srcIp: '192.0.2.66', dstIp: '10.203.1.10', dstPort: 8080, tcpFlags: 0x16,
    firstNs: 2_000_000_000n, lastNs: 2_900_000_000n, packets: 30_000n, syns: 20_000n, dropped: 0n,
  } as const;

  it('one flow says how many SYNs from whom to where, with the counts in Flow.extensions', () => {
    const f = one(summary);
    expect(f.verdict).toBe(Verdict.FORWARDED);
    expect(f.IP).toEqual({ source: '192.0.2.66', destination: '10.203.1.10', ipVersion: IPVersion.IPv4 });
    expect(f.l4?.TCP).toEqual({ source_port: 0, destination_port: 8080, flags: { SYN: true, ACK: true, RST: true } });
    expect(f.destination?.pod_name).toBe('client-7d9f8b6c5-bcdfg');
    expect(f.traffic_direction).toBe(TrafficDirection.INGRESS);
    expect(f.trace_observation_point).toBe(TraceObservationPoint.TO_ENDPOINT);
    expect(f.Summary).toBe('20000 SYNs from 192.0.2.66 to 10.203.1.10:8080 in the last 1.0s: events suppressed, over the source\'s new-connection budget (30000 packets, 10000 SYN-ACK/RST)');
    expect(suppressedNumbers(f)).toEqual({ events: 'new-connection', packets: 30000, syns: 20000, dropped: 0, window_ms: 1000, sources: 'one' });
  });

  it('many sources and SYNs dropped by the mitigation: a DROPPED flow with DROP_RATE_LIMITED', () => {
    const f = one({ ...summary, manySources: true, verdict: 2, dropReason: 198, dropped: 19_000n, packets: 20_000n, tcpFlags: 0x02 });
    expect(f.verdict).toBe(Verdict.DROPPED);
    expect(f.drop_reason_desc).toBe(DropReason.DROP_RATE_LIMITED);
    expect(f.event_type).toEqual({ type: 1, sub_type: 198 });
    expect(f.Summary).toBe('20000 SYNs from many sources (last 192.0.2.66) to 10.203.1.10:8080 in the last 1.0s: events suppressed, over the source\'s new-connection budget (20000 packets, 19000 dropped)');
    expect(suppressedNumbers(f)).toMatchObject({ dropped: 19000, sources: 'many' });
  });

  it('kernel drops of a flood\'s attempts: a DROPPED flow with the drop reason, no interface of this node', () => {
    const f = one({ ...summary, origin: 'kdrop', scope: 4026532000, verdict: 2, dropReason: 151, kernelReason: 'IP_INADDRERRORS', dropped: 500n, packets: 500n, syns: 0n, tcpFlags: 0x12 });
    expect(f.verdict).toBe(Verdict.DROPPED);
    expect(f.drop_reason_desc).toBe(DropReason.STALE_OR_UNROUTABLE_IP);
    expect(f.interface).toBeUndefined();
    expect(f.Summary).toBe('500 kernel drops (IP_INADDRERRORS) of connection attempts of 192.0.2.66 to 10.203.1.10:8080 in the last 1.0s (0 SYNs): events suppressed, over the source\'s budget');
    expect(suppressedNumbers(f)).toMatchObject({ events: 'kernel-drop', packets: 500, dropped: 500 });
  });

  it('UDP and ICMP floods: the flow has their layer 4 (ICMP: the type), the Summary says what the packets were', () => {
    const u = one({ ...summary, proto: 17, dstPort: 53, tcpFlags: 0, packets: 9_000n, syns: 0n });
    expect(u.l4).toEqual({ UDP: { source_port: 0, destination_port: 53 } });
    expect(u.Summary).toBe('9000 UDP packets from 192.0.2.66 to 10.203.1.10:53 in the last 1.0s: events suppressed, over the source\'s new-flow budget');
    const i = one({ ...summary, proto: 1, dstPort: 8, tcpFlags: 0, packets: 700n, syns: 0n, manySources: true });
    expect(i.l4).toEqual({ ICMPv4: { type: 8, code: 0 } });
    expect(i.Summary).toBe('700 ICMPv4 EchoRequest packets from many sources (last 192.0.2.66) to 10.203.1.10 in the last 1.0s: events suppressed, over the source\'s new-flow budget');
    const k = one({ ...summary, origin: 'kdrop', proto: 17, dstPort: 9999, verdict: 2, dropReason: 2, kernelReason: 'NO_SOCKET', dropped: 40n, packets: 40n, syns: 0n, tcpFlags: 0 });
    expect(k.Summary).toBe('40 kernel drops (NO_SOCKET) of UDP packets of 192.0.2.66 to 10.203.1.10:9999 in the last 1.0s: events suppressed, over the source\'s budget');
    expect(suppressedNumbers(k)).toMatchObject({ events: 'kernel-drop', packets: 40, syns: 0 });
  });

  it('SYNs --syn-flood-protect dropped at XDP on a node interface: a DROPPED flow naming the interface', () => {
    const f = one({ ...summary, origin: 'xdp', verdict: 2, dropReason: 198, dropped: 7000n, packets: 7000n, syns: 7000n, tcpFlags: 0x02 });
    expect(f.verdict).toBe(Verdict.DROPPED);
    expect(f.drop_reason_desc).toBe(DropReason.DROP_RATE_LIMITED);
    expect(f.interface?.index).toBe(7);
    expect(f.Summary).toBe('7000 SYNs from 192.0.2.66 to 10.203.1.10:8080 in the last 1.0s: dropped at XDP by --syn-flood-protect, over the source\'s new-connection budget');
    expect(suppressedNumbers(f)).toMatchObject({ events: 'new-connection', packets: 7000, syns: 7000, dropped: 7000 });
  });

  it('an empty or garbled summary is counted, not a flow', () => {
    const { ctx, parser } = setup();
    expect(parser.decode({ ...summary, packets: 0n })).toEqual([]);
    expect(parser.decode({ ...summary, srcIp: '' })).toEqual([]);
    expect(ctx.counters.malformedEvents).toBe(2);
  });
});
