// End to end across processes: fake agents and flowctl-relay run as separate node processes; we
// assert through the relay with the generated Observer client and with the real Hubble CLI.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { credentials } from '@grpc/grpc-js';
import type { ClientReadableStream } from '@grpc/grpc-js';
import { NodeState, ObserverClient } from '@flowctl/flow';
import type { GetFlowsRequest, GetFlowsResponse, ServerStatusResponse } from '@flowctl/flow';
import { hubbleCli } from '@flowctl/flow/testing';
import { spawnFakeAgent, spawnRelay } from './testing/spawn.js';
import type { Child } from './testing/spawn.js';

const run = promisify(execFile);
const children: Child[] = [];
let a: Child;
let b: Child;
let hung: Child;
let relay: Child;
let client: InstanceType<typeof ObserverClient>;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(what: string, fn: () => T | undefined | Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

function status(port?: number): Promise<ServerStatusResponse> {
  const c = port ? new ObserverClient(`127.0.0.1:${port}`, credentials.createInsecure()) : client;
  return new Promise((resolve, reject) =>
    c.serverStatus({}, (err, res) => {
      if (port) c.close();
      if (err) reject(err);
      else resolve(res);
    }),
  );
}

function getFlows(req: GetFlowsRequest): Promise<GetFlowsResponse[]> {
  return new Promise((resolve, reject) => {
    const out: GetFlowsResponse[] = [];
    const s = client.getFlows(req);
    s.on('data', (r: GetFlowsResponse) => out.push(r));
    s.on('error', reject);
    s.on('end', () => resolve(out));
  });
}

function follow(): { events: GetFlowsResponse[]; stream: ClientReadableStream<GetFlowsResponse> } {
  const events: GetFlowsResponse[] = [];
  const stream = client.getFlows({ follow: true });
  stream.on('data', (r: GetFlowsResponse) => events.push(r));
  stream.on('error', () => {});
  return { events, stream };
}

const hubble = (args: string[]) => run(hubbleCli(), [...args, '--server', `127.0.0.1:${relay.port}`], { timeout: 30_000 });
const openStreams = async (agent: Child) => Number(/open-streams=(\d+)/.exec((await status(agent.port)).version ?? '')?.[1]);
const nsOf = (t: GetFlowsResponse['time']) => (t?.seconds ?? 0n) * 1_000_000_000n + BigInt(t?.nanos ?? 0);

beforeAll(async () => {
  [a, b, hung] = await Promise.all([
    spawnFakeAgent(['--node-name', 'node-a', '--backlog', '40', '--rate', '20', '--seed', '1']),
    // node-b speaks only the plain Observer API (no batching, no peer.Peer): named by its address.
    spawnFakeAgent(['--node-name', 'node-b', '--backlog', '40', '--rate', '20', '--seed', '2', '--no-batch', '--no-peer-service']),
    spawnFakeAgent(['--hang']),
  ]);
  children.push(a, b, hung);
  relay = await spawnRelay([
    '--listen-address', '127.0.0.1:0',
    '--peer', `127.0.0.1:${a.port}`,
    '--peer', `127.0.0.1:${b.port}`,
    '--peer', `127.0.0.1:${hung.port}`,
    '--peer', 'garbage::peer',
    '--dial-timeout', '1s',
    '--retry-timeout', '1s',
    '--node-name', 'relay-e2e',
  ]);
  children.push(relay);
  client = new ObserverClient(`127.0.0.1:${relay.port}`, credentials.createInsecure());
  await waitFor('both agents connected', async () => (await status()).num_connected_nodes === 2);
});

afterAll(async () => {
  client?.close();
  await Promise.all(children.map((c) => c.stop('SIGKILL')));
});

describe('flowctl-relay with agent processes', () => {
  it('logs one clear line for a garbage peer address and serves the rest', () => {
    const lines = relay.stderr().split('\n').filter((l) => l.includes('garbage::peer'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('invalid peer address \\"garbage::peer\\"');
  });

  it('merges --last N from every node in time order, announcing connected and unavailable nodes', async () => {
    const out = await getFlows({ number: 10n });
    const statuses = out.filter((r) => r.node_status).map((r) => r.node_status!);
    expect(statuses[0]).toMatchObject({ state_change: NodeState.NODE_CONNECTED });
    // node-a announced its name on peer.Peer/Notify; node-b has no Peer service.
    expect(new Set(statuses[0]!.node_names)).toEqual(new Set(['node-a', `127.0.0.1:${b.port}`]));
    expect(statuses[1]).toMatchObject({ state_change: NodeState.NODE_UNAVAILABLE, node_names: [`127.0.0.1:${hung.port}`] });
    const flows = out.filter((r) => r.flow || r.lost_events);
    expect(flows.filter((r) => r.node_name === 'node-a')).toHaveLength(10);
    expect(flows.filter((r) => r.node_name === 'node-b')).toHaveLength(10);
    for (let i = 1; i < flows.length; i++) expect(nsOf(flows[i]!.time) >= nsOf(flows[i - 1]!.time)).toBe(true);
  });

  it('rejects first together with follow', async () => {
    await expect(getFlows({ first: true, follow: true })).rejects.toThrow(/first cannot be specified with follow/);
  });

  it('aggregates ServerStatus', async () => {
    const st = await status();
    expect(st).toMatchObject({ num_connected_nodes: 2, num_unavailable_nodes: 1, unavailable_nodes: [`127.0.0.1:${hung.port}`] });
    expect(st.max_flows).toBe(2n * 4095n);
    expect(st.version).toMatch(/^flowctl-relay v/);
  });

  it('answers the real hubble CLI (observe, status, list nodes)', { tags: ['hubble'] }, async () => {
    const obs = await hubble(['observe', '--last', '5', '-o', 'json']);
    const lines = obs.stdout.trim().split('\n').map((l) => JSON.parse(l) as { node_name?: string; flow?: unknown; lost_events?: unknown });
    const ours = (await getFlows({ number: 5n })).filter((r) => r.flow);
    const theirs = lines.filter((l) => l.flow);
    expect(theirs.length).toBeGreaterThanOrEqual(8);
    expect(theirs.length).toBe(ours.length);
    expect(new Set(theirs.map((l) => l.node_name))).toEqual(new Set(['node-a', 'node-b']));

    const hs = await hubble(['status']);
    expect(hs.stdout).toContain('Healthcheck (via');
    expect(hs.stdout).toMatch(/Connected Nodes: 2\/3/);
    expect(hs.stdout).toMatch(/Unavailable Nodes: 1/);

    const nodes = await hubble(['list', 'nodes']);
    expect(nodes.stdout).toMatch(/node-a\s+Connected/);
    expect(nodes.stdout).toMatch(new RegExp(`127\\.0\\.0\\.1:${b.port}\\s+Connected`));
    expect(nodes.stdout).toMatch(new RegExp(`127\\.0\\.0\\.1:${hung.port}\\s+Unavailable`));
  });

  it('cancels upstream streams when the client goes away', async () => {
    const f = follow();
    await waitFor('follow streams open on both agents', async () => (await openStreams(a)) >= 1 && (await openStreams(b)) >= 1);
    f.stream.cancel();
    await waitFor('upstream streams closed', async () => (await openStreams(a)) === 0 && (await openStreams(b)) === 0, 10_000);
  });

  it('keeps following the other node when one is killed, reports it, and takes it back after a restart', async () => {
    const f = follow();
    const from = (node: string, after = 0) => f.events.slice(after).some((e) => e.flow && e.node_name === node);
    await waitFor('flows from both nodes', () => from('node-a') && from('node-b'));
    const bAddr = `127.0.0.1:${b.port}`;
    await b.stop('SIGKILL');
    const err = await waitFor('NODE_ERROR for the killed node', () =>
      f.events.find((e) => e.node_status?.state_change === NodeState.NODE_ERROR && e.node_status.node_names?.includes(bAddr)),
    );
    expect(err.node_name).toBe('relay-e2e');
    const mark = f.events.length;
    await waitFor('flows from node-a after the kill', () => from('node-a', mark));
    await waitFor('killed node counted unavailable', async () => {
      const st = await status();
      return st.num_unavailable_nodes === 2 && st.unavailable_nodes?.includes(bAddr);
    });
    b = await spawnFakeAgent(['--node-name', 'node-b', '--rate', '20', '--listen', bAddr, '--no-batch', '--no-peer-service']);
    children.push(b);
    const mark2 = f.events.length;
    await waitFor('node-b rejoins the same follow stream', () => from('node-b', mark2), 30_000);
    expect((await status()).num_connected_nodes).toBe(2);
    f.stream.cancel();
  });
});
