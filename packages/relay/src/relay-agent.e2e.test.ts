// End to end with real flowctl-agent processes in --replay mode (one on TCP, one on a unix socket
// only) behind a flowctl-relay process: nodes are named by what each agent announces on
// peer.Peer/Notify, everywhere the relay names nodes, and the relay's /metrics passes promtool.
import { execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { credentials, status as grpcStatus, type ServiceError } from '@grpc/grpc-js';
import { BlocksClient } from '@flowctl/flow/gen/flowctl/blocks.grpc';
import type { ListBlocksResponse } from '@flowctl/flow/gen/flowctl/blocks';
import { NodeState, ObserverClient } from '@flowctl/flow';
import type { GetFlowsRequest, GetFlowsResponse, Node, ServerStatusResponse } from '@flowctl/flow';
import { encodeResponse } from '@flowctl/flow/json';
import { PolicyClient } from '@flowctl/flow/policy-service';
import { ServiceMapClient } from '@flowctl/flow/gen/flowctl/servicemap.grpc';
import type { GetServiceMapResponse } from '@flowctl/flow/gen/flowctl/servicemap';
import type { ListLearnedFqdnsResponse, ListPoliciesResponse } from '@flowctl/flow/policy-service';
import { hubbleCli, makeCorpus } from '@flowctl/flow/testing';
import { repoRoot, spawnAgent, spawnRelay } from './testing/spawn.js';
import type { Child } from './testing/spawn.js';

const run = promisify(execFile);
const POLICY = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: order-service-policy, namespace: shop }
spec:
  endpointSelector: { matchLabels: { app: order-service } }
  ingress:
    - fromEndpoints: [ { matchLabels: { app: api-gateway } } ]
`;
const PROMTOOL = '/usr/bin/promtool';
const dir = mkdtempSync(join(tmpdir(), 'fcr-agents-'));
const sock2 = join(dir, 'node-2.sock');
const children: Child[] = [];
let agent1: Child;
let agent2: Child;
let relay: Child;
let metricsPort: number;
let client: InstanceType<typeof ObserverClient>;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function waitFor<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(150);
  }
}

const call = <T>(fn: (cb: (err: Error | null, res: T) => void) => void) =>
  new Promise<T>((resolve, reject) => fn((err, res) => (err ? reject(err) : resolve(res))));
const status = () => call<ServerStatusResponse>((cb) => client.serverStatus({}, cb));
const nodes = async () => (await call<{ nodes?: Node[] }>((cb) => client.getNodes({}, cb))).nodes ?? [];
function getFlows(req: GetFlowsRequest): Promise<GetFlowsResponse[]> {
  return new Promise((resolve, reject) => {
    const out: GetFlowsResponse[] = [];
    const s = client.getFlows(req);
    s.on('data', (r: GetFlowsResponse) => out.push(r));
    s.on('error', reject);
    s.on('end', () => resolve(out));
  });
}
function serviceMap(server: string): Promise<GetServiceMapResponse> {
  const c = new ServiceMapClient(server, credentials.createInsecure());
  return call<GetServiceMapResponse>((cb) => c.getServiceMap({}, cb)).finally(() => c.close());
}
const hubble = (args: string[]) => run(hubbleCli(), [...args, '--server', `127.0.0.1:${relay.port}`], { timeout: 30_000 });

async function scrape(): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
  expect(res.status).toBe(200);
  return res.text();
}

function promtool(text: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const p = spawn(PROMTOOL, ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    p.on('close', (code) => resolve({ code, out }));
    p.stdin.end(text);
  });
}

const sample = (text: string, series: string) => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};

beforeAll(async () => {
  const replay = join(dir, 'flows.json');
  writeFileSync(replay, `${makeCorpus(200, 7).filter((r) => r.flow).map(encodeResponse).join('\n')}\n`);
  const policies = join(dir, 'policies');
  mkdirSync(policies);
  writeFileSync(join(policies, 'deny.yaml'), POLICY);
  const common = ['--replay', replay, '--replay-rate', '50', '--log-level', 'info', '--metrics-address', '', '--policy-dir', policies];
  [agent1, agent2] = await Promise.all([
    spawnAgent([...common, '--node-name', 'node-1', '--listen-address', '127.0.0.1:0']),
    spawnAgent([...common, '--node-name', 'node-2', '--listen-address', '', '--unix-socket', sock2]),
  ]);
  children.push(agent1, agent2);
  relay = await spawnRelay([
    '--listen-address', '127.0.0.1:0',
    '--peer', `127.0.0.1:${agent1.port}`,
    '--peer', `unix://${sock2}`,
    '--dial-timeout', '1s',
    '--retry-timeout', '1s',
    '--metrics-address', '127.0.0.1:0',
    '--node-name', 'relay-agents',
  ]);
  children.push(relay);
  const m = /"metricsPort":(\d+)/.exec(relay.stderr());
  metricsPort = Number(m?.[1]);
  client = new ObserverClient(`127.0.0.1:${relay.port}`, credentials.createInsecure());
  await waitFor('both agents connected', async () => (await status()).num_connected_nodes === 2);
}, 90_000);

