// Alerts through the real path: the demo cluster's two nodes with agents and a relay, real nmap
// (TCP and UDP scans) and hping3 in pods of their own (fcs-*), a client opening connections fast,
// a benign client retrying a down service, and the alerts read back with `flowctl alerts` through
// the relay.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, DEMO, FLOWCTL, WORKLOAD } from './paths.js';

const run = promisify(execFile);
const RUN_DIR = '/run/flowctl-alerts-e2e';
const RELAY = '127.0.0.1:14249';
// Its own names (fcs-*), so the demo and other suites can run beside it.
const PREFIX = 'fcs';
const EXTRA_PODS = [
  `scanner-a|default|node-1|app=scanner-a|10.10.1.70|lxc-scan-a|${PREFIX}-scan-a`,
  `scanner-b|default|node-1|app=scanner-b|10.10.1.71|lxc-scan-b|${PREFIX}-scan-b`,
  `flooder|default|node-2|app=flooder|10.10.2.70|lxc-flood|${PREFIX}-flood`,
  `scanner-u|default|node-1|app=scanner-u|10.10.1.72|lxc-scan-u|${PREFIX}-scan-u`,
  `fast-client|default|node-1|app=fast-client|10.10.1.73|lxc-fast|${PREFIX}-fast`,
].join(';');
const env = {
  ...process.env, FLOWCTL_DEMO_PREFIX: PREFIX, FLOWCTL_DEMO_DIR: RUN_DIR, FLOWCTL_DEMO_RELAY: RELAY, FLOWCTL_SERVER: RELAY,
  FLOWCTL_DEMO_NO_APPS: '1', FLOWCTL_DEMO_EXTRA_PODS: EXTRA_PODS,
};
const GATEWAY = '10.10.1.10';
const ORDER = '10.10.1.11';
const PAYMENT = '10.10.2.10';

interface AlertLine {
  alert: {
    id: string; kind: string; severity: string; summary: string; time: string; raised: string; updates: number; node: string; action: string;
    source: { ip: string; pod_name: string; namespace: string; labels: string[] };
    destination: { ip: string; pod_name: string } | null;
    evidence: Record<string, any>;
  };
}

const inNs = (ns: string, cmd: string[], timeout = 120_000) => run('ip', ['netns', 'exec', ns, ...cmd], { timeout, maxBuffer: 64 << 20 });
const children: ChildProcess[] = [];

async function alerts(args: string[]): Promise<AlertLine[]> {
  const { stdout } = await run(FLOWCTL, ['alerts', '-o', 'json', ...args], { env, timeout: 30_000 });
  return stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as AlertLine);
}

async function eventually<T>(what: string, fn: () => Promise<T | undefined>, ms: number): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

const isRoot = process.getuid?.() === 0;
const built = existsSync(join(ROOT, 'packages', 'agent', 'dist', 'main.js'));
const tools = ['nmap', 'hping3'].every((t) => ['/usr/bin', '/usr/sbin', '/bin', '/sbin'].some((d) => existsSync(join(d, t))));

