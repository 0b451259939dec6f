// Budgets of new-connection events (budget.bpf.h) under BPF_PROG_TEST_RUN: a source over its token
// bucket gets no connection entry and no event, only its place in a summary record its timer sends;
// sources without a bucket share one per interface; a completed handshake is always seen; policy
// verdicts still hold for suppressed packets; --syn-flood-protect drops over-budget SYNs past the
// destination's half-open threshold while other sources' connections are untouched.
import { afterEach, describe, expect, it } from 'vitest';
import { Datapath, skipReason, TC_ACT_OK, TC_ACT_SHOT } from './harness.js';
import { F, icmp, ICMP, ipv4, TCP, tcp, UDP, udp } from './packets.js';

const skip = skipReason();

const POD = '10.202.7.2';
const ATTACKER = '10.202.7.66';
const CLIENT = '10.202.7.10';
const SEC = 1_000_000_000n;
/** Burst 5, no refill within a test; summaries 300 ms after a window's first suppressed packet. */
const BUDGET = { intervalNs: 60n * SEC, burst: 5, reportNs: 300_000_000n };

const synTo = (src: string, sport: number, dport = 80) => ipv4({ src, dst: POD, proto: TCP }, tcp(sport, dport, F.SYN));
const ackTo = (src: string, sport: number, dport = 80) => ipv4({ src, dst: POD, proto: TCP }, tcp(sport, dport, F.ACK));
const synAckFrom = (dst: string, dport: number) => ipv4({ src: POD, dst, proto: TCP }, tcp(80, dport, F.SYN | F.ACK));
const udpTo = (src: string, sport: number, dport: number) => ipv4({ src, dst: POD, proto: UDP }, udp(sport, dport, Buffer.from('x')));
const pingTo = (src: string, id: number) => ipv4({ src, dst: POD, proto: ICMP }, icmp(8, 0, id));
const dataFrom = (dst: string, dport: number) => ipv4({ src: POD, dst, proto: TCP }, tcp(80, dport, F.ACK | F.PSH, Buffer.from('x'.repeat(40))));

