// A flood in network namespaces (prefix fcf-, subnet 10.203.26.0/24), shared by the e2e tests
// (syn-flood.bpf.test.ts, udp-icmp-flood.bpf.test.ts) and bench/syn-flood.ts: nginx (and, when
// asked, dnsmasq) in a web pod, a client pod making ordinary HTTP requests and DNS lookups, and an
// attacker namespace running `hping3 --flood` (SYNs by default, or UDP, ICMP) at the web pod, from
// its own address or from random ones. The attacker is not an endpoint (its veth is not watched), as a
// flood from outside the cluster. The node namespace does not forward, so SYN-ACKs to spoofed
// addresses end there. The agent is the real process (compiled when built), in the node namespace.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { HealthClient, HealthCheckResponse_ServingStatus, ObserverClient, type Flow } from '@flowctl/flow';
import { waitFor } from './agent-process.js';
import { buildTopology, cleanupNetns, type Topology } from './netns.js';

const REPO = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../../..');
const PREFIX = 'fcf';
const METRICS_PORT = 19926;

export interface Phase {
  /** hping3's own count of packets sent (SYNs unless FloodOptions.hping says otherwise). */
  sent: number;
  /** Remote ports of the client's requests in nginx's access log, and how many requests succeeded. */
  served: number[];
  ok: number;
  /** Names the client looked up (through dnsmasq), those dnsmasq logged, and how many were answered. */
  names: string[];
  logged: string[];
  answered: number;
}

export interface FloodOptions {
  /** hping3's arguments besides --flood and the target (default a SYN flood at port 80: -S -p 80). */
  hping?: string[];
  /** DNS lookups the client makes beside its requests, each from a new socket (needs startDns()). */
  lookups?: number;
}

/** dnsmasq's answer to every name under flood.test. */
export const DNS_ANSWER = '10.203.26.99';

export class SynFloodLab {
  readonly topo: Topology;
  readonly dir: string;
  private agent: ChildProcess | undefined;
  private agentLog = '';
  private readonly procs: ChildProcess[] = [];
  private lookupSeq = 0;

  constructor(readonly tag = 'syn') {
    this.topo = buildTopology(tag, 26, 3, PREFIX);
    this.dir = mkdtempSync(join(tmpdir(), 'fcf-syn-'));
    writeFileSync(join(this.dir, 'endpoints.yaml'), `endpoints:
  - name: web-0
    namespace: shop
    node: ${this.topo.node}
    labels: { app: web }
    ips: [${this.web.ip}]
    interface: ${this.web.hostIf}
    netns: ${this.web.ns}
  - name: client-0
    namespace: shop
    node: ${this.topo.node}
    labels: { app: client }
    ips: [${this.client.ip}]
    interface: ${this.client.hostIf}
    netns: ${this.client.ns}
`);
    writeFileSync(join(this.dir, 'nginx.conf'), `master_process off; # one process: killing it leaves no orphaned worker
pid ${this.dir}/nginx.pid;
error_log ${this.dir}/nginx-error.log;
events { worker_connections 1024; }
http {
  log_format ports '$remote_addr $remote_port $status';
  access_log ${this.dir}/access.log ports;
  client_body_temp_path ${this.dir};
  server { listen ${this.web.ip}:80 backlog=4096; location / { return 200 "ok\\n"; } }
}
`);
    this.background(this.web.ns, ['nginx', '-c', join(this.dir, 'nginx.conf'), '-g', 'daemon off;']);
  }

  get web() { return this.topo.pods[0]!; }
  get client() { return this.topo.pods[1]!; }
  get attacker() { return this.topo.pods[2]!; }
  get socket() { return join(this.dir, 'hubble.sock'); }

  /** dnsmasq in the web pod (answers *.flood.test with DNS_ANSWER, logs every query). */
  async startDns(): Promise<void> {
    this.background(this.web.ns, ['dnsmasq', '--keep-in-foreground', '--no-resolv', '--no-hosts', '--no-poll', '--user=root',
      `--pid-file=${join(this.dir, 'dnsmasq.pid')}`, `--listen-address=${this.web.ip}`, '--bind-interfaces',
      `--address=/flood.test/${DNS_ANSWER}`, '--log-queries', `--log-facility=${join(this.dir, 'dnsmasq.log')}`]);
    await this.waitFor('dnsmasq', async () => ((await this.run(this.web.ns, ['ss', '-uln'])).includes(`${this.web.ip}:53`) || undefined), 10_000);
  }

