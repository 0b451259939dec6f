// Network policy end to end (issue 8) on the real kernel: a node namespace running the real agent,
// four pod namespaces (api-gateway, order-service, payment-service, other) behind a bridge, the
// issue's order-service policy, real TCP connections, verdicts read with the real flowctl CLI, a
// live policy change timed on an established connection, the policy in force read back over
// gRPC (flowctl policy list/check against the agent), and --policy-audit.
// Prefix fcp-, subnet 10.205.0.0/16 (docs/design/contracts.md).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, flowctl, bpfSkipReason, buildLab, cleanupLab, inNs, sh, startAgent as startLabAgent, waitFor as labWaitFor, type Lab, type LabAgent } from './lab.js';

const NODE_NS = 'fcp-node';

interface Pod {
  name: string;
  app: string;
  ns: string;
  hostIf: string;
  ip: string;
  ip6: string;
}

const PODS: Pod[] = [
  { name: 'api-gateway-7c9d8f6b5-k2m4p', app: 'api-gateway', ns: 'fcp-gw', hostIf: 'fcp-h0', ip: '10.205.1.10', ip6: 'fd00:205:1::10' },
  { name: 'order-service-5d8f7c6b9-q7w8e', app: 'order-service', ns: 'fcp-order', hostIf: 'fcp-h1', ip: '10.205.1.20', ip6: 'fd00:205:1::20' },
  { name: 'payment-service-6f7a8b9c0-r5t6y', app: 'payment-service', ns: 'fcp-pay', hostIf: 'fcp-h2', ip: '10.205.1.30', ip6: 'fd00:205:1::30' },
  { name: 'other-84b5c6d7e-z9x8c', app: 'other', ns: 'fcp-other', hostIf: 'fcp-h3', ip: '10.205.1.40', ip6: 'fd00:205:1::40' },
];
const [gw, order, pay, other] = PODS as [Pod, Pod, Pod, Pod];
const LAB: Lab = {
  prefix: 'fcp-',
  node: NODE_NS,
  bridge: 'fcp-br0',
  gateway: '10.205.1.1',
  gateway6: 'fd00:205:1::1',
  pods: PODS.map((p) => ({ netns: p.ns, hostIf: p.hostIf, ip: p.ip, ip6: p.ip6 })),
};

const POLICY = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: order-service-policy, namespace: shop }
spec:
  endpointSelector: { matchLabels: { app: order-service } }
  ingress:
    - fromEndpoints: [ { matchLabels: { app: api-gateway } } ]
      toPorts: [ { ports: [ { port: "8080", protocol: TCP } ] } ]
  egress:
    - toEndpoints: [ { matchLabels: { app: payment-service } } ]
      toPorts: [ { ports: [ { port: "8080" } ] } ]
`;

const ENDPOINTS = `endpoints:
${PODS.map((p) => `  - name: ${p.name}
    namespace: shop
    node: ${NODE_NS}
    labels: { app: ${p.app} }
    ips: [${p.ip}, ${p.ip6}]
    interface: ${p.hostIf}
    netns: ${p.ns}`).join('\n')}