async function summaries(dp: Datapath, n: number) {
  const deadline = Date.now() + 3000;
  while (dp.summaries.length < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  return dp.summaries;
}

/** Every summary sent until `packets` suppressed packets are reported (a slow machine may split a window). */
async function reported(dp: Datapath, packets: bigint) {
  const deadline = Date.now() + 3000;
  const sum = () => dp.summaries.reduce((s, e) => s + e.packets, 0n);
  while (sum() < packets && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  expect(sum()).toBe(packets);
  return dp.summaries;
}

describe.skipIf(skip)('flowctl TC datapath: budgets of new-connection events (test_run)', () => {
  let dp: Datapath | undefined;
  afterEach(() => {
    dp?.close();
    dp = undefined;
  });

  it('a source over its budget starts no entry and no event; one summary says how many SYNs, from whom, to where', async () => {
    dp = new Datapath({ budget: BUDGET });
    for (let i = 0; i < 5; i++) expect((await dp.run('to', synTo(ATTACKER, 20000 + i))).events).toHaveLength(1);
    const before = dp.counters();
    // One attempt repeated in the kernel: it never gets an entry, so each run is suppressed anew.
    const r = await dp.run('to', synTo(ATTACKER, 20005), 35);
    expect(r.events).toHaveLength(0);
    expect(r.retval).toBe(TC_ACT_OK); // observed, not dropped: the mitigation is off
    const after = dp.counters();
    expect(after.connSuppressed - before.connSuppressed).toBe(35n);
    expect(after.conn4Slots).toBe(before.conn4Slots); // no entry for a suppressed attempt
    expect(dp.obj.map('flows4').keys()).toHaveLength(0);

    const [s, ...rest] = await summaries(dp, 1);
    expect(rest).toHaveLength(0);
    expect(s).toMatchObject({
      kind: 'suppressed', origin: 'tc', srcIp: ATTACKER, dstIp: POD, dstPort: 80, packets: 35n, syns: 35n, dropped: 0n,
      manySources: false, obsPoint: 2, verdict: 1, tcpFlags: F.SYN,
    });
    expect(s!.tsNs - s!.firstNs).toBeGreaterThanOrEqual(300_000_000n);
    expect(dp.counters().suppressedSummaries).toBe(1n);

    // The next window starts with the next suppressed packet, and reports only its own.
    await dp.run('to', synTo(ATTACKER, 21000));
    expect((await summaries(dp, 2))[1]).toMatchObject({ packets: 1n, syns: 1n });
  });

  it('another source keeps its own budget: its connections are seen while the flood is suppressed', async () => {
    dp = new Datapath({ budget: BUDGET });
    for (let i = 0; i < 30; i++) await dp.run('to', synTo(ATTACKER, 20000 + i));
    for (let i = 0; i < 4; i++) {
      const ev = await dp.one('to', synTo(CLIENT, 30000 + i));
      expect(ev).toMatchObject({ srcIp: CLIENT, reason: 1 });
    }
    // Its answers and data belong to the stored connection: no budget is spent on them.
    expect((await dp.run('from', synAckFrom(CLIENT, 30000))).events).toHaveLength(1);
    expect((await dp.run('from', dataFrom(CLIENT, 30000))).retval).toBe(TC_ACT_OK);
    expect(dp.counters().connSuppressed).toBe(25n);
  });

  it('a SYN-ACK or RST that would start an entry counts against the opener; the completing ACK is always seen', async () => {
    dp = new Datapath({ budget: BUDGET });
    for (let i = 0; i < 5; i++) await dp.run('to', synTo(ATTACKER, 20000 + i));
    await dp.run('to', synTo(ATTACKER, 25000)); // suppressed
    expect((await dp.run('from', synAckFrom(ATTACKER, 25000))).events).toHaveLength(0); // suppressed: opener is the attacker
    const rst = ipv4({ src: ATTACKER, dst: POD, proto: TCP }, tcp(25001, 80, F.RST));
    expect((await dp.run('to', rst)).events).toHaveLength(0);
    // A handshake that completes is not a spoofed attempt: its ACK starts the connection's entry and event.
    const ev = await dp.one('to', ackTo(ATTACKER, 25000));
    expect(ev).toMatchObject({ srcIp: ATTACKER, dstPort: 80, reason: 1 });
    const all = await reported(dp, 3n);
    expect(all.reduce((s, e) => s + e.syns, 0n)).toBe(1n);
    expect(all.reduce((f, e) => f | e.tcpFlags, 0)).toBe(F.SYN | F.ACK | F.RST);
  });

  it('sources without a bucket share one: a flood from many addresses is one summary', async () => {
    dp = new Datapath({ budget: BUDGET });
    const src = (i: number) => `10.${100 + (i >> 8)}.${i & 0xff}.9`;
    let seen = 0;
    for (let i = 0; i < 50; i++) seen += (await dp.run('to', synTo(src(i), 40000))).events.length;
    expect(seen).toBe(5);
    const all = await reported(dp, 45n);
    expect(all.every((s) => s.manySources && s.dstIp === POD && s.dstPort === 80 && s.syns === s.packets)).toBe(true);
    expect(all.at(-1)!.srcIp).toBe(src(49));
    // One of the admitted sources now has its own bucket (burst less the token it used).
    for (let i = 0; i < 4; i++) expect((await dp.run('to', synTo(src(0), 40001 + i))).events).toHaveLength(1);
    expect((await dp.run('to', synTo(src(0), 40010))).events).toHaveLength(0);
  });

  it('a suppressed SYN keeps its policy verdict', async () => {
    dp = new Datapath({ budget: BUDGET });
    dp.writer.writeIdentities([{ cidr: `${POD}/32`, identity: 1002 }, { cidr: `${ATTACKER}/32`, identity: 1003 }]);
    dp.writer.writePolicy({
      revision: 1, entries: [], enforced: new Map([[1002, { ingress: true, egress: false }]]), cidrIdentities: [], refs: [], selectedBy: new Map(),
    } as never);
    for (let i = 0; i < 5; i++) expect((await dp.run('to', synTo(ATTACKER, 20000 + i))).retval).toBe(TC_ACT_SHOT);
    const r = await dp.run('to', synTo(ATTACKER, 20010));
    expect(r.events).toHaveLength(0);
    expect(r.retval).toBe(TC_ACT_SHOT);
    const [s] = await summaries(dp, 1);
    expect(s).toMatchObject({ packets: 1n, dropped: 1n, verdict: 2, dropReason: 133 });
  });

  it('--syn-flood-protect: past the half-open threshold over-budget SYNs are dropped and counted; other connections are not', async () => {
    dp = new Datapath({ budget: { ...BUDGET, synProtectHalfopen: 3 } });
    // An established connection of another source first.
    await dp.run('to', synTo(CLIENT, 30000));
    await dp.run('from', synAckFrom(CLIENT, 30000));
    await dp.run('to', ackTo(CLIENT, 30000));
    for (let i = 0; i < 5; i++) expect((await dp.run('to', synTo(ATTACKER, 20000 + i))).retval).toBe(TC_ACT_OK);
    // Half-open 1..3 are within the threshold, the 17 after them are dropped (one attempt repeated in the kernel).
    expect((await dp.run('to', synTo(ATTACKER, 20005), 20)).retval).toBe(TC_ACT_SHOT);
    expect(dp.counters().synFloodDropped).toBe(17n);
    // The established connection and a new one of a source within its budget pass.
    expect((await dp.run('from', dataFrom(CLIENT, 30000))).retval).toBe(TC_ACT_OK);
    expect((await dp.run('to', ackTo(CLIENT, 30000))).retval).toBe(TC_ACT_OK);
    expect(await dp.one('to', synTo(CLIENT, 30001))).toMatchObject({ retval: TC_ACT_OK, reason: 1 });
    const all = await reported(dp, 20n);
    expect(all.reduce((s, e) => s + e.dropped, 0n)).toBe(17n);
    expect(all.at(-1)).toMatchObject({ verdict: 2, dropReason: 198 });
  });

  it('UDP, ICMP and DNS flows spend buckets of their own kind: a UDP flood hides neither the source\'s TCP nor its DNS', async () => {
    dp = new Datapath({ budget: { ...BUDGET, dnsIntervalNs: 200_000_000n } });
    // Every UDP packet without an entry is a new flow: 5 admitted, the rest suppressed.
    let seen = 0;
    for (let i = 0; i < 12; i++) seen += (await dp.run('to', udpTo(ATTACKER, 30000 + i, 9999))).events.length;
    expect(seen).toBe(5);
    // The same source's TCP connections and DNS lookups are in other buckets; DNS's refills faster
    // (here a token per 200 ms: the 8 lookups, 100 ms apart, all pass after the burst of 5).
    expect(await dp.one('to', synTo(ATTACKER, 20000))).toMatchObject({ reason: 1 });
    seen = 0;
    for (let i = 0; i < 8; i++) {
      if (i >= 5) await new Promise((r) => setTimeout(r, 210));
      seen += (await dp.run('to', udpTo(ATTACKER, 31000 + i, 53))).events.length;
    }
    expect(seen).toBe(8);
    for (let i = 0; i < 2; i++) seen += (await dp.run('to', udpTo(ATTACKER, 31100 + i, 53))).events.length;
    expect(seen).toBe(8);
    // ICMP: pings with new ids are new flows; an echo reply starting an entry counts against the pinger.
    seen = 0;
    for (let i = 0; i < 7; i++) seen += (await dp.run('to', pingTo(ATTACKER, 100 + i))).events.length;
    expect(seen).toBe(5);
    const reply = ipv4({ src: POD, dst: ATTACKER, proto: ICMP }, icmp(0, 0, 200));
    expect((await dp.run('from', reply)).events).toHaveLength(0);
    const all = await reported(dp, 7n + 2n + 3n);
    const of = (proto: number, port?: number) => all.filter((e) => e.proto === proto && (port === undefined || e.dstPort === port));
    expect(of(UDP, 9999).reduce((s, e) => s + e.packets, 0n)).toBe(7n);
    expect(of(UDP, 53).reduce((s, e) => s + e.packets, 0n)).toBe(2n);
    // ICMP summaries carry the opener's type where a port would be: an echo reply's flow is an echo request's (8).
    expect(of(ICMP).reduce((s, e) => s + e.packets, 0n)).toBe(3n);
    expect(of(ICMP).at(-1)).toMatchObject({ dstPort: 8, srcIp: ATTACKER, dstIp: POD });
    expect(all.every((e) => e.srcIp === ATTACKER && e.syns === 0n || e.proto === TCP)).toBe(true);
    expect(dp.counters().connSuppressed).toBe(12n);
  });

  it('without budgets (interval 0) every attempt has its event', async () => {
    dp = new Datapath();
    let seen = 0;
    for (let i = 0; i < 30; i++) seen += (await dp.run('to', synTo(ATTACKER, 20000 + i))).events.length;
    expect(seen).toBe(30);
    expect(dp.counters().connSuppressed).toBe(0n);
  });
});
