// The TC programs under BPF_PROG_TEST_RUN: parsing, aggregation and L7 capture, with the events
// read back from the ring buffer and decoded by abi.ts. Each test uses its own 5-tuples because the
// connection map lives as long as the object.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Datapath, skipReason, TC_ACT_OK } from './harness.js';
import { dns, eth, F, icmp, ICMP, ICMPV6, ipv4, ipv6, sctp, SCTP, TCP, tcp, udp, UDP } from './packets.js';

const skip = skipReason();
const A = '10.202.0.1';
const B = '10.202.0.2';
const A6 = 'fd00:202::1';
const B6 = 'fd00:202::2';

describe.skipIf(skip)('flowctl TC datapath: parsing and aggregation (test_run)', () => {
  let dp: Datapath;
  beforeAll(() => {
    dp = new Datapath();
  });
  afterAll(() => dp?.close());

  it('IPv4 TCP: first packet each way, nothing for the established path, FIN flags and close', async () => {
    const syn = ipv4({ src: A, dst: B, proto: TCP }, tcp(40001, 80, F.SYN));
    const e1 = await dp.one('from', syn);
    expect(e1).toMatchObject({
      retval: TC_ACT_OK,
      kind: 'flow',
      obsPoint: 1,
      reason: 1,
      verdict: 1,
      dropReason: 0,
      ipVersion: 4,
      srcIp: A,
      dstIp: B,
      proto: TCP,
      srcPort: 40001,
      dstPort: 80,
      tcpFlags: F.SYN,
      tcpFlagsSeen: F.SYN,
      isReply: false,
      srcIdentity: 2,
      dstIdentity: 2,
      ethSrc: '02:aa:bb:cc:dd:01',
      ethDst: '02:aa:bb:cc:dd:02',
      packets: 1n,
      bytes: 0n, // payload bytes: a SYN has none
      replyPackets: 0n,
      l7: 0,
      payloadLen: 0,
    });
    expect(e1.payload.length).toBe(0);
    expect(e1.firstSeenNs).toBe(e1.tsNs);
    const now = process.hrtime.bigint();
    expect(now - e1.tsNs).toBeLessThan(10_000_000_000n); // the same clock as CLOCK_MONOTONIC

    const e2 = await dp.one('to', ipv4({ src: B, dst: A, proto: TCP }, tcp(80, 40001, F.SYN | F.ACK)));
    expect(e2).toMatchObject({ obsPoint: 2, reason: 1, isReply: true, srcIp: B, srcPort: 80, packets: 1n, replyPackets: 1n, tcpFlagsSeen: F.SYN | F.ACK });

    const ack = ipv4({ src: A, dst: B, proto: TCP }, tcp(40001, 80, F.ACK));
    expect(await dp.run('from', ack)).toEqual({ retval: TC_ACT_OK, events: [] });
    expect(await dp.run('from', ipv4({ src: A, dst: B, proto: TCP }, tcp(40001, 80, F.ACK | F.PSH, Buffer.from('\x00\x01binary'))))).toEqual({ retval: TC_ACT_OK, events: [] });
    expect((await dp.run('to', ipv4({ src: B, dst: A, proto: TCP }, tcp(80, 40001, F.ACK)))).events).toEqual([]);

    const fin1 = await dp.one('from', ipv4({ src: A, dst: B, proto: TCP }, tcp(40001, 80, F.FIN | F.ACK)));
    expect(fin1).toMatchObject({ reason: 2, tcpFlags: F.FIN | F.ACK, isReply: false, packets: 4n, replyPackets: 2n });
    const fin2 = await dp.one('to', ipv4({ src: B, dst: A, proto: TCP }, tcp(80, 40001, F.FIN | F.ACK)));
    expect(fin2).toMatchObject({ reason: 3, isReply: true, packets: 3n, replyPackets: 4n });
    expect(fin2.lastSeenNs).toBeGreaterThan(fin2.firstSeenNs);
    expect((await dp.run('from', ack)).events).toEqual([]);

    // The tuple reused by a new SYN is a new connection.
    expect(await dp.one('from', syn)).toMatchObject({ reason: 1, packets: 1n, replyPackets: 0n, isReply: false });
  });

  it('RST closes; a connection first seen mid-stream has is_reply unknown', async () => {
    const mid = await dp.one('to', ipv4({ src: B, dst: A, proto: TCP }, tcp(443, 40002, F.ACK)));
    expect(mid).toMatchObject({ reason: 1, isReply: undefined, srcPort: 443 });
    const rst = await dp.one('from', ipv4({ src: A, dst: B, proto: TCP }, tcp(40002, 443, F.RST)));
    expect(rst).toMatchObject({ reason: 3, isReply: undefined, tcpFlags: F.RST });
  });

  it('IPv6 TCP through hop-by-hop, destination-options and routing headers; NS flag', async () => {
    const ext: [number, Buffer][] = [
      [0, Buffer.alloc(6)],
      [60, Buffer.alloc(14)],
      [43, Buffer.alloc(22)],
    ];
    const pkt = ipv6({ src: A6, dst: B6, proto: TCP, ext }, tcp(40003, 8443, F.SYN | 0x100));
    const e = await dp.one('from', pkt);
    expect(e).toMatchObject({ ipVersion: 6, srcIp: A6, dstIp: B6, proto: TCP, srcPort: 40003, dstPort: 8443, tcpFlags: 0x102, isReply: false });
    const r = await dp.one('to', ipv6({ src: B6, dst: A6, proto: TCP }, tcp(8443, 40003, F.SYN | F.ACK)));
    expect(r).toMatchObject({ isReply: true, replyPackets: 1n });
  });

  it('TCP sequence and acknowledgement numbers in host order, IPv4 and IPv6; 0 for UDP', async () => {
    const seq = 0xfedcba98, ack = 0x01234567;
    const e4 = await dp.one('from', ipv4({ src: A, dst: B, proto: TCP }, tcp(40020, 80, F.SYN | F.ACK, undefined, undefined, seq, ack)));
    expect([e4.tcpSeq, e4.tcpAck]).toEqual([seq, ack]);
    const e6 = await dp.one('from', ipv6({ src: A6, dst: B6, proto: TCP }, tcp(40020, 80, F.SYN, undefined, undefined, ack, seq)));
    expect([e6.tcpSeq, e6.tcpAck]).toEqual([ack, seq]);
    const u = await dp.one('from', ipv4({ src: A, dst: B, proto: UDP }, udp(40020, 9999, Buffer.alloc(12, 0xff))));
    expect([u.tcpSeq, u.tcpAck]).toEqual([0, 0]);
  });

  it('IPv4 with options, UDP both ways, SCTP', async () => {
    const u = await dp.one('from', ipv4({ src: A, dst: B, proto: UDP, options: Buffer.alloc(8, 1) }, udp(40004, 9999, Buffer.from('hello'))));
    expect(u).toMatchObject({ proto: UDP, srcPort: 40004, dstPort: 9999, payloadLen: 5, l7: 0, isReply: false });
    expect((await dp.run('from', ipv4({ src: A, dst: B, proto: UDP }, udp(40004, 9999, Buffer.from('again'))))).events).toEqual([]);
    expect(await dp.one('to', ipv4({ src: B, dst: A, proto: UDP }, udp(9999, 40004)))).toMatchObject({ isReply: true });
    const s = await dp.one('from', ipv6({ src: A6, dst: B6, proto: SCTP }, sctp(40005, 3868)));
    expect(s).toMatchObject({ proto: SCTP, srcPort: 40005, dstPort: 3868 });
  });

  it('ICMP and ICMPv6 echo: request and reply share a connection by echo id', async () => {
    const req = await dp.one('from', ipv4({ src: A, dst: B, proto: ICMP }, icmp(8, 0, 0x77)));
    expect(req).toMatchObject({ proto: ICMP, icmpType: 8, icmpCode: 0, srcPort: 0, dstPort: 0, isReply: false });
    const rep = await dp.one('to', ipv4({ src: B, dst: A, proto: ICMP }, icmp(0, 0, 0x77)));
    expect(rep).toMatchObject({ icmpType: 0, isReply: true, replyPackets: 1n });
    expect((await dp.run('from', ipv4({ src: A, dst: B, proto: ICMP }, icmp(8, 0, 0x77, 2)))).events).toEqual([]);
    const unreach = await dp.one('to', ipv4({ src: B, dst: A, proto: ICMP }, icmp(3, 3)));
    expect(unreach).toMatchObject({ icmpType: 3, icmpCode: 3 });
    const v6 = await dp.one('from', ipv6({ src: A6, dst: B6, proto: ICMPV6 }, icmp(128, 0, 0x78)));
    expect(v6).toMatchObject({ proto: ICMPV6, icmpType: 128, isReply: false });
    expect(await dp.one('to', ipv6({ src: B6, dst: A6, proto: ICMPV6 }, icmp(129, 0, 0x78)))).toMatchObject({ isReply: true });
  });

  it('DNS over UDP and TCP: query and response payloads', async () => {
    const q = dns(0x1234, 'svc.shop.svc.cluster.local');
    const eq = await dp.one('from', ipv4({ src: A, dst: B, proto: UDP }, udp(40006, 53, q)));
    // The first packet each way is NEW, payload and all; later ones are L7 alone (no L3/L4 flow).
    expect(eq).toMatchObject({ reason: 1, l7: 1, dstPort: 53, payloadLen: q.length, isReply: false });
    expect(eq.payload.equals(q)).toBe(true);
    const r = dns(0x1234, 'svc.shop.svc.cluster.local', '10.202.0.9');
    const er = await dp.one('to', ipv4({ src: B, dst: A, proto: UDP }, udp(53, 40006, r)));
    expect(er).toMatchObject({ reason: 1, l7: 1, srcPort: 53, isReply: true });
    expect(er.payload.equals(r)).toBe(true);
    expect(await dp.one('from', ipv4({ src: A, dst: B, proto: UDP }, udp(40006, 53, q)))).toMatchObject({ reason: 7, l7: 1 });
    const framed = Buffer.concat([Buffer.from([0, q.length]), q]);
    await dp.run('from', ipv6({ src: A6, dst: B6, proto: TCP }, tcp(40007, 53, F.SYN)));
    const et = await dp.one('from', ipv6({ src: A6, dst: B6, proto: TCP }, tcp(40007, 53, F.ACK | F.PSH, framed)));
    expect(et).toMatchObject({ reason: 7, l7: 1, proto: TCP });
    expect(et.payload.equals(framed)).toBe(true);
  });

  it('HTTP/1.x request and response on any port; other payloads are not captured', async () => {
    await dp.run('from', ipv4({ src: A, dst: B, proto: TCP }, tcp(40008, 8080, F.SYN)));
    const req = Buffer.from('GET /orders/42 HTTP/1.1\r\nHost: order-service\r\n\r\n');
    const e = await dp.one('from', ipv4({ src: A, dst: B, proto: TCP }, tcp(40008, 8080, F.ACK | F.PSH, req, Buffer.alloc(12, 1))));
    expect(e).toMatchObject({ reason: 7, l7: 2, payloadLen: req.length, dstPort: 8080 });
    expect(e.payload.toString()).toBe(req.toString());
    expect([e.tcpSeq, e.tcpAck]).toEqual([1000, 0]);
    const resp = Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n');
    const er = await dp.one('to', ipv4({ src: B, dst: A, proto: TCP }, tcp(8080, 40008, F.ACK | F.PSH, resp)));
    expect(er).toMatchObject({ reason: 1, l7: 2, isReply: true }); // the first packet that way
    expect(er.payload.toString()).toBe(resp.toString());
    let seq = 1000 + req.length;
    for (const method of ['POST', 'PUT ', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS']) {
      const p = Buffer.from(`${method} /x HTTP/1.1\r\n\r\n`);
      expect((await dp.one('from', ipv4({ src: A, dst: B, proto: TCP }, tcp(40008, 8080, F.ACK, p, undefined, seq)))).l7).toBe(2);
      seq += p.length;
    }
    // A direction whose first payload is something else is not HTTP (one that started as HTTP sends
    // every payload segment, bodies included: see fastpath.bpf.test.ts).
    let port = 40108;
    for (const other of ['HTTP/2.0 frames', 'GETX /x', 'SSH-2.0-OpenSSH_9']) {
      await dp.run('from', ipv4({ src: A, dst: B, proto: TCP }, tcp(port, 8080, F.SYN)));
      expect((await dp.run('from', ipv4({ src: A, dst: B, proto: TCP }, tcp(port, 8080, F.ACK, Buffer.from(other))))).events).toEqual([]);
      port++;
    }
  });

  it('a payload longer than max_payload is cut and counted', async () => {
    const body = Buffer.concat([Buffer.from('POST /upload HTTP/1.1\r\n\r\n'), Buffer.alloc(1400, 0x61)]);
    const before = dp.counters().l7Truncated;
    const e = await dp.one('from', ipv4({ src: A, dst: B, proto: TCP }, tcp(40009, 8081, F.ACK, body)));
    expect(e).toMatchObject({ l7: 2, payloadLen: body.length });
    expect(e.payload.equals(body.subarray(0, 512))).toBe(true);
    expect(dp.counters().l7Truncated - before).toBe(1n);
  });

  it('fragments: the first is a normal packet, later ones pass without an event and are counted', async () => {
    const first = ipv4({ src: A, dst: B, proto: UDP, mf: true }, udp(40010, 5000, Buffer.alloc(64)));
    expect(await dp.one('from', first)).toMatchObject({ srcPort: 40010, dstPort: 5000, proto: UDP });
    const before = dp.counters().fragments;
    const later = ipv4({ src: A, dst: B, proto: UDP, fragOffset: 9 }, Buffer.alloc(64, 0xee));
    expect(await dp.run('from', later)).toEqual({ retval: TC_ACT_OK, events: [] });
    const later6 = ipv6({ src: A6, dst: B6, proto: UDP, ext: [[44, Buffer.from([0, 0x48, 0, 0, 0, 1])]] }, Buffer.alloc(64, 0xee));
    expect(await dp.run('to', later6)).toEqual({ retval: TC_ACT_OK, events: [] });
    expect(dp.counters().fragments - before).toBe(2n);
    const first6 = ipv6({ src: A6, dst: B6, proto: UDP, ext: [[44, Buffer.from([0, 0x01, 0, 0, 0, 2])]] }, udp(40011, 5001, Buffer.alloc(16)));
    expect(await dp.one('from', first6)).toMatchObject({ srcPort: 40011, dstPort: 5001, proto: UDP });
  });

  it('truncated and malformed packets pass untouched and are counted', async () => {
    const full = ipv4({ src: A, dst: B, proto: TCP }, tcp(40012, 80, F.SYN));
    const full6 = ipv6({ src: A6, dst: B6, proto: UDP, ext: [[0, Buffer.alloc(6)]] }, udp(40013, 80));
    // test_run itself refuses frames shorter than a bare IPv4 (20) or IPv6 (40) header, so
    // truncation is shown with headers whose own length fields overrun the frame.
    const bad = [
      (() => {
        const p = Buffer.from(full.subarray(0, 14 + 20));
        p[14] = 0x4f; // IHL 15: options beyond the end
        return p;
      })(),
      full.subarray(0, 14 + 20 + 10), // TCP header cut
      ipv4({ src: A, dst: B, proto: TCP, totalLength: 200 }, tcp(40012, 80, F.SYN)), // length lies
      ipv4({ src: A, dst: B, proto: UDP }, Buffer.alloc(4)), // UDP header cut
      ipv4({ src: A, dst: B, proto: ICMP }, Buffer.alloc(3)),
      (() => {
        const p = Buffer.from(full6.subarray(0, 14 + 40)); // hop-by-hop announced, absent
        p.writeUInt16BE(0, 14 + 4);
        return p;
      })(),
      full6.subarray(0, 14 + 40 + 4), // extension header cut
      eth(0x0800, Buffer.from([0x65, 0, 0, 40, ...Buffer.alloc(36)])), // version 6 in an IPv4 frame
      ipv6({ src: A6, dst: B6, proto: TCP }, tcp(40012, 80, F.SYN)).fill(0x45, 14, 15), // version 4 in an IPv6 frame
      (() => {
        const p = ipv6({ src: A6, dst: B6, proto: TCP }, tcp(40012, 80, F.SYN));
        return eth(0x0800, p.subarray(14)); // a whole IPv6 packet in an IPv4 frame
      })(),
      eth(0x0800, Buffer.from([0x43, 0, 0, 40, ...Buffer.alloc(36)])), // IHL 3
      (() => {
        const p = Buffer.from(full);
        p[14 + 20 + 12] = 0x20; // TCP data offset 2
        return p;
      })(),
    ];
    const before = dp.counters();
    for (const p of bad) {
      const r = await dp.run('from', p);
      expect(r).toEqual({ retval: TC_ACT_OK, events: [] });
    }
    const after = dp.counters();
    expect(after.malformed - before.malformed).toBe(BigInt(bad.length));
    expect(after.events - before.events).toBe(0n);
  });

  it('non-IP frames pass and are counted; random garbage never breaks anything', async () => {
    const before = dp.counters();
    expect(await dp.run('to', eth(0x0806, Buffer.alloc(28)))).toEqual({ retval: TC_ACT_OK, events: [] });
    expect(dp.counters().nonIp - before.nonIp).toBe(1n);
    for (let i = 0; i < 200; i++) {
      const type = [0x0800, 0x86dd, 0x8100][i % 3]!;
      // At least 40 bytes: test_run refuses shorter IP frames before the program runs.
      const r = await dp.run(i % 2 ? 'from' : 'to', eth(type, randomBytes(40 + (i % 120))));
      expect(r.retval).toBe(TC_ACT_OK);
    }
    const after = dp.counters();
    expect(after.packets - before.packets).toBe(201n);
    expect(after.ringbufFull).toBe(0n);
  });
});

describe.skipIf(skip)('flowctl TC datapath: knobs', () => {
  it('every_packet emits for every packet, including later fragments', async () => {
    const dp = new Datapath({ everyPacket: true });
    try {
      await dp.one('from', ipv4({ src: A, dst: B, proto: TCP }, tcp(40020, 80, F.SYN)));
      const e = await dp.one('from', ipv4({ src: A, dst: B, proto: TCP }, tcp(40020, 80, F.ACK)));
      expect(e).toMatchObject({ reason: 5, packets: 2n });
      expect(await dp.one('from', ipv4({ src: A, dst: B, proto: UDP, fragOffset: 3 }, Buffer.alloc(32)))).toMatchObject({ reason: 5, proto: UDP, srcPort: 0 });
    } finally {
      dp.close();
    }
  });

  it('stats_interval_ns sends a stats event for a connection quiet for that long', async () => {
    const dp = new Datapath({ statsIntervalNs: 1n });
    try {
      await dp.one('from', ipv4({ src: A, dst: B, proto: TCP }, tcp(40021, 80, F.SYN)));
      const e = await dp.one('from', ipv4({ src: A, dst: B, proto: TCP }, tcp(40021, 80, F.ACK)));
      expect(e).toMatchObject({ reason: 4, packets: 2n });
    } finally {
      dp.close();
    }
  });

  it('HTTP: follows a direction from its SYN and copies a message starting past the first 512 bytes (bpf/l7.bpf.h)', async () => {
    const dp = new Datapath();
    try {
      await followed(dp);
    } finally {
      dp.close();
    }
  });

  it('HTTP: a segment seen before the bytes ahead of it waits for them; a retransmission is not sent again', async () => {
    const dp = new Datapath();
    try {
      const c = (flags: number, payload = '', seq = 1000) => ipv4({ src: A, dst: B, proto: TCP }, tcp(40032, 80, flags, Buffer.from(payload, 'latin1'), undefined, seq));
      const s = (flags: number, payload = '', seq = 5000) => ipv4({ src: B, dst: A, proto: TCP }, tcp(80, 40032, flags, Buffer.from(payload, 'latin1'), undefined, seq));
      await dp.run('from', c(F.SYN));
      await dp.run('to', s(F.SYN | F.ACK));
      const get = 'GET /0 HTTP/1.1\r\n\r\nGET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n';
      expect((await dp.run('from', c(F.ACK | F.PSH, get, 1001))).events).toHaveLength(1);
      const zero = 'HTTP/1.1 204 No Content\r\n\r\n';
      expect((await dp.run('to', s(F.ACK | F.PSH, zero, 5001))).events).toHaveLength(1);
      // Two more responses; the segment holding the second's start passes TC first (veth's
      // per-CPU backlogs reorder a sender's segments).
      const one = `HTTP/1.1 200 OK\r\nContent-Length: 1500\r\n\r\n${'x'.repeat(1500)}`;
      const two = 'HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nabc';
      const a = one.slice(0, 1000);
      const b = one.slice(1000) + two;
      const at = 5001 + zero.length;
      const early = await dp.run('to', s(F.ACK | F.PSH, b, at + a.length));
      expect(early.retval).toBe(TC_ACT_OK);
      expect(early.events).toEqual([]);
      const both = (await dp.run('to', s(F.ACK | F.PSH, a, at))).events;
      expect(both.map((e) => [e.tcpSeq, e.capturedOff, e.l7Followed, e.l7Start, e.l7Msg, e.l7Starts])).toEqual([
        [at, 0, true, 0, 1, 1],
        [at + a.length, one.length - a.length, true, one.length - a.length, 2, 1],
      ]);
      expect(both[1]!.payload.toString('latin1')).toBe(two);
      // Retransmissions of bytes already sent: nothing, and nothing counted lost.
      const lost = () => { const k = dp.counters(); return k.l7LostHttpRequests + k.l7LostHttpResponses; };
      const lost0 = lost();
      expect((await dp.run('to', s(F.ACK | F.PSH, a, at))).events).toEqual([]);
      expect((await dp.run('to', s(F.ACK | F.PSH, b, at + a.length))).events).toEqual([]);
      expect((await dp.run('from', c(F.ACK | F.PSH, get, 1001))).events).toEqual([]);
      expect(lost()).toBe(lost0);
      const three = (await dp.run('to', s(F.ACK | F.PSH, two, at + one.length + two.length))).events;
      expect(three.map((e) => [e.l7Followed, e.l7Start, e.l7Msg])).toEqual([[true, 0, 3]]);
      // Two segments early: the last waits in the stash, the middle one goes unfollowed. When the
      // next start turns out to be in bytes sent that way, the direction is no longer followed
      // and the stash is sent at once, unfollowed, rather than waiting for a turn that never comes.
      const four = `HTTP/1.1 200 OK\r\nContent-Length: 300\r\n\r\n${'z'.repeat(300)}`;
      const data = four + two + two;
      const s4 = at + one.length + 2 * two.length;
      const cut = [0, 200, four.length + 20, data.length];
      const part = (i: number) => s(F.ACK | F.PSH, data.slice(cut[i], cut[i + 1]), s4 + cut[i]!);
      expect((await dp.run('to', part(2))).events).toEqual([]);
      expect((await dp.run('to', part(1))).events.map((e) => e.l7Followed)).toEqual([false]);
      const late = (await dp.run('to', part(0))).events;
      expect(late.map((e) => [e.tcpSeq, e.l7Followed, e.l7Start])).toEqual([[s4, true, 0], [s4 + cut[2]!, false, undefined]]);
      expect((await dp.run('to', s(F.ACK | F.PSH, two, s4 + data.length + 50))).events.map((e) => e.l7Followed)).toEqual([false]);
      // A direction the kernel does not follow (its SYN was not seen) sends segments as they come;
      // the bytes of a hole are still new when they come after the run past it.
      const u = (payload: string, seq: number) => ipv4({ src: A, dst: B, proto: TCP }, tcp(40033, 80, F.ACK | F.PSH, Buffer.from(payload, 'latin1'), undefined, seq));
      const [r1, r2, r3, r4] = ['GET /u1 HTTP/1.1\r\n\r\n', 'GET /u2 HTTP/1.1\r\n\r\n', 'GET /u3 HTTP/1.1\r\n\r\n', 'GET /u4 HTTP/1.1\r\n\r\n'] as const;
      const seqs = [7000, 7000 + r1.length, 7000 + r1.length + r2.length, 7000 + r1.length + r2.length + r3.length] as const;
      const seen = async (p: string, seq: number) => (await dp.run('from', u(p, seq))).events.map((e) => e.payload.toString('latin1'));
      expect(await seen(r1, seqs[0])).toEqual([r1]);
      expect(await seen(r3, seqs[2])).toEqual([r3]);
      expect(await seen(r2, seqs[1])).toEqual([r2]);
      expect(await seen(r2, seqs[1])).toEqual([]);
      expect(await seen(r3, seqs[2])).toEqual([]);
      expect(await seen(r4, seqs[3])).toEqual([r4]);
      expect(await seen(r1 + r2, seqs[0])).toEqual([]);
    } finally {
      dp.close();
    }
  });

  async function followed(dp: Datapath): Promise<void> {
    const c = (flags: number, payload = '', seq = 1000) => ipv4({ src: A, dst: B, proto: TCP }, tcp(40031, 80, flags, Buffer.from(payload, 'latin1'), undefined, seq));
    const s = (flags: number, payload = '', seq = 5000) => ipv4({ src: B, dst: A, proto: TCP }, tcp(80, 40031, flags, Buffer.from(payload, 'latin1'), undefined, seq));
    await dp.run('from', c(F.SYN));
    await dp.run('to', s(F.SYN | F.ACK));
    const reqs = 'GET /1 HTTP/1.1\r\nHost: b\r\n\r\nGET /2 HTTP/1.1\r\nHost: b\r\n\r\n';
    const r = await dp.run('from', c(F.ACK | F.PSH, reqs, 1001));
    expect(r.events.map((e) => [e.capturedOff, e.l7Followed, e.l7Start, e.l7Msg, e.l7Starts, e.l7More])).toEqual([[0, true, 0, 0, 2, 0]]);
    const one = `HTTP/1.1 200 OK\r\nContent-Length: 2000\r\n\r\n${'x'.repeat(2000)}`;
    const two = 'HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nabc';
    const w = (await dp.run('to', s(F.ACK | F.PSH, one + two, 5001))).events;
    expect(w.map((e) => [e.capturedOff, e.l7Followed, e.l7Start, e.l7Msg, e.l7Starts, e.l7More, e.payload.length])).toEqual([
      [0, true, 0, 0, 1, one.length, 512],
      [one.length, true, one.length, 1, 1, 0, two.length],
    ]);
    expect(w[1]!.payload.toString('latin1')).toBe(two);
    // A body segment names no start; a HEAD request ends the following of the responses.
    const body = `HTTP/1.1 200 OK\r\nContent-Length: 600\r\n\r\n${'y'.repeat(100)}`;
    const fake = 'GET /not-a-request HTTP/1.1\r\n\r\n';
    const get3 = 'GET /3 HTTP/1.1\r\n\r\n';
    let next = 5001 + one.length + two.length;
    expect((await dp.run('from', c(F.ACK | F.PSH, get3, 1001 + reqs.length))).events).toHaveLength(1);
    await dp.run('to', s(F.ACK | F.PSH, body, next));
    next += body.length;
    const mid = (await dp.run('to', s(F.ACK | F.PSH, fake, next))).events;
    expect(mid.map((e) => [e.capturedOff, e.l7Followed, e.l7Start, e.l7Starts])).toEqual([[0, true, undefined, 0]]);
    next += fake.length;
    await dp.run('from', c(F.ACK | F.PSH, 'HEAD /4 HTTP/1.1\r\n\r\n', 1001 + reqs.length + get3.length));
    const after = (await dp.run('to', s(F.ACK | F.PSH, 'y'.repeat(500 - fake.length) + two + two, next))).events;
    expect(after.map((e) => [e.capturedOff, e.l7Followed, e.l7Start])).toEqual([[0, false, undefined]]);
  }

  it('max_payload bounds the snippet', async () => {
    const dp = new Datapath({ maxPayload: 16 });
    try {
      const req = Buffer.from('GET /a/long/path/here HTTP/1.1\r\n\r\n');
      const e = await dp.one('from', ipv4({ src: A, dst: B, proto: TCP }, tcp(40022, 80, F.ACK, req)));
      expect(e.payload.toString()).toBe('GET /a/long/path');
      expect(e.payloadLen).toBe(req.length);
    } finally {
      dp.close();
    }
  });
});