`;


const skipReason = await bpfSkipReason('test/policy/policy.e2e.bpf.test.ts');

// A TCP server that answers every line with "pong"; a client that reports CONNECTED or FAILED.
const SERVER = `require('net').createServer((c)=>{c.on('data',()=>c.write('pong\\n'));c.on('error',()=>{});}).listen(8080,'::',()=>console.log('up'));`;
const CONNECT = `const c=require('net').connect({port:8080,host:process.argv[1]});const t=setTimeout(()=>{console.log('FAILED');process.exit(0)},+process.argv[2]);c.on('connect',()=>{console.log('CONNECTED');clearTimeout(t);c.end();});c.on('error',(e)=>{console.log('FAILED '+e.code);clearTimeout(t);});`;
// An established connection that sends a line every 50 ms and prints the time of every answer.
const PINGER = `const c=require('net').connect({port:8080,host:process.argv[1]});c.on('connect',()=>{console.log('CONNECTED');setInterval(()=>c.write('ping\\n'),50);});c.on('data',()=>console.log('PONG '+Date.now()));c.on('error',()=>{});`;

const procs: ChildProcess[] = [];
let dir: string;
let sock: string;
let policyDir: string;
let agent: LabAgent | undefined;
const agentLog = () => agent?.log() ?? '';


function connect(from: Pod, to: string, timeoutMs = 1500): Promise<boolean> {
  return inNs(from.ns, [process.execPath, '-e', CONNECT, to, String(timeoutMs)], timeoutMs + 10_000).then((o) => o.includes('CONNECTED'));
}

function background(ns: string, args: string[]): ChildProcess {
  const p = spawn('ip', ['netns', 'exec', ns, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  procs.push(p);
  return p;
}

function waitFor<T>(what: string, f: () => Promise<T | undefined> | T | undefined, ms: number): Promise<T> {
  return labWaitFor(what, f, ms, () => `agent log:\n${agentLog().slice(-3000)}`);
}

/** The real CLI (packages/cli/src/bin.ts through tsx), as a user runs it. */
interface JsonFlow {
  verdict?: string;
  drop_reason_desc?: string;
  source?: { pod_name?: string; labels?: string[] };
  destination?: { pod_name?: string; labels?: string[] };
  l4?: { TCP?: { destination_port?: number; flags?: Record<string, boolean> } };
  IP?: { source?: string; destination?: string; ipVersion?: string };
  ingress_denied_by?: { name: string }[];
  egress_denied_by?: { name: string }[];
  ingress_allowed_by?: { name: string }[];
  egress_allowed_by?: { name: string }[];
  event_type?: { type?: number; sub_type?: number };
  Type?: string;
}

async function observe(...filters: string[]): Promise<JsonFlow[]> {
  const r = await flowctl('--server', `unix://${sock}`, 'observe', '--last', '100000', '-o', 'json', ...filters);
  if (r.code !== 0) throw new Error(`flowctl observe exited ${r.code}: ${r.err}`);
  return r.out.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { flow: JsonFlow }).flow).filter(Boolean);
}

async function startAgent(extra: string[] = []): Promise<void> {
  agent = await startLabAgent(LAB, ['--endpoints', join(dir, 'endpoints.yaml'), '--policy-dir', policyDir, '--metrics-address', '127.0.0.1:0', ...extra], sock);
}

async function stopAgent(): Promise<void> {
  await agent?.stop();
}

const pod = (f: JsonFlow, side: 'source' | 'destination') => f[side]?.pod_name ?? '';

