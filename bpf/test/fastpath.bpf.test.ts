// The established-flow fast path of the TC programs (fast4, fast6 in flowctl.bpf.c) against the full
// path it short-cuts. Packets are repeated inside the kernel (test_run repeat), so almost all of
// them arrive within the jiffy of the previous one and take the fast path; the counts in the next
// event, the counters and the returned actions must be what the full path alone gives.
import { execFileSync } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { possibleCpus } from '../../addon/lib/index.js';
import type { CompiledPolicy, PolicyEntry } from '../../packages/policy/src/index.js';
import { Datapath, skipReason, TC_ACT_OK, TC_ACT_SHOT } from './harness.js';
import { dns, F, ipv4, ipv6, TCP, tcp, UDP, udp } from './packets.js';

const skip = skipReason();
const A = '10.202.2.1';
const B = '10.202.2.2';
const N = 1000;

const tcp4 = (src: string, dst: string, sport: number, dport: number, flags: number, payload?: Buffer, options?: Buffer, seq?: number) =>
  ipv4({ src, dst, proto: TCP, options }, tcp(sport, dport, flags, payload, undefined, seq));

describe.skipIf(skip)('flowctl TC datapath: established-flow fast path (test_run repeat)', () => {
  let dp: Datapath;
  beforeAll(() => {
    dp = new Datapath();
  });
  afterAll(() => dp?.close());

  it('counts every repeated packet of both directions, with no events, into the close event', async () => {
    await dp.one('from', tcp4(A, B, 43001, 80, F.SYN));
    await dp.one('to', tcp4(B, A, 80, 43001, F.SYN | F.ACK));
    const ack = tcp4(A, B, 43001, 80, F.ACK);
    const data = tcp4(B, A, 80, 43001, F.ACK, Buffer.alloc(1000, 0x5a));
    const before = dp.counters();
    expect(await dp.run('from', ack, N)).toEqual({ retval: TC_ACT_OK, events: [] });
    expect(await dp.run('to', data, N / 2)).toEqual({ retval: TC_ACT_OK, events: [] });
    const after = dp.counters();
    expect(after.packets - before.packets).toBe(BigInt(N + N / 2));
    expect(after.events - before.events).toBe(0n);

    const fin = await dp.one('from', tcp4(A, B, 43001, 80, F.FIN | F.ACK));
    // Bytes are payload bytes: the client's packets carried none.
    expect(fin).toMatchObject({ reason: 2, packets: BigInt(N + 2), replyPackets: BigInt(N / 2 + 1), bytes: 0n });
    expect(fin.replyBytes).toBe(BigInt(1000 * (N / 2)));
    const rst = await dp.one('to', tcp4(B, A, 80, 43001, F.RST));
    expect(rst).toMatchObject({ reason: 3, packets: BigInt(N / 2 + 2), replyPackets: BigInt(N + 2) });
    // A closed connection: still counted on the way, and a SYN on its tuple is a new connection.
    expect((await dp.run('from', ack, 10)).events).toEqual([]);
    expect(await dp.one('from', tcp4(A, B, 43001, 80, F.SYN))).toMatchObject({ reason: 1, packets: 1n, replyPackets: 0n });
  });

  it('bytes are L4 payload bytes, whatever the IP and TCP option lengths or the Ethernet padding', async () => {
    // Each packet once through the slow path, then repeated through the fast path.
    const ts = Buffer.from('0101080a0000000100000002', 'hex'); // NOP NOP timestamps: 12 bytes
    const full = Buffer.concat([Buffer.from('020405b4', 'hex'), Buffer.alloc(36, 1)]); // MSS + NOPs: data offset 15
    const sack = Buffer.from(`01010512${'00'.repeat(16)}`, 'hex'); // NOP NOP SACK with two blocks: 20 bytes
    const pad = (frame: Buffer) => Buffer.concat([frame, Buffer.alloc(60 - frame.length)]);
    const sent: [Buffer, number][] = [
      [tcp4(A, B, 43020, 80, F.ACK, Buffer.alloc(1000, 0x5a)), 1000],
      [ipv4({ src: A, dst: B, proto: TCP }, tcp(43020, 80, F.ACK, Buffer.alloc(700, 0x5a), sack)), 700],
      [ipv4({ src: A, dst: B, proto: TCP }, tcp(43020, 80, F.ACK, Buffer.alloc(500, 0x5a), ts)), 500],
      [ipv4({ src: A, dst: B, proto: TCP }, tcp(43020, 80, F.ACK, Buffer.alloc(300, 0x5a), full)), 300],
      [tcp4(A, B, 43020, 80, F.ACK, Buffer.alloc(200, 0x5a), Buffer.alloc(8, 1)), 200], // IP options: slow path
      [pad(tcp4(A, B, 43020, 80, F.ACK)), 0], // a bare ACK padded to the Ethernet minimum
      [pad(tcp4(A, B, 43020, 80, F.ACK, Buffer.alloc(3, 0x5a))), 3],
    ];
    await dp.one('from', tcp4(A, B, 43020, 80, F.SYN));
    await dp.one('to', ipv4({ src: B, dst: A, proto: TCP }, tcp(80, 43020, F.SYN | F.ACK, undefined, full)));
    let want = 0;
    for (const [frame, payload] of sent) {
      expect((await dp.run('from', frame, 1)).events).toEqual([]);
      expect((await dp.run('from', frame, 100)).events).toEqual([]);
      want += 101 * payload;
    }
    const fin = await dp.one('from', tcp4(A, B, 43020, 80, F.FIN | F.ACK));
    expect(fin).toMatchObject({ reason: 2, packets: BigInt(2 + 101 * sent.length), bytes: BigInt(want), replyBytes: 0n });

    // IPv6 with and without an extension header; UDP, padded.
    const a6 = 'fd00:202:2::1';
    const b6 = 'fd00:202:2::2';
    const t6 = (payload: number, ext?: [number, Buffer][]) => ipv6({ src: a6, dst: b6, proto: TCP, ext }, tcp(43022, 80, F.ACK, Buffer.alloc(payload, 0x5a), ts));
    await dp.one('from', ipv6({ src: a6, dst: b6, proto: TCP }, tcp(43022, 80, F.SYN)));
    await dp.run('from', t6(1200), 100);
    await dp.run('from', t6(400, [[0, Buffer.alloc(6)]]), 10);
    const fin6 = await dp.one('from', ipv6({ src: a6, dst: b6, proto: TCP }, tcp(43022, 80, F.FIN | F.ACK)));
    expect(fin6).toMatchObject({ reason: 2, packets: 112n, bytes: BigInt(1200 * 100 + 400 * 10) });
    const u = (n: number) => ipv4({ src: A, dst: B, proto: UDP }, udp(43021, 9000, Buffer.alloc(n, 0x5a)));
    // UDP has no close event: every packet gets one (and takes the slow path) here.
    const sampled = new Datapath({ everyPacket: true });
    try {
      await sampled.one('from', u(10));
      expect(await sampled.one('from', pad(u(1)))).toMatchObject({ reason: 5, packets: 2n, bytes: 11n });
    } finally {
      sampled.close();
    }
  });

  it('a malformed TCP header on an established connection is counted as malformed, not to the connection', async () => {
    await dp.one('from', tcp4(A, B, 43010, 80, F.SYN));
    // A payload that is not HTTP: the direction is not inspected again (the fast path's own case).
    await dp.run('from', tcp4(A, B, 43010, 80, F.ACK, Buffer.alloc(40, 0x5a)), N);
    const bad = tcp4(A, B, 43010, 80, F.ACK, Buffer.alloc(40, 0x5a));
    bad[14 + 20 + 12] = 0x20; // data offset 2: an 8-byte TCP header
    const before = dp.counters();
    expect(await dp.run('from', bad, N)).toEqual({ retval: TC_ACT_OK, events: [] });
    expect(dp.counters().malformed - before.malformed).toBe(BigInt(N));
    const fin = await dp.one('from', tcp4(A, B, 43010, 80, F.FIN | F.ACK));
    expect(fin).toMatchObject({ reason: 2, packets: BigInt(N + 2) });
  });

  it('packets with IP options (full path) and without (fast path) share one connection', async () => {
    const opts = Buffer.alloc(8, 1);
    await dp.one('from', tcp4(A, B, 43002, 80, F.SYN, undefined, opts));
    await dp.run('from', tcp4(A, B, 43002, 80, F.SYN), N);
    await dp.run('from', tcp4(A, B, 43002, 80, F.SYN, undefined, opts), 3);
    const fin = await dp.one('from', tcp4(A, B, 43002, 80, F.FIN, undefined, opts));
    expect(fin).toMatchObject({ reason: 2, packets: BigInt(N + 5), isReply: false });
  });

  it('a new TCP flag on an established connection still gets its event', async () => {
    await dp.one('from', tcp4(A, B, 43003, 80, F.SYN));
    await dp.run('from', tcp4(A, B, 43003, 80, F.SYN), N);
    const r = await dp.run('from', tcp4(A, B, 43003, 80, F.RST), 5);
    expect(r.events).toHaveLength(1);
    expect(r.events[0]).toMatchObject({ reason: 3, tcpFlags: F.RST, packets: BigInt(N + 2) });
  });

  it('every HTTP request and DNS message on an established connection is captured', async () => {
    await dp.one('from', tcp4(A, B, 43004, 8080, F.SYN));
    await dp.run('from', tcp4(A, B, 43004, 8080, F.ACK), N);
    const req = Buffer.from('GET /fast HTTP/1.1\r\n\r\n');
    const r = await dp.runEach('from', 20, (i) => tcp4(A, B, 43004, 8080, F.ACK, req, undefined, 1000 + i * req.length));
    expect(r.events).toHaveLength(20);
    expect(r.events.every((e) => e.reason === 7 && e.l7 === 2 && e.payload.equals(req))).toBe(true);
    expect(r.events[19]!.packets).toBe(BigInt(N + 21));
    // A direction that started as HTTP sends every payload segment (bodies included), so that user
    // space can follow its messages by sequence number; pure ACKs stay on the fast path.
    const body = Buffer.from('HTTP/2.0 binary frames');
    const b = await dp.runEach('from', 5, (i) => tcp4(A, B, 43004, 8080, F.ACK, body, undefined, 1000 + 20 * req.length + i * body.length));
    expect(b.events).toHaveLength(5);
    expect(b.events.every((e) => e.l7 === 2 && e.payload.equals(body))).toBe(true);
    expect((await dp.run('from', tcp4(A, B, 43004, 8080, F.ACK), N)).events).toEqual([]);

    const q = dns(0x4321, 'fast.path.local');
    await dp.one('from', ipv4({ src: A, dst: B, proto: UDP }, udp(43005, 53, q)));
    const d = await dp.run('from', ipv4({ src: A, dst: B, proto: UDP }, udp(43005, 53, q)), 10);
    expect(d.events).toHaveLength(10);
    expect(d.events.every((e) => e.l7 === 1 && e.payload.equals(q))).toBe(true);
    // An empty UDP datagram to port 53 has no payload to decode.
    expect((await dp.run('from', ipv4({ src: A, dst: B, proto: UDP }, udp(43005, 53)), 10)).events).toEqual([]);
  });

  it('a direction whose first payload is not HTTP is not inspected again; the other direction is', async () => {
    await dp.one('from', tcp4(A, B, 43006, 443, F.SYN));
    await dp.one('to', tcp4(B, A, 443, 43006, F.SYN | F.ACK));
    // A TLS ClientHello first: this direction is not HTTP, now and later.
    const hello = Buffer.from('160301020001fc0303aabbccddeeff00', 'hex');
    expect((await dp.run('from', tcp4(A, B, 43006, 443, F.ACK | F.PSH, hello), 3)).events).toEqual([]);
    expect((await dp.run('from', tcp4(A, B, 43006, 443, F.ACK | F.PSH, Buffer.from('GET /late HTTP/1.1\r\n\r\n')), 3)).events).toEqual([]);
    // The reply direction has sent nothing yet: an HTTP status line there is still captured.
    const ok = Buffer.from('HTTP/1.1 200 OK\r\n\r\n');
    const r = await dp.runEach('to', 2, (i) => tcp4(B, A, 443, 43006, F.ACK | F.PSH, ok, undefined, 1000 + i * ok.length));
    expect(r.events).toHaveLength(2);
    expect(r.events.every((e) => e.l7 === 2)).toBe(true);
  });

  it('IPv6: without extension headers (fast path) and with them (full path), one connection', async () => {
    const a6 = 'fd00:202:2::1';
    const b6 = 'fd00:202:2::2';
    const hbh: [number, Buffer][] = [[0, Buffer.alloc(6)]];
    await dp.one('from', ipv6({ src: a6, dst: b6, proto: TCP }, tcp(43006, 80, F.SYN)));
    await dp.one('to', ipv6({ src: b6, dst: a6, proto: TCP, ext: hbh }, tcp(80, 43006, F.SYN | F.ACK)));
    expect((await dp.run('from', ipv6({ src: a6, dst: b6, proto: TCP }, tcp(43006, 80, F.ACK)), N)).events).toEqual([]);
    expect((await dp.run('to', ipv6({ src: b6, dst: a6, proto: TCP, ext: hbh }, tcp(80, 43006, F.ACK)), 7)).events).toEqual([]);
    expect((await dp.run('to', ipv6({ src: b6, dst: a6, proto: TCP }, tcp(80, 43006, F.ACK)), N)).events).toEqual([]);
    const req = Buffer.from('POST /v6 HTTP/1.1\r\n\r\n');
    expect((await dp.runEach('from', 3, (i) => ipv6({ src: a6, dst: b6, proto: TCP }, tcp(43006, 80, F.ACK, req, undefined, 1000 + i * req.length)))).events).toHaveLength(3);
    const fin = await dp.one('from', ipv6({ src: a6, dst: b6, proto: TCP }, tcp(43006, 80, F.FIN | F.ACK)));
    expect(fin).toMatchObject({ reason: 2, isReply: false, packets: BigInt(N + 5), replyPackets: BigInt(N + 8) });
  });
});

