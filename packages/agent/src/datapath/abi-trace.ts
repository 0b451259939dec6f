// Decoder for the records of the tracepoint programs' ring buffer (bpf/trace.h, trace.bpf.c).
// Offsets are checked against offsetof() from the C header by abi-trace.test.ts.
import { decodeSuppressedEvent, formatIpv4, formatIpv6 } from './abi.js';
import { FlowctlError } from '../errors.js';
import type { KernelDropEvent, SockEvent, SuppressedEvent } from './events.js';

export const TRACE_ABI_VERSION = 1;

export const enum TraceEventType {
  SockState = 0x10,
  Retransmit = 0x11,
  KDrop = 0x12,
  /** flowctl.h's struct flowctl_suppressed_event: kernel drops over their source's budget. */
  KDropSummary = 0x13,
}

/** Offsets of struct fct_sock_event. */
export const SOCK_EVENT = {
  size: 88,
  type: 0,
  abi_version: 1,
  ip_version: 2,
  old_state: 3,
  new_state: 4,
  opener: 5,
  sk_err: 6,
  ts_ns: 8,
  duration_ns: 16,
  bytes_acked: 24,
  bytes_received: 32,
  netns_ino: 40,
  srtt_us: 44,
  total_retrans: 48,
  sport: 52,
  dport: 54,
  saddr: 56,
  daddr: 72,
} as const;

/** Offsets of struct fct_kdrop_event. */
export const KDROP_EVENT = {
  size: 72,
  type: 0,
  abi_version: 1,
  ip_version: 2,
  proto: 3,
  tcp_flags: 4,
  icmp_type: 5,
  icmp_code: 6,
  ts_ns: 8,
  netns_ino: 16,
  ifindex: 20,
  kernel_reason: 24,
  reason: 28,
  sport: 30,
  dport: 32,
  saddr: 40,
  daddr: 56,
} as const;

/** Per-CPU counters of trace.bpf.c, in the order of enum fct_counter. */
export const TRACE_COUNTERS = ['traceRingbufFull', 'sockStartMapFull', 'kdropUnparsed', 'kdropSuppressed', 'kdropSummaries'] as const;

/**
 * enum fct_drop_reason (trace.h): the kernel program matches skb_drop_reason by name through CO-RE,
 * so these codes do not move between kernel versions. Each maps to Hubble's DropReason where
 * Hubble has an equivalent, else 0 (DROP_REASON_UNKNOWN; the kernel's name stays available).
 */
const STABLE_REASONS: readonly [name: string, hubble: number][] = [
  ['OTHER', 0],
  ['NO_SOCKET', 178], // SOCKET_LOOKUP_FAILED: nothing listens on the destination port
  ['PKT_TOO_SMALL', 135], // CT_TRUNCATED_OR_INVALID_HEADER
  ['TCP_CSUM', 134], // INVALID_PACKET_DROPPED
  ['UDP_CSUM', 134],
  ['NETFILTER_DROP', 133], // POLICY_DENIED: a host firewall rule, the node's own policy
  ['OTHERHOST', 151], // STALE_OR_UNROUTABLE_IP
  ['IP_CSUM', 134],
  ['IP_INHDR', 135],
  ['IP_RPFILTER', 132], // INVALID_SOURCE_IP
  ['IP_NOPROTO', 142], // UNKNOWN_L4_PROTOCOL
  ['SOCKET_FILTER', 0],
  ['SOCKET_RCVBUFF', 0],
  ['PROTO_MEM', 0],
  ['IP_OUTNOROUTES', 169], // FIB_LOOKUP_FAILED
  ['IP_INNOROUTES', 169],
  ['IP_INADDRERRORS', 151], // blackhole/unreachable route on input
  ['IP_INVALID_SOURCE', 132],
  ['IP_LOCAL_SOURCE', 132],
  ['IP_INVALID_DEST', 151],
  ['NEIGH_FAILED', 150], // UNKNOWN_L3_TARGET_ADDRESS: no ARP/ND answer
  ['QDISC_DROP', 0],
  ['TC_INGRESS', 0],
  ['TC_EGRESS', 0],
  ['HDR_TRUNC', 135],
  ['UNHANDLED_PROTO', 139], // UNSUPPORTED_L3_PROTOCOL
  ['ICMP_CSUM', 134],
  ['TCP_INVALID_SYN', 134],
  ['TCP_RESET', 0],
  ['TCP_FLAGS', 134],
  ['TCP_OLD_DATA', 0],
  ['SOCKET_CLOSE', 0],
  ['PKT_TOO_BIG', 0],
];

/** Hubble DropReason for an enum fct_drop_reason code (0 when none). */
export function hubbleDropReason(stableReason: number): number {
  return STABLE_REASONS[stableReason]?.[1] ?? 0;
}

/** The kernel's name of a stable reason code, e.g. 'NO_SOCKET' (undefined for OTHER/unknown). */
export function stableDropReasonName(stableReason: number): string | undefined {
  return stableReason > 0 ? STABLE_REASONS[stableReason]?.[0] : undefined;
}

/** Stable code for a kernel reason name (as in SKB_DROP_REASON_<name>), for tests and tools. */
export function stableDropReasonCode(name: string): number {
  const i = STABLE_REASONS.findIndex(([n]) => n === name);
  return i < 0 ? 0 : i;
}

