// The end-to-end scenarios of the simulated cluster (issue 9): the commands users know from
// Hubble, through the relay, against real agents, real kernel programs and real traffic.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { hubbleCli } from '../../packages/flow/src/testing/hubble.js';
import { ROOT, DEMO, FLOWCTL } from './paths.js';

const run = promisify(execFile);
// Its own names, directory and relay port, so a `make demo-up` of the user's can run beside it.
const PREFIX = 'fce';
const RUN_DIR = '/run/flowctl-demo-e2e';
const RELAY = '127.0.0.1:14245';
const env = { ...process.env, FLOWCTL_DEMO_PREFIX: PREFIX, FLOWCTL_DEMO_DIR: RUN_DIR, FLOWCTL_DEMO_RELAY: RELAY, FLOWCTL_SERVER: RELAY };
let printed = '';

interface Resp {
  flow?: Record<string, any>;
  lost_events?: Record<string, any>;
  node_status?: Record<string, any>;
  node_name?: string;
  time?: string;
}

async function flowctl(args: string[]): Promise<{ stdout: string; stderr: string }> {
  return run(FLOWCTL, args, { env, maxBuffer: 256 << 20, timeout: 60_000 });
}

function lines(stdout: string): Resp[] {
  return stdout.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as Resp);
}

async function observe(...args: string[]): Promise<Resp[]> {
  const { stdout } = await flowctl(['observe', '-o', 'json', ...args]);
  return lines(stdout);
}

async function eventually<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}

const isRoot = process.getuid?.() === 0;
const built = existsSync(join(ROOT, 'packages', 'agent', 'dist', 'main.js')) && existsSync(join(ROOT, 'packages', 'relay', 'dist', 'main.js'));

