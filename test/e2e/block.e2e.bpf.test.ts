// The XDP drop list end to end: the real agent in a node namespace with --xdp-interface on two
// veths, two client namespaces sending real traffic to a server in the node namespace, and the
// real CLI (`flowctl block add|list|remove`). Ground truth is what the server receives.
// Prefix fcq-, subnet 10.208.0.0/16 (docs/design/contracts.md).
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');
const PREFIX = 'fcq-';
const NODE = 'fcq-node';
const CLIENTS = [
  { ns: 'fcq-c1', nodeIf: 'fcq-n1', ip: '10.208.1.2', gw: '10.208.1.1' },
  { ns: 'fcq-c2', nodeIf: 'fcq-n2', ip: '10.208.2.2', gw: '10.208.2.1' },
] as const;
const [C1, C2] = CLIENTS;
const PORT = 8080;
const UDP_PORT = 9000;

const sh = (args: string[]) => execFileSync(args[0]!, args.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

function cleanup(): void {
  let names: string[] = [];
  try {
    names = readdirSync('/run/netns');
  } catch {
    return;
  }
  for (const n of names) if (n.startsWith(PREFIX)) spawnSync('ip', ['netns', 'del', n], { stdio: 'ignore' });
}

function why(): string | undefined {
  if (process.getuid?.() !== 0) return 'not root: the kernel refuses BPF and namespaces';
  if (!existsSync(join(ROOT, 'bpf/.output/xdp.bpf.o'))) throw new Error('bpf/.output/xdp.bpf.o is missing: run make build');
  return undefined;
}
const skipReason = why();
if (skipReason) process.stderr.write(`\n!!! SKIPPING block.e2e.bpf.test.ts: ${skipReason} !!!\n\n`);

let dir: string;
let sock: string;
let agent: ChildProcess | undefined;
let agentLog = '';
const procs: ChildProcess[] = [];
/** Datagrams the server received: [receive time ms, source address]. */
const received: [number, string][] = [];

function flowctl(...args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((res) => {
    const p = spawn(process.execPath, ['--conditions=@flowctl/source', '--import', 'tsx', join(ROOT, 'packages/cli/src/bin.ts'), '--server', `unix://${sock}`, ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    p.stdout!.on('data', (d: Buffer) => (out += d));
    p.stderr!.on('data', (d: Buffer) => (err += d));
    p.on('close', (code) => res({ code, out, err }));
  });
}

/** One HTTP request from a client to the node's address on its link; true when answered within 1 s. */
function reaches(c: (typeof CLIENTS)[number]): boolean {
  const r = spawnSync('ip', ['netns', 'exec', c.ns, 'curl', '-s', '-o', '/dev/null', '--max-time', '1', `http://${c.gw}:${PORT}/`], { encoding: 'utf8' });
  return r.status === 0;
}

async function waitFor<T>(what: string, f: () => Promise<T | undefined> | T | undefined, ms: number): Promise<T> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const v = await f();
    if (v !== undefined && v !== false) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} not within ${ms} ms\nagent log:\n${agentLog.slice(-3000)}`);
}

const SERVER = `
const http = require('http'), dgram = require('dgram');
http.createServer((q, s) => s.end('ok')).listen(${PORT}, '0.0.0.0');
const u = dgram.createSocket('udp4');
u.on('message', (m, r) => process.stdout.write(Date.now() + ' ' + r.address + '\\n'));
u.bind(${UDP_PORT}, '0.0.0.0', () => console.log('up'));`;

// Every 5 ms, one datagram to the node: the server's log says when traffic from it stopped.
const SENDER = (to: string) => `
const s = require('dgram').createSocket('udp4');
setInterval(() => s.send('x', ${UDP_PORT}, '${to}'), 5);`;

interface JsonFlow {
  verdict?: string;
  drop_reason_desc?: string;
  IP?: { source?: string; destination?: string };
  l4?: { UDP?: { destination_port?: number }; TCP?: { destination_port?: number; flags?: Record<string, boolean> } };
  interface?: { name?: string };
  extensions?: { value?: { block?: { cidr?: string; reason?: string; packets?: number; matched?: string } } };
}

async function dropped(): Promise<JsonFlow[]> {
  const r = await flowctl('observe', '--last', '10000', '--verdict', 'DROPPED', '-o', 'json');
  if (r.code !== 0) throw new Error(`flowctl observe exited ${r.code}: ${r.err}`);
  return r.out.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { flow: JsonFlow }).flow);
}

async function listed(): Promise<{ cidr: string; reason: string; dropped_packets: number; expires?: string; nodes: string[] }[]> {
  const r = await flowctl('block', 'list', '-o', 'json');
  if (r.code !== 0) throw new Error(`flowctl block list exited ${r.code}: ${r.err}`);
  return r.out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { cidr: string; reason: string; dropped_packets: number; nodes: string[] });
}

async function startAgent(extra: string[] = []): Promise<void> {
  agentLog = '';
  agent = spawn('ip', [
    'netns', 'exec', NODE, process.execPath, '--conditions=@flowctl/source', '--import', 'tsx', join(ROOT, 'packages/agent/src/main.ts'),
    '--node-name', NODE, '--unix-socket', sock, '--listen-address', '', '--metrics-address', '',
    '--xdp-interface', C1.nodeIf, '--xdp-interface', C2.nodeIf, ...extra,
  ], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  agent.stdout!.on('data', (d: Buffer) => (agentLog += d));
  agent.stderr!.on('data', (d: Buffer) => (agentLog += d));
  await waitFor('agent serving', () => agentLog.includes('"msg":"serving"') || undefined, 30_000);
}

describe.skipIf(skipReason !== undefined)('flowctl block: the XDP drop list on node interfaces (real kernel)', () => {
  beforeAll(async () => {
    cleanup();
    sh(['ip', 'netns', 'add', NODE]);
    sh(['ip', '-n', NODE, 'link', 'set', 'lo', 'up']);
    for (const c of CLIENTS) {
      sh(['ip', 'netns', 'add', c.ns]);
      sh(['ip', 'link', 'add', c.nodeIf, 'netns', NODE, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', c.ns]);
      sh(['ip', '-n', NODE, 'addr', 'add', `${c.gw}/24`, 'dev', c.nodeIf]);
      sh(['ip', '-n', NODE, 'link', 'set', c.nodeIf, 'up']);
      sh(['ip', '-n', c.ns, 'link', 'set', 'lo', 'up']);
      sh(['ip', '-n', c.ns, 'addr', 'add', `${c.ip}/24`, 'dev', 'eth0']);
      sh(['ip', '-n', c.ns, 'link', 'set', 'eth0', 'up']);
      sh(['ip', '-n', c.ns, 'route', 'add', 'default', 'via', c.gw]);
    }
    dir = mkdtempSync(join(tmpdir(), 'fcq-block-'));
    sock = join(dir, 'hubble.sock');

    const srv = spawn('ip', ['netns', 'exec', NODE, process.execPath, '-e', SERVER], { stdio: ['ignore', 'pipe', 'pipe'] });
    procs.push(srv);
    let buf = '';
    await new Promise<void>((r) => {
      srv.stdout!.on('data', (d: Buffer) => {
        buf += d;
        let i;
        while ((i = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          if (line === 'up') r();
          const [t, a] = line.split(' ');
          if (a) received.push([Number(t), a]);
        }
      });
    });

    await startAgent();

    for (const c of CLIENTS) {
      const p = spawn('ip', ['netns', 'exec', c.ns, process.execPath, '-e', SENDER(c.gw)], { stdio: 'ignore' });
      procs.push(p);
    }
    await waitFor('datagrams from both clients', () => (received.some(([, a]) => a === C1.ip) && received.some(([, a]) => a === C2.ip)) || undefined, 10_000);
  }, 120_000);

  afterAll(async () => {
    for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
    if (agent && agent.exitCode === null) agent.kill('SIGKILL');
    cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('attaches in native mode on veth and says so in the log', () => {
    for (const c of CLIENTS) expect(agentLog).toContain(`XDP drop list attached to ${c.nodeIf} in native mode`);
    expect(sh(['ip', '-n', NODE, 'link', 'show', C1.nodeIf])).toMatch(/xdp/);
  });

  it('refuses a bad CIDR or TTL with one clear line, before any change', async () => {
    for (const [args, msg] of [
      [['block', 'add', '10.208.1.300/24'], /invalid CIDR "10.208.1.300\/24"/],
      [['block', 'add', '10.208.1.0/33'], /invalid CIDR/],
      [['block', 'add', '10.208.1.0/24', '--ttl', 'soon'], /invalid argument "soon" for "--ttl" flag/],
      [['block', 'add', '10.208.1.0/24', '--ttl', '0s'], /at least 1s/],
      [['block', 'remove', '10.208.9.0/24'], /10.208.9.0\/24 is not in the drop list/],
    ] as const) {
      const r = await flowctl(...args);
      expect(r.code, r.out).not.toBe(0);
      expect(r.err.trim().split('\n')).toHaveLength(1);
      expect(r.err).toMatch(msg);
    }
    expect(await listed()).toEqual([]);
  });

  it('block add: traffic from the CIDR stops within 1 s and shows as DROPPED with the entry; others pass', async () => {
    expect(reaches(C1)).toBe(true);
    const add = await flowctl('block', 'add', '10.208.1.0/24', '--ttl', '10m', '--reason', 'test: noisy client');
    expect(add.code, add.err).toBe(0);
    const addedAt = Date.now();
    expect(add.out).toBe(`blocked 10.208.1.0/24 for 10m0s on 1 node (${NODE})\n`);

    await new Promise((r) => setTimeout(r, 1500));
    const lastFromC1 = Math.max(...received.filter(([, a]) => a === C1.ip).map(([t]) => t));
    // The server's own log: nothing from the blocked client later than 1 s after the command returned.
    expect(lastFromC1).toBeLessThan(addedAt + 1000);
    expect(received.some(([t, a]) => a === C2.ip && t > addedAt + 1000)).toBe(true);
    expect(reaches(C1)).toBe(false);
    expect(reaches(C2)).toBe(true);

    const flows = await waitFor('DROPPED flows of the entry', async () => {
      const fs = (await dropped()).filter((f) => f.extensions?.value?.block?.cidr === '10.208.1.0/24');
      return fs.some((f) => f.l4?.TCP?.flags?.SYN) && fs.some((f) => f.l4?.UDP) ? fs : undefined;
    }, 5000);
    const udp = flows.find((f) => f.l4?.UDP)!;
    expect(udp).toMatchObject({
      verdict: 'DROPPED',
      drop_reason_desc: 'POLICY_DENY',
      IP: { source: C1.ip, destination: C1.gw },
      interface: { name: C1.nodeIf },
      extensions: { value: { block: { cidr: '10.208.1.0/24', reason: 'test: noisy client', matched: 'source' } } },
    });
    // Sampled: far fewer flows than packets (200 datagrams a second), and the counts add up in them.
    const udpFlows = flows.filter((f) => f.l4?.UDP);
    expect(udpFlows.length).toBeLessThan(10);
    const [entry] = await listed();
    expect(entry).toMatchObject({ cidr: '10.208.1.0/24', reason: 'test: noisy client', nodes: [NODE] });
    expect(entry!.dropped_packets).toBeGreaterThan(200);
    expect(Date.parse(entry!.expires!) - addedAt).toBeGreaterThan(9 * 60_000);
  });

  it('block remove restores the traffic', async () => {
    const r = await flowctl('block', 'remove', '10.208.1.0/24');
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/^unblocked 10\.208\.1\.0\/24 on fcq-node \(\d[\d,]* packets dropped\)\n$/);
    const removedAt = Date.now();
    expect(reaches(C1)).toBe(true);
    await waitFor('datagrams from the unblocked client', () => received.some(([t, a]) => a === C1.ip && t > removedAt) || undefined, 1000);
    expect(await listed()).toEqual([]);
  });

  it('a TTL expires by itself', async () => {
    const r = await flowctl('block', 'add', C1.ip, '--ttl', '2s');
    expect(r.code, r.err).toBe(0);
    const addedAt = Date.now();
    expect(reaches(C1)).toBe(false);
    await waitFor('the entry to expire', () => reaches(C1) || undefined, 5000);
    expect(Date.now() - addedAt).toBeGreaterThan(1500);
    expect(await listed()).toEqual([]);
  });

  it('stopping the agent detaches the program; the entries come back with the agent (state dir)', async () => {
    const r = await flowctl('block', 'add', '10.208.1.0/24', '--ttl', '10m', '--reason', 'kept');
    expect(r.code, r.err).toBe(0);
    const [before] = await listed();
    expect(reaches(C1)).toBe(false);
    const stop = async () => {
      agent!.kill('SIGTERM');
      await new Promise((res) => agent!.once('exit', res));
    };
    await stop();
    for (const c of CLIENTS) expect(sh(['ip', '-n', NODE, 'link', 'show', c.nodeIf])).not.toMatch(/xdp/);
    expect(reaches(C1)).toBe(true);
    // Restarted, the agent drops again from the start, the entry's expiry unchanged.
    await startAgent();
    expect(agentLog).toContain('drop list: restored 1 entry');
    expect(reaches(C1)).toBe(false);
    const [after] = await listed();
    expect(after).toMatchObject({ cidr: '10.208.1.0/24', reason: 'kept', expires: before!.expires });
    expect((await flowctl('block', 'remove', '10.208.1.0/24')).code).toBe(0);
    await stop();
  });

  it('blocks a port scanner on alert (respond: block-source: [port-scan]); other clients are unaffected', async () => {
    const cfg = join(dir, 'detect.yaml');
    writeFileSync(cfg, `respond:\n  block-source: [port-scan]\n  block-ttl: 5m\n  never-block: [${C2.ip}]\n`);
    await startAgent(['--detect-config', cfg]);
    expect(reaches(C1)).toBe(true);
    const scan = spawnSync('ip', ['netns', 'exec', C1.ns, 'nmap', '-sS', '-Pn', '-n', '-T4', '--max-retries', '0', '--max-rtt-timeout', '200ms', '-p', '1-200', C1.gw], { encoding: 'utf8' });
    expect(scan.status, scan.stderr).toBe(0);
    const alert = await waitFor('the port-scan alert with its action', async () => {
      const r = await flowctl('alerts', '-o', 'json');
      const as = r.out.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { alert?: { kind?: string; action?: string; source?: { ip?: string } } }).alert);
      return as.find((a) => a?.kind === 'port-scan' && a.source?.ip === C1.ip);
    }, 10_000);
    expect(alert.action).toBe(`block-source ${C1.ip}/32 for 5m`);
    const [entry] = await listed();
    expect(entry).toMatchObject({ cidr: `${C1.ip}/32`, nodes: [NODE] });
    expect(entry!.reason).toMatch(/scanned \d+ ports/);
    expect(reaches(C1)).toBe(false);
    expect(reaches(C2)).toBe(true);
    // The never-block list holds: the same scan from C2 raises an alert that blocks nothing.
    spawnSync('ip', ['netns', 'exec', C2.ns, 'nmap', '-sS', '-Pn', '-n', '-T4', '--max-retries', '0', '--max-rtt-timeout', '200ms', '-p', '1-200', C2.gw], { encoding: 'utf8' });
    const spared = await waitFor("the second scanner's alert", async () => {
      const r = await flowctl('alerts', '-o', 'json');
      const as = r.out.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { alert?: { kind?: string; action?: string; source?: { ip?: string } } }).alert);
      return as.find((a) => a?.kind === 'port-scan' && a.source?.ip === C2.ip);
    }, 10_000);
    expect(spared.action).toBe(`none: ${C2.ip} is never blocked`);
    expect(reaches(C2)).toBe(true);
  });

  it('--block-from-lists: the addresses of the --blocklist files are dropped, and follow the files', async () => {
    agent!.kill('SIGTERM');
    await new Promise((res) => agent!.once('exit', res));
    const list = join(dir, 'bad-hosts.txt');
    writeFileSync(list, `# test list\n${C1.ip}\n203.0.113.0/24\n`);
    // No state dir: the alert's block of the previous test stays behind.
    await startAgent(['--blocklist', list, '--block-from-lists', '--state-dir', '']);
    expect(agentLog).toContain(`drop list: 2 entries from ${list}`);
    expect(reaches(C1)).toBe(false);
    expect(reaches(C2)).toBe(true);
    expect((await listed()).map((e) => [e.cidr, e.reason])).toEqual([[`${C1.ip}/32`, 'bad-hosts.txt'], ['203.0.113.0/24', 'bad-hosts.txt']]);
    // The file changes: C1 leaves the drop list, C2 enters it (reloads are polled every 2 s).
    writeFileSync(list, `${C2.ip}\n`);
    await waitFor('the reloaded list in force', async () => (reaches(C1) && !reaches(C2)) || undefined, 10_000);
    expect((await listed()).map((e) => e.cidr)).toEqual([`${C2.ip}/32`]);
  });
});
