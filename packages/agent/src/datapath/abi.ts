// Decoder of the TC datapath's ring-buffer records (struct flow_event in bpf/flowctl.h) and the
// byte layouts of its maps. abi.test.ts compiles bpf/tests/abi_layout.c for the host and compares
// every offset below with offsetof(), so a change on one side that is not made on the other fails.
import { FlowctlError } from '../errors.js';
import type { FlowEvent, FlowReason, IpVersion, L7Proto, ObsPoint } from './events.js';

export const FLOWCTL_ABI_VERSION = 3;
/** Byte 0 of a flow record. */
export const FLOWCTL_EV_FLOW = 1;
/** Compile-time cap of the max_payload knob. */
export const FLOWCTL_MAX_PAYLOAD = 1024;

/** Offsets of struct flow_event; `size` is the header (offsetof(payload)), the payload follows. */
export const FLOW_EVENT = {
  size: 152,
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
  payload: 152,
} as const;

/** struct flowctl_ipcache_key (LPM: prefixlen counts the 32 bits of `family` too). */
export const IPCACHE_KEY = { size: 24, prefixlen: 0, family: 4, addr: 8 } as const;
export const IPCACHE_VALUE = { size: 8, identity: 0 } as const;
/** struct flowctl_policy_key / flowctl_policy_value. */
export const POLICY_KEY = { size: 12, endpoint_identity: 0, peer_identity: 4, port: 8, proto: 10, direction: 11 } as const;
export const POLICY_VALUE = { size: 8, rule_ref: 0, deny: 4 } as const;
/** struct flowctl_config, the single entry of the `config` array. */
export const CONFIG_VALUE = { size: 16, epoch: 0, policy_revision: 8 } as const;
/** struct flowctl_conn_key (the `flows` LRU map and the conns6 slots, IPv6 connections). */
export const CONN_KEY = { size: 44, addr: 0, ifindex: 32, port: 36, proto: 40, ip_version: 41 } as const;
/** struct flowctl_conn4_key (the `flows4` LRU map, IPv4 connections). */
export const CONN4_KEY = { size: 20, addr: 0, ifindex: 8, port: 12, proto: 16 } as const;
/**
 * struct flowctl_conn, the value of both and of a conns4 or conns6 slot: what every packet reads first, then
 * each direction's counters (dir0, dir1) at the start of a cache line of their own in a slot.
 */
export const CONN_VALUE = {
  size: 128,
  epoch: 0,
  clock_jiffies: 8,
  flags_seen: 16,
  state: 24,
  verdict: 28,
  opener: 29,
  policy_direction: 30,
  cached: 31,
  policy_ref: 32,
  drop_reason: 36,
  dir0_packets: 40,
  dir0_bytes: 48,
  dir0_last_seen_ns: 56,
  first_seen_ns: 64,
  last_emit_ns: 72,
  identity: 80,
  dir1_packets: 104,
  dir1_bytes: 112,
  dir1_last_seen_ns: 120,
} as const;
/** struct flowctl_conn4_slot, the value of `conns4`: three cache lines. */
export const CONN4_SLOT = { size: 192, gen: 0, key: 4, conn: 24 } as const;
/** struct flowctl_conn6_slot, the value of `conns6`: four cache lines. */
export const CONN6_SLOT = { size: 256, gen: 0, key: 4, conn: 88 } as const;
/** struct flowctl_conn4_cached, an entry of a CPU's `conn4_cache` (struct flowctl_conn4_cache: `ways` of them). */
export const CONN4_CACHED = { size: 64, key: 0, slot: 20, jiffies: 24, epoch: 28, flags: 32, ok: 36, packets: 40, bytes: 48, first_seen_ns: 56 } as const;
export const CONN4_CACHE = { size: 512, e: 0 } as const;
export const CONN4_CACHE_WAYS = 8;

/** `policy_enforce` value bits. */
export const ENFORCE_INGRESS = 1;
export const ENFORCE_EGRESS = 2;
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
] as const;
export type CounterName = (typeof COUNTER_NAMES)[number];

const IS_REPLY_UNKNOWN = 2;

export function formatIpv4(buf: Buffer, off: number): string {
  return `${buf[off]}.${buf[off + 1]}.${buf[off + 2]}.${buf[off + 3]}`;
}

/** RFC 5952 text (longest run of two or more zero groups compressed, lower-case hex). */
export function formatIpv6(buf: Buffer, off: number): string {
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push(buf.readUInt16BE(off + 2 * i));
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  // RFC 5952 section 5: IPv4-mapped addresses end in dotted quad.
  if (best === 0 && bestLen === 5 && g[5] === 0xffff) return `::ffff:${formatIpv4(buf, off + 12)}`;
  const hex = g.map((x) => x.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
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
  };
}

/** Sums a per-CPU u64 value (one 8-byte slot per possible CPU, as a lookup returns it). */
export function sumPerCpuU64(value: Buffer): bigint {
  let s = 0n;
  for (let i = 0; i + 8 <= value.length; i += 8) s += value.readBigUInt64LE(i);
  return s;
}

/** One CPU's conn4_cache entry in use: its connection (ports, canonical order) and what it holds back. */
export interface Conn4CachedEntry {
  cpu: number;
  way: number;
  port: [number, number];
  packets: [number, number];
  bytes: [number, number];
  ok: number;
}

/**
 * The entries in use of every CPU's `conn4_cache`. `value` is the map's values in CPU order, as a
 * batch lookup returns them (each CPU's struct flowctl_conn4_cache).
 */
export function conn4CacheEntries(value: Buffer): Conn4CachedEntry[] {
  const stride = (CONN4_CACHE.size + 7) & ~7;
  const out: Conn4CachedEntry[] = [];
  for (let cpu = 0; (cpu + 1) * stride <= value.length; cpu++) {
    for (let way = 0; way < CONN4_CACHE_WAYS; way++) {
      const e = cpu * stride + CONN4_CACHE.e + way * CONN4_CACHED.size;
      const key = e + CONN4_CACHED.key;
      if (value.readUInt32LE(key + CONN4_KEY.ifindex) === 0) continue; // never filled
      out.push({
        cpu,
        way,
        port: [value.readUInt16LE(key + CONN4_KEY.port), value.readUInt16LE(key + CONN4_KEY.port + 2)],
        packets: [value.readUInt32LE(e + CONN4_CACHED.packets), value.readUInt32LE(e + CONN4_CACHED.packets + 4)],
        bytes: [value.readUInt32LE(e + CONN4_CACHED.bytes), value.readUInt32LE(e + CONN4_CACHED.bytes + 4)],
        ok: value.readUInt8(e + CONN4_CACHED.ok),
      });
    }
  }
  return out;
}

/** Packets counted in `conn4_cache` and not yet added to the `packets` counter, over every CPU. */
export function conn4CachePending(value: Buffer): bigint {
  return conn4CacheEntries(value).reduce((n, e) => n + BigInt(e.packets[0] + e.packets[1]), 0n);
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
