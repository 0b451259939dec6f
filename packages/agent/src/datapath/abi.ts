// Decoder of the TC datapath's ring-buffer records (struct flow_event in bpf/flowctl.h) and the
// byte layouts of the maps user space writes. abi.test.ts compares every offset below with
// offsetof() as bpf/test/abi_layout.c prints it, so a change on one side only fails.
import { formatIpv6Groups } from '@flowctl/flow/ip';
import { FlowctlError } from '../errors.js';
import type { FlowEvent, FlowReason, IpVersion, L7Proto, ObsPoint, SuppressedEvent } from './events.js';

export const FLOWCTL_ABI_VERSION = 7;
/** Byte 0 of a flow record. */
export const FLOWCTL_EV_FLOW = 1;
/** Byte 0 of a summary of suppressed new-connection packets (struct flowctl_suppressed_event). */
export const FLOWCTL_EV_SUPPRESSED = 2;
/** Compile-time cap of the max_payload knob. */
export const FLOWCTL_MAX_PAYLOAD = 1024;

/** Offsets of struct flow_event; `size` is the header (offsetof(payload)), the payload follows. */
export const FLOW_EVENT = {
  size: 176,
  type: 0,
  abi_version: 1,
  obs_point: 2,
  reason: 3,
  verdict: 4,
  ip_version: 5,
  proto: 6,
  l7: 7,
  ts_ns: 8,
  packets: 16,
  bytes: 24,
  reply_packets: 32,
  reply_bytes: 40,
  first_seen_ns: 48,
  last_seen_ns: 56,
  ifindex: 64,
  src_identity: 68,
  dst_identity: 72,
  policy_ref: 76,
  payload_len: 80,
  tcp_seq: 84,
  tcp_ack: 88,
  src_ip: 92,
  dst_ip: 108,
  src_port: 124,
  dst_port: 126,
  tcp_flags: 128,
  tcp_flags_seen: 130,
  drop_reason: 132,
  captured_len: 134,
  icmp_type: 136,
  icmp_code: 137,
  is_reply: 138,
  policy_direction: 139,
  eth_src: 140,
  eth_dst: 146,
  captured_off: 152,
  l7_start: 156,
  l7_msg: 160,
  l7_more: 164,
  l7_flags: 168,
  l7_starts: 169,
  payload: 176,
} as const;

/** flow_event.l7_flags: the kernel follows the direction's HTTP messages through the window. */
const L7_FOLLOWED = 1;
const L7_NONE = 0xffffffff;

/** Offsets of struct flowctl_suppressed_event. */
export const SUPPRESSED_EVENT = {
  size: 104,
  type: 0,
  abi_version: 1,
  ip_version: 2,
  obs_point: 3,
  verdict: 4,
  many_sources: 5,
  proto: 6,
  tcp_flags: 8,
  drop_reason: 10,
  dst_port: 12,
  ifindex: 16,
  scope: 20,
  ts_ns: 24,
  first_ns: 32,
  last_ns: 40,
  packets: 48,
  syns: 56,
  dropped: 64,
  src_ip: 72,
  dst_ip: 88,
} as const;
/** Byte 0 of the same record on the tracepoint programs' ring (trace.h FCT_EV_KDROP_SUMMARY). */
export const FCT_EV_KDROP_SUMMARY = 0x13;
/** And on the XDP program's ring (xdp.h FCX_EV_SUPPRESSED): SYNs --syn-flood-protect dropped. */
export const FCX_EV_SUPPRESSED = 0x21;

/** struct flowctl_ipcache_key (LPM: prefixlen counts the 32 bits of `family` too). */
export const IPCACHE_KEY = { size: 24, prefixlen: 0, family: 4, addr: 8 } as const;
export const IPCACHE_VALUE = { size: 8, identity: 0 } as const;
/** struct flowctl_policy_key / flowctl_policy_value. */
export const POLICY_KEY = { size: 12, endpoint_identity: 0, peer_identity: 4, port: 8, proto: 10, direction: 11 } as const;
export const POLICY_VALUE = { size: 8, rule_ref: 0, deny: 4 } as const;
/** struct flowctl_config, the single entry of the `config` array. */
export const CONFIG_VALUE = { size: 16, epoch: 0, policy_revision: 8 } as const;