describe.skipIf(skip)('flowctl TC datapath: fast path with policy and stats', () => {
  const CLIENT = '10.202.3.1';
  const SERVER = '10.202.3.2';
  const row = (p: Partial<PolicyEntry>): PolicyEntry => ({ endpointIdentity: 2002, peerIdentity: 2001, port: 8080, proto: TCP, direction: 'ingress', deny: false, ruleRef: 1, ...p });
  const policy = (revision: number, entries: PolicyEntry[]): CompiledPolicy =>
    ({ revision, entries, enforced: new Map([[2002, { ingress: true, egress: false }]]), fqdnSelectors: [], cidrIdentities: [], refs: [], selectedBy: new Map(), addressIdentities: new Map() });
  const ids = [
    { cidr: CLIENT, identity: 2001 },
    { cidr: SERVER, identity: 2002 },
  ];

  it('established dropped packets are dropped and counted; a policy change re-decides them at once', async () => {
    const dp = new Datapath();
    try {
      dp.writer.writeIdentities(ids);
      dp.writer.writePolicy(policy(1, []));
      const syn = tcp4(CLIENT, SERVER, 43100, 8080, F.SYN);
      expect(await dp.one('to', syn)).toMatchObject({ retval: TC_ACT_SHOT, verdict: 2, reason: 6 });
      const before = dp.counters().policyDropped;
      expect(await dp.run('to', syn, N)).toEqual({ retval: TC_ACT_SHOT, events: [] });
      expect(dp.counters().policyDropped - before).toBe(BigInt(N));

      dp.writer.writePolicy(policy(2, [row({})]));
      expect(await dp.one('to', syn)).toMatchObject({ retval: TC_ACT_OK, verdict: 1, reason: 1, policyRef: 1, packets: BigInt(N + 2) });
      expect(await dp.run('to', syn, N)).toEqual({ retval: TC_ACT_OK, events: [] });
      dp.writer.writePolicy(policy(3, []));
      expect(await dp.one('to', syn)).toMatchObject({ retval: TC_ACT_SHOT, verdict: 2, reason: 6 });
    } finally {
      dp.close();
    }
  });

  it('audit mode: established packets pass and are counted as audited', async () => {
    const dp = new Datapath({ policyAudit: true });
    try {
      dp.writer.writeIdentities(ids);
      dp.writer.writePolicy(policy(1, []));
      const syn = tcp4(CLIENT, SERVER, 43101, 8080, F.SYN);
      expect(await dp.one('to', syn)).toMatchObject({ retval: TC_ACT_OK, verdict: 4 });
      const before = dp.counters().policyAudit;
      expect(await dp.run('to', syn, N)).toEqual({ retval: TC_ACT_OK, events: [] });
      expect(dp.counters().policyAudit - before).toBe(BigInt(N));
    } finally {
      dp.close();
    }
  });

  it('a stats interval of many jiffies: no event before it, one after it, with the counts', async () => {
    const dp = new Datapath({ statsIntervalNs: 100_000_000n });
    try {
      const first = await dp.one('from', tcp4(A, B, 43102, 80, F.SYN));
      const ack = tcp4(A, B, 43102, 80, F.SYN);
      expect((await dp.run('from', ack, N)).events).toEqual([]);
      await new Promise((res) => setTimeout(res, 150));
      const r = await dp.run('from', ack, N);
      expect(r.events).toHaveLength(1);
      const e = r.events[0]!;
      expect(e.reason).toBe(4);
      expect(e.packets).toBeGreaterThanOrEqual(BigInt(N + 2));
      expect(e.tsNs - first.tsNs).toBeGreaterThanOrEqual(100_000_000n);
      expect(e.firstSeenNs).toBe(first.tsNs);
      expect((await dp.run('from', ack, N)).events).toEqual([]);
    } finally {
      dp.close();
    }
  });

  it('L7 events do not postpone the periodic record: a busy HTTP direction still gets it, payload and all', async () => {
    const dp = new Datapath({ statsIntervalNs: 100_000_000n });
    try {
      await dp.one('from', tcp4(A, B, 43103, 80, F.SYN));
      const get = Buffer.from('GET / HTTP/1.1\r\n\r\n');
      const req = (i: number) => tcp4(A, B, 43103, 80, F.ACK | F.PSH, get, undefined, 1000 + i * get.length);
      expect(await dp.one('from', req(0))).toMatchObject({ reason: 7, l7: 2 });
      let stats;
      for (let i = 1; i < 40 && !stats; i++) {
        await new Promise((res) => setTimeout(res, 10));
        stats = (await dp.run('from', req(i))).events.find((e) => e.reason !== 7);
      }
      expect(stats).toMatchObject({ reason: 4, l7: 2 });
      // A retransmission sends no bytes again, but a periodic record due with it still goes.
      let again;
      for (let i = 0; i < 40 && !again; i++) {
        await new Promise((res) => setTimeout(res, 10));
        const r = (await dp.run('from', req(1))).events;
        expect(r.every((e) => e.reason !== 7)).toBe(true);
        again = r[0];
      }
      expect(again).toMatchObject({ reason: 4, l7: 0, payload: Buffer.alloc(0) });
    } finally {
      dp.close();
    }
  });
});