describe.skipIf(skipReason !== undefined)('network policy on the real kernel', () => {
  beforeAll(async () => {
    buildLab(LAB);
    dir = mkdtempSync(join(tmpdir(), 'fcp-policy-e2e-'));
    sock = join(dir, 'agent.sock');
    policyDir = join(dir, 'policies');
    mkdirSync(policyDir);
    writeFileSync(join(dir, 'endpoints.yaml'), ENDPOINTS);
    writeFileSync(join(policyDir, 'order-service.yaml'), POLICY);
    for (const p of [order, pay, other]) {
      const s = background(p.ns, [process.execPath, '-e', SERVER]);
      await new Promise<void>((r) => s.stdout!.once('data', () => r()));
    }
    await startAgent();
  }, 90_000);

  afterAll(async () => {
    for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
    agent?.proc.kill('SIGKILL');
    cleanupLab(LAB);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('api-gateway → order-service:8080 connects and shows FORWARDED, allowed by the policy', async () => {
    expect(await connect(gw, order.ip)).toBe(true);
    const flows = await waitFor('FORWARDED flow', async () => {
      const fs = await observe('--verdict', 'FORWARDED', '--from-label', 'app=api-gateway', '--to-label', 'app=order-service');
      return fs.some((f) => f.ingress_allowed_by?.length) ? fs : undefined;
    }, 5000);
    const syn = flows.find((f) => f.l4?.TCP?.flags?.SYN && !f.l4.TCP.flags.ACK && f.l4.TCP.destination_port === 8080);
    expect(syn).toBeDefined();
    expect(pod(syn!, 'source')).toBe(gw.name);
    expect(pod(syn!, 'destination')).toBe(order.name);
    expect(flows.find((f) => f.ingress_allowed_by?.length)!.ingress_allowed_by![0]!.name).toBe('order-service-policy');
  });

  it('other → order-service:8080 fails and shows DROPPED / POLICY_DENIED with flowctl observe --verdict DROPPED --to-label app=order-service', async () => {
    expect(await connect(other, order.ip)).toBe(false);
    const drops = await waitFor('DROPPED flow', async () => {
      const fs = await observe('--verdict', 'DROPPED', '--to-label', 'app=order-service');
      return fs.length ? fs : undefined;
    }, 5000);
    for (const f of drops) {
      expect(f.verdict).toBe('DROPPED');
      expect(f.destination?.labels).toContain('k8s:app=order-service');
    }
    const d = drops.find((f) => pod(f, 'source') === other.name)!;
    expect(d).toBeDefined();
    expect(d.drop_reason_desc).toBe('POLICY_DENIED');
    expect(d.event_type).toEqual({ type: 1, sub_type: 133 });
    expect(d.l4?.TCP?.destination_port).toBe(8080);
    // Default deny (no rule matched): as in Cilium, no policy is named; *_denied_by is for deny rules.
    expect(d.ingress_denied_by).toBeUndefined();
    // Nothing from the allowed client was dropped.
    expect(drops.some((f) => pod(f, 'source') === gw.name)).toBe(false);
  });

  it('order-service → payment-service:8080 allowed; order-service → anything else denied', async () => {
    expect(await connect(order, pay.ip)).toBe(true);
    expect(await connect(order, other.ip)).toBe(false);
    const drops = await waitFor('egress drop', async () => {
      const fs = await observe('--verdict', 'DROPPED', '--from-label', 'app=order-service');
      return fs.some((f) => pod(f, 'destination') === other.name) ? fs : undefined;
    }, 5000);
    const d = drops.find((f) => pod(f, 'destination') === other.name)!;
    expect(d.drop_reason_desc).toBe('POLICY_DENIED');
    expect(d.egress_denied_by).toBeUndefined();
    expect(drops.some((f) => pod(f, 'destination') === pay.name)).toBe(false);
    // Pods the policy does not select talk freely.
    expect(await connect(gw, other.ip)).toBe(true);
  });

  it('IPv6: the same policy holds for the pods\' IPv6 addresses', async () => {
    // The datapath applies policy to ICMPv6 neighbour discovery too (order-service's Neighbor
    // Advertisement is dropped as egress to api-gateway), which Cilium exempts. Until bpf/ does,
    // the pods get permanent neighbour entries so this test measures the L4 policy over IPv6.
    const mac = (p: Pod) => /link\/ether ([0-9a-f:]+)/.exec(sh(['ip', '-n', p.ns, 'link', 'show', 'eth0']))![1]!;
    for (const a of [gw, order, other, pay]) {
      for (const b of [gw, order, other, pay]) {
        if (a !== b) sh(['ip', '-n', a.ns, '-6', 'neigh', 'replace', b.ip6, 'lladdr', mac(b), 'dev', 'eth0', 'nud', 'permanent']);
      }
    }
    expect(await connect(gw, order.ip6)).toBe(true);
    expect(await connect(other, order.ip6)).toBe(false);
    const drops = await waitFor('IPv6 drop', async () => {
      const fs = await observe('--verdict', 'DROPPED', '--to-label', 'app=order-service', '--ip-version', 'v6');
      return fs.length ? fs : undefined;
    }, 5000);
    expect(drops[0]!.IP?.source).toBe(other.ip6);
    expect(drops[0]!.drop_reason_desc).toBe('POLICY_DENIED');
  });

  it('flowctl policy list and check read the policy in force from the agent', async () => {
    const list = await flowctl('--server', `unix://${sock}`, 'policy', 'list');
    expect(list.err).toBe('');
    expect(list.code).toBe(0);
    const [head, row] = list.out.trim().split('\n');
    expect(head).toMatch(/^NODE\s+REVISION\s+NAMESPACE\s+NAME\s+KIND\s+SELECTS\s+ENDPOINTS\s+INGRESS\s+EGRESS\s+SOURCE$/);
    expect(row).toMatch(new RegExp(`^${NODE_NS}\\s+\\d+\\s+shop\\s+order-service-policy\\s+CiliumNetworkPolicy\\s+app=order-service,io.kubernetes.pod.namespace=shop\\s+1\\s+1 allow\\s+1 allow\\s+${join(policyDir, 'order-service.yaml')}#1$`));

    const json = await flowctl('policy', 'list', '--server', `unix://${sock}`, '-o', 'json');
    const j = JSON.parse(json.out.trim()) as { node: string; audit: boolean; name: string };
    expect(j).toMatchObject({ node: NODE_NS, audit: false, name: 'order-service-policy' });

    const denied = await flowctl('--server', `unix://${sock}`, 'policy', 'check', '--from', 'app=other', '--from-namespace', 'shop', '--to', 'app=order-service', '--to-namespace', 'shop', '--port', '8080/TCP');
    expect(denied.err).toBe('');
    expect(denied.code).toBe(1);
    expect(denied.out.split('\n')[0]).toBe('DENIED  shop/{app=other} -> shop/{app=order-service} 8080/TCP');
    expect(denied.out).toContain(`policies in force on ${NODE_NS} (revision `);

    // By IP: the agent's endpoints file resolves the pod addresses.
    const allowed = await flowctl('--server', `unix://${sock}`, 'policy', 'check', '--from-ip', order.ip, '--to-ip', pay.ip, '--port', '8080', '-o', 'json');
    expect(allowed.code).toBe(0);
    const v = JSON.parse(allowed.out) as { verdict: string; from: { endpoint: string }; egress: { policies: { name: string }[] }; nodes: string[] };
    expect(v.verdict).toBe('ALLOWED');
    expect(v.from.endpoint).toBe(`shop/${order.name} (${order.ip})`);
    expect(v.egress.policies.map((p) => p.name)).toEqual(['order-service-policy']);
    expect(v.nodes).toEqual([NODE_NS]);

    const unreachable = await flowctl('--server', 'unix:///nonexistent/fcp.sock', '--timeout', '1s', 'policy', 'list');
    expect(unreachable.code).toBe(1);
    expect(unreachable.err.trim()).toMatch(/^error: cannot reach the server at unix:\/\/\/nonexistent\/fcp\.sock: /);
  });

  it('metrics from the kernel datapath: policy drops, events read, BPF map fill; promtool passes', async () => {
    const port = Number(/"port":(\d+),"msg":"serving metrics/.exec(agentLog())?.[1]);
    expect(port).toBeGreaterThan(0);
    // The agent listens on the node namespace's loopback: scrape from inside it.
    const text = sh(['ip', 'netns', 'exec', NODE_NS, 'curl', '-sf', `http://127.0.0.1:${port}/metrics`]);
    const pt = spawnSync('/usr/bin/promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(`${pt.stdout}${pt.stderr}`.trim(), 'promtool check metrics').toBe('');
    expect(pt.status).toBe(0);
    const val = (re: RegExp) => Number(re.exec(text)?.[1] ?? NaN);
    expect(val(/^hubble_drop_total\{reason="POLICY_DENIED",protocol="TCP"\} (\d+)/m)).toBeGreaterThan(0);
    expect(val(/^hubble_flows_processed_total\{protocol="TCP",type="Trace",subtype="to-endpoint",verdict="FORWARDED"\} (\d+)/m)).toBeGreaterThan(0);
    expect(val(/^flowctl_agent_events_read_total\{source="flow"\} (\d+)/m)).toBeGreaterThan(0);
    expect(val(/^flowctl_agent_bpf_map_entries\{map="policy"\} (\d+)/m)).toBeGreaterThan(0);
    expect(val(/^flowctl_agent_bpf_map_entries\{map="ipcache"\} (\d+)/m)).toBeGreaterThanOrEqual(PODS.length * 2);
    // Connections live in conns4 and conns6 (the IPv6 test above made some); flows4 and flows only
    // take those whose set is full.
    expect(val(/^flowctl_agent_bpf_map_entries\{map="conns4"\} (\d+)/m)).toBeGreaterThan(0);
    expect(val(/^flowctl_agent_bpf_map_max_entries\{map="conns4"\} (\d+)/m)).toBe(65536);
    expect(val(/^flowctl_agent_bpf_map_max_entries\{map="flows4"\} (\d+)/m)).toBe(65536);
    expect(val(/^flowctl_agent_bpf_map_entries\{map="conns6"\} (\d+)/m)).toBeGreaterThan(0);
    expect(val(/^flowctl_agent_bpf_map_max_entries\{map="conns6"\} (\d+)/m)).toBe(16384);
    expect(val(/^flowctl_agent_lost_events_total\{stage="kernel_ringbuf"\} (\d+)/m)).toBe(0);
  });

  it('a policy change takes effect on live traffic within 2 s', async () => {
    // An established, allowed connection api-gateway → order-service, answering every 50 ms.
    const pinger = background(gw.ns, [process.execPath, '-e', PINGER, order.ip]);
    const pongs: number[] = [];
    pinger.stdout!.on('data', (d: Buffer) => {
      for (const m of String(d).matchAll(/PONG (\d+)/g)) pongs.push(Number(m[1]));
    });
    await waitFor('pongs', () => (pongs.length >= 5 ? true : undefined), 5000);

    // New policy: order-service accepts 8080 from app=other only; api-gateway's live connection
    // must stop, and other's new connections must start, without restarting anything.
    const t0 = Date.now();
    writeFileSync(join(policyDir, 'order-service.yaml'), POLICY.replace('app: api-gateway', 'app: other'));
    let allowedAt: number | undefined;
    while (Date.now() - t0 < 5000) {
      if (await connect(other, order.ip, 300)) {
        allowedAt = Date.now();
        break;
      }
    }
    await new Promise((r) => setTimeout(r, 500));
    const lastPong = pongs[pongs.length - 1]!;
    pinger.kill('SIGKILL');
    const stoppedAfter = lastPong - t0;
    const allowedAfter = (allowedAt ?? Infinity) - t0;
    process.stderr.write(`policy change: live connection stopped ${stoppedAfter} ms, new connection allowed ${allowedAfter} ms after the write\n`);
    expect(stoppedAfter).toBeLessThan(2000);
    expect(allowedAfter).toBeLessThan(2000);
    expect(Date.now() - lastPong).toBeGreaterThan(400); // no answer since: really stopped
    // The drop's event reaches the agent's flow ring asynchronously (ring buffer, decode, enrich):
    // wait for it rather than read once.
    await waitFor('the POLICY_DENIED flow of the live connection', async () => {
      const drops = await observe('--verdict', 'DROPPED', '--from-label', 'app=api-gateway', '--to-label', 'app=order-service');
      return drops.some((f) => f.drop_reason_desc === 'POLICY_DENIED') ? true : undefined;
    }, 5000);
    // And back, for the tests that follow.
    writeFileSync(join(policyDir, 'order-service.yaml'), POLICY);
    await waitFor('policy restored', async () => ((await connect(gw, order.ip, 300)) ? true : undefined), 5000);
  });

  it('--policy-audit reports AUDIT and does not drop', async () => {
    await stopAgent();
    await startAgent(['--policy-audit']);
    expect(await connect(other, order.ip)).toBe(true);
    const audits = await waitFor('AUDIT flow', async () => {
      const fs = await observe('--verdict', 'AUDIT', '--to-label', 'app=order-service');
      return fs.some((f) => pod(f, 'source') === other.name) ? fs : undefined;
    }, 5000);
    const a = audits.find((f) => pod(f, 'source') === other.name)!;
    expect(a.verdict).toBe('AUDIT');
    expect(a.drop_reason_desc).toBeUndefined();
    const drops = await observe('--verdict', 'DROPPED', '--to-label', 'app=order-service');
    expect(drops).toEqual([]);
    const list = await flowctl('--server', `unix://${sock}`, 'policy', 'list', '-o', 'json');
    expect(JSON.parse(list.out.trim())).toMatchObject({ audit: true });
    await stopAgent();
  }, 60_000);
});