describe.skipIf(!isRoot)('alerts from real scans, a SYN flood and a benign retrying client', () => {
  let follow: ChildProcess;
  let followed = '';
  const started: Record<string, number> = {};
  const seenAt: Record<string, number> = {};
  let udpScan = '';
  let fastOut = '';

  beforeAll(async () => {
    if (!built) throw new Error('flowctl is not built: run `make build` first');
    if (!tools) throw new Error('nmap and hping3 are needed (make deps installs them)');
    await run(DEMO, ['up'], { env, timeout: 120_000 });
    const server = spawn('ip', ['netns', 'exec', `${PREFIX}-payment`, process.execPath, WORKLOAD, 'server', '--port', '8080', '--name', 'payment-service'], { stdio: 'ignore', detached: true });
    children.push(server);
    follow = spawn(FLOWCTL, ['alerts', '--follow', '-o', 'json'], { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    children.push(follow);
    follow.stdout!.on('data', (d: Buffer) => (followed += d.toString()));
    await eventually('payment-service listening', async () => {
      const r = await inNs(`${PREFIX}-gateway`, ['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '1', `http://${PAYMENT}:8080/healthz`]).catch(() => undefined);
      return r?.stdout === '200' ? true : undefined;
    }, 20_000);

    // A client retrying a service that is down (nothing listens on 9090): refused, again and again.
    const retries = (async () => {
      for (let i = 0; i < 10; i++) {
        await inNs(`${PREFIX}-gateway`, ['curl', '-s', '--max-time', '1', `http://${PAYMENT}:9090/orders`]).catch(() => undefined);
        await new Promise((r) => setTimeout(r, 300));
      }
    })();
    // nmap -sS across nodes (answered by RST) and nmap -sT on this node (policy drops: only the
    // gateway may reach order-service), 1,000 ports each, at once.
    const nmap = (pod: string, type: string, target: string) => {
      started[pod] = Date.now();
      return inNs(`${PREFIX}-${pod}`, ['nmap', type, '-Pn', '-n', '-T4', '--max-retries', '0', '--max-rtt-timeout', '200ms', '-p', '1-1000', target]);
    };
    const scans = Promise.all([nmap('scan-a', '-sS', PAYMENT), nmap('scan-b', '-sT', ORDER)]);
    // A UDP scan of 40 closed ports of a pod on the other node: nmap hears ICMP port unreachable.
    started['scan-u'] = Date.now();
    const udp = inNs(`${PREFIX}-scan-u`, ['nmap', '-sU', '-Pn', '-n', '-T4', '--max-retries', '0', '-p', '1-40', PAYMENT]);
    // 1,500 short connections at payment-service, 20 at a time: well over 100/s for 10 s on average.
    started.fast = Date.now();
    const fast = inNs(`${PREFIX}-fast`, [process.execPath, WORKLOAD, 'connect', '--name', 'fast-client', '--count', '1500', '--parallel', '20', PAYMENT, '8080']);
    await eventually('a port-scan alert for each scanner', async () => {
      const got = await alerts(['--kind', 'port-scan']);
      for (const a of got) seenAt[a.alert.source.pod_name] ??= Date.now();
      return seenAt['scanner-a'] && seenAt['scanner-b'] && seenAt['scanner-u'] ? true : undefined;
    }, 60_000);
    udpScan = (await udp).stdout;
    fastOut = (await fast).stdout;
    await Promise.all([scans, retries]);

    started.flood = Date.now();
    await inNs(`${PREFIX}-flood`, ['timeout', '-s', 'INT', '5', 'hping3', '--flood', '-S', '-p', '8080', PAYMENT]).catch(() => undefined);
    await eventually('a syn-flood alert', async () => ((await alerts(['--kind', 'syn-flood'])).length ? true : undefined), 20_000);
    // Updates of the alerts reach the follower within the publish interval.
    await new Promise((r) => setTimeout(r, 2500));
  }, 300_000);

  afterAll(async () => {
    for (const c of children) if (c.pid) try { process.kill(-c.pid, 'SIGKILL'); } catch { /* gone */ }
    await run(DEMO, ['down'], { env, timeout: 60_000 }).catch((err: unknown) => process.stderr.write(`demo down failed: ${String(err)}\n`));
  }, 90_000);

  it('raises one port-scan alert per scanner, naming it, within 30 s', async () => {
    const scans = await alerts(['--kind', 'port-scan', '--since', '10m']);
    const bySource = new Map<string, AlertLine[]>();
    for (const a of scans) bySource.set(a.alert.source.pod_name, [...(bySource.get(a.alert.source.pod_name) ?? []), a]);
    expect([...bySource.keys()].sort(), JSON.stringify(scans)).toEqual(['scanner-a', 'scanner-b', 'scanner-u']);
    for (const [pod, ip, target] of [['scanner-a', '10.10.1.70', PAYMENT], ['scanner-b', '10.10.1.71', ORDER]] as const) {
      const [a, ...more] = bySource.get(pod)!;
      expect(more, pod).toEqual([]);
      expect(a!.alert).toMatchObject({ kind: 'port-scan', action: 'none', node: 'node-1', source: { ip, namespace: 'default', pod_name: pod } });
      expect(a!.alert.destination?.ip).toBe(target);
      // 1,000 ports: nearly all of them refused or dropped, none open but 8080.
      expect(a!.alert.evidence.top_host.ports, a!.alert.summary).toBeGreaterThanOrEqual(900);
      const latency = Date.parse(a!.alert.raised) - started[pod === 'scanner-a' ? 'scan-a' : 'scan-b']!;
      console.log(`${pod}: raised ${latency} ms after the scan started; ${a!.alert.summary}`);
      expect(latency).toBeLessThan(30_000);
    }
  });

  it('raises one port-scan alert for a UDP scan whose probes are answered by ICMP port unreachable', async () => {
    // nmap says "closed" when an ICMP port unreachable came back (the kernel rate-limits them).
    expect(udpScan).toMatch(/\/udp\s+closed/);
    const scans = (await alerts(['--kind', 'port-scan', '--since', '10m'])).filter((a) => a.alert.source.pod_name === 'scanner-u');
    expect(scans, JSON.stringify(scans)).toHaveLength(1);
    const a = scans[0]!.alert;
    // The closed ports drop the probes on the target's node, which reports them: the scanner's
    // node sees the ICMP answers, but as one per host.
    expect(a).toMatchObject({ kind: 'port-scan', node: 'node-2', source: { ip: '10.10.1.72', pod_name: 'scanner-u' }, destination: { ip: PAYMENT } });
    expect(a.evidence.top_host.ports, a.summary).toBeGreaterThanOrEqual(30);
    console.log(`scanner-u: raised ${Date.parse(a.raised) - started['scan-u']!} ms after the scan started; ${a.summary}`);
  });

  it('raises one connection-rate alert for a client opening connections fast, and no port-scan or syn-flood', async () => {
    expect(fastOut).toMatch(/1500 attempts in \d+ms, 1[45]\d\d connected/);
    const mine = (await alerts(['--since', '10m'])).filter((a) => a.alert.source.pod_name === 'fast-client');
    expect(mine.map((a) => a.alert.kind), JSON.stringify(mine)).toEqual(['connection-rate']);
    const a = mine[0]!.alert;
    expect(a).toMatchObject({ node: 'node-1', source: { ip: '10.10.1.73', namespace: 'default', pod_name: 'fast-client' } });
    expect(a.evidence.connections_total, a.summary).toBeGreaterThanOrEqual(1000);
    expect(a.evidence.sample_destinations).toEqual([PAYMENT]);
    console.log(`fast-client: raised ${Date.parse(a.raised) - started.fast!} ms after it started; ${a.summary}`);
  });

  it('raises one syn-flood alert for hping3 --flood, naming the target and the flooder', async () => {
    const floods = await alerts(['--kind', 'syn-flood', '--since', '10m']);
    expect(floods, JSON.stringify(floods)).toHaveLength(1);
    const a = floods[0]!.alert;
    expect(a).toMatchObject({ node: 'node-2', source: { ip: '10.10.2.70', pod_name: 'flooder' }, destination: { ip: PAYMENT, pod_name: 'payment-service-4b2a1' } });
    console.log(`syn-flood raised ${Date.parse(a.raised) - started.flood!} ms after the flood started; ${a.summary}`);
  });

  it('raises nothing about the client retrying a down service', async () => {
    const all = await alerts(['--since', '10m']);
    expect(all.filter((a) => a.alert.source.ip === GATEWAY || a.alert.destination?.ip === GATEWAY), JSON.stringify(all)).toEqual([]);
  });

  it('--follow printed each alert when raised and when updated; --since prints each once', async () => {
    const lines = followed.split('\n').filter(Boolean).map((l) => JSON.parse(l) as AlertLine);
    const byId = new Map<string, number[]>();
    for (const l of lines) byId.set(l.alert.id, [...(byId.get(l.alert.id) ?? []), l.alert.updates]);
    // Its port-scan alert: a 1,000-port scan in about a second is also 100 new connections per
    // second over the 10 s window, right at the connection-rate threshold, which may alert once.
    const scanA = lines.find((l) => l.alert.kind === 'port-scan' && l.alert.source.pod_name === 'scanner-a');
    console.log(`followed: ${[...new Set(lines.map((l) => `${l.alert.kind} of ${l.alert.source.pod_name}`))].join(', ')}`);
    expect(scanA, followed).toBeDefined();
    const updates = byId.get(scanA!.alert.id)!;
    const held = (await alerts(['--since', '10m'])).find((a) => a.alert.id === scanA!.alert.id);
    const why = JSON.stringify({ followed: lines.filter((l) => l.alert.id === scanA!.alert.id), held });
    expect(updates[0], why).toBe(0);
    expect(updates.length, why).toBeGreaterThan(1);
    for (const u of byId.values()) for (let i = 1; i < u.length; i++) expect(u[i]!).toBeGreaterThan(u[i - 1]!);
    const once = await alerts(['--since', '10m']);
    expect(new Set(once.map((a) => a.alert.id)).size).toBe(once.length);
    expect(new Set(once.map((a) => a.alert.id))).toEqual(new Set(byId.keys()));
  });

  it('counts raised alerts in flowctl_alerts_total on the node that raised them', async () => {
    const { stdout } = await inNs(`${PREFIX}-node-1`, ['curl', '-s', '127.0.0.1:9965/metrics']);
    expect(stdout).toMatch(/^flowctl_alerts_total\{kind="port-scan",severity="\w+"\} [12]$/m);
    expect(stdout).toMatch(/^flowctl_detect_state_entries\{detector="port-scan"\} \d+$/m);
  });
});
