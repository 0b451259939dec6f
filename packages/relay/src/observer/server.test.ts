// The relay's Observer in one process with fake agents on loopback: how nodes are named, NODE_GONE,
// the idle bound on one-shot requests, and metadata forwarding.
import { afterEach, describe, expect, it } from 'vitest';
import { Metadata, credentials } from '@grpc/grpc-js';
import type { ClientReadableStream } from '@grpc/grpc-js';
import { pino } from 'pino';
import { ChangeNotificationType, NodeState, ObserverClient } from '@flowctl/flow';
import type { GetFlowsRequest, GetFlowsResponse, Node } from '@flowctl/flow';
import { startFakeAgent } from '../testing/fake-agent.js';
import type { FakeAgent, FakeAgentOptions } from '../testing/fake-agent.js';
import { startFakePeerServer } from '../testing/fake-peer-server.js';
import type { FakePeerServer } from '../testing/fake-peer-server.js';
import { PeerManager } from '../pool/manager.js';
import { watchPeerService } from '../pool/discovery.js';
import { startRelayServer } from '../server.js';
import type { RelayServer } from '../server.js';
import { forwardedMetadata } from './server.js';

const log = pino({ level: 'silent' });
let cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

async function agent(o: FakeAgentOptions): Promise<FakeAgent> {
  const a = await startFakeAgent(o);
  cleanups.push(() => a.close());
  return a;
}

async function relay(opts: { upstreamIdleTimeoutMs?: number } = {}): Promise<{ manager: PeerManager; server: RelayServer; client: InstanceType<typeof ObserverClient> }> {
  const manager = new PeerManager({ dialTimeoutMs: 1000, retryTimeoutMs: 500, nameTimeoutMs: 1000, log });
  const server = await startRelayServer('127.0.0.1:0', {
    manager,
    log,
    relayNode: 'test-relay',
    sortBufferLenMax: 100,
    sortBufferDrainTimeoutMs: 200,
    callTimeoutMs: 1000,
    peerUpdateIntervalMs: 100,
    ...opts,
  });
  const client = new ObserverClient(`127.0.0.1:${server.port}`, credentials.createInsecure(), { 'grpc.primary_user_agent': 'relay-test-client/9' });
  cleanups.push(() => server.close(), () => manager.stop(), () => client.close());
  return { manager, server, client };
}

const ready = (m: PeerManager, n: number) => expect.poll(() => m.list().filter((p) => p.state === 'ready').length, { timeout: 10_000 }).toBe(n);

function getFlows(client: InstanceType<typeof ObserverClient>, req: GetFlowsRequest, md = new Metadata()): Promise<GetFlowsResponse[]> {
  return new Promise((resolve, reject) => {
    const out: GetFlowsResponse[] = [];
    const s = client.getFlows(req, md);
    s.on('data', (r: GetFlowsResponse) => out.push(r));
    s.on('error', reject);
    s.on('end', () => resolve(out));
  });
}

function follow(client: InstanceType<typeof ObserverClient>): { events: GetFlowsResponse[]; stream: ClientReadableStream<GetFlowsResponse> } {
  const events: GetFlowsResponse[] = [];
  const stream = client.getFlows({ follow: true });
  stream.on('data', (r: GetFlowsResponse) => events.push(r));
  stream.on('error', () => {});
  cleanups.push(() => stream.cancel());
  return { events, stream };
}

const statusOf = (events: GetFlowsResponse[], state: NodeState) => events.filter((e) => e.node_status?.state_change === state).map((e) => e.node_status!);

describe('node names', () => {
  it('takes the announcement whose address was dialled, else the first one, else the address', async () => {
    const own = await agent({
      nodeName: 'ignored',
      peers: (port) => [
        { name: 'cluster/other', address: '10.99.0.1' },
        { name: 'cluster/own', address: `127.0.0.1:${port}` },
      ],
    });
    const first = await agent({ nodeName: 'x', peers: [{ name: 'first', address: '10.99.0.2' }, { name: 'second', address: '10.99.0.3' }] });
    const none = await agent({ nodeName: 'y', peerService: false });
    const { manager, client } = await relay();
    manager.setSource('flags', [own, first, none].map((a) => ({ address: `127.0.0.1:${a.port}` })));
    await ready(manager, 3);
    const nodes = await new Promise<Node[]>((res, rej) => client.getNodes({}, (e, r) => (e ? rej(e) : res(r.nodes ?? []))));
    expect(nodes.map((n) => n.name).sort()).toEqual(['127.0.0.1:' + none.port, 'cluster/own', 'first'].sort());
    // A configured name (peers file, peer service) wins over what the node says.
    manager.setSource('flags', [{ name: 'pinned', address: `127.0.0.1:${own.port}` }]);
    await ready(manager, 1);
    expect(manager.list().map((p) => p.name)).toEqual(['pinned']);
  });
});

describe('a node that stops', () => {
  it('is reported to a follow client when it ends its stream cleanly (agent shutdown)', async () => {
    const a = await agent({ nodeName: 'node-a', rate: 50 });
    const b = await agent({ nodeName: 'node-b', rate: 50 });
    const { manager, client } = await relay();
    manager.setSource('flags', [a, b].map((x) => ({ address: `127.0.0.1:${x.port}` })));
    await ready(manager, 2);
    const f = follow(client);
    await expect.poll(() => a.openStreams() + b.openStreams(), { timeout: 5000 }).toBe(2);
    b.endStreams();
    await expect.poll(() => statusOf(f.events, NodeState.NODE_ERROR), { timeout: 15_000 })
      .toEqual([{ state_change: NodeState.NODE_ERROR, node_names: ['node-b'], message: 'node stopped streaming' }]);
    const mark = f.events.length;
    await expect.poll(() => f.events.slice(mark).some((e) => e.node_name === 'node-a' && e.flow), { timeout: 5000 }).toBe(true);
  });
});