export const FQDN_NAME_KEY = { size: 16, hash: 0, kind: 8 } as const;
/** struct flowctl_fqdn_glob (`fqdn_globs` value). */
export const FQDN_GLOB = { size: 272, bits: 0, len: 8, pat: 16 } as const;
export const FQDN_IP_KEY = { size: 36, family: 0, endpoint: 4, addr: 20 } as const;
/** struct flowctl_fqdn_peer_key (`fqdn_peers`); the value is the other address, 16 bytes. */
export const FQDN_PEER_KEY = { size: 20, family: 0, addr: 4 } as const;
export const FQDN_IP_VALUE = { size: 24, expires_ns: 0, selectors: 8, name_hash: 16 } as const;
/** struct flowctl_isolate_count: one per CPU in an `isolate_counts` value. */
export const ISOLATE_COUNT = { size: 16, packets: 0, bytes: 8 } as const;
/** `policy_enforce` value bits. */
export const ENFORCE_INGRESS = 1;
export const ENFORCE_EGRESS = 2;
export const ENFORCE_FQDN = 4;
/** Policy key `direction` (flow.TrafficDirection numbers). */
export const DIR_INGRESS = 1;
export const DIR_EGRESS = 2;

/** Per-CPU `counters`, in the order of enum flowctl_counter. */
export const COUNTER_NAMES = [
  'ringbufFull',
  'flowMapFull',
  'malformed',
  'packets',
  'events',
  'policyDropped',
  'policyAudit',
  'fragments',
  'nonIp',
  'l7Truncated',
  'conn4Slots',
  'conn6Slots',
  'connSuppressed',
  'suppressedSummaries',
  'synFloodDropped',
  'l7LostHttpRequests',
  'l7LostHttpResponses',
  'l7LostDns',
] as const;
export type CounterName = (typeof COUNTER_NAMES)[number];

const IS_REPLY_UNKNOWN = 2;

export function formatIpv4(buf: Buffer, off: number): string {
  return `${buf[off]}.${buf[off + 1]}.${buf[off + 2]}.${buf[off + 3]}`;
}

/** RFC 5952 text of the 16 bytes at `off`. */
export function formatIpv6(buf: Buffer, off: number): string {
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push(buf.readUInt16BE(off + 2 * i));
  return formatIpv6Groups(g);
}

function formatMac(buf: Buffer, off: number): string {
  let s = '';
  for (let i = 0; i < 6; i++) s += (i ? ':' : '') + buf[off + i]!.toString(16).padStart(2, '0');
  return s;
}

function bad(where: string, reason: string): FlowctlError {
  return new FlowctlError('INTERNAL', `flow event at ${where}: ${reason}`);
}

/**
 * Decodes one `events` record (`len` bytes at `offset` of `buf`, as forEachRecord hands them).
 * Throws FlowctlError naming the offset for a record that is not a flow event of this ABI.
 */
