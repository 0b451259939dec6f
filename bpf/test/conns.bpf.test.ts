// conns4 and conns6, the IPv4 and IPv6 connection tables (conn.bpf.h): preallocated arrays used as
// 4-way set-associative tables indexed by a hash computed in the program, so that an established
// packet costs no helper call. A connection whose set is full of live ones goes to the family's
// LRU map (flows4, flows); a set's slot whose connection closed (or went idle) long ago is given
// to a new connection.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Datapath, skipReason } from './harness.js';
import { cLayout } from './layout.js';
import { F, ipv4, ipv6, TCP, tcp } from './packets.js';

const skip = skipReason();

const mul = (h: number, k: number) => Math.imul(h, k) >>> 0;
/** conn_hash() of flowctl.bpf.c (seed 0, as the test harness loads the object). */
function connHash(a0: number, a1: number, ports: number, rest: number): number {
  let h = 0;
  h = mul(h ^ a0, 0x9e3779b1);
  h = mul(h ^ a1, 0x85ebca77);
  h = mul(h ^ ports, 0xc2b2ae3d);
  h = mul(h ^ rest, 0x27d4eb2f);
  return (h ^ (h >>> 15)) >>> 0;
}
/** Address words as the program loads them: network-order bytes read as native (LE) u32s. */
const words = (ip: string): number[] => {
  const b = ip.includes(':') ? ipv6Bytes(ip) : Buffer.from(ip.split('.').map(Number));
  return Array.from({ length: b.length / 4 }, (_, i) => b.readUInt32LE(i * 4));
};
function ipv6Bytes(ip: string): Buffer {
  const [l, r = ''] = ip.split('::');
  const part = (s: string) => (s ? s.split(':').map((x) => parseInt(x, 16)) : []);
  const left = part(l!), right = part(r);
  const all = [...left, ...Array<number>(8 - left.length - right.length).fill(0), ...right];
  const b = Buffer.alloc(16);
  all.forEach((v, i) => b.writeUInt16BE(v, i * 2));
  return b;
}
const rol = (x: number, n: number) => ((x << n) | (x >>> (32 - n))) >>> 0;
/** fold6() of flowctl.bpf.c. */
const fold6 = (w: number[]) => (w[0]! ^ rol(w[1]!, 8) ^ rol(w[2]!, 16) ^ rol(w[3]!, 24)) >>> 0;

/**
 * Each table: its maps and counter, the packet builder, the first slot of the set of A:sport ->
 * B:dport (conn4_set/conn6_set; A < B, so A's side is side 0), and the offsets in its slot of the
 * fields read here, as the C compiler lays them out (abi_layout.c).
 */
const TABLES = [
  {
    name: 'conns4',
    lru: 'flows4',
    counter: 'conn4Slots',
    slots: 65536,
    counts: 0, // index of its slots' fast-path counts in conn_counts
    A: '10.202.5.1',
    B: '10.202.5.2',
    ip: ipv4,
    set: (a: number[], b: number[], ports: number, rest: number) => connHash(a[0]!, b[0]!, ports, rest) & (65536 - 1) & ~3,
    layout: 'conn4_slot',
  },
  {
    name: 'conns6',
    lru: 'flows',
    counter: 'conn6Slots',
    slots: 16384,
    counts: 65536,
    A: 'fd00:202::5:1',
    B: 'fd00:202::5:2',
    ip: ipv6,
    set: (a: number[], b: number[], ports: number, rest: number) => connHash(fold6(a), fold6(b), ports, rest) & (16384 - 1) & ~3,
    layout: 'conn6_slot',
  },
] as const;

type Conn = [sport: number, dport: number];

const idx = (i: number) => {
  const k = Buffer.alloc(4);
  k.writeUInt32LE(i);
  return k;
};