describe('NODE_GONE', () => {
  it('tells a follow client when a static peer is removed, and closes its upstream stream', async () => {
    const a = await agent({ nodeName: 'node-a', rate: 50 });
    const b = await agent({ nodeName: 'node-b', rate: 50 });
    const { manager, client } = await relay();
    manager.setSource('flags', [a, b].map((x) => ({ address: `127.0.0.1:${x.port}` })));
    await ready(manager, 2);
    const f = follow(client);
    await expect.poll(() => a.openStreams() + b.openStreams(), { timeout: 5000 }).toBe(2);
    manager.setSource('flags', [{ address: `127.0.0.1:${a.port}` }]);
    await expect.poll(() => statusOf(f.events, NodeState.NODE_GONE), { timeout: 5000 }).toEqual([{ state_change: NodeState.NODE_GONE, node_names: ['node-b'], message: '' }]);
    await expect.poll(() => b.openStreams(), { timeout: 5000 }).toBe(0);
    expect(statusOf(f.events, NodeState.NODE_ERROR)).toEqual([]);
    const mark = f.events.length;
    await expect.poll(() => f.events.slice(mark).some((e) => e.node_name === 'node-a' && e.flow), { timeout: 5000 }).toBe(true);
  });

  it('tells a follow client when the peer service deletes a node', async () => {
    const a = await agent({ nodeName: 'node-a', rate: 50 });
    const peers: FakePeerServer = await startFakePeerServer([{ name: 'node-a', address: `127.0.0.1:${a.port}`, type: ChangeNotificationType.PEER_ADDED }]);
    cleanups.push(() => peers.close());
    const { manager, client } = await relay();
    cleanups.push(watchPeerService(`127.0.0.1:${peers.port}`, log, (s) => manager.setSource('peer-service', s), 500));
    await ready(manager, 1);
    const f = follow(client);
    await expect.poll(() => a.openStreams(), { timeout: 5000 }).toBe(1);
    peers.streams[0]!.write({ name: 'node-a', address: `127.0.0.1:${a.port}`, type: ChangeNotificationType.PEER_DELETED });
    await expect.poll(() => statusOf(f.events, NodeState.NODE_GONE).flatMap((s) => s.node_names), { timeout: 5000 }).toEqual(['node-a']);
    await expect.poll(() => a.openStreams(), { timeout: 5000 }).toBe(0);
  });
});

describe('one-shot requests', () => {
  it('give up on a node that accepts GetFlows and never answers, with a NODE_ERROR naming it', async () => {
    const ok = await agent({ nodeName: 'node-ok', backlog: 20 });
    const stuck = await agent({ nodeName: 'node-stuck', stall: true });
    const { manager, client, server } = await relay({ upstreamIdleTimeoutMs: 300 });
    manager.setSource('flags', [ok, stuck].map((x) => ({ address: `127.0.0.1:${x.port}` })));
    await ready(manager, 2);
    const started = Date.now();
    const out = await getFlows(client, { number: 5n });
    expect(Date.now() - started).toBeLessThan(5000);
    expect(out.filter((r) => r.flow).map((r) => r.node_name)).toEqual(Array(5).fill('node-ok'));
    expect(statusOf(out, NodeState.NODE_ERROR)).toEqual([
      { state_change: NodeState.NODE_ERROR, node_names: ['node-stuck'], message: 'no response from node within 0.3s' },
    ]);
    await expect.poll(() => stuck.openStreams(), { timeout: 5000 }).toBe(0);
    expect(server.observer.stats.nodes.get('node-stuck')?.errors.stream).toBe(1);
    expect(server.observer.stats.openUpstreamStreams).toBe(0);
  });

  it('forward the client metadata to every node, minus transport headers', async () => {
    const a = await agent({ nodeName: 'node-a', backlog: 3 });
    const { manager, client } = await relay();
    manager.setSource('flags', [{ address: `127.0.0.1:${a.port}` }]);
    await ready(manager, 1);
    const md = new Metadata();
    md.add('authorization', 'Bearer t0k3n');
    md.add('x-request-id', 'r-1');
    md.add('x-request-id', 'r-2');
    await getFlows(client, { number: 1n }, md);
    const got = a.lastMetadata();
    expect(got.authorization).toEqual(['Bearer t0k3n']);
    // grpc-js joins repeated ASCII values into one header on the wire; both values arrive.
    expect(got['x-request-id']?.join(', ')).toBe('r-1, r-2');
    expect(String(got['user-agent'])).not.toContain('relay-test-client');
  });

  it('forwardedMetadata drops pseudo, grpc- and hop headers', () => {
    const md = new Metadata();
    md.add('grpc-timeout', '1S');
    md.add('user-agent', 'x');
    md.add('te', 'trailers');
    md.add('x-b3-traceid', 'abc');
    md.add('bin-bin', Buffer.from([1, 2]));
    const out = forwardedMetadata(md).getMap();
    expect(Object.keys(out).sort()).toEqual(['bin-bin', 'x-b3-traceid']);
  });
});
