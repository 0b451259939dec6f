// conn4_cache (flowctl.h): each CPU's recent IPv4 connections, where an established packet adds to
// two private counters instead of the shared slot. What it must not change: every count reaches
// the events and the `packets` counter exactly, whichever CPUs counted the packets; a policy change,
// a new flag, a closed connection's new SYN still take the full path at once.
import { execFileSync } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { possibleCpus } from '../../addon/lib/index.js';
import type { CompiledPolicy, PolicyEntry } from '@flowctl/policy';
import { conn4CacheEntries, conn4CachePending } from '../../packages/agent/src/datapath/abi.js';
import { writeIpcache, writePolicyMaps } from '../../packages/agent/src/datapath/policy-maps.js';
import { readConn4Cache } from '../../packages/agent/src/datapath/kernel.js';
import { Datapath, skipReason, TC_ACT_OK, TC_ACT_SHOT } from './harness.js';
import { F, ipv4, TCP, tcp, UDP, udp } from './packets.js';

const skip = skipReason();
const A = '10.202.7.1';
const B = '10.202.7.2'; // A < B: A's side is side 0
const out = (sport: number, dport: number, flags: number, payload?: Buffer) => ipv4({ src: A, dst: B, proto: TCP }, tcp(sport, dport, flags, payload));
const back = (sport: number, dport: number, flags: number) => ipv4({ src: B, dst: A, proto: TCP }, tcp(sport, dport, flags));
const sleep = (ms: number) => new Promise((res) => setTimeout(res, ms));

