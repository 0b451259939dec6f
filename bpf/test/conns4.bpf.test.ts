// conns4, the IPv4 connection table (flowctl.h): a preallocated array used as a 4-way
// set-associative table indexed by a hash computed in the program, so that an established packet
// costs no helper call. A connection whose set is full of live ones goes to the flows4 LRU map;
// a set's slot whose connection closed (or went idle) long ago is given to a new connection.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Datapath, skipReason } from './harness.js';
import { F, ipv4, TCP, tcp } from './packets.js';

const skip = skipReason();
const A = '10.202.5.1';
const B = '10.202.5.2';
const SLOTS = 65536;
const SLOT_BYTES = 192;
/**
 * Offsets in struct flowctl_conn4_slot (gen, key, conn at 24; packages/agent's abi.test checks
 * them against the C header): each direction's counters start a cache line of their own.
 */
const OFF = {
  gen: 0,
  ifindex: 12,
  port0: 16,
  port1: 18,
  state: 24 + 24,
  packets0: 64,
  bytes0: 72,
  lastSeen0: 80,
  packets1: 128,
  bytes1: 136,
  lastSeen1: 144,
} as const;

const tcp4 = (sport: number, dport: number, flags: number) => ipv4({ src: A, dst: B, proto: TCP }, tcp(sport, dport, flags));
const tcp4back = (sport: number, dport: number, flags: number) => ipv4({ src: B, dst: A, proto: TCP }, tcp(sport, dport, flags));

/** An IPv4 address as the program loads it: the network-order bytes read as a native (LE) u32. */
const addr = (ip: string) => Buffer.from(ip.split('.').map(Number)).readUInt32LE(0);

/** conn4_set() of flowctl.bpf.c for A:sport -> B:dport (A < B, so A's side is side 0). */
function setOf(sport: number, dport: number, ifindex: number, seed = 0): number {
  let h = seed >>> 0;
  h = Math.imul(h ^ addr(A), 0x9e3779b1) >>> 0;
  h = Math.imul(h ^ addr(B), 0x85ebca77) >>> 0;
  h = Math.imul(h ^ ((sport | (dport << 16)) >>> 0), 0xc2b2ae3d) >>> 0;
  h = Math.imul(h ^ ifindex ^ (TCP << 24), 0x27d4eb2f) >>> 0;
  h = (h ^ (h >>> 15)) >>> 0;
  return h & (SLOTS - 1) & ~3;
}

type Conn = [sport: number, dport: number];

const idx = (i: number) => {
  const k = Buffer.alloc(4);
  k.writeUInt32LE(i);
  return k;
};