export function decodeFlowEvent(buf: Buffer, offset: number, len: number): FlowEvent {
  const F = FLOW_EVENT;
  const o = offset;
  if (len < F.size || o + len > buf.length) throw bad(`offset ${o}`, `record of ${len} bytes, need ${F.size}`);
  const type = buf.readUInt8(o + F.type);
  if (type !== FLOWCTL_EV_FLOW) throw bad(`offset ${o}`, `event type ${type} is not a flow event (${FLOWCTL_EV_FLOW})`);
  const abi = buf.readUInt8(o + F.abi_version);
  if (abi !== FLOWCTL_ABI_VERSION) throw bad(`offset ${o}`, `ABI version ${abi}, decoder speaks ${FLOWCTL_ABI_VERSION}`);
  const ipVersion = buf.readUInt8(o + F.ip_version);
  if (ipVersion !== 4 && ipVersion !== 6) throw bad(`offset ${o}`, `IP version ${ipVersion}`);
  const captured = buf.readUInt16LE(o + F.captured_len);
  if (F.size + captured > len) throw bad(`offset ${o}`, `payload of ${captured} bytes overruns the ${len}-byte record`);
  const isReply = buf.readUInt8(o + F.is_reply);
  const l7Start = buf.readUInt32LE(o + F.l7_start);
  const v4 = ipVersion === 4;
  return {
    kind: 'flow',
    tsNs: buf.readBigUInt64LE(o + F.ts_ns),
    ifindex: buf.readUInt32LE(o + F.ifindex),
    obsPoint: buf.readUInt8(o + F.obs_point) as ObsPoint,
    reason: buf.readUInt8(o + F.reason) as FlowReason,
    verdict: buf.readUInt8(o + F.verdict),
    dropReason: buf.readUInt16LE(o + F.drop_reason),
    ipVersion: ipVersion as IpVersion,
    srcIp: v4 ? formatIpv4(buf, o + F.src_ip) : formatIpv6(buf, o + F.src_ip),
    dstIp: v4 ? formatIpv4(buf, o + F.dst_ip) : formatIpv6(buf, o + F.dst_ip),
    proto: buf.readUInt8(o + F.proto),
    srcPort: buf.readUInt16LE(o + F.src_port),
    dstPort: buf.readUInt16LE(o + F.dst_port),
    tcpFlags: buf.readUInt16LE(o + F.tcp_flags),
    tcpFlagsSeen: buf.readUInt16LE(o + F.tcp_flags_seen),
    icmpType: buf.readUInt8(o + F.icmp_type),
    icmpCode: buf.readUInt8(o + F.icmp_code),
    isReply: isReply === IS_REPLY_UNKNOWN ? undefined : isReply === 1,
    srcIdentity: buf.readUInt32LE(o + F.src_identity),
    dstIdentity: buf.readUInt32LE(o + F.dst_identity),
    policyRef: buf.readUInt32LE(o + F.policy_ref),
    policyDirection: buf.readUInt8(o + F.policy_direction),
    ethSrc: formatMac(buf, o + F.eth_src),
    ethDst: formatMac(buf, o + F.eth_dst),
    packets: buf.readBigUInt64LE(o + F.packets),
    bytes: buf.readBigUInt64LE(o + F.bytes),
    replyPackets: buf.readBigUInt64LE(o + F.reply_packets),
    replyBytes: buf.readBigUInt64LE(o + F.reply_bytes),
    firstSeenNs: buf.readBigUInt64LE(o + F.first_seen_ns),
    lastSeenNs: buf.readBigUInt64LE(o + F.last_seen_ns),
    l7: buf.readUInt8(o + F.l7) as L7Proto,
    // A copy: the ring's memory is reused as soon as the batch callback returns.
    payload: Buffer.from(buf.subarray(o + F.payload, o + F.payload + captured)),
    payloadLen: buf.readUInt32LE(o + F.payload_len),
    tcpSeq: buf.readUInt32LE(o + F.tcp_seq),
    tcpAck: buf.readUInt32LE(o + F.tcp_ack),
    capturedOff: buf.readUInt32LE(o + F.captured_off),
    l7Followed: (buf.readUInt8(o + F.l7_flags) & L7_FOLLOWED) !== 0,
    l7Start: l7Start === L7_NONE ? undefined : l7Start,
    l7Msg: buf.readUInt32LE(o + F.l7_msg),
    l7Starts: buf.readUInt8(o + F.l7_starts),
    l7More: buf.readUInt32LE(o + F.l7_more),
  };
}