describe.skipIf(!isRoot)('demo cluster through the relay', () => {
  beforeAll(async () => {
    if (!built) throw new Error('flowctl is not built: run `make build` (make test does) before the e2e tests');
    printed = (await run(DEMO, ['up'], { env, timeout: 120_000 })).stdout;
    // The intruder's attempts are the slowest signal (one every 2 s): wait until the relay has them.
    await eventually('a DROPPED flow from the intruder', async () => {
      const r = await observe('--verdict', 'DROPPED', '--last', '5');
      return r.some((x) => x.flow?.source?.pod_name?.startsWith('intruder')) ? true : undefined;
    }, 60_000);
  }, 180_000);

  afterAll(async () => {
    await run(DEMO, ['down'], { env, timeout: 60_000 }).catch((err: unknown) => {
      process.stderr.write(`demo down failed: ${String(err)}\n`);
    });
  }, 90_000);

  it('flowctl alerts shows the intruder\'s port scan of its node, once, and prints the follow command', async () => {
    expect(printed).toContain('./bin/flowctl alerts --follow');
    // The intruder scans 100 ports of its node 15 s after start-up, then every minute.
    const scans = await eventually('the intruder\'s port-scan alert, updated to its 100 ports', async () => {
      const { stdout } = await flowctl(['alerts', '--kind', 'port-scan', '-o', 'json']);
      const a = lines(stdout).map((l) => (l as unknown as { alert: { source: { pod_name: string }; destination: { ip: string }; evidence: { top_host: { ports: number } } } }).alert);
      return a.length && a[0]!.evidence.top_host.ports >= 90 ? a : undefined;
    }, 90_000);
    expect(scans).toHaveLength(1);
    expect(scans[0]!.source.pod_name).toMatch(/^intruder-/);
    expect(scans[0]!.destination.ip).toBe('10.10.2.1');
    expect(scans[0]!.evidence.top_host.ports).toBeGreaterThanOrEqual(90);
  });

  it('flowctl alerts shows each kind of alert once, all raised by the intruder', async () => {
    // In its first 30 s the intruder scans, tunnels DNS, calls a listed address, opens 1,200
    // connections and SYN-floods payment-service (scripts/demo.sh); it looks up two listed names.
    type A = { kind: string; target: string; source: { pod_name: string }; destination: { pod_name?: string } | null; evidence: Record<string, any>; summary: string };
    const kinds = ['port-scan', 'dns-tunnel', 'blocklisted-domain', 'blocklisted-ip', 'syn-flood', 'connection-rate'];
    const all = await eventually('an alert of each kind', async () => {
      const { stdout } = await flowctl(['alerts', '-o', 'json']);
      const a = lines(stdout).map((l) => (l as unknown as { alert: A }).alert);
      return kinds.every((k) => a.some((x) => x.kind === k)) ? a : undefined;
    }, 90_000);
    const byKind = (k: string) => all.filter((a) => a.kind === k);
    for (const k of kinds.filter((x) => x !== 'blocklisted-domain')) expect(byKind(k), JSON.stringify(all)).toHaveLength(1);
    expect(byKind('blocklisted-domain').map((a) => a.target).sort()).toEqual(['c2.botnet.invalid', 'exfil.attacker.example']);
    expect(all).toHaveLength(kinds.length + 1);
    for (const a of all) expect(a.source.pod_name, a.summary).toMatch(/^intruder-/);
    expect(byKind('dns-tunnel')[0]!.target).toBe('exfil.example');
    expect(byKind('blocklisted-ip')[0]!.evidence).toMatchObject({ entry: '10.10.99.0/24', address: '10.10.99.1', port: 443 });
    expect(byKind('syn-flood')[0]!.destination?.pod_name).toMatch(/^payment-service-/);
    expect(byKind('connection-rate')[0]!.evidence.connections_total).toBeGreaterThanOrEqual(1000);
    // The attacks that run once are counted apart: every process that must keep running still does.
    const st = await eventually('the one-shot attacks finished', async () => {
      const { stdout } = await run(DEMO, ['status'], { env });
      return /one-shot attacks: (\d+) of \1 finished/.test(stdout) ? stdout : undefined;
    }, 60_000);
    const [, alive, total] = /processes: (\d+)\/(\d+) running/.exec(st)!;
    expect(alive, st).toBe(total);
  });

  it('--namespace shop shows only flows from or to shop, with pod names on both sides', async () => {
    const r = (await observe('--namespace', 'shop', '--last', '200')).filter((x) => x.flow);
    expect(r.length).toBeGreaterThan(10);
    for (const { flow } of r) {
      expect(flow!.source?.namespace === 'shop' || flow!.destination?.namespace === 'shop').toBe(true);
    }
    const shopToShop = r.filter(({ flow }) => flow!.source?.namespace === 'shop' && flow!.destination?.namespace === 'shop');
    expect(shopToShop.length).toBeGreaterThan(0);
    for (const { flow } of shopToShop) {
      expect(flow!.source.pod_name).toMatch(/^(api-gateway|order-service|payment-service)-/);
      expect(flow!.destination.pod_name).toMatch(/^(api-gateway|order-service|payment-service)-/);
    }
  });

  it('--verdict DROPPED (and --to-label app=order-service) lists the intruder\'s blocked attempts', async () => {
    for (const extra of [[], ['--to-label', 'app=order-service']]) {
      const r = (await observe('--verdict', 'DROPPED', '--last', '50', ...extra)).filter((x) => x.flow);
      const intruder = r.filter(({ flow }) => flow!.source?.pod_name?.startsWith('intruder-'));
      expect(intruder.length).toBeGreaterThan(0);
      for (const { flow } of intruder) {
        // Its port scan of its node: nothing listens there, so the node's kernel drops the SYNs.
        if (flow!.drop_reason_desc === 'SOCKET_LOOKUP_FAILED' && flow!.IP?.destination === '10.10.2.1') continue;
        // Its call to the listed C2 address, which no route leads to.
        if (flow!.drop_reason_desc === 'FIB_LOOKUP_FAILED' && flow!.IP?.destination === '10.10.99.1') continue;
        // Its burst of connections and its SYN flood at payment-service, which refuses a few.
        if (flow!.IP?.destination === '10.10.2.10' && flow!.l4?.TCP?.destination_port === 8080) continue;
        expect(flow!.verdict).toBe('DROPPED');
        expect(flow!.drop_reason_desc).toBe('POLICY_DENIED');
        expect(flow!.l4?.TCP?.destination_port).toBe(8080);
        expect(flow!.destination?.pod_name).toMatch(/^order-service-/);
        expect(flow!.Type).toBe('L3_L4');
        expect(flow!.event_type).toEqual({ type: 1, sub_type: 133 });
      }
    }
  });

  it('allowed traffic (api-gateway → order-service, order-service → payment-service) is FORWARDED', async () => {
    const r = (await observe('--from-label', 'app=api-gateway', '--to-label', 'app=order-service', '--last', '20')).filter((x) => x.flow);
    expect(r.length).toBeGreaterThan(0);
    expect(r.every(({ flow }) => flow!.verdict === 'FORWARDED')).toBe(true);
    const p = (await observe('--from-label', 'app=order-service', '--to-label', 'app=payment-service', '--last', '20')).filter((x) => x.flow);
    expect(p.length).toBeGreaterThan(0);
    expect(p.every(({ flow }) => flow!.verdict === 'FORWARDED')).toBe(true);
  });

  it('--http-status 500 shows HTTP responses with code 500, method, URL and latency', async () => {
    const r = await eventually('HTTP 500 responses', async () => {
      const x = (await observe('--http-status', '500', '--last', '20')).filter((y) => y.flow);
      return x.length > 0 ? x : undefined;
    });
    for (const { flow } of r) {
      expect(flow!.Type).toBe('L7');
      expect(flow!.l7.type).toBe('RESPONSE');
      expect(flow!.l7.http.code).toBe(500);
      expect(flow!.l7.http.method).toBe('GET');
      expect(flow!.l7.http.url).toMatch(/^http:\/\/.+\/(fail|error)/);
      expect(BigInt(flow!.l7.latency_ns)).toBeGreaterThan(0n);
    }
  });

  it('--protocol DNS shows queries and answers with names and rcodes', async () => {
    const r = await eventually('DNS answers, including NXDOMAIN', async () => {
      const x = (await observe('--protocol', 'DNS', '--last', '100')).filter((y) => y.flow);
      const nx = x.some(({ flow }) => flow!.l7?.type === 'RESPONSE' && flow!.l7.dns?.rcode === 3);
      return nx ? x : undefined;
    });
    const queries = r.filter(({ flow }) => flow!.l7.type === 'REQUEST');
    const answers = r.filter(({ flow }) => flow!.l7.type === 'RESPONSE');
    expect(queries.length).toBeGreaterThan(0);
    expect(answers.length).toBeGreaterThan(0);
    expect(queries.every(({ flow }) => /\.$/.test(flow!.l7.dns.query))).toBe(true);
    const ok = answers.find(({ flow }) => flow!.l7.dns.query === 'order-service.shop.svc.cluster.local.' && (flow!.l7.dns.rcode ?? 0) === 0 && flow!.l7.dns.ips);
    expect(ok?.flow!.l7.dns.ips).toContain('10.10.1.11');
    expect(answers.some(({ flow }) => flow!.l7.dns.rcode === 3 && /attacker|botnet/.test(flow!.l7.dns.query))).toBe(true);
  });

  it('-o json > flows.json, jq and --input-file agree', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fcx-e2e-'));
    try {
      const file = join(dir, 'flows.json');
      const { stdout } = await flowctl(['observe', '-o', 'json', '--last', '300']);
      writeFileSync(file, stdout);
      const jq = await run('jq', ['-r', 'select(.flow.verdict=="DROPPED") | .flow.source.pod_name', file]);
      const jqPods = jq.stdout.split('\n').filter(Boolean);
      expect(jqPods.length).toBeGreaterThan(0);
      expect(jqPods.some((p) => p.startsWith('intruder-'))).toBe(true);
      const offline = lines((await flowctl(['observe', '--input-file', file, '--verdict', 'DROPPED', '--all', '-o', 'json'])).stdout);
      expect(offline.map((x) => x.flow!.source?.pod_name ?? 'null')).toEqual(jqPods);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the real Hubble CLI through the relay agrees with flowctl', { tags: ['hubble'] }, async () => {
    // A closed time window in the past makes both answers deterministic.
    const until = new Date(Date.now() - 1000).toISOString();
    const since = new Date(Date.now() - 20_000).toISOString();
    const args = ['observe', '--server', RELAY, '--since', since, '--until', until, '--verdict', 'DROPPED', '-o', 'json'];
    const ours = lines((await flowctl(args)).stdout).filter((x) => x.flow).map((x) => x.flow!.uuid).sort();
    const theirs = lines((await run(hubbleCli(), args, { env, maxBuffer: 64 << 20 })).stdout).filter((x) => x.flow).map((x) => x.flow!.uuid).sort();
    expect(ours.length).toBeGreaterThan(0);
    expect(theirs).toEqual(ours);
    const st = await run(hubbleCli(), ['status', '--server', RELAY], { env });
    expect(st.stdout).toMatch(/Healthcheck \(via .*\): Ok/);
    expect(st.stdout).toMatch(/Connected Nodes: 2\/2/);
    const nodes = await run(hubbleCli(), ['list', 'nodes', '--server', RELAY], { env });
    expect(nodes.stdout).toMatch(/node-1\s+Connected/);
    expect(nodes.stdout).toMatch(/node-2\s+Connected/);
  });

  it('every command it prints to try works as pasted (flowctl, each node\'s metrics, the Hubble CLI found)', async () => {
    const block = printed.slice(printed.indexOf('Try, in another terminal'), printed.indexOf('Tear down'));
    const commands = block.split('\n').filter((l) => l.startsWith('  ')).map((l) => l.trim());
    expect(commands.filter((c) => /^ip netns exec \S+ curl .*9965\/metrics/.test(c))).toHaveLength(2);
    const hubble = process.env.HUBBLE; // what vitest.config.ts found, as the demo finds it
    if (hubble) expect(commands).toContain(`${hubble} observe --server ${RELAY} --last 10`);
    else expect(commands.filter((c) => c.includes('hubble observe'))).toEqual([]);
    expect(commands).toContain('./bin/flowctl observe --to-workload payment-service');
    // From a directory of its own whose ./bin is the clone's, so files a command writes land there.
    const cwd = mkdtempSync(join(tmpdir(), 'fce-try-'));
    onTestFinished(() => rmSync(cwd, { recursive: true, force: true }));
    symlinkSync(join(ROOT, 'bin'), join(cwd, 'bin'));
    for (const c of commands) {
      const r = await run('bash', ['-c', c], { cwd, env, maxBuffer: 64 << 20, timeout: 60_000 }).then(
        (x) => ({ code: 0, ...x }),
        (e: { code: number; stdout: string; stderr: string }) => e,
      );
      if (c.includes('policy check')) {
        expect(r.stdout, c).toMatch(/^DENIED /); // the intruder is denied: exit 1 says so
        expect(r.code, c).toBe(1);
        continue;
      }
      expect(r.code, `${c}\n${r.stderr}`).toBe(0);
      const written = / > ([\w.-]+)$/.exec(c)?.[1]; // a command that writes a file prints nothing
      if (written) expect(readFileSync(join(cwd, written), 'utf8'), c).toMatch(/<svg/);
      else expect(r.stdout.trim(), c).not.toBe('');
      if (c.includes('/metrics')) expect(r.stdout).toMatch(/^hubble_\w+/m);
      if (c.includes('--to-workload payment-service')) expect(r.stdout).toMatch(/payment-service/);
    }
  });

  it('killing one agent: the follow stream goes on, the lost node is reported, a restart rejoins', async () => {
    const follow: ChildProcess = spawn(FLOWCTL, ['observe', '--follow', '-o', 'json'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    follow.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
    follow.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
    try {
      await eventually('flows on the follow stream', async () => (out.length > 0 ? true : undefined));
      await run(DEMO, ['stop-agent', 'node-2'], { env });
      const mark = out.length;
      await eventually('node-2 reported unavailable on stderr', async () => (/node-2/.test(err) ? true : undefined));
      await eventually('node-1 flows after node-2 went away', async () =>
        lines(out.slice(out.indexOf('\n', mark) + 1)).some((x) => x.flow?.node_name?.endsWith('node-1')) ? true : undefined);
      const st = await flowctl(['status']);
      expect(st.stdout).toMatch(/Unavailable Nodes: 1/);
      await run(DEMO, ['start-agent', 'node-2'], { env });
      await eventually('node-2 connected again', async () => {
        const s = await flowctl(['status']);
        return /Connected Nodes: 2\/2/.test(s.stdout) ? true : undefined;
      }, 30_000);
      const rejoined = out.length;
      await eventually('node-2 flows on the same follow stream', async () =>
        lines(out.slice(out.indexOf('\n', rejoined) + 1)).some((x) => x.flow?.node_name?.endsWith('node-2')) ? true : undefined, 30_000);
    } finally {
      follow.kill('SIGINT');
    }
  });

  it('a real Prometheus server scrapes an agent and PromQL returns the expected series', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fcx-prom-'));
    const cfg = join(dir, 'prometheus.yml');
    writeFileSync(cfg, `global: { scrape_interval: 1s }\nscrape_configs:\n  - job_name: flowctl\n    static_configs: [ { targets: ['127.0.0.1:9965'] } ]\n`);
    const prom = spawn('ip', ['netns', 'exec', `${PREFIX}-node-1`, 'prometheus', `--config.file=${cfg}`, `--storage.tsdb.path=${join(dir, 'data')}`,
      '--web.listen-address=127.0.0.1:19090'], { stdio: 'ignore', detached: true });
    try {
      const exposition = (await run('ip', ['netns', 'exec', `${PREFIX}-node-1`, 'curl', '-sf', 'http://127.0.0.1:9965/metrics'])).stdout;
      const check = spawn('promtool', ['check', 'metrics']);
      check.stdin.end(exposition);
      const code = await new Promise<number>((r) => check.on('close', (c) => r(c ?? 1)));
      expect(code).toBe(0);
      const result = await eventually('hubble_drop_total in Prometheus', async () => {
        const q = encodeURIComponent('sum by (reason) (hubble_drop_total)');
        const { stdout } = await run('ip', ['netns', 'exec', `${PREFIX}-node-1`, 'curl', '-sf', `http://127.0.0.1:19090/api/v1/query?query=${q}`]);
        const body = JSON.parse(stdout) as { data: { result: { metric: { reason: string }; value: [number, string] }[] } };
        return body.data.result.length > 0 ? body.data.result : undefined;
      }, 45_000);
      const denied = result.find((s) => s.metric.reason === 'POLICY_DENIED');
      expect(Number(denied?.value[1])).toBeGreaterThan(0);
    } finally {
      try { process.kill(-prom.pid!, 'SIGTERM'); } catch { /* already gone */ }
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
