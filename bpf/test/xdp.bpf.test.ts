// The XDP drop list (bpf/xdp.bpf.c) through BPF_PROG_TEST_RUN, loaded and written by the agent's
// own XdpDropList: the verifier accepts it, listed sources and destinations are dropped (IPv4 via
// the /24 bitmaps, IPv6 via the bitmaps of hashed /64s and /32s), everything else passes, expiry,
// per-entry counters, and the sampled drop events (one per entry and source per interval,
// carrying the packets in between; a per-CPU budget), and --syn-flood-protect: SYNs of a source over
// its budget dropped past the destination's threshold, summed in summaries, other packets untouched.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { parseBlockCidr } from '../../packages/flow/src/block.js';
import { XdpDropList } from '../../packages/agent/src/datapath/xdp.js';
import type { SuppressedEvent, XdpDropEvent } from '../../packages/agent/src/datapath/events.js';
import { eth, F, icmp, ipv4, ipv6, tcp, udp, TCP, UDP, ICMP } from './packets.js';
import { skipReason } from './harness.js';

const OBJECT = fileURLToPath(new URL('../.output/xdp.bpf.o', import.meta.url));
const XDP_DROP = 1;
const XDP_PASS = 2;
const skip = skipReason();

let list: XdpDropList | undefined;
afterEach(() => {
  list?.close();
  list = undefined;
});

interface Harness {
  list: XdpDropList;
  events: XdpDropEvent[];
  summaries: SuppressedEvent[];
  run(data: Buffer, repeat?: number): Promise<{ retval: number; events: XdpDropEvent[] }>;
  block(cidr: string, id: number, expiresNs?: bigint): void;
}

function open(o: ConstructorParameters<typeof XdpDropList>[0] extends infer T ? Partial<T> : never = {}): Harness {
  if (!existsSync(OBJECT)) throw new Error(`${OBJECT} is missing: run make -C bpf`);
  const l = new XdpDropList({ object: OBJECT, ...o });
  list = l;
  const events: XdpDropEvent[] = [];
  const summaries: SuppressedEvent[] = [];
  l.start((evs) => {
    for (const e of evs) if (e.kind === 'suppressed') summaries.push(e);
    else events.push(e);
  }, (e) => {
    throw e;
  });
  const prog = l.obj.program('flowctl_xdp_drop');
  return {
    list: l,
    events,
    summaries,
    block: (cidr, id, expiresNs = 0n) => l.write({ id, prefix: parseBlockCidr(cidr).prefix, expiresNs }),
    async run(data, repeat = 1) {
      const before = l.counters().xdpEvents;
      const n0 = events.length;
      const r = prog.testRun({ data, repeat });
      const want = n0 + Number(l.counters().xdpEvents - before);
      const deadline = Date.now() + 2000;
      while (events.length < want) {
        if (Date.now() > deadline) throw new Error(`ring delivered ${events.length - n0} of ${want - n0} events`);
        await new Promise((res) => setTimeout(res, 1));
      }
      return { retval: r.retval, events: events.slice(n0) };
    },
  };
}

const syn = (src: string, dst: string, sport = 40000) => ipv4({ src, dst, proto: TCP }, tcp(sport, 80, F.SYN));