describe.skipIf(skip)('flowctl TC datapath: the per-CPU connection cache (conn4_cache)', () => {
  let dp: Datapath;
  // test_run runs the program on the calling thread's CPU, and each CPU has its own cache: the
  // tests keep this thread on CPU 0 (the cross-CPU one moves it), or a migration between two runs
  // would leave counts pending on a CPU the test no longer runs on.
  const tid = readlinkSync('/proc/thread-self').split('/').pop()!;
  const mask = execFileSync('taskset', ['-p', tid], { encoding: 'utf8' }).trim().split(' ').pop()!;
  const pin = (cpu: number) => execFileSync('taskset', ['-pc', String(cpu), tid], { stdio: 'ignore' });
  beforeAll(() => {
    pin(0);
    dp = new Datapath();
  });
  afterAll(() => {
    dp?.close();
    execFileSync('taskset', ['-p', mask, tid], { stdio: 'ignore' });
  });

  /** Every CPU's conn4_cache entry holding A:sport -> B:dport. */
  const cached = (sport: number, dport: number) =>
    conn4CacheEntries(readConn4Cache(dp.obj)).filter((e) => e.port[0] === sport && e.port[1] === dport);
  const pending = (sport: number, dport: number) => cached(sport, dport).reduce((n, c) => n + c.packets[0] + c.packets[1], 0);

  /** SYN, SYN-ACK, then the ACK that is new to side 0 (full path, no event): established. */
  const open = async (sport: number, dport: number) => {
    expect((await dp.one('from', out(sport, dport, F.SYN))).reason).toBe(1);
    expect((await dp.one('to', back(dport, sport, F.SYN | F.ACK))).reason).toBe(1);
    expect((await dp.run('from', out(sport, dport, F.ACK))).events).toEqual([]);
  };

  it('counts established packets in the CPU cache; the close event and the packets counter have every one', async () => {
    const before = dp.counters().packets;
    await open(41000, 80);
    const r = await dp.run('from', out(41000, 80, F.ACK), 1000);
    expect(r.retval).toBe(TC_ACT_OK);
    expect(r.events).toEqual([]);
    // Most of them wait in the cache of the CPU that ran them (the first of each jiffy takes the
    // slot's path and fills the entry).
    expect(pending(41000, 80)).toBeGreaterThan(500);
    // Side 0, packets without payload only: the direction has not shown whether it is HTTP.
    expect(cached(41000, 80)[0]!.ok & 0b101).toBe(0b001);
    expect(dp.counters().packets - before).toBe(1003n);
    const close = await dp.one('from', out(41000, 80, F.RST));
    expect(close).toMatchObject({ reason: 3, packets: 1003n, replyPackets: 1n });
    expect(close.bytes).toBe(1003n * BigInt(out(41000, 80, F.ACK).length));
  });

  it('the first packet of a later jiffy adds the pending counts to the slot', async () => {
    await open(41001, 80);
    await dp.run('from', out(41001, 80, F.ACK), 200);
    const waiting = pending(41001, 80);
    expect(waiting).toBeGreaterThan(0);
    await sleep(30); // several jiffies at any HZ >= 100
    // Two packets back to back in one test_run, so that no jiffy starts between them: the first
    // takes the full path (it restarts the connection's clock), the second the slot path, which
    // flushes the entry. (As two test_runs, a new jiffy in between sent both the full path.)
    await dp.run('from', out(41001, 80, F.ACK), 2);
    // At most the packet that refilled the entry is still pending.
    expect(pending(41001, 80)).toBeLessThanOrEqual(1);
    expect(await dp.one('from', out(41001, 80, F.RST))).toMatchObject({ packets: 205n, replyPackets: 1n });
  });

  it.skipIf(possibleCpus() < 2)('an event adds the packets another CPU holds in its cache', async () => {
    // Moves this thread from CPU 0 to CPU 1.
    try {
      await open(41002, 80);
      await dp.run('from', out(41002, 80, F.ACK), 300);
      pin(1);
      await dp.run('from', out(41002, 80, F.ACK), 300);
      await dp.run('to', back(80, 41002, F.ACK), 50);
      const held = cached(41002, 80);
      expect(held.map((c) => c.cpu).sort()).toEqual([0, 1]);
      expect(held.find((c) => c.cpu === 0)!.packets[0]).toBeGreaterThan(0);
      // CPU 0 runs nothing more: its counts reach the event only through the sum over CPUs.
      expect(await dp.one('from', out(41002, 80, F.RST))).toMatchObject({ reason: 3, packets: 603n, replyPackets: 51n });
      expect(cached(41002, 80).find((c) => c.cpu === 0)!.packets[0]).toBeGreaterThan(0);
    } finally {
      pin(0);
    }
  });

  it('a policy change applies to the next packet of a cached connection', async () => {
    const CLIENT = '10.202.7.11';
    const SERVER = '10.202.7.12';
    const row: PolicyEntry = { endpointIdentity: 2002, peerIdentity: 2001, port: 8080, proto: TCP, direction: 'ingress', deny: false, ruleRef: 1 };
    const policy = (revision: number, entries: PolicyEntry[]): CompiledPolicy =>
      ({ revision, entries, enforced: new Map([[2002, { ingress: true, egress: false }]]), cidrIdentities: [], refs: [], selectedBy: new Map() }) as unknown as CompiledPolicy;
    const toServer = (flags: number) => ipv4({ src: CLIENT, dst: SERVER, proto: TCP }, tcp(41003, 8080, flags));
    const pd = new Datapath();
    try {
      writeIpcache(pd.maps.ipcache, [{ cidr: CLIENT, identity: 2001 }, { cidr: SERVER, identity: 2002 }], pd.maps.config);
      writePolicyMaps(pd.maps, policy(1, [row]));
      expect(await pd.one('to', toServer(F.SYN))).toMatchObject({ verdict: 1, reason: 1 });
      await pd.one('from', ipv4({ src: SERVER, dst: CLIENT, proto: TCP }, tcp(8080, 41003, F.SYN | F.ACK)));
      await pd.run('to', toServer(F.ACK));
      expect(await pd.run('to', toServer(F.ACK), 100)).toEqual({ retval: TC_ACT_OK, events: [] });
      const v = readConn4Cache(pd.obj);
      expect(conn4CachePending(v)).toBeGreaterThan(0n);
      // Deny: the config epoch changes, and the cached entry no longer applies.
      writePolicyMaps(pd.maps, policy(2, []));
      expect(await pd.one('to', toServer(F.ACK))).toMatchObject({ retval: TC_ACT_SHOT, verdict: 2, dropReason: 133, packets: 103n });
      expect(await pd.run('to', toServer(F.ACK), 10)).toEqual({ retval: TC_ACT_SHOT, events: [] });
    } finally {
      pd.close();
    }
  });

  it('a SYN on a closed connection in the cache starts a new connection; new flags take the full path', async () => {
    await open(41004, 80);
    await dp.run('from', out(41004, 80, F.ACK), 100);
    expect(pending(41004, 80)).toBeGreaterThan(0);
    // FIN is new to side 0: an event, counted with the cached packets.
    expect(await dp.one('from', out(41004, 80, F.FIN | F.ACK))).toMatchObject({ reason: 2, packets: 103n });
    expect(await dp.one('to', back(80, 41004, F.RST))).toMatchObject({ reason: 3, replyPackets: 103n });
    // Port reuse right away, in the same jiffy as the cached entry: a new connection.
    expect(await dp.one('from', out(41004, 80, F.SYN))).toMatchObject({ reason: 1, packets: 1n, replyPackets: 0n });
  });

  it('connections that share a cache entry: the first of a jiffy keeps it, and every count is exact', async () => {
    // 41010 ^ 80 and 41018 ^ 80 agree in their low 3 bits: the same entry of each CPU's cache.
    await open(41010, 80);
    await open(41018, 80);
    for (let i = 0; i < 5; i++) {
      await dp.run('from', out(41010, 80, F.ACK), 100);
      await dp.run('from', out(41018, 80, F.ACK), 100);
      await dp.run('to', back(80, 41018, F.ACK), 10);
    }
    expect(pending(41010, 80) + pending(41018, 80)).toBeGreaterThan(0);
    expect(await dp.one('from', out(41010, 80, F.RST))).toMatchObject({ reason: 3, packets: 503n, replyPackets: 1n });
    expect(await dp.one('from', out(41018, 80, F.RST))).toMatchObject({ reason: 3, packets: 503n, replyPackets: 51n });
  });

  it('one address at both ends: each packet counts to its own side, in the cache as in the slot', async () => {
    // The cache compares a packet with its entry both ways round; with equal addresses only the
    // ports tell the sides apart (the lower port is side 0).
    const H = '10.202.7.5';
    const hi = (flags: number) => ipv4({ src: H, dst: H, proto: TCP }, tcp(41020, 80, flags));
    const lo = (flags: number) => ipv4({ src: H, dst: H, proto: TCP }, tcp(80, 41020, flags));
    expect((await dp.one('from', hi(F.SYN))).reason).toBe(1);
    expect((await dp.one('to', lo(F.SYN | F.ACK))).reason).toBe(1);
    await dp.run('from', hi(F.ACK));
    await dp.run('to', lo(F.ACK));
    const held = (side: 0 | 1) =>
      conn4CacheEntries(readConn4Cache(dp.obj))
        .filter((e) => e.port[0] === 80 && e.port[1] === 41020)
        .reduce((n, e) => n + e.packets[side], 0);
    // Each side looked at right after its own run: a jiffy starting between the two runs sends
    // the next packet the slot's path, which adds the pending counts to the slot.
    await dp.run('from', hi(F.ACK), 300);
    expect(held(1)).toBeGreaterThan(0);
    await dp.run('to', lo(F.ACK), 70);
    expect(held(0)).toBeGreaterThan(0);
    expect(await dp.one('from', hi(F.RST))).toMatchObject({ reason: 3, packets: 303n, replyPackets: 72n });
  });

  it('UDP datagrams shorter than a TCP header are cached too', async () => {
    const tiny = (sport: number, dport: number, src: string, dst: string) => ipv4({ src, dst, proto: UDP }, udp(sport, dport, Buffer.from('ping')));
    expect((await dp.one('from', tiny(41030, 7000, A, B))).reason).toBe(1);
    expect((await dp.one('to', tiny(7000, 41030, B, A))).reason).toBe(1);
    expect((await dp.run('from', tiny(41030, 7000, A, B), 200)).events).toEqual([]);
    expect(pending(41030, 7000)).toBeGreaterThan(0);
    const before = dp.counters().packets;
    await dp.run('from', tiny(41030, 7000, A, B), 10);
    expect(dp.counters().packets - before).toBe(10n);
  });

  it('payloads: a TCP direction is cached with payload only once it proved not to be HTTP', async () => {
    await open(41005, 8080);
    const get = Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(await dp.one('from', out(41005, 8080, F.ACK | F.PSH, get))).toMatchObject({ l7: 2 });
    // An HTTP direction keeps sending its payloads the full path (each request is an event).
    await dp.run('from', out(41005, 8080, F.ACK), 10);
    const e = cached(41005, 8080);
    expect(e.length).toBeGreaterThan(0);
    expect(e[0]!.ok & 0b100).toBe(0);
    expect((await dp.run('from', out(41005, 8080, F.ACK | F.PSH, get))).events).toHaveLength(1);
  });
});