/** Decodes a summary of suppressed new-connection packets (checked as decodeFlowEvent does). */
export function decodeSuppressedEvent(buf: Buffer, offset: number, len: number): SuppressedEvent {
  const S = SUPPRESSED_EVENT;
  const o = offset;
  if (len < S.size || o + len > buf.length) throw bad(`offset ${o}`, `summary record of ${len} bytes, need ${S.size}`);
  const abi = buf.readUInt8(o + S.abi_version);
  if (abi !== FLOWCTL_ABI_VERSION) throw bad(`offset ${o}`, `ABI version ${abi}, decoder speaks ${FLOWCTL_ABI_VERSION}`);
  const ipVersion = buf.readUInt8(o + S.ip_version);
  if (ipVersion !== 4 && ipVersion !== 6) throw bad(`offset ${o}`, `IP version ${ipVersion}`);
  const v4 = ipVersion === 4;
  const type = buf.readUInt8(o + S.type);
  const origin = type === FLOWCTL_EV_SUPPRESSED ? 'tc' : type === FCT_EV_KDROP_SUMMARY ? 'kdrop' : type === FCX_EV_SUPPRESSED ? 'xdp' : undefined;
  if (!origin) throw bad(`offset ${o}`, `event type ${type} is not a summary`);
  return {
    kind: 'suppressed',
    origin,
    tsNs: buf.readBigUInt64LE(o + S.ts_ns),
    ifindex: buf.readUInt32LE(o + S.ifindex),
    scope: buf.readUInt32LE(o + S.scope),
    proto: buf.readUInt8(o + S.proto),
    obsPoint: buf.readUInt8(o + S.obs_point) as ObsPoint,
    verdict: buf.readUInt8(o + S.verdict),
    dropReason: buf.readUInt16LE(o + S.drop_reason),
    manySources: buf.readUInt8(o + S.many_sources) === 1,
    ipVersion: ipVersion as IpVersion,
    srcIp: v4 ? formatIpv4(buf, o + S.src_ip) : formatIpv6(buf, o + S.src_ip),
    dstIp: v4 ? formatIpv4(buf, o + S.dst_ip) : formatIpv6(buf, o + S.dst_ip),
    dstPort: buf.readUInt16LE(o + S.dst_port),
    tcpFlags: buf.readUInt16LE(o + S.tcp_flags),
    firstNs: buf.readBigUInt64LE(o + S.first_ns),
    lastNs: buf.readBigUInt64LE(o + S.last_ns),
    packets: buf.readBigUInt64LE(o + S.packets),
    syns: buf.readBigUInt64LE(o + S.syns),
    dropped: buf.readBigUInt64LE(o + S.dropped),
  };
}

/** Decodes any record of the `events` ring by its type byte. */
export function decodeEvent(buf: Buffer, offset: number, len: number): FlowEvent | SuppressedEvent {
  if (len >= 1 && offset < buf.length && buf.readUInt8(offset) === FLOWCTL_EV_SUPPRESSED) return decodeSuppressedEvent(buf, offset, len);
  return decodeFlowEvent(buf, offset, len);
}

/** Sums a per-CPU u64 value (one 8-byte slot per possible CPU, as a lookup returns it). */
export function sumPerCpuU64(value: Buffer): bigint {
  let s = 0n;
  for (let i = 0; i + 8 <= value.length; i += 8) s += value.readBigUInt64LE(i);
  return s;
}

/** A map of u32 entry id -> per-CPU {packets, bytes} (the XDP drop list's and the isolations'),
 * summed over CPUs, by id. Both structs lay out as ISOLATE_COUNT. */
export function readEntryCounts(entries: Iterable<[Buffer, Buffer]>): Map<number, { packets: bigint; bytes: bigint }> {
  const out = new Map<number, { packets: bigint; bytes: bigint }>();
  for (const [k, v] of entries) {
    let packets = 0n;
    let bytes = 0n;
    for (let off = 0; off + ISOLATE_COUNT.size <= v.length; off += ISOLATE_COUNT.size) {
      packets += v.readBigUInt64LE(off + ISOLATE_COUNT.packets);
      bytes += v.readBigUInt64LE(off + ISOLATE_COUNT.bytes);
    }
    out.set(k.readUInt32LE(0), { packets, bytes });
  }
  return out;
}

/** All counters of the `counters` map, summed over CPUs, by name. */
export function readCounters(lookup: (key: Buffer) => Buffer | undefined): Record<CounterName, bigint> {
  const out = {} as Record<CounterName, bigint>;
  COUNTER_NAMES.forEach((name, i) => {
    const k = Buffer.alloc(4);
    k.writeUInt32LE(i);
    const v = lookup(k);
    out[name] = v ? sumPerCpuU64(v) : 0n;
  });
  return out;
}