describe.skipIf(skip)('flowctl TC datapath: the conns4 connection table', () => {
  let dp: Datapath;
  let ifindex = 0;
  const slot = (i: number) => dp.obj.map('conns4').lookup(idx(i))!;
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

  it('stores a new IPv4 connection in the slot set its hash names, not in flows4', async () => {
    expect((await dp.one('from', tcp4(40000, 80, F.SYN))).reason).toBe(1);
    // Where did it go? Scan the table once, then check the hash of this file agrees.
    const all = dp.obj.map('conns4').lookupBatch();
    const used: number[] = [];
    for (let i = 0; i < all.count; i++) {
      if (all.values.readUInt32LE(i * SLOT_BYTES + OFF.gen) !== 0) used.push(all.keys.readUInt32LE(i * 4));
    }
    expect(used).toHaveLength(1);
    ifindex = slot(used[0]!).readUInt32LE(OFF.ifindex);
    expect(ifindex).toBeGreaterThan(0);
    expect(used[0]! & ~3).toBe(setOf(40000, 80, ifindex));
    expect(dp.obj.map('flows4').keys()).toHaveLength(0);
    expect(dp.counters().conn4Slots).toBe(1n);
  });

  it('a full set sends the fifth connection to flows4, and every one of them counts its packets', async () => {
    const conns: Conn[] = [[40000, 80], ...colliding(setOf(40000, 80, ifindex), 5, 81)];
    for (const [sp, dp_] of conns.slice(1, 5)) expect((await dp.one('from', tcp4(sp, dp_, F.SYN))).reason).toBe(1);
    for (const c of conns.slice(0, 4)) expect(find(c)).toBeGreaterThanOrEqual(0);
    expect(find(conns[4]!)).toBe(-1);
    expect(dp.obj.map('flows4').keys()).toHaveLength(1);
    expect(dp.counters().conn4Slots).toBe(4n);

    // Established packets (the fast path) of all five, in both maps, then each one's close event.
    for (const [sp, dp_] of conns.slice(0, 5)) {
      await dp.one('to', tcp4back(dp_, sp, F.SYN | F.ACK));
      await dp.run('from', tcp4(sp, dp_, F.ACK)); // ACK is new to this side: the full path, no event
      expect((await dp.run('from', tcp4(sp, dp_, F.ACK), 100)).events).toEqual([]);
    }
    // Each direction counts in its own cache line of the slot (offsets 64 and 128).
    const s0 = slot(find(conns[0]!));
    expect([s0.readBigUInt64LE(OFF.packets0), s0.readBigUInt64LE(OFF.packets1)]).toEqual([102n, 1n]);
    expect(s0.readBigUInt64LE(OFF.bytes0)).toBeGreaterThan(s0.readBigUInt64LE(OFF.bytes1));
    expect(s0.readBigUInt64LE(OFF.lastSeen0)).toBeGreaterThan(0n);
    expect(s0.readBigUInt64LE(OFF.lastSeen1)).toBeGreaterThan(0n);
    for (const [sp, dp_] of conns.slice(0, 5)) {
      expect(await dp.one('from', tcp4(sp, dp_, F.RST))).toMatchObject({ reason: 3, packets: 103n, replyPackets: 1n });
    }

    // A sixth connection of the set: every slot holds a connection closed just now, not reusable yet.
    expect((await dp.one('from', tcp4(conns[5]![0], conns[5]![1], F.SYN))).reason).toBe(1);
    expect(find(conns[5]!)).toBe(-1);
    expect(dp.obj.map('flows4').keys()).toHaveLength(2);
  });

  it('gives a slot whose connection closed long ago to a new connection of its set, in place', async () => {
    const target = setOf(40000, 80, ifindex);
    const [fresh] = colliding(target, 1, 2000);
    // Age the closed connection of slot `target + 2` by 20 s (CONN4_CLOSED_IDLE_NS is 10 s).
    const i = target + 2;
    const old = slot(i);
    expect(old.readUInt32LE(OFF.state) & 0x4).toBe(0x4); // FLOWCTL_STATE_CLOSED
    const oldConn: Conn = [old.readUInt16LE(OFF.port0), old.readUInt16LE(OFF.port1)];
    const aged = Buffer.from(old);
    for (const off of [OFF.lastSeen0, OFF.lastSeen1]) {
      const t = old.readBigUInt64LE(off);
      aged.writeBigUInt64LE(t > 20_000_000_000n ? t - 20_000_000_000n : 0n, off);
    }
    dp.obj.map('conns4').update(idx(i), aged);

    expect(await dp.one('from', tcp4(fresh![0], fresh![1], F.SYN))).toMatchObject({ reason: 1, packets: 1n });
    expect(find(fresh!)).toBe(i);
    expect(slot(i).readUInt32LE(OFF.gen)).toBe(old.readUInt32LE(OFF.gen) + 1);
    expect(find(oldConn)).toBe(-1);
    expect(dp.counters().conn4Slots).toBe(4n); // reused, not newly taken
    expect(dp.obj.map('flows4').keys()).toHaveLength(2);
    // The evicted connection, should it speak again, starts over as a new connection.
    expect((await dp.one('from', tcp4(oldConn[0], oldConn[1], F.ACK))).reason).toBe(1);
  });
});