describe.skipIf(skip !== undefined)('XDP drop list (BPF_PROG_TEST_RUN)', () => {
  it('loads (the verifier accepts it) and passes everything while the list is empty', async () => {
    const h = open();
    expect(h.list.obj.program('flowctl_xdp_drop').type).toBe('xdp');
    expect((await h.run(syn('10.1.2.3', '10.9.9.9'))).retval).toBe(XDP_PASS);
    expect((await h.run(ipv6({ src: 'fd00::1', dst: 'fd00::2', proto: UDP }, udp(1, 2)))).retval).toBe(XDP_PASS);
    expect((await h.run(eth(0x0806, Buffer.alloc(28)))).retval).toBe(XDP_PASS);
    expect(h.list.counters().xdpDropped).toBe(0n);
  });

  it('drops a listed source or destination, CIDR or host, and passes its neighbours', async () => {
    const h = open();
    h.block('203.0.113.0/24', 1);
    h.block('198.51.100.7', 2);
    h.block('10.0.0.0/8', 3);
    const first = await h.run(syn('203.0.113.9', '192.0.2.1'));
    expect(first.retval).toBe(XDP_DROP);
    expect(first.events).toMatchObject([{ kind: 'xdrop', entryId: 1, matched: 'source', srcIp: '203.0.113.9', dstIp: '192.0.2.1', proto: TCP, srcPort: 40000, dstPort: 80, tcpFlags: F.SYN, packets: 1n }]);
    expect((await h.run(syn('203.0.114.9', '192.0.2.1'))).retval).toBe(XDP_PASS);
    expect((await h.run(syn('198.51.100.7', '192.0.2.1'))).retval).toBe(XDP_DROP);
    expect((await h.run(syn('198.51.100.8', '192.0.2.1'))).retval).toBe(XDP_PASS);
    // A /8 covers 65,536 bits of the /24 bitmap.
    expect((await h.run(syn('10.250.3.4', '192.0.2.1'))).retval).toBe(XDP_DROP);
    const toListed = await h.run(ipv4({ src: '192.0.2.1', dst: '198.51.100.7', proto: UDP }, udp(5353, 53)));
    expect(toListed.retval).toBe(XDP_DROP);
    expect(toListed.events[0]).toMatchObject({ entryId: 2, matched: 'destination', proto: UDP, srcPort: 5353, dstPort: 53 });
    const ping = await h.run(ipv4({ src: '203.0.113.1', dst: '192.0.2.1', proto: ICMP }, icmp(8, 0, 7)));
    expect(ping.events[0]).toMatchObject({ proto: ICMP, icmpType: 8, icmpCode: 0, srcPort: 0 });
  });

  it('drops IPv6 by prefix and behind a VLAN tag', async () => {
    const h = open();
    h.block('2001:db8:bad::/48', 9);
    const r = await h.run(ipv6({ src: '2001:db8:bad::1', dst: 'fd00::2', proto: TCP }, tcp(1234, 443, F.SYN)));
    expect(r.retval).toBe(XDP_DROP);
    expect(r.events[0]).toMatchObject({ ipVersion: 6, srcIp: '2001:db8:bad::1', dstIp: 'fd00::2', dstPort: 443, entryId: 9 });
    expect((await h.run(ipv6({ src: '2001:db8:bae::1', dst: 'fd00::2', proto: TCP }, tcp(1234, 443, F.SYN)))).retval).toBe(XDP_PASS);
    h.block('192.0.2.0/24', 10);
    const inner = syn('192.0.2.5', '10.9.9.9');
    const tagged = Buffer.concat([inner.subarray(0, 12), Buffer.from([0x81, 0x00, 0x00, 0x2a]), inner.subarray(12)]);
    expect((await h.run(tagged)).retval).toBe(XDP_DROP);
  });

  it('passes truncated IP headers untouched', async () => {
    const h = open();
    h.block('192.0.2.0/24', 1);
    expect((await h.run(syn('192.0.2.5', '10.9.9.9').subarray(0, 14 + 12))).retval).toBe(XDP_PASS);
  });

  it('counts per entry and stops dropping when an entry is deleted or has expired', async () => {
    const h = open();
    h.block('192.0.2.0/24', 4);
    const pkt = syn('192.0.2.5', '10.9.9.9');
    expect((await h.run(pkt, 1000)).retval).toBe(XDP_DROP);
    expect(h.list.counts().get(4)).toEqual({ packets: 1000n, bytes: BigInt(1000 * pkt.length) });
    h.list.delete({ id: 4, prefix: parseBlockCidr('192.0.2.0/24').prefix, expiresNs: 0n });
    expect((await h.run(pkt)).retval).toBe(XDP_PASS);
    expect(h.list.counts().has(4)).toBe(false);

    h.block('198.51.100.0/24', 5, process.hrtime.bigint() - 100_000_000n); // the kernel compares with its coarse clock
    expect((await h.run(syn('198.51.100.1', '10.9.9.9'))).retval).toBe(XDP_PASS);
    expect(h.list.counters().xdpExpired).toBe(1n);
    h.block('198.51.100.0/24', 5, process.hrtime.bigint() + 60_000_000_000n);
    expect((await h.run(syn('198.51.100.1', '10.9.9.9'))).retval).toBe(XDP_DROP);
  });

  it('looks /32 entries up by hash where no shorter prefix covers their /24', async () => {
    const h = open();
    h.block('192.0.2.7', 1);
    expect((await h.run(syn('192.0.2.7', '10.9.9.9'))).retval).toBe(XDP_DROP);
    expect((await h.run(syn('192.0.2.8', '10.9.9.9'))).retval).toBe(XDP_PASS);
    expect(h.list.obj.map('drop4_hosts').keys().map((k) => k.toString('hex'))).toEqual(['c0000207']);
    h.list.delete({ id: 1, prefix: parseBlockCidr('192.0.2.7').prefix, expiresNs: 0n });
    expect(h.list.obj.map('drop4_hosts').keys()).toEqual([]);
    expect((await h.run(syn('192.0.2.7', '10.9.9.9'))).retval).toBe(XDP_PASS);
  });

  it('looks IPv6 /128 entries up by hash, and walks the trie where a shorter entry may cover', async () => {
    const h = open({ eventIntervalS: 0 }); // an event per drop, to see each one's entry
    const pkt = (src: string) => ipv6({ src, dst: 'fd00::2', proto: TCP }, tcp(1234, 443, F.SYN));
    h.block('2001:db8:1:2::7', 1);
    expect((await h.run(pkt('2001:db8:1:2::7'))).retval).toBe(XDP_DROP);
    expect((await h.run(pkt('2001:db8:1:2::8'))).retval).toBe(XDP_PASS);
    expect(h.list.obj.map('drop6_hosts').keys().map((k) => k.toString('hex'))).toEqual(['20010db8000100020000000000000007']);
    // A /64 and a /48 over it: the longest match wins whichever way the address is looked up.
    h.block('2001:db8:1:2::/64', 2);
    h.block('2001:db8:1::/48', 3);
    expect((await h.run(pkt('2001:db8:1:2::7'))).events[0]?.entryId).toBe(1);
    expect((await h.run(pkt('2001:db8:1:2::9'))).events[0]?.entryId).toBe(2);
    expect((await h.run(pkt('2001:db8:1:3::9'))).events[0]?.entryId).toBe(3);
    h.list.delete({ id: 3, prefix: parseBlockCidr('2001:db8:1::/48').prefix, expiresNs: 0n });
    expect((await h.run(pkt('2001:db8:1:3::9'))).retval).toBe(XDP_PASS);
    expect((await h.run(pkt('2001:db8:1:2::9'))).events[0]?.entryId).toBe(2);
    h.list.delete({ id: 2, prefix: parseBlockCidr('2001:db8:1:2::/64').prefix, expiresNs: 0n });
    expect((await h.run(pkt('2001:db8:1:2::9'))).retval).toBe(XDP_PASS);
    expect((await h.run(pkt('2001:db8:1:2::7'))).events[0]?.entryId).toBe(1);
    // A prefix over more /32s than the bitmap tracks one by one sets every bit, and clears them.
    h.block('2000::/3', 4);
    expect((await h.run(pkt('2a00:1:2::3'))).events[0]?.entryId).toBe(4);
    expect((await h.run(pkt('2001:db8:1:2::7'))).events[0]?.entryId).toBe(1);
    h.list.delete({ id: 4, prefix: parseBlockCidr('2000::/3').prefix, expiresNs: 0n });
    expect((await h.run(pkt('2a00:1:2::3'))).retval).toBe(XDP_PASS);
    h.list.delete({ id: 1, prefix: parseBlockCidr('2001:db8:1:2::7').prefix, expiresNs: 0n });
    expect(h.list.obj.map('drop6_hosts').keys()).toEqual([]);
    expect((await h.run(pkt('2001:db8:1:2::7'))).retval).toBe(XDP_PASS);
    // Nothing is left set: every bitmap word is zero again.
    for (const m of ['drop6_bits', 'drop6_mid', 'drop6_short']) expect([...h.list.obj.map(m).entries()].every(([, v]) => v.readBigUInt64LE(0) === 0n)).toBe(true);
  });

  it('keeps the /24 bitmaps in step when entries overlap', async () => {
    const h = open();
    h.block('192.0.2.0/24', 1);
    h.block('192.0.2.7', 2);
    h.block('192.0.0.0/16', 3);
    // The longest match wins, whichever way the address is looked up.
    expect((await h.run(syn('192.0.2.7', '10.9.9.9'))).events[0]?.entryId).toBe(2);
    expect((await h.run(syn('192.0.2.9', '10.9.9.9'))).events[0]?.entryId).toBe(1);
    h.list.delete({ id: 1, prefix: parseBlockCidr('192.0.2.0/24').prefix, expiresNs: 0n });
    expect((await h.run(ipv4({ src: '192.0.2.7', dst: '10.9.9.9', proto: TCP }, tcp(40000, 81, F.SYN)))).events[0]?.entryId).toBe(2);
    expect((await h.run(syn('192.0.2.9', '10.9.9.9'))).events[0]?.entryId).toBe(3);
    h.list.delete({ id: 3, prefix: parseBlockCidr('192.0.0.0/16').prefix, expiresNs: 0n });
    expect((await h.run(syn('192.0.2.7', '10.9.9.9'))).retval).toBe(XDP_DROP);
    expect((await h.run(syn('192.0.9.1', '10.9.9.9'))).retval).toBe(XDP_PASS);
    h.list.delete({ id: 2, prefix: parseBlockCidr('192.0.2.7').prefix, expiresNs: 0n });
    expect((await h.run(syn('192.0.2.7', '10.9.9.9'))).retval).toBe(XDP_PASS);
  });

  it('sends one event per entry, source and port per interval, with the packets dropped in between', async () => {
    const h = open({ eventIntervalS: 0.2 });
    h.block('192.0.2.0/24', 1);
    const a = syn('192.0.2.5', '10.9.9.9');
    const first = await h.run(a, 500);
    expect(first.events).toHaveLength(1);
    expect(first.events[0]!.packets).toBe(1n);
    // Another source, or the same source at another port, gets its own event at once.
    expect((await h.run(syn('192.0.2.6', '10.9.9.9'))).events).toHaveLength(1);
    expect((await h.run(ipv4({ src: '192.0.2.5', dst: '10.9.9.9', proto: TCP }, tcp(40000, 22, F.SYN)))).events).toHaveLength(1);
    await new Promise((r) => setTimeout(r, 250));
    const later = await h.run(a);
    expect(later.events).toHaveLength(1);
    // 499 aggregated after the first event, plus this one.
    expect(later.events[0]!.packets).toBe(500n);
    expect(later.events[0]!.bytes).toBe(BigInt(500 * a.length));
    expect(h.list.counts().get(1)?.packets).toBe(503n);
  });

  it('sends at most events_per_sec events per CPU and counts the rest', async () => {
    const h = open({ eventsPerSec: 3 });
    h.block('192.0.2.0/24', 1);
    let sent = 0;
    for (let i = 1; i <= 10; i++) sent += (await h.run(syn(`192.0.2.${i}`, '10.9.9.9'))).events.length;
    const c = h.list.counters();
    // test_run may move between CPUs: at most 3 per CPU, and every drop is either sent or counted.
    expect(sent).toBeGreaterThanOrEqual(3);
    expect(BigInt(sent) + c.xdpEventsOverBudget).toBe(10n);
    expect(c.xdpDropped).toBe(10n);
  });

  it('--syn-flood-protect: over-budget SYNs past the destination\'s threshold are dropped, counted and summed per source', async () => {
    // Burst 3, no refill within the test; more than 2 over-budget SYNs to a destination drop.
    const h = open({ synFloodProtect: 2, budget: { perSecond: 0.001, burst: 3 } });
    const run = async (p: Buffer) => (await h.run(p)).retval;
    for (let i = 0; i < 5; i++) expect(await run(syn('192.0.2.66', '10.9.9.9', 40000 + i))).toBe(XDP_PASS); // 3 in budget, 2 half-open
    for (let i = 5; i < 12; i++) expect(await run(syn('192.0.2.66', '10.9.9.9', 40000 + i))).toBe(XDP_DROP);
    // The same source's established traffic (no SYN, or SYN-ACK), and another source's SYN, pass.
    expect(await run(ipv4({ src: '192.0.2.66', dst: '10.9.9.9', proto: TCP }, tcp(39999, 80, F.ACK | F.PSH, Buffer.from('GET /'))))).toBe(XDP_PASS);
    expect(await run(ipv4({ src: '192.0.2.66', dst: '10.9.9.9', proto: TCP }, tcp(80, 39999, F.SYN | F.ACK)))).toBe(XDP_PASS);
    expect(await run(ipv4({ src: '192.0.2.66', dst: '10.9.9.9', proto: UDP }, udp(40000, 53)))).toBe(XDP_PASS);
    expect(await run(syn('192.0.2.10', '10.9.9.9'))).toBe(XDP_PASS);
    // IPv6 SYNs take the same path.
    const syn6 = (sport: number) => ipv6({ src: '2001:db8::66', dst: '2001:db8::9', proto: TCP }, tcp(sport, 443, F.SYN));
    for (let i = 0; i < 5; i++) expect(await run(syn6(41000 + i))).toBe(XDP_PASS);
    expect(await run(syn6(41100))).toBe(XDP_DROP);
    // The drop list still comes first.
    h.block('192.0.2.66', 1);
    expect(await run(syn('192.0.2.66', '10.9.9.9', 45000))).toBe(XDP_DROP);
    const c = h.list.counters();
    expect(c.xdpSynFloodDropped).toBe(8n);
    expect(c.xdpDropped).toBe(1n);
    // One summary per source a second after its window's first drop: DROPPED, DROP_RATE_LIMITED.
    const deadline = Date.now() + 3000;
    const dropped = () => h.summaries.reduce((s, e) => s + e.dropped, 0n);
    while (dropped() < 8n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(dropped()).toBe(8n);
    const v4 = h.summaries.filter((s) => s.ipVersion === 4);
    expect(v4.reduce((s, e) => s + e.syns, 0n)).toBe(7n);
    expect(v4[0]).toMatchObject({ origin: 'xdp', srcIp: '192.0.2.66', dstIp: '10.9.9.9', dstPort: 80, proto: TCP, verdict: 2, dropReason: 198, manySources: false });
    expect(h.summaries.find((s) => s.ipVersion === 6)).toMatchObject({ srcIp: '2001:db8::66', dstPort: 443, packets: 1n });
    expect(h.list.counters().xdpSummaries).toBe(BigInt(h.summaries.length));
  });

  it('without --syn-flood-protect a SYN flood passes untouched', async () => {
    const h = open({ budget: { perSecond: 0.001, burst: 3 } });
    expect((await h.run(syn('192.0.2.66', '10.9.9.9'), 50)).retval).toBe(XDP_PASS);
    expect(h.list.counters().xdpSynFloodDropped).toBe(0n);
  });
});
