// Real-kernel tests of the tracepoint programs and of KernelDatapath: two network namespaces
// joined by a veth pair, real TCP/UDP traffic, events read back from the ring buffers.
// Namespaces/links: prefix fcdt-, subnet 10.202.128.0/17 (see docs/design/contracts.md).
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { probeFeatures } from '@flowctl/bpf-loader';
import type { CompiledPolicy } from '@flowctl/policy';
import type { DatapathEvent, FlowEvent, KernelDropEvent, SockEvent } from './events.js';
import { KernelDatapath, defaultObjectDir } from './kernel.js';
import { ownTcxLinks } from '../test/netns.js';

const A = 'fcdt-a';
const B = 'fcdt-b';
const IP_A = '10.202.128.1';
const IP_B = '10.202.128.2';
const BLACKHOLE = '10.202.200.0/24';
// IPv6 inside our own namespaces only (ULA), so the v6 paths of the programs run too.
const IP6_A = 'fd00:202:128::1';
const IP6_B = 'fd00:202:128::2';

const sh = (cmd: string[], input?: string) =>
  execFileSync(cmd[0]!, cmd.slice(1), { encoding: 'utf8', stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], input });
const shQuiet = (cmd: string[]) => spawnSync(cmd[0]!, cmd.slice(1), { stdio: 'ignore' }).status;

// Skip only when the kernel refuses BPF; missing or broken objects are failures, not skips.
function why(): string | undefined {
  if (process.getuid?.() !== 0) return 'not root';
  const f = probeFeatures();
  if (!f.privileged) return `no BPF privilege (${f.privilegeError ?? 'unknown'})`;
  const missing = (['ringbuf', 'tc', 'rawTracepoint', 'lruHash', 'lpmTrie'] as const).filter((k) => !f[k]);
  if (missing.length) return `kernel ${f.kernel} lacks ${missing.join(', ')}`;
  return undefined;
}
const skipReason = why();
if (skipReason) {
  process.stderr.write(`\n!!! SKIPPING kernel.bpf.test.ts: the kernel refused BPF: ${skipReason} (objects in ${defaultObjectDir()}) !!!\n\n`);
}

function cleanup(): void {
  for (const ns of [A, B]) shQuiet(['ip', 'netns', 'del', ns]);
}

function setup(): void {
  cleanup();
  sh(['ip', 'netns', 'add', A]);
  sh(['ip', 'netns', 'add', B]);
  sh(['ip', 'link', 'add', 'fcdt-a0', 'netns', A, 'type', 'veth', 'peer', 'name', 'fcdt-b0', 'netns', B]);
  sh(['ip', '-n', A, 'addr', 'add', `${IP_A}/24`, 'dev', 'fcdt-a0']);
  sh(['ip', '-n', B, 'addr', 'add', `${IP_B}/24`, 'dev', 'fcdt-b0']);
  sh(['ip', '-n', A, 'addr', 'add', `${IP6_A}/64`, 'dev', 'fcdt-a0', 'nodad']);
  sh(['ip', '-n', B, 'addr', 'add', `${IP6_B}/64`, 'dev', 'fcdt-b0', 'nodad']);
  for (const [ns, dev] of [[A, 'fcdt-a0'], [B, 'fcdt-b0']] as const) {
    sh(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
    sh(['ip', '-n', ns, 'link', 'set', dev, 'up']);
  }
  // B does not forward, so a packet routed to it for a blackhole prefix is a kernel drop with a
  // reason (IP_INADDRERRORS); with forwarding on, ip_error() frees it as NOT_SPECIFIED.
  sh(['ip', 'netns', 'exec', B, 'sysctl', '-qw', 'net.ipv4.ip_forward=0']);
  sh(['ip', '-n', B, 'route', 'add', 'blackhole', BLACKHOLE]);
  sh(['ip', '-n', A, 'route', 'add', BLACKHOLE, 'via', IP_B]);
}

/** Runs a node script inside a netns; resolves with its stdout. */
function nodeIn(ns: string, script: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d));
    p.stderr.on('data', (d: Buffer) => (err += d));
    p.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`node in ${ns} exited ${code}: ${err.trim()}`))));
  });
}