// The skip record (conn.bpf.h, struct conn_skip): what the slow path lets later packets of a
// connection skip. Whichever path a packet takes, counts are exact and nothing that needs the slow
// path (a new flag, a closed connection's SYN, a policy change, an HTTP payload) skips it.
describe.skipIf(skip)('flowctl TC datapath: the skip record', () => {
  const C = '10.202.7.1';
  const D = '10.202.7.2'; // C < D: C's side is side 0
  const out = (sport: number, dport: number, flags: number, payload?: Buffer, seq?: number) => ipv4({ src: C, dst: D, proto: TCP }, tcp(sport, dport, flags, payload, undefined, seq));
  const back = (sport: number, dport: number, flags: number) => ipv4({ src: D, dst: C, proto: TCP }, tcp(sport, dport, flags));
  let dp: Datapath;
  // test_run runs the program on the calling thread's CPU: the cross-CPU test moves this thread.
  const tid = readlinkSync('/proc/thread-self').split('/').pop()!;
  const mask = execFileSync('taskset', ['-p', tid], { encoding: 'utf8' }).trim().split(' ').pop()!;
  const pin = (cpu: number) => execFileSync('taskset', ['-pc', String(cpu), tid], { stdio: 'ignore' });
  beforeAll(() => {
    dp = new Datapath();
  });
  afterAll(() => {
    dp?.close();
    execFileSync('taskset', ['-p', mask, tid], { stdio: 'ignore' });
  });

  /** SYN, SYN-ACK, then the ACK that is new to side 0 (no event): established. */
  const open = async (sport: number, dport: number) => {
    expect((await dp.one('from', out(sport, dport, F.SYN))).reason).toBe(1);
    expect((await dp.one('to', back(dport, sport, F.SYN | F.ACK))).reason).toBe(1);
    expect((await dp.run('from', out(sport, dport, F.ACK))).events).toEqual([]);
  };

  it.skipIf(possibleCpus() < 2)('packets counted on two CPUs all reach the event and the packets counter', async () => {
    try {
      pin(0);
      const before = dp.counters().packets;
      await open(41002, 80);
      await dp.run('from', out(41002, 80, F.ACK), 300);
      pin(1);
      await dp.run('from', out(41002, 80, F.ACK), 300);
      await dp.run('to', back(80, 41002, F.ACK), 50);
      expect(await dp.one('from', out(41002, 80, F.RST))).toMatchObject({ reason: 3, packets: 603n, replyPackets: 51n });
      expect(dp.counters().packets - before).toBe(654n);
    } finally {
      execFileSync('taskset', ['-p', mask, tid], { stdio: 'ignore' });
    }
  });

  it('a policy change applies to the next packet of an established connection', async () => {
    const CLIENT = '10.202.7.11';
    const SERVER = '10.202.7.12';
    const row: PolicyEntry = { endpointIdentity: 2002, peerIdentity: 2001, port: 8080, proto: TCP, direction: 'ingress', deny: false, ruleRef: 1 };
    const policy = (revision: number, entries: PolicyEntry[]): CompiledPolicy =>
      ({ revision, entries, enforced: new Map([[2002, { ingress: true, egress: false }]]), fqdnSelectors: [], cidrIdentities: [], refs: [], selectedBy: new Map(), addressIdentities: new Map() });
    const toServer = (flags: number) => ipv4({ src: CLIENT, dst: SERVER, proto: TCP }, tcp(41003, 8080, flags));
    const pd = new Datapath();
    try {
      pd.writer.writeIdentities([{ cidr: CLIENT, identity: 2001 }, { cidr: SERVER, identity: 2002 }]);
      pd.writer.writePolicy(policy(1, [row]));
      expect(await pd.one('to', toServer(F.SYN))).toMatchObject({ verdict: 1, reason: 1 });
      await pd.one('from', ipv4({ src: SERVER, dst: CLIENT, proto: TCP }, tcp(8080, 41003, F.SYN | F.ACK)));
      await pd.run('to', toServer(F.ACK));
      expect(await pd.run('to', toServer(F.ACK), 100)).toEqual({ retval: TC_ACT_OK, events: [] });
      // Deny: the config epoch changes, and the record no longer applies.
      pd.writer.writePolicy(policy(2, []));
      expect(await pd.one('to', toServer(F.ACK))).toMatchObject({ retval: TC_ACT_SHOT, verdict: 2, dropReason: 133, packets: 103n });
      expect(await pd.run('to', toServer(F.ACK), 10)).toEqual({ retval: TC_ACT_SHOT, events: [] });
    } finally {
      pd.close();
    }
  });

  it('a SYN on a connection closed in this jiffy starts a new connection; new flags get their events', async () => {
    await open(41004, 80);
    await dp.run('from', out(41004, 80, F.ACK), 100);
    expect(await dp.one('from', out(41004, 80, F.FIN | F.ACK))).toMatchObject({ reason: 2, packets: 103n });
    expect(await dp.one('to', back(80, 41004, F.RST))).toMatchObject({ reason: 3, replyPackets: 103n });
    expect((await dp.run('from', out(41004, 80, F.ACK), 10)).events).toEqual([]);
    expect(await dp.one('from', out(41004, 80, F.SYN))).toMatchObject({ reason: 1, packets: 1n, replyPackets: 0n });
  });

  it('one address at both ends: each packet counts to its own side', async () => {
    // With equal addresses only the ports tell the sides apart (the lower port is side 0).
    const H = '10.202.7.5';
    const hi = (flags: number) => ipv4({ src: H, dst: H, proto: TCP }, tcp(41020, 80, flags));
    const lo = (flags: number) => ipv4({ src: H, dst: H, proto: TCP }, tcp(80, 41020, flags));
    expect((await dp.one('from', hi(F.SYN))).reason).toBe(1);
    expect((await dp.one('to', lo(F.SYN | F.ACK))).reason).toBe(1);
    await dp.run('from', hi(F.ACK));
    await dp.run('to', lo(F.ACK));
    await dp.run('from', hi(F.ACK), 300);
    await dp.run('to', lo(F.ACK), 70);
    expect(await dp.one('from', hi(F.RST))).toMatchObject({ reason: 3, packets: 303n, replyPackets: 72n });
  });

  it('UDP datagrams shorter than a TCP header are counted', async () => {
    const tiny = (sport: number, dport: number, src: string, dst: string) => ipv4({ src, dst, proto: UDP }, udp(sport, dport, Buffer.from('ping')));
    expect((await dp.one('from', tiny(41030, 7000, C, D))).reason).toBe(1);
    expect((await dp.one('to', tiny(7000, 41030, D, C))).reason).toBe(1);
    const before = dp.counters().packets;
    expect((await dp.run('from', tiny(41030, 7000, C, D), 200)).events).toEqual([]);
    expect(dp.counters().packets - before).toBe(200n);
  });

  it('a TCP direction that sent HTTP keeps sending its payloads to the slow path: each request is an event', async () => {
    await open(41005, 8080);
    const get = Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(await dp.one('from', out(41005, 8080, F.ACK | F.PSH, get))).toMatchObject({ l7: 2 });
    await dp.run('from', out(41005, 8080, F.ACK), 10);
    const r = await dp.runEach('from', 5, (i) => out(41005, 8080, F.ACK | F.PSH, get, 1000 + (i + 1) * get.length));
    expect(r.events).toHaveLength(5);
    expect(r.events[4]).toMatchObject({ l7: 2, packets: 18n });
  });
});
