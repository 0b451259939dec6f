// The TC programs on a real veth with real TCP (GSO-sized skbs with the payload in page fragments,
// real handshakes and closes), where most packets take the established fast path: the connection's
// counts in its close event must cover every byte the client sent and the server answered, with a
// handful of events for the whole transfer; every request and response of a keep-alive HTTP
// connection must still be captured. Namespaces fcd-fp-node (host side of the veth, server) and fcd-fp-pod (client),
// subnet 10.202.250.0/30 (contracts.md: the bpf datapath suite's prefix and subnet).
import { execFileSync, spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Datapath, skipReason } from './harness.js';
import type { BpfLink } from '../../addon/lib/index.js';

const skip = skipReason();
const NODE = 'fcd-fp-node';
const POD = 'fcd-fp-pod';
const HOST_IF = 'fcd-fp-h';
const SERVER = '10.202.250.1';
const CLIENT = '10.202.250.2';
const PORT = 5001; // inside our own namespace
const SENT = 4_000_000;
const ANSWER = 200_000;

const sh = (args: string[]) => execFileSync(args[0]!, args.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const cleanup = () => {
  for (const ns of [NODE, POD]) {
    try {
      sh(['ip', 'netns', 'del', ns]);
    } catch {
      // not there
    }
  }
};

/** Runs node code in a namespace; resolves with its stdout once `until` matches it (or it exits). */
function nodeIn(ns: string, code: string, until?: RegExp): { out: Promise<string>; kill: () => void } {
  const p = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', code], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const done = new Promise<string>((resolve, reject) => {
    p.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (until?.test(out)) resolve(out);
    });
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('exit', (code) => (code === 0 || until ? resolve(out) : reject(new Error(`${ns}: node exited ${code}: ${err.trim()}`))));
  });
  return { out: done, kill: () => p.kill() };
}