afterAll(async () => {
  client?.close();
  await Promise.all(children.map((c) => c.stop('SIGKILL')));
  rmSync(dir, { recursive: true, force: true });
});

describe('flowctl-relay in front of real flowctl agents (replay mode)', () => {
  it('names each node by its announcement in GetNodes and node_status events, over TCP and unix sockets', async () => {
    const ns = await nodes();
    expect(ns.map((n) => [n.name, n.address, n.state]).sort()).toEqual([
      ['node-1', `127.0.0.1:${agent1.port}`, NodeState.NODE_CONNECTED],
      ['node-2', `unix://${sock2}`, NodeState.NODE_CONNECTED],
    ]);
    await waitFor('flows replayed on both agents', async () => {
      const out = await getFlows({ number: 3n });
      return new Set(out.filter((r) => r.flow).map((r) => r.node_name)).size === 2;
    });
    const out = await getFlows({ number: 3n });
    expect(out[0]!.node_status).toEqual({ state_change: NodeState.NODE_CONNECTED, node_names: expect.arrayContaining(['node-1', 'node-2']), message: '' });
    expect(out.filter((r) => r.flow).map((r) => r.node_name).sort()).toEqual(['node-1', 'node-1', 'node-1', 'node-2', 'node-2', 'node-2']);
    expect(relay.stderr()).toMatch(/"peer":"node-2".*"msg":"peer named by its peer service"/);
  });

  it('the real hubble CLI lists both nodes by their announced names', { tags: ['hubble'] }, async () => {
    const list = await hubble(['list', 'nodes']);
    expect(list.stdout).toMatch(/node-1\s+Connected/);
    expect(list.stdout).toMatch(/node-2\s+Connected/);
  });

  it('serves metrics that pass promtool and count forwarded flows per node name', async () => {
    expect(metricsPort).toBeGreaterThan(0);
    await getFlows({ number: 5n });
    const text = await scrape();
    const check = await promtool(text);
    expect(check.out).toBe('');
    expect(check.code).toBe(0);
    expect(sample(text, 'flowctl_relay_connected_nodes')).toBe(2);
    expect(sample(text, 'flowctl_relay_unavailable_nodes')).toBe(0);
    expect(sample(text, 'flowctl_relay_node_flows_forwarded_total{node="node-1"}')).toBeGreaterThanOrEqual(5);
    expect(sample(text, 'flowctl_relay_node_flows_forwarded_total{node="node-2"}')).toBeGreaterThanOrEqual(5);
    expect(sample(text, 'flowctl_relay_flows_forwarded_total')).toBeGreaterThanOrEqual(10);
    expect(sample(text, 'flowctl_relay_client_streams')).toBe(0);
    expect(sample(text, 'flowctl_relay_upstream_streams')).toBe(0);
    // Labels carry node names only: no addresses, no per-flow values.
    expect(text).not.toContain(`127.0.0.1:${agent1.port}`);
  });

  it('forwards the policies in force on every node (flowctl policy list through the relay)', async () => {
    const pc = new PolicyClient(`127.0.0.1:${relay.port}`, credentials.createInsecure());
    try {
      const res = await call<ListPoliciesResponse>((cb) => pc.list({}, cb));
      expect(res.nodes.map((n) => [n.node, n.error, n.policies.map((p) => p.name)])).toEqual([
        ['node-1', undefined, ['order-service-policy']],
        ['node-2', undefined, ['order-service-policy']],
      ]);
    } finally {
      pc.close();
    }
  });

  it('asks every node what its endpoints learned for toFQDNs; a bad address is refused with one line', async () => {
    const pc = new PolicyClient(`127.0.0.1:${relay.port}`, credentials.createInsecure());
    try {
      const res = await call<ListLearnedFqdnsResponse>((cb) => pc.listLearnedFqdns({ name: 'api.example.com' }, cb));
      // Replay agents have no kernel map: nothing learned, and no node failed.
      expect(res.nodes).toEqual([{ node: 'node-1', learned: [] }, { node: 'node-2', learned: [] }]);
      const bad = await call<ListLearnedFqdnsResponse>((cb) => pc.listLearnedFqdns({ endpoint_ip: '10.0.0.300' }, cb)).catch((e: ServiceError) => e);
      expect(bad).toMatchObject({ code: grpcStatus.INVALID_ARGUMENT, details: 'endpoint_ip "10.0.0.300" is not an IP address' });
    } finally {
      pc.close();
    }
  });

  it('sums every node\'s service map and names the nodes that answered', async () => {
    const total = (r: GetServiceMapResponse) => (r.edges ?? []).reduce((n, e) => n + Number(e.flows ?? 0n), 0);
    const nodeMaps = async () => total(await serviceMap(`127.0.0.1:${agent1.port}`)) + total(await serviceMap(`unix://${sock2}`));
    const before = await nodeMaps();
    const merged = await serviceMap(`127.0.0.1:${relay.port}`);
    const after = await nodeMaps();
    expect(before).toBeGreaterThan(0);
    // The agents replay on while we ask: the relay's sum lies between the nodes' sums before and after.
    expect(total(merged)).toBeGreaterThanOrEqual(before);
    expect(total(merged)).toBeLessThanOrEqual(after);
    expect(merged.node_status!.map((s) => [s.node_names, s.state_change])).toEqual([
      [['node-1'], NodeState.NODE_CONNECTED],
      [['node-2'], NodeState.NODE_CONNECTED],
    ]);
  });

  it('applies flowctl block add/remove to every node and lists the union (nodes without XDP say so)', async () => {
    const flowctl = (...args: string[]) =>
      run(process.execPath, ['--conditions=@flowctl/source', '--import', 'tsx', join(repoRoot, 'packages/cli/src/bin.ts'), '--server', `127.0.0.1:${relay.port}`, ...args], { cwd: repoRoot })
        .then((r) => ({ code: 0, ...r }), (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }));
    const add = await flowctl('block', 'add', '198.51.100.0/24', '--ttl', '1h', '--reason', 'relay test');
    expect(add.code, add.stderr).toBe(0);
    expect(add.stdout).toBe('blocked 198.51.100.0/24 for 1h0m0s on 2 nodes (node-1, node-2)\n');
    expect(add.stderr).toBe('warning: node node-1 has no --xdp-interface: it lists the entry but drops nothing\nwarning: node node-2 has no --xdp-interface: it lists the entry but drops nothing\n');
    // Each agent holds it (asked directly), and the relay lists one entry naming both.
    for (const server of [`127.0.0.1:${agent1.port}`, `unix://${sock2}`]) {
      const c = new BlocksClient(server, credentials.createInsecure());
      const r = await call<ListBlocksResponse>((cb) => c.list({}, cb)).finally(() => c.close());
      expect(r.entries?.map((e) => e.cidr)).toEqual(['198.51.100.0/24']);
    }
    const list = await flowctl('block', 'list', '-o', 'json');
    expect(JSON.parse(list.stdout)).toMatchObject({ cidr: '198.51.100.0/24', reason: 'relay test', origin: 'cli', dropped_packets: 0, nodes: ['node-1', 'node-2'] });
    // A bad CIDR that gets past a client is refused once, as the client's fault, not as two node failures.
    const c = new BlocksClient(`127.0.0.1:${relay.port}`, credentials.createInsecure());
    const bad = await call((cb) => c.add({ cidr: '198.51.100.0/99' }, cb)).then(() => undefined, (e: ServiceError) => e).finally(() => c.close());
    expect(bad?.code).toBe(grpcStatus.INVALID_ARGUMENT);
    expect(bad?.details).toMatch(/^invalid CIDR "198.51.100.0\/99"/);
    const rm = await flowctl('block', 'remove', '198.51.100.0/24');
    expect(rm.stdout).toBe('unblocked 198.51.100.0/24 on node-1, node-2 (0 packets dropped)\n');
    expect((await flowctl('block', 'list')).stdout).toBe('No entries in the drop list.\n');
    const again = await flowctl('block', 'remove', '198.51.100.0/24');
    expect(again.code).not.toBe(0);
    expect(again.stderr).toBe('error: 198.51.100.0/24 is not in the drop list\n');
  });

  it('reports a killed agent by name in ServerStatus, node_status and metrics', async () => {
    await agent2.stop('SIGKILL');
    const st = await waitFor('node-2 unavailable', async () => {
      const s = await status();
      return s.num_unavailable_nodes === 1 ? s : undefined;
    });
    expect(st.unavailable_nodes).toEqual(['node-2']);
    const out = await getFlows({ number: 1n });
    expect(out.find((r) => r.node_status?.state_change === NodeState.NODE_UNAVAILABLE)?.node_status?.node_names).toEqual(['node-2']);
    const text = await scrape();
    expect(sample(text, 'flowctl_relay_unavailable_nodes')).toBe(1);
    expect(sample(text, 'flowctl_relay_node_connected{node="node-2"}')).toBe(0);
    expect(sample(text, 'flowctl_relay_node_errors_total{node="node-2",kind="connect"}')).toBeGreaterThanOrEqual(1);
    const m = await serviceMap(`127.0.0.1:${relay.port}`);
    expect(m.node_status!.find((x) => x.state_change === NodeState.NODE_UNAVAILABLE)?.node_names).toEqual(['node-2']);
    expect(m.edges!.length).toBeGreaterThan(0);
  });
});