describe.skipIf(skip).each(TABLES)('flowctl TC datapath: the $name connection table', (T) => {
  const L = cLayout().layout;
  const S = L[T.layout]!;
  const OFF = {
    gen: S.gen!, ifindex: S.ifindex!, port0: S.port!, port1: S.port! + 2, state: S.state!,
    packets0: S.packets0!, bytes0: S.bytes0!, lastSeen0: S.last_seen0!, packets1: S.packets1!, bytes1: S.bytes1!, lastSeen1: S.last_seen1!,
  };
  const CLOSED = L.conn_state!.closed!;
  const C = L.conn_counts!;
  const tcpOut = (sport: number, dport: number, flags: number, payload?: Buffer) => T.ip({ src: T.A, dst: T.B, proto: TCP }, tcp(sport, dport, flags, payload));
  const tcpBack = (sport: number, dport: number, flags: number) => T.ip({ src: T.B, dst: T.A, proto: TCP }, tcp(sport, dport, flags));
  const setOf = (sport: number, dport: number, ifindex: number) =>
    T.set(words(T.A), words(T.B), (sport | (dport << 16)) >>> 0, (ifindex ^ (TCP << 24)) >>> 0);
  let dp: Datapath;
  let ifindex = 0;
  const slot = (i: number) => dp.obj.map(T.name).lookup(idx(i))!;
  /** Slot i's counters (the slow path's) plus its fast-path counts on every CPU (conn_counts). */
  const totals = (i: number) => {
    const s = slot(i);
    const t = { packets0: s.readBigUInt64LE(OFF.packets0), packets1: s.readBigUInt64LE(OFF.packets1), bytes0: s.readBigUInt64LE(OFF.bytes0), bytes1: s.readBigUInt64LE(OFF.bytes1) };
    const v = dp.obj.map('conn_counts').lookup(idx(T.counts + i))!;
    for (let o = 0; o + C.size! <= v.length; o += C.size!) {
      for (const k of ['packets0', 'packets1', 'bytes0', 'bytes1'] as const) t[k] += v.readBigUInt64LE(o + C[k]!);
    }
    return t;
  };
  /** The slot index holding A:sport -> B:dport, or -1. */
  const find = ([sport, dport]: Conn) => {
    const base = setOf(sport, dport, ifindex);
    for (let i = base; i < base + 4; i++) {
      const s = slot(i);
      if (s.readUInt32LE(OFF.gen) !== 0 && s.readUInt16LE(OFF.port0) === sport && s.readUInt16LE(OFF.port1) === dport) return i;
    }
    return -1;
  };
  /** `n` connections (A:sport -> B:dport, dport from `firstDport`) whose hash names `set`. */
  const colliding = (set: number, n: number, firstDport: number): Conn[] => {
    const out: Conn[] = [];
    for (let dport = firstDport; out.length < n; dport++) {
      for (let sport = 1024; sport < 65536 && out.length < n; sport++) if (setOf(sport, dport, ifindex) === set) out.push([sport, dport]);
    }
    return out;
  };

  beforeAll(() => {
    dp = new Datapath();
  });
  afterAll(() => dp?.close());

  it('stores a new connection in the slot set its hash names, not in the LRU map', async () => {
    expect((await dp.one('from', tcpOut(40000, 80, F.SYN))).reason).toBe(1);
    // Where did it go? Scan the table once, then check the hash of this file agrees.
    const all = dp.obj.map(T.name).lookupBatch();
    const used: number[] = [];
    for (let i = 0; i < all.count; i++) {
      if (all.values.readUInt32LE(i * S.size! + OFF.gen) !== 0) used.push(all.keys.readUInt32LE(i * 4));
    }
    expect(used).toHaveLength(1);
    ifindex = slot(used[0]!).readUInt32LE(OFF.ifindex);
    expect(ifindex).toBeGreaterThan(0);
    expect(used[0]! & ~3).toBe(setOf(40000, 80, ifindex));
    expect(dp.obj.map(T.lru).keys()).toHaveLength(0);
    expect(dp.counters()[T.counter]).toBe(1n);
  });

  it('a full set sends the fifth connection to the LRU map, and every one of them counts its packets', async () => {
    const conns: Conn[] = [[40000, 80], ...colliding(setOf(40000, 80, ifindex), 5, 81)];
    for (const [sp, dp_] of conns.slice(1, 5)) expect((await dp.one('from', tcpOut(sp, dp_, F.SYN))).reason).toBe(1);
    for (const c of conns.slice(0, 4)) expect(find(c)).toBeGreaterThanOrEqual(0);
    expect(find(conns[4]!)).toBe(-1);
    expect(dp.obj.map(T.lru).keys()).toHaveLength(1);
    expect(dp.counters()[T.counter]).toBe(4n);

    // Established packets (the fast path) of all five, in both maps, then each one's close event.
    for (const [sp, dp_] of conns.slice(0, 5)) {
      await dp.one('to', tcpBack(dp_, sp, F.SYN | F.ACK));
      await dp.run('from', tcpOut(sp, dp_, F.ACK)); // ACK is new to this side: the full path, no event
      expect((await dp.run('from', tcpOut(sp, dp_, F.ACK, Buffer.alloc(10, 0x5a)), 100)).events).toEqual([]);
    }
    // Each direction counts in its own cache line of the slot (the slow path) and in this CPU's
    // counts of the slot (the fast path).
    const i0 = find(conns[0]!);
    const s0 = slot(i0);
    expect(totals(i0)).toEqual({ packets0: 102n, packets1: 1n, bytes0: 1000n, bytes1: 0n });
    expect(s0.readBigUInt64LE(OFF.packets0)).toBeLessThan(102n);
    expect(s0.readBigUInt64LE(OFF.lastSeen0)).toBeGreaterThan(0n);
    expect(s0.readBigUInt64LE(OFF.lastSeen1)).toBeGreaterThan(0n);
    for (const [sp, dp_] of conns.slice(0, 5)) {
      expect(await dp.one('from', tcpOut(sp, dp_, F.RST))).toMatchObject({ reason: 3, packets: 103n, replyPackets: 1n });
    }

    // A sixth connection of the set: every slot holds a connection closed just now, not reusable yet.
    expect((await dp.one('from', tcpOut(conns[5]![0], conns[5]![1], F.SYN))).reason).toBe(1);
    expect(find(conns[5]!)).toBe(-1);
    expect(dp.obj.map(T.lru).keys()).toHaveLength(2);
  });

  it('gives a slot whose connection closed long ago to a new connection of its set, in place', async () => {
    const target = setOf(40000, 80, ifindex);
    const [fresh] = colliding(target, 1, 2000);
    // Age the closed connection of slot `target + 2` by 20 s (CONN_CLOSED_IDLE_NS is 10 s).
    const i = target + 2;
    const old = slot(i);
    expect(old.readUInt32LE(OFF.state) & CLOSED).toBe(CLOSED);
    const oldConn: Conn = [old.readUInt16LE(OFF.port0), old.readUInt16LE(OFF.port1)];
    const aged = Buffer.from(old);
    for (const off of [OFF.lastSeen0, OFF.lastSeen1]) {
      const t = old.readBigUInt64LE(off);
      aged.writeBigUInt64LE(t > 20_000_000_000n ? t - 20_000_000_000n : 0n, off);
    }
    dp.obj.map(T.name).update(idx(i), aged);

    expect(await dp.one('from', tcpOut(fresh![0], fresh![1], F.SYN))).toMatchObject({ reason: 1, packets: 1n });
    expect(find(fresh!)).toBe(i);
    expect(slot(i).readUInt32LE(OFF.gen)).toBe(old.readUInt32LE(OFF.gen) + 1);
    expect(find(oldConn)).toBe(-1);
    expect(dp.counters()[T.counter]).toBe(4n); // reused, not newly taken
    expect(dp.obj.map(T.lru).keys()).toHaveLength(2);
    // The evicted connection, should it speak again, starts over as a new connection.
    expect((await dp.one('from', tcpOut(oldConn[0], oldConn[1], F.ACK))).reason).toBe(1);
  });

  it('reclaims half-open attempts first: a SYN never answered by its opener\'s ACK is given away after 10 s idle, an open connection is not', async () => {
    const base: Conn = [41000, 9000];
    const conns: Conn[] = [base, ...colliding(setOf(base[0], base[1], ifindex), 6, 9001)];
    for (const [sp, dp_] of conns.slice(0, 2)) await dp.one('from', tcpOut(sp, dp_, F.SYN)); // half-open
    for (const [sp, dp_] of conns.slice(2, 4)) {
      await dp.one('from', tcpOut(sp, dp_, F.SYN));
      await dp.one('to', tcpBack(dp_, sp, F.SYN | F.ACK));
      await dp.run('from', tcpOut(sp, dp_, F.ACK)); // the handshake completes
    }
    const at = conns.slice(0, 4).map(find);
    expect(at.every((i) => i >= 0)).toBe(true);
    // 20 s idle: past the 10 s of a half-open attempt, far from the 10 min of an open connection.
    for (const i of at) {
      const aged = Buffer.from(slot(i));
      for (const off of [OFF.lastSeen0, OFF.lastSeen1]) {
        const t = aged.readBigUInt64LE(off);
        aged.writeBigUInt64LE(t > 20_000_000_000n ? t - 20_000_000_000n : 0n, off);
      }
      dp.obj.map(T.name).update(idx(i), aged);
    }
    const lru = dp.obj.map(T.lru).keys().length;
    for (const [sp, dp_] of conns.slice(4)) await dp.one('from', tcpOut(sp, dp_, F.SYN));
    expect([find(conns[4]!), find(conns[5]!)].sort()).toEqual(at.slice(0, 2).sort());
    expect(find(conns[6]!)).toBe(-1); // the open connections keep their slots: the last one goes to the LRU map
    expect(dp.obj.map(T.lru).keys()).toHaveLength(lru + 1);
    expect([find(conns[2]!), find(conns[3]!)]).toEqual(at.slice(2, 4));
  });
});