/** A TCP server in a netns: reads everything, answers `reply` bytes, closes. Prints its port. */
function server(ns: string, ip: string, reply: number): { proc: ChildProcess; port: Promise<number>; done: Promise<void> } {
  const proc = spawn(
    'ip',
    [
      'netns', 'exec', ns, process.execPath, '-e',
      `const s=require('net').createServer((c)=>{c.on('data',()=>{});c.on('end',()=>{c.end(Buffer.alloc(${reply},120));s.close();});});` +
        `s.listen(0,'${ip}',()=>console.log(s.address().port));`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const port = new Promise<number>((resolve, reject) => {
    proc.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
    proc.once('error', reject);
  });
  const done = new Promise<void>((resolve) => proc.once('close', () => resolve()));
  return { proc, port, done };
}

/** Client script: connect, send `bytes`, pause, half-close, print how many bytes came back. */
function client(ip: string, port: number, bytes: number, pauseMs = 0): string {
  return `const c=require('net').connect(${port},'${ip}',async()=>{c.write(Buffer.alloc(${bytes},122));` +
    `await new Promise(r=>setTimeout(r,${pauseMs}));c.end();});` +
    `let n=0;c.on('data',(d)=>n+=d.length);c.on('close',()=>console.log(n));c.on('error',(e)=>{console.error(e.message);process.exit(1);});`;
}

const nsIno = (ns: string) => Number(sh(['stat', '-L', '-c', '%i', `/run/netns/${ns}`]).trim());

class Collector {
  readonly events: DatapathEvent[] = [];
  readonly add = (batch: DatapathEvent[]) => void this.events.push(...batch);
  async until<T extends DatapathEvent>(pred: (e: DatapathEvent) => e is T, ms = 5000): Promise<T> {
    const end = Date.now() + ms;
    for (;;) {
      const hit = this.events.find(pred);
      if (hit) return hit;
      if (Date.now() > end) throw new Error(`no matching event within ${ms} ms (${this.events.length} events seen)`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }
}

const isSock = (e: DatapathEvent): e is SockEvent => e.kind === 'sock';
const isKdrop = (e: DatapathEvent): e is KernelDropEvent => e.kind === 'kdrop';
const isFlow = (e: DatapathEvent): e is FlowEvent => e.kind === 'flow';

/** BPF objects (prog/map/link ids) this process holds, from /proc/self/fdinfo. */
function bpfIds(kind: 'prog_id' | 'map_id' | 'link_id'): Set<number> {
  const ids = new Set<number>();
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (!readlinkSync(`/proc/self/fd/${fd}`).startsWith('anon_inode:bpf')) continue;
      const m = new RegExp(`^${kind}:\\s*(\\d+)`, 'm').exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
      if (m) ids.add(Number(m[1]));
    } catch {
      // fd closed between readdir and read
    }
  }
  return ids;
}

describe.skipIf(skipReason !== undefined)('tracepoint programs (real kernel)', () => {
  let dp: KernelDatapath;
  const col = new Collector();
  let inoA = 0;
  let inoB = 0;
  const work = mkdtempSync(join(tmpdir(), 'fcdt-'));

  beforeAll(() => {
    setup();
    inoA = nsIno(A);
    inoB = nsIno(B);
    dp = new KernelDatapath({ ringBytes: 1 << 20 });
    expect(dp.watchNetns(A)).toBe(inoA);
    expect(dp.watchNetns(`/run/netns/${B}`)).toBe(inoB);
    dp.start(col.add);
  });
  afterAll(() => {
    dp?.close();
    cleanup();
    rmSync(work, { recursive: true, force: true });
  });

  it('reports TCP state transitions and a close event with duration, bytes and RTT', async () => {
    const srv = server(B, IP_B, 3000);
    const port = await srv.port;
    const got = await nodeIn(A, client(IP_B, port, 200_000, 50));
    await srv.done;
    expect(Number(got)).toBe(3000);

    const mine = (e: DatapathEvent): e is SockEvent => isSock(e) && e.netnsIno === inoA && e.dstPort === port;
    const close = await col.until((e): e is SockEvent => mine(e) && e.what === 'state' && e.newState === 7);
    const transitions = col.events.filter(mine).map((e) => `${e.oldState}>${e.newState}`);
    // CLOSE>SYN_SENT, SYN_SENT>ESTABLISHED, then the active close FIN_WAIT1/2 (or CLOSING) to CLOSE.
    expect(transitions.slice(0, 2)).toEqual(['7>2', '2>1']);
    expect(transitions).toContain('1>4');
    expect(close).toMatchObject({ ipVersion: 4, srcIp: IP_A, dstIp: IP_B, dstPort: port });
    // The close remembers who opened (this socket: 2) and carries no error after a clean close.
    expect(close).toMatchObject({ opener: 2, skErr: 0 });
    // A loaded machine can cause a spurious retransmit; the total must cover every one reported.
    const retx = col.events.filter((e) => isSock(e) && e.what === 'retransmit' && e.netnsIno === inoA && e.dstPort === port);
    expect(close.retransmits).toBeGreaterThanOrEqual(retx.length);
    expect(close.srcPort).toBeGreaterThan(1023);
    expect(close.durationNs).toBeGreaterThan(50_000_000n); // the client paused 50 ms before closing
    expect(close.durationNs).toBeLessThan(10_000_000_000n);
    expect(close.bytesAcked).toBeGreaterThanOrEqual(200_000n);
    expect(close.bytesReceived).toBeGreaterThanOrEqual(3000n);
    expect(close.srttUs).toBeGreaterThan(0);
    expect(close.srttUs).toBeLessThan(1_000_000);

    // The server side lives in B: accepted via LISTEN>SYN_RECV, attributed to B's namespace.
    const peer = await col.until(
      (e): e is SockEvent => isSock(e) && e.netnsIno === inoB && e.srcPort === port && e.dstPort === close.srcPort && e.newState === 7,
    );
    expect(peer.bytesReceived).toBeGreaterThanOrEqual(200_000n);
    expect(peer.opener).toBe(1); // accepted: the peer opened
    expect(col.events.some((e) => isSock(e) && e.netnsIno === inoB && e.oldState === 10 && e.newState === 3)).toBe(true);
  });

  it('reports retransmits when the receiver drops packets at TC ingress', async () => {
    // A 2-instruction TC program that drops everything, attached with the tc tool for a moment.
    const src = join(work, 'drop.bpf.c');
    const obj = join(work, 'drop.bpf.o');
    writeFileSync(src, 'int drop_all(void *skb) __attribute__((section("tc"), used));\nint drop_all(void *skb) { return 2; /* TC_ACT_SHOT */ }\nchar LICENSE[] __attribute__((section("license"), used)) = "GPL";\n');
    sh(['clang', '-O2', '-target', 'bpf', '-c', src, '-o', obj]);
    const dropOn = `ip netns exec ${B} sh -c 'tc qdisc add dev fcdt-b0 clsact && tc filter add dev fcdt-b0 ingress bpf da obj ${obj} sec tc'`;
    const dropOff = `ip netns exec ${B} tc qdisc del dev fcdt-b0 clsact`;
    const srv = server(B, IP_B, 10);
    const port = await srv.port;
    // The client installs the drop after its first (acknowledged) segment and removes it 700 ms
    // later: with Linux's 200 ms minimum RTO that is 2-3 retransmits of the rest.
    const script =
      `const {execSync}=require('child_process');const c=require('net').connect(${port},'${IP_B}',()=>{` +
      `c.write(Buffer.alloc(1000,121),()=>setTimeout(()=>{execSync(${JSON.stringify(dropOn)});` +
      `setTimeout(()=>execSync(${JSON.stringify(dropOff)}),700);c.end(Buffer.alloc(20000,122));},50));});` +
      `c.on('data',()=>{});c.on('close',()=>console.log('closed'));c.on('error',(e)=>{console.error(e.message);process.exit(1);});`;
    try {
      await nodeIn(A, script);
      await srv.done;
    } finally {
      shQuiet(['sh', '-c', `${dropOff} 2>/dev/null`]);
    }
    const retx = await col.until((e): e is SockEvent => isSock(e) && e.what === 'retransmit' && e.dstPort === port);
    expect(retx).toMatchObject({ netnsIno: inoA, srcIp: IP_A, dstIp: IP_B });
    expect([1, 4]).toContain(retx.newState); // ESTABLISHED, or FIN_WAIT1 when the FIN went with the data
    expect(retx.retransmits).toBeGreaterThanOrEqual(1);
    const close = await col.until((e): e is SockEvent => isSock(e) && e.netnsIno === inoA && e.dstPort === port && e.newState === 7);
    expect(close.retransmits).toBeGreaterThanOrEqual(retx.retransmits);
    // The dropped segments themselves: kernel drops in B, reason TC_INGRESS (no Hubble equivalent).
    const drop = await col.until((e): e is KernelDropEvent => isKdrop(e) && e.dstPort === port && e.proto === 6);
    expect(drop).toMatchObject({ netnsIno: inoB, srcIp: IP_A, dstIp: IP_B, dropReason: 0 });
    expect(drop.ifindex).toBeGreaterThan(0);
  });

  it('reports kernel drops (closed port, blackhole route) attributed to the right netns', async () => {
    await nodeIn(
      A,
      `const d=require('dgram').createSocket('udp4');d.send('x',9,'${IP_B}',()=>d.send('y',53,'10.202.200.5',()=>d.close()));` +
        `const c=require('net').connect(9,'${IP_B}');c.on('error',()=>{});`,
    );
    const udp = await col.until((e): e is KernelDropEvent => isKdrop(e) && e.proto === 17 && e.dstPort === 9);
    expect(udp).toMatchObject({ netnsIno: inoB, srcIp: IP_A, dstIp: IP_B, ipVersion: 4, dropReason: 178 /* SOCKET_LOOKUP_FAILED */ });
    expect(udp.kernelReason).toBeGreaterThan(2);
    const syn = await col.until((e): e is KernelDropEvent => isKdrop(e) && e.proto === 6 && e.dstPort === 9);
    expect(syn).toMatchObject({ netnsIno: inoB, tcpFlags: 0x02, dropReason: 178 });
    const bh = await col.until((e): e is KernelDropEvent => isKdrop(e) && e.dstIp === '10.202.200.5');
    expect(bh).toMatchObject({ netnsIno: inoB, srcIp: IP_A, proto: 17, dstPort: 53, dropReason: 151 /* STALE_OR_UNROUTABLE_IP */ });
    expect(bh.kernelReason).not.toBe(udp.kernelReason);
  });

  it('a failed connect closes with its source port, which joins it to the dropped SYN', async () => {
    // Port 9 is closed in B: the SYN is dropped there (NO_SOCKET) and the RST fails the connect.
    await nodeIn(A, `const c=require('net').connect(9,'${IP_B}');c.on('error',()=>{});`);
    const close = await col.until(
      (e): e is SockEvent => isSock(e) && e.netnsIno === inoA && e.dstPort === 9 && e.oldState === 2 && e.newState === 7,
    );
    expect(close.srcPort).toBeGreaterThan(1023);
    expect(close).toMatchObject({ opener: 2, skErr: 111 /* ECONNREFUSED */ });
    const syn = await col.until((e): e is KernelDropEvent => isKdrop(e) && e.proto === 6 && e.dstPort === 9 && e.srcPort === close.srcPort);
    expect(syn).toMatchObject({ netnsIno: inoB, srcIp: IP_A, tcpFlags: 0x02 });
  });

  it('handles IPv6: a connection close and a drop at a closed port', async () => {
    const srv = server(B, IP6_B, 100);
    const port = await srv.port;
    expect(Number(await nodeIn(A, client(IP6_B, port, 4000)))).toBe(100);
    await srv.done;
    const close = await col.until((e): e is SockEvent => isSock(e) && e.netnsIno === inoA && e.dstPort === port && e.newState === 7);
    expect(close).toMatchObject({ ipVersion: 6, srcIp: IP6_A, dstIp: IP6_B });
    expect(close.bytesAcked).toBeGreaterThanOrEqual(4000n);

    await nodeIn(A, `const d=require('dgram').createSocket('udp6');d.send('x',9,'${IP6_B}',()=>d.close());`);
    const drop = await col.until((e): e is KernelDropEvent => isKdrop(e) && e.ipVersion === 6 && e.dstPort === 9);
    expect(drop).toMatchObject({ netnsIno: inoB, srcIp: IP6_A, dstIp: IP6_B, proto: 17, dropReason: 178 });
  });

  it('reports nothing from a namespace it does not watch', async () => {
    dp.unwatchNetns(`/run/netns/${B}`);
    try {
      const before = col.events.length;
      await nodeIn(A, `const d=require('dgram').createSocket('udp4');d.send('x',7,'${IP_B}',()=>d.close());`);
      // A's own UDP socket never changes TCP state; wait for the client's socket to be gone too.
      await new Promise((r) => setTimeout(r, 300));
      expect(col.events.slice(before).filter((e) => isKdrop(e) && e.dstPort === 7)).toEqual([]);
    } finally {
      dp.watchNetns(`/run/netns/${B}`);
    }
  });

  it('pause() holds events in the kernel ring and resume() delivers them', async () => {
    dp.pause();
    try {
      await nodeIn(A, `const d=require('dgram').createSocket('udp4');d.send('x',11,'${IP_B}',()=>d.close());`);
      await new Promise((r) => setTimeout(r, 300));
      expect(col.events.some((e) => isKdrop(e) && e.dstPort === 11)).toBe(false);
    } finally {
      dp.resume();
    }
    await col.until((e): e is KernelDropEvent => isKdrop(e) && e.dstPort === 11);
  });

  it('counts no lost events', () => {
    const c = dp.counters();
    expect(c.traceRingbufFull).toBe(0n);
    expect(c.decodeErrors).toBe(0n);
    expect(c.ringbufFull).toBe(0n);
  });
});

describe.skipIf(skipReason !== undefined)('KernelDatapath end to end (real kernel)', () => {
  beforeAll(setup);
  afterAll(cleanup);

  it('attaches to a veth, delivers flow events for real traffic, and close() leaves nothing behind', async () => {
    const before = { prog: bpfIds('prog_id'), map: bpfIds('map_id') };
    const dp = new KernelDatapath({ ringBytes: 1 << 20 });
    const col = new Collector();
    let progIds: number[] = [];
    try {
      dp.start(col.add);
      // B plays the node and fcdt-b0 the host side of pod A's veth.
      dp.attach('fcdt-b0', B);
      dp.attach('fcdt-b0', B); // idempotent
      expect(dp.attachedInterfaces()).toEqual([`${B}/fcdt-b0`]);
      progIds = [...bpfIds('prog_id')].filter((id) => !before.prog.has(id));
      expect(progIds.length).toBeGreaterThanOrEqual(5); // 2 TC + 3 tracepoint programs

      // TCX links (this kernel has TCX): one per direction, on fcdt-b0, held by this process.
      const ifindex = Number(/^(\d+):/.exec(sh(['ip', 'netns', 'exec', B, 'ip', '-o', 'link', 'show', 'fcdt-b0']))![1]);
      const links = ownTcxLinks().map(({ ifindex, direction }) => ({ ifindex, direction }));
      expect(links.sort((a, b) => a.direction.localeCompare(b.direction))).toEqual([
        { ifindex, direction: 'egress' },
        { ifindex, direction: 'ingress' },
      ]);
      expect(sh(['ip', 'netns', 'exec', B, 'tc', 'qdisc', 'show', 'dev', 'fcdt-b0'])).not.toMatch(/clsact/);

      const srv = server(B, IP_B, 500);
      const port = await srv.port;
      await nodeIn(A, client(IP_B, port, 5000));
      await srv.done;

      // Pod egress (A -> B) is TC ingress of the host-side fcdt-b0: FromEndpoint; the reply ToEndpoint.
      const out = await col.until((e): e is FlowEvent => isFlow(e) && e.dstPort === port && e.srcIp === IP_A);
      expect(out).toMatchObject({ ipVersion: 4, dstIp: IP_B, proto: 6, obsPoint: 1, verdict: 1 });
      expect(out.tcpFlags & 0x02).toBe(0x02); // the first event of a connection is its SYN
      const back = await col.until((e): e is FlowEvent => isFlow(e) && e.srcPort === port && e.dstIp === IP_A);
      expect(back).toMatchObject({ obsPoint: 2, isReply: true });
      expect(dp.counters().ringbufFull).toBe(0n);
    } finally {
      dp.close();
      dp.close(); // idempotent
    }
    expect(sh(['ip', 'netns', 'exec', B, 'tc', 'filter', 'show', 'dev', 'fcdt-b0', 'ingress']).trim()).toBe('');
    expect(sh(['ip', 'netns', 'exec', B, 'tc', 'filter', 'show', 'dev', 'fcdt-b0', 'egress']).trim()).toBe('');
    expect(sh(['ip', 'netns', 'exec', B, 'tc', 'qdisc', 'show', 'dev', 'fcdt-b0'])).not.toMatch(/clsact/);
    expect(ownTcxLinks()).toEqual([]);
    expect(bpfIds('prog_id')).toEqual(before.prog);
    expect(bpfIds('map_id')).toEqual(before.map);
    // The kernel frees a program after an RCU grace period once its last reference is gone; one
    // still there after 3 s is held by something we left behind.
    const alive = async () => progIds.filter((id) => shQuiet(['bpftool', 'prog', 'show', 'id', String(id)]) === 0);
    const deadline = Date.now() + 3000;
    while ((await alive()).length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(await alive()).toEqual([]);
    expect(() => dp.attach('fcdt-b0', B)).toThrow(/closed/);
  });
  it('enforces policy live: a denied connection is one DROPPED flow, not also a kernel drop', async () => {
    const dp = new KernelDatapath({ ringBytes: 1 << 20 });
    const col = new Collector();
    const srv = server(B, IP_B, 10);
    const port = await srv.port;
    try {
      dp.start(col.add);
      dp.watchNetns(B); // the node's netns: where TC drops happen
      dp.attach('fcdt-b0', B);
      const POD = 1000;
      dp.setIdentities([{ cidr: `${IP_A}/32`, identity: POD }]);
      const policy: CompiledPolicy = {
        revision: 1,
        entries: [],
        enforced: new Map([[POD, { ingress: false, egress: true }]]),
        fqdnSelectors: [],
        cidrIdentities: [],
        refs: [],
        selectedBy: new Map(),
        addressIdentities: new Map(),
      };
      dp.setPolicy(policy);
      // Egress enforced with no rule: the SYN dies at TC ingress of the host veth.
      const attempt = `const c=require('net').connect(${port},'${IP_B}',()=>{console.log('connected');process.exit(0);});` +
        `c.on('error',()=>{});setTimeout(()=>{console.log('timeout');process.exit(0);},800);`;
      expect((await nodeIn(A, attempt)).trim()).toBe('timeout');
      const denied = await col.until((e): e is FlowEvent => isFlow(e) && e.dstPort === port && e.verdict === 2);
      expect(denied).toMatchObject({ srcIp: IP_A, dropReason: 133, srcIdentity: POD, obsPoint: 1 });
      await new Promise((r) => setTimeout(r, 200));
      expect(col.events.filter((e) => isKdrop(e) && e.dstPort === port)).toEqual([]);
      expect(dp.counters().ownTcDropsSuppressed).toBeGreaterThan(0n);

      // An allow rule for the port, written live: the same connection now goes through.
      dp.setPolicy({
        ...policy,
        revision: 2,
        entries: [{ endpointIdentity: POD, peerIdentity: 0, port, proto: 6, direction: 'egress', deny: false, ruleRef: 1 }],
        refs: [{ name: 'allow', namespace: 'default', kind: 'CiliumNetworkPolicy', labels: [], revision: 2n }],
      });
      expect((await nodeIn(A, attempt)).trim()).toBe('connected');
      const allowed = await col.until((e): e is FlowEvent => isFlow(e) && e.dstPort === port && e.verdict === 1 && e.srcIp === IP_A);
      expect(allowed.policyRef).toBe(1);
    } finally {
      srv.proc.kill();
      dp.close();
    }
  });
});
