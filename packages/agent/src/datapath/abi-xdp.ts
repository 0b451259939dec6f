// The XDP drop list's ABI (bpf/xdp.h): trie keys and values user space writes, the bitmaps that
// keep passing packets off the tries (a bit per IPv4 /24, per hash of an IPv6 /64 or /32), and
// the drop event. Offsets are checked against offsetof() from the C header by abi-xdp.test.ts.
import { ipBytes, type Prefix } from '@flowctl/flow/ip';
import { FlowctlError } from '../errors.js';
import { formatIpv4, formatIpv6 } from './abi.js';
import type { XdpDropEvent } from './events.js';

export const XDP_ABI_VERSION = 2;
export const FCX_EV_DROP = 0x20;
export { FCX_EV_SUPPRESSED } from './abi.js';
/** drop4_bits: one bit per IPv4 /24, 64 to a word. */
export const BITS4_WORDS = 1 << 18;

/** drop6_bits, drop6_mid, drop6_short: one bit per hash of an IPv6 /64 or /32, 64 to a word. */
export const BITS6_WORDS = 1 << 16;

/** fcx_hash64() of bpf/xdp.h: the bitmap bit of the /64 whose first two 32-bit words are w0, w1. */
export function hash64(w0: number, w1: number): number {
  return Math.imul(Math.imul(w0, 0x9e3779b1) ^ w1, 0x85ebca77) >>> 10;
}

/** fcx_hash32() of bpf/xdp.h: the bitmap bit of the /32 whose first word is w0. */
export function hash32(w0: number): number {
  return Math.imul(w0, 0x85ebca77) >>> 10;
}

/** Per-CPU counters of xdp.bpf.c, in the order of enum fcx_counter. */
export const XDP_COUNTERS = ['xdpRingbufFull', 'xdpDropped', 'xdpExpired', 'xdpEventsOverBudget', 'xdpEvents', 'xdpSynFloodDropped', 'xdpSummaries'] as const;

export const ENTRY = { size: 16, expires_ns: 0, id: 8 } as const;
export const COUNT = { size: 16, packets: 0, bytes: 8 } as const;
export const KEY4 = { size: 8, prefixlen: 0, addr: 4 } as const;
export const KEY6 = { size: 20, prefixlen: 0, addr: 4 } as const;

/** Offsets of struct fcx_drop_event. */
export const DROP_EVENT = {
  size: 80,
  type: 0,
  abi_version: 1,
  ip_version: 2,
  proto: 3,
  tcp_flags: 4,
  icmp_type: 5,
  icmp_code: 6,
  match: 7,
  ts_ns: 8,
  packets: 16,
  bytes: 24,
  entry_id: 32,
  ifindex: 36,
  sport: 40,
  dport: 42,
  saddr: 48,
  daddr: 64,
} as const;

/** The trie key of a prefix (drop4 or drop6 by family). */
export function encodeDropKey(p: Prefix): Buffer {
  const k = Buffer.alloc(p.v6 ? KEY6.size : KEY4.size);
  k.writeUInt32LE(p.bits, 0);
  Buffer.from(ipBytes(p.v6, p.addr)).copy(k, 4);
  return k;
}

/** The trie value: expiry on the kernel's monotonic clock (0n: never) and the entry's id. */
export function encodeDropEntry(id: number, expiresNs: bigint): Buffer {
  const v = Buffer.alloc(ENTRY.size);
  v.writeBigUInt64LE(expiresNs, ENTRY.expires_ns);
  v.writeUInt32LE(id, ENTRY.id);
  return v;
}

/** The /24s an IPv4 prefix covers, as [first, last] (inclusive) indices into the bitmap's bits. */
export function slash24Range(p: Prefix): [number, number] {
  if (p.v6) throw new FlowctlError('INVALID_ARGUMENT', 'slash24Range: an IPv6 prefix');
  const first = Number(p.addr >> 8n);
  const span = p.bits >= 24 ? 1 : 2 ** (24 - p.bits);
  return [first, first + span - 1];
}

export function decodeXdpDropEvent(buf: Buffer, off: number, len: number): XdpDropEvent {
  if (len < DROP_EVENT.size) throw new FlowctlError('MALFORMED', `xdp drop event: ${len} bytes, want ${DROP_EVENT.size}`);
  const type = buf.readUInt8(off + DROP_EVENT.type);
  if (type !== FCX_EV_DROP) throw new FlowctlError('MALFORMED', `xdp drop event: type 0x${type.toString(16)}`);
  const abi = buf.readUInt8(off + DROP_EVENT.abi_version);
  if (abi !== XDP_ABI_VERSION) throw new FlowctlError('MALFORMED', `xdp drop event: ABI version ${abi}, want ${XDP_ABI_VERSION}`);
  const ipVersion = buf.readUInt8(off + DROP_EVENT.ip_version);
  if (ipVersion !== 4 && ipVersion !== 6) throw new FlowctlError('MALFORMED', `xdp drop event: IP version ${ipVersion}`);
  const addr = (at: number) => (ipVersion === 4 ? formatIpv4(buf, off + at) : formatIpv6(buf, off + at));
  const match = buf.readUInt8(off + DROP_EVENT.match);
  return {
    kind: 'xdrop',
    tsNs: buf.readBigUInt64LE(off + DROP_EVENT.ts_ns),
    ifindex: buf.readUInt32LE(off + DROP_EVENT.ifindex),
    entryId: buf.readUInt32LE(off + DROP_EVENT.entry_id),
    matched: match === 2 ? 'destination' : 'source',
    packets: buf.readBigUInt64LE(off + DROP_EVENT.packets),
    bytes: buf.readBigUInt64LE(off + DROP_EVENT.bytes),
    ipVersion,
    srcIp: addr(DROP_EVENT.saddr),
    dstIp: addr(DROP_EVENT.daddr),
    proto: buf.readUInt8(off + DROP_EVENT.proto),
    srcPort: buf.readUInt16LE(off + DROP_EVENT.sport),
    dstPort: buf.readUInt16LE(off + DROP_EVENT.dport),
    tcpFlags: buf.readUInt8(off + DROP_EVENT.tcp_flags),
    icmpType: buf.readUInt8(off + DROP_EVENT.icmp_type),
    icmpCode: buf.readUInt8(off + DROP_EVENT.icmp_code),
  };
}