/** Decodes one record of the trace_events ring (len bytes at off). Throws FlowctlError on a bad record. */
export function decodeTraceEvent(buf: Buffer, off: number, len: number): SockEvent | KernelDropEvent | SuppressedEvent {
  if (len < 2 || off + len > buf.length) throw bad(off, `record of ${len} bytes does not fit`);
  const type = buf.readUInt8(off);
  if (type === TraceEventType.KDropSummary) {
    const ev = decodeSuppressedEvent(buf, off, len);
    const name = stableDropReasonName(ev.dropReason);
    return { ...ev, dropReason: hubbleDropReason(ev.dropReason), ...(name && { kernelReason: name }) };
  }
  const version = buf.readUInt8(off + 1);
  if (version !== TRACE_ABI_VERSION) throw bad(off, `ABI version ${version}, expected ${TRACE_ABI_VERSION}`);
  switch (type) {
    case TraceEventType.SockState:
    case TraceEventType.Retransmit:
      if (len < SOCK_EVENT.size) throw bad(off, `sock event of ${len} bytes, expected ${SOCK_EVENT.size}`);
      return decodeSock(buf, off, type);
    case TraceEventType.KDrop:
      if (len < KDROP_EVENT.size) throw bad(off, `kdrop event of ${len} bytes, expected ${KDROP_EVENT.size}`);
      return decodeKdrop(buf, off);
    default:
      throw bad(off, `unknown event type 0x${type.toString(16)}`);
  }
}

function bad(off: number, what: string): FlowctlError {
  return new FlowctlError('INVALID_ARGUMENT', `trace event at offset ${off}: ${what}`);
}

function decodeSock(b: Buffer, o: number, type: number): SockEvent {
  const S = SOCK_EVENT;
  const addrs = addresses(b, o + S.saddr, o + S.daddr, b.readUInt8(o + S.ip_version));
  return {
    kind: 'sock',
    tsNs: b.readBigUInt64LE(o + S.ts_ns),
    what: type === TraceEventType.Retransmit ? 'retransmit' : 'state',
    netnsIno: b.readUInt32LE(o + S.netns_ino),
    ipVersion: addrs.ipVersion,
    srcIp: addrs.src,
    dstIp: addrs.dst,
    srcPort: b.readUInt16LE(o + S.sport),
    dstPort: b.readUInt16LE(o + S.dport),
    oldState: b.readUInt8(o + S.old_state),
    newState: b.readUInt8(o + S.new_state),
    opener: b.readUInt8(o + S.opener) as SockEvent['opener'],
    skErr: b.readUInt8(o + S.sk_err),
    durationNs: b.readBigUInt64LE(o + S.duration_ns),
    bytesAcked: b.readBigUInt64LE(o + S.bytes_acked),
    bytesReceived: b.readBigUInt64LE(o + S.bytes_received),
    srttUs: b.readUInt32LE(o + S.srtt_us),
    retransmits: b.readUInt32LE(o + S.total_retrans),
  };
}

function decodeKdrop(b: Buffer, o: number): KernelDropEvent {
  const K = KDROP_EVENT;
  const addrs = addresses(b, o + K.saddr, o + K.daddr, b.readUInt8(o + K.ip_version));
  return {
    kind: 'kdrop',
    tsNs: b.readBigUInt64LE(o + K.ts_ns),
    netnsIno: b.readUInt32LE(o + K.netns_ino),
    ifindex: b.readUInt32LE(o + K.ifindex),
    kernelReason: b.readUInt32LE(o + K.kernel_reason),
    dropReason: hubbleDropReason(b.readUInt16LE(o + K.reason)),
    ipVersion: addrs.ipVersion,
    srcIp: addrs.src,
    dstIp: addrs.dst,
    proto: b.readUInt8(o + K.proto),
    srcPort: b.readUInt16LE(o + K.sport),
    dstPort: b.readUInt16LE(o + K.dport),
    tcpFlags: b.readUInt8(o + K.tcp_flags),
    icmpType: b.readUInt8(o + K.icmp_type),
    icmpCode: b.readUInt8(o + K.icmp_code),
  };
}

/** Stable reason code carried by a kdrop record (for callers that want the kernel's name). */
export function kdropStableReason(buf: Buffer, off: number): number {
  return buf.readUInt16LE(off + KDROP_EVENT.reason);
}

const V4_MAPPED = Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);

// A dual-stack socket talking IPv4 has IPv4-mapped IPv6 addresses; Hubble (Go's net.IP) prints
// those as IPv4, so they are reported as an IPv4 flow.
function addresses(b: Buffer, s: number, d: number, version: number): { ipVersion: 4 | 6; src: string; dst: string } {
  if (version === 4) return { ipVersion: 4, src: formatIpv4(b, s), dst: formatIpv4(b, d) };
  if (version !== 6) throw bad(s, `IP version ${version}`);
  if (isV4Mapped(b, s) && isV4Mapped(b, d)) return { ipVersion: 4, src: formatIpv4(b, s + 12), dst: formatIpv4(b, d + 12) };
  return { ipVersion: 6, src: formatIpv6(b, s), dst: formatIpv6(b, d) };
}

function isV4Mapped(b: Buffer, o: number): boolean {
  return b.compare(V4_MAPPED, 0, 12, o, o + 12) === 0;
}

