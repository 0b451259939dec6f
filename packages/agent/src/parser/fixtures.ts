// FlowEvents as the datapath decoder hands them over, one per protocol and case, for parser tests
// and the fake datapath. Addresses are from the agent e2e subnet (contracts.md).
import type { FlowEvent, KernelDropEvent, SockEvent } from '../datapath/events.js';

const base: FlowEvent = {
  kind: 'flow',
  tsNs: 1_000_000_000n,
  ifindex: 7,
  obsPoint: 1,
  reason: 1,
  verdict: 1,
  dropReason: 0,
  ipVersion: 4,
  srcIp: '10.203.1.10',
  dstIp: '10.203.1.20',
  proto: 6,
  srcPort: 41234,
  dstPort: 8080,
  tcpFlags: 0x02,
  tcpFlagsSeen: 0x02,
  icmpType: 0,
  icmpCode: 0,
  isReply: false,
  srcIdentity: 0,
  dstIdentity: 0,
  policyRef: 0,
  policyDirection: 0,
  ethSrc: '02:00:00:00:00:01',
  ethDst: '02:00:00:00:00:02',
  packets: 1n,
  bytes: 0n, // L4 payload: a SYN has none
  replyPackets: 0n,
  replyBytes: 0n,
  firstSeenNs: 1_000_000_000n,
  lastSeenNs: 1_000_000_000n,
  l7: 0,
  payload: Buffer.alloc(0),
  payloadLen: 0,
  tcpSeq: 0,
  tcpAck: 0,
};

export function flowEvent(over: Partial<FlowEvent> = {}): FlowEvent {
  return { ...base, ...over };
}

export const fixtures = {
  tcpSyn: flowEvent(),
  tcpSynAckReply: flowEvent({
    obsPoint: 2, srcIp: '10.203.1.20', dstIp: '10.203.1.10', srcPort: 8080, dstPort: 41234,
    tcpFlags: 0x12, tcpFlagsSeen: 0x12, isReply: true, reason: 1,
  }),
  tcpFinAck: flowEvent({ reason: 3, tcpFlags: 0x11, tcpFlagsSeen: 0x1b }),
  tcpToEndpoint: flowEvent({ obsPoint: 2, tcpFlags: 0x02 }),
  udp: flowEvent({ proto: 17, srcPort: 53000, dstPort: 53, tcpFlags: 0, tcpFlagsSeen: 0 }),
  icmpEcho: flowEvent({ proto: 1, srcPort: 0, dstPort: 0, tcpFlags: 0, icmpType: 8, icmpCode: 0 }),
  icmpUnreach: flowEvent({ proto: 1, srcPort: 0, dstPort: 0, tcpFlags: 0, icmpType: 3, icmpCode: 3, isReply: undefined }),
  icmpv6Echo: flowEvent({
    ipVersion: 6, srcIp: 'fd00:203::10', dstIp: 'fd00:203::20', proto: 58, srcPort: 0, dstPort: 0, tcpFlags: 0,
    icmpType: 128, icmpCode: 0,
  }),
  sctp: flowEvent({ proto: 132, srcPort: 5000, dstPort: 6000, tcpFlags: 0 }),
  policyDrop: flowEvent({ verdict: 2, dropReason: 133, reason: 6, policyRef: 1, policyDirection: 2 }),
  policyDropIngress: flowEvent({ obsPoint: 2, verdict: 2, dropReason: 133, reason: 6, policyRef: 1, policyDirection: 1 }),
  policyAudit: flowEvent({ verdict: 4, reason: 6, policyRef: 1, policyDirection: 1, obsPoint: 2 }),
  toWorld: flowEvent({ dstIp: '192.0.2.1', dstPort: 443 }),
  dnsQuery: flowEvent({
    proto: 17, srcPort: 40000, dstPort: 53, tcpFlags: 0, l7: 1, reason: 7,
    payload: Buffer.from('123401000001000000000000076578616d706c6503636f6d0000010001', 'hex'), payloadLen: 29,
  }),
};

export const kernelDrop: KernelDropEvent = {
  kind: 'kdrop', tsNs: 2_000_000_000n, netnsIno: 4026531840, ifindex: 7, kernelReason: 2, dropReason: 0,
  ipVersion: 4, srcIp: '10.203.1.10', dstIp: '10.203.1.20', proto: 17, srcPort: 1000, dstPort: 2000,
  tcpFlags: 0, icmpType: 0, icmpCode: 0,
};

export const sockEvent: SockEvent = {
  kind: 'sock', tsNs: 3_000_000_000n, what: 'state', netnsIno: 4026531840, ipVersion: 4,
  srcIp: '10.203.1.10', dstIp: '10.203.1.20', srcPort: 41234, dstPort: 8080, oldState: 2, newState: 1,
  durationNs: 0n, bytesAcked: 0n, bytesReceived: 0n, srttUs: 100, retransmits: 0,
};

export function dnsName(name: string): Buffer {
  const parts = name.replace(/\.$/, '').split('.');
  return Buffer.concat([...parts.map((p) => Buffer.concat([Buffer.from([p.length]), Buffer.from(p, 'latin1')])), Buffer.from([0])]);
}

/** A DNS message in wire form; answers point back at the question's name. */
export function dnsMessage(opts: { id: number; response: boolean; rcode?: number; name: string; qtype?: number; answers?: { type: number; ttl: number; data: Buffer }[] }): Buffer {
  const h = Buffer.alloc(12);
  h.writeUInt16BE(opts.id, 0);
  h.writeUInt16BE((opts.response ? 0x8180 : 0x0100) | (opts.rcode ?? 0), 2);
  h.writeUInt16BE(1, 4);
  h.writeUInt16BE(opts.answers?.length ?? 0, 6);
  const q = Buffer.concat([dnsName(opts.name), Buffer.from([0, opts.qtype ?? 1, 0, 1])]);
  const ans = (opts.answers ?? []).map((a) => {
    const rr = Buffer.alloc(12);
    rr.writeUInt16BE(0xc00c, 0); // pointer to the question name
    rr.writeUInt16BE(a.type, 2);
    rr.writeUInt16BE(1, 4);
    rr.writeUInt32BE(a.ttl, 6);
    rr.writeUInt16BE(a.data.length, 10);
    return Buffer.concat([rr, a.data]);
  });
  return Buffer.concat([h, q, ...ans]);
}