  /** Starts the agent with extra flags and waits until it serves and has attached both pods. */
  async startAgent(flags: string[] = []): Promise<void> {
    const dist = join(REPO, 'packages/agent/dist/main.js');
    const entry = existsSync(dist) ? [dist] : ['--conditions=@flowctl/source', '--import', 'tsx', join(REPO, 'packages/agent/src/main.ts')];
    rmSync(this.socket, { force: true });
    this.agentLog = '';
    this.agent = spawn('ip', [
      'netns', 'exec', this.topo.node, process.execPath, ...entry,
      '--node-name', this.topo.node, '--endpoints', join(this.dir, 'endpoints.yaml'), '--unix-socket', this.socket,
      '--listen-address', '', '--ring-capacity', '65535', '--metrics-address', `127.0.0.1:${METRICS_PORT}`, ...flags,
    ], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    this.agent.stdout!.on('data', (d: Buffer) => (this.agentLog += d));
    this.agent.stderr!.on('data', (d: Buffer) => (this.agentLog += d));
    await this.waitFor('agent health', () => new Promise<boolean | undefined>((res) => {
      if (!existsSync(this.socket)) return res(undefined);
      const h = new HealthClient(`unix:${this.socket}`, grpc.credentials.createInsecure());
      h.check({ service: 'hubble.server.Observer' }, (e, r) => {
        h.close();
        res(!e && r.status === HealthCheckResponse_ServingStatus.SERVING ? true : undefined);
      });
    }), 60_000);
    await this.waitFor('attachments', () => (this.agentLog.includes(`"ifname":"${this.client.hostIf}"`) && this.agentLog.includes(`"ifname":"${this.web.hostIf}"`)) || undefined, 15_000);
  }

  async stopAgent(): Promise<void> {
    const a = this.agent;
    this.agent = undefined;
    if (!a || a.exitCode !== null) return;
    const exited = new Promise((r) => a.once('exit', r));
    a.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    if (a.exitCode === null) a.kill('SIGKILL');
  }

  /** The agent's peak resident set (VmHWM) so far, in bytes. */
  agentPeakRss(): number {
    const status = readFileSync(`/proc/${this.agent!.pid}/status`, 'utf8');
    return Number(/^VmHWM:\s+(\d+) kB/m.exec(status)![1]) * 1024;
  }

  /**
   * Floods the web pod for `seconds` (hping3, a SYN flood at port 80 unless `o.hping` says otherwise)
   * while the client makes `requests` concurrent HTTP requests and `o.lookups` DNS lookups (started
   * after a second of flood). Returns what nginx served, dnsmasq logged and hping3 sent.
   */
  async flood(seconds: number, randSource: boolean, requests: number, o: FloodOptions = {}): Promise<Phase> {
    const before = this.accessLog().length;
    const names = Array.from({ length: o.lookups ?? 0 }, (_, i) => `q${++this.lookupSeq}-${i}.flood.test`);
    const hping = this.run(this.attacker.ns, ['timeout', '-s', 'INT', String(seconds), 'hping3', '--flood', ...(o.hping ?? ['-S', '-p', '80']),
      ...(randSource ? ['--rand-source'] : []), this.web.ip], true);
    await new Promise((r) => setTimeout(r, 1000));
    const out = requests || names.length ? await this.run(this.client.ns, [process.execPath, '-e', `
      const http = require('http'), dns = require('dns').promises;
      const get = () => new Promise((res) => {
        const q = http.get({ host: '${this.web.ip}', port: 80, path: '/', agent: false, timeout: 30000 }, (s) => {
          s.resume(); s.on('end', () => res(s.statusCode === 200));
        });
        q.on('error', () => res(false));
        q.on('timeout', () => q.destroy());
      });
      const lookup = (n) => { const r = new dns.Resolver({ timeout: 2000, tries: 4 }); r.setServers(['${this.web.ip}']);
        return r.resolve4(n).then((a) => a[0] === '${DNS_ANSWER}', () => false); };
      Promise.all([...Array.from({ length: ${requests} }, get), ...${JSON.stringify(names)}.map(lookup)]).then((r) =>
        console.log(JSON.stringify({ ok: r.slice(0, ${requests}).filter(Boolean).length, answered: r.slice(${requests}).filter(Boolean).length })));`]) : '{"ok":0,"answered":0}';
    const hpingOut = await hping;
    const served = this.accessLog().slice(before).filter((l) => l.startsWith(`${this.client.ip} `)).map((l) => Number(l.split(' ')[1]));
    const sent = Number(/(\d+) packets transmitted/.exec(hpingOut)?.[1] ?? NaN);
    const r = JSON.parse(out.trim()) as { ok: number; answered: number };
    const logged = names.filter((n) => this.dnsLog().includes(`query[A] ${n} from ${this.client.ip}`));
    return { sent, served, ok: r.ok, names, logged, answered: r.answered };
  }

  /**
   * From the attacker's namespace, one keep-alive HTTP connection to the web pod, opened at once and
   * used every 250 ms for `seconds`: how many requests succeeded or failed, and the local ports used.
   */
  async keepAlive(seconds: number): Promise<{ ok: number; failed: number; ports: number[] }> {
    const out = await this.run(this.attacker.ns, [process.execPath, '-e', `
      const http = require('http'); const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      let ok = 0, failed = 0; const ports = new Set(); const end = Date.now() + ${seconds * 1000};
      const once = () => new Promise((res) => {
        const q = http.get({ host: '${this.web.ip}', port: 80, path: '/', agent, timeout: 20000 }, (s) => {
          ports.add(s.socket.localPort); s.resume(); s.on('end', () => { s.statusCode === 200 ? ok++ : failed++; res(); });
        });
        q.on('error', () => { failed++; res(); });
        q.on('timeout', () => q.destroy());
      });
      (async () => { while (Date.now() < end) { await once(); await new Promise((r) => setTimeout(r, 250)); }
        console.log(JSON.stringify({ ok, failed, ports: [...ports] })); agent.destroy(); })();`]);
    return JSON.parse(out.trim()) as { ok: number; failed: number; ports: number[] };
  }

  /** Every flow in the agent's ring. */
  flows(): Promise<Flow[]> {
    const c = new ObserverClient(`unix:${this.socket}`, grpc.credentials.createInsecure(), { 'grpc.max_receive_message_length': 64 << 20 });
    return new Promise((res, rej) => {
      const out: Flow[] = [];
      const s = c.getFlows({ number: 100000n });
      s.on('data', (r: { flow?: Flow }) => r.flow && out.push(r.flow));
      s.on('end', () => {
        c.close();
        res(out);
      });
      s.on('error', rej);
    });
  }

  /** A counter of the agent's /metrics, summed over the series whose labels include `labels`. */
  async metric(name: string, labels = ''): Promise<number> {
    const text = await this.run(this.topo.node, ['curl', '-s', `http://127.0.0.1:${METRICS_PORT}/metrics`]);
    let sum = 0;
    for (const line of text.split('\n')) {
      if (!line.startsWith(name) || line[name.length] === '_' || !line.includes(labels)) continue;
      sum += Number(line.slice(line.lastIndexOf(' ') + 1));
    }
    return sum;
  }

  close(): void {
    for (const p of this.procs) if (p.exitCode === null) p.kill('SIGKILL');
    if (this.agent && this.agent.exitCode === null) this.agent.kill('SIGKILL');
    cleanupNetns(this.tag, PREFIX);
    rmSync(this.dir, { recursive: true, force: true });
  }

  get log(): string {
    return this.agentLog;
  }

  private dnsLog(): string {
    try {
      return readFileSync(join(this.dir, 'dnsmasq.log'), 'utf8');
    } catch {
      return '';
    }
  }

  private accessLog(): string[] {
    try {
      return readFileSync(join(this.dir, 'access.log'), 'utf8').split('\n').filter(Boolean);
    } catch {
      return [];
    }
  }

  private background(ns: string, args: string[]): void {
    const p = spawn('ip', ['netns', 'exec', ns, ...args], { stdio: 'ignore' });
    this.procs.push(p);
  }

  /** Runs a command in a namespace; its stdout (and, with `both`, stderr too). */
  private run(ns: string, args: string[], both = false): Promise<string> {
    return new Promise((res, rej) => {
      const p = spawn('ip', ['netns', 'exec', ns, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      this.procs.push(p);
      let out = '';
      let err = '';
      p.stdout!.on('data', (d: Buffer) => (out += d));
      p.stderr!.on('data', (d: Buffer) => (both ? (out += d) : (err += d)));
      p.on('close', (code, sig) => (code === 0 || both ? res(out) : rej(new Error(`${args.join(' ')} in ${ns}: exit ${code ?? sig}: ${err.trim()}`))));
    });
  }

  waitFor<T>(what: string, f: () => Promise<T | undefined> | T | undefined, ms: number): Promise<T> {
    return waitFor(what, f, ms, () => this.agentLog);
  }
}