describe.skipIf(skip)('flowctl TC datapath on a real veth', () => {
  let dp: Datapath;
  const links: BpfLink[] = [];

  beforeAll(() => {
    cleanup(); // leftovers of a crashed run
    sh(['ip', 'netns', 'add', NODE]);
    sh(['ip', 'netns', 'add', POD]);
    sh(['ip', '-n', NODE, 'link', 'add', HOST_IF, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', POD]);
    sh(['ip', '-n', NODE, 'addr', 'add', `${SERVER}/30`, 'dev', HOST_IF]);
    sh(['ip', '-n', POD, 'addr', 'add', `${CLIENT}/30`, 'dev', 'eth0']);
    for (const [ns, dev] of [[NODE, HOST_IF], [NODE, 'lo'], [POD, 'eth0'], [POD, 'lo']] as const) sh(['ip', '-n', ns, 'link', 'set', dev, 'up']);
    dp = new Datapath({ statsIntervalNs: 5_000_000_000n });
    links.push(dp.obj.program('flowctl_tc_ingress').attachTc({ ifname: HOST_IF, direction: 'ingress', netns: NODE }));
    links.push(dp.obj.program('flowctl_tc_egress').attachTc({ ifname: HOST_IF, direction: 'egress', netns: NODE }));
  });

  afterAll(() => {
    for (const l of links) l.detach();
    dp?.close();
    cleanup();
  });

  /** TCP segments both namespaces sent again so far (nstat of each, not of the machine). */
  const retransmits = () =>
    [NODE, POD].reduce((n, ns) => n + (JSON.parse(sh(['ip', 'netns', 'exec', ns, 'nstat', '-asz', '--json', 'TcpRetransSegs'])) as { kernel: { TcpRetransSegs: number } }).kernel.TcpRetransSegs, 0);

  /** A 4 MB upload from the pod and its answer; the close event's counts, client -> server and back. */
  async function upload(port: number) {
    const server = nodeIn(
      NODE,
      `require('net').createServer((s) => { s.on('data', () => {}); s.on('end', () => s.end(Buffer.alloc(${ANSWER}))); })` +
        `.listen(${port}, '${SERVER}', () => console.log('ready'));`,
      /ready/,
    );
    try {
      await server.out;
      const retrans0 = retransmits();
      const client = nodeIn(
        POD,
        `const s = require('net').connect(${port}, '${SERVER}', () => { console.log('port ' + s.localPort); s.end(Buffer.alloc(${SENT})); });` +
          `let n = 0; s.on('data', (d) => (n += d.length)); s.on('close', () => console.log('got ' + n));`,
      );
      const out = await client.out;
      const local = Number(/port (\d+)/.exec(out)?.[1]);
      expect(out).toContain(`got ${ANSWER}`);

      const mine = () => dp.events.filter((e) => e.proto === 6 && (e.srcPort === local || e.dstPort === local));
      const deadline = Date.now() + 3000;
      while (!mine().some((e) => e.reason === 3) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      const evs = mine();
      const close = evs.find((e) => e.reason === 3);
      expect(close, `events: ${JSON.stringify(evs.map((e) => [e.obsPoint, e.reason, e.tcpFlags]))}`).toBeDefined();
      // Counts of the close event, oriented client -> server whichever side sent the closing packet.
      const up = close!.srcIp === CLIENT ? { bytes: close!.bytes, packets: close!.packets } : { bytes: close!.replyBytes, packets: close!.replyPackets };
      const down = close!.srcIp === CLIENT ? { bytes: close!.replyBytes, packets: close!.replyPackets } : { bytes: close!.bytes, packets: close!.packets };
      return { evs, up, down, retransmitted: retransmits() - retrans0 };
    } finally {
      server.kill();
    }
  }

  /** Payload bytes are exact: what was sent, plus at most one segment per retransmission. */
  const exact = (counted: bigint, sent: number, retransmitted: number) => {
    expect(counted).toBeGreaterThanOrEqual(BigInt(sent));
    expect(counted).toBeLessThanOrEqual(BigInt(sent + retransmitted * 65_536));
    if (retransmitted === 0) expect(counted).toBe(BigInt(sent));
  };

  it('a 4 MB upload and its answer: every payload byte counted, a handful of events', async () => {
    const { evs, up, down, retransmitted } = await upload(PORT);
    exact(up.bytes, SENT, retransmitted);
    exact(down.bytes, ANSWER, retransmitted);
    expect(up.packets + down.packets).toBeGreaterThan(20n);
    // SYN, SYN-ACK, FINs and close: events per observation, not per packet.
    expect(evs.length).toBeLessThanOrEqual(8);
    expect(evs.every((e) => e.verdict === 1)).toBe(true);
    const c = dp.counters();
    expect(c.malformed).toBe(0n);
    expect(c.ringbufFull).toBe(0n);
    expect(c.packets).toBeGreaterThanOrEqual(up.packets + down.packets);
  });

  it('without TCP timestamps (20-byte headers) the payload bytes are still exact', async () => {
    // Both ends of this test's own namespaces; Linux sends timestamps only when both SYNs had them.
    for (const ns of [NODE, POD]) sh(['ip', 'netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv4.tcp_timestamps=0']);
    const { up, down, retransmitted } = await upload(PORT + 2);
    exact(up.bytes, SENT, retransmitted);
    exact(down.bytes, ANSWER, retransmitted);
  });

  it('keep-alive HTTP: every request and every response is an L7 event', async () => {
    const N = 20;
    const server = nodeIn(
      NODE,
      `require('net').createServer((s) => s.on('data', () => s.write('HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nok')))` +
        `.listen(${PORT + 1}, '${SERVER}', () => console.log('ready'));`,
      /ready/,
    );
    try {
      await server.out;
      const client = nodeIn(
        POD,
        `const s = require('net').connect(${PORT + 1}, '${SERVER}'); let i = 0;` +
          `const ask = () => s.write('GET /item/' + i + ' HTTP/1.1\\r\\nHost: svc\\r\\n\\r\\n');` +
          `s.on('connect', () => { console.log('port ' + s.localPort); ask(); });` +
          `s.on('data', () => { if (++i < ${N}) ask(); else s.end(); });`,
      );
      const port = Number(/port (\d+)/.exec(await client.out)?.[1]);
      const l7 = () => dp.events.filter((e) => e.l7 === 2 && (e.srcPort === port || e.dstPort === port));
      const deadline = Date.now() + 3000;
      while (l7().length < 2 * N && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      const evs = l7();
      const requests = evs.filter((e) => e.srcIp === CLIENT).map((e) => e.payload.toString().split('\r\n')[0]);
      const responses = evs.filter((e) => e.srcIp === SERVER);
      expect(requests).toEqual(Array.from({ length: N }, (_, i) => `GET /item/${i} HTTP/1.1`));
      expect(responses).toHaveLength(N);
      expect(responses.every((e) => e.payload.toString().startsWith('HTTP/1.1 200 OK') && e.obsPoint === 2)).toBe(true);
    } finally {
      server.kill();
    }
  });
});
