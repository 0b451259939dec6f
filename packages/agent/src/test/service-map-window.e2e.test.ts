// The service map's window is not the flow ring's: an agent with a ring of 255 flows and 20
// minutes of 15 s buckets (an injected clock), asked by `flowctl map` (a process, real gRPC).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../agent.js';
import { FakeDatapath } from '../testing/fake-datapath.js';
import { flowEvent } from '../parser/fixtures.js';
import { flowctl } from '../../../cli/src/e2e/helpers.js';

const ENDPOINTS = `endpoints:
  - name: client-7d9f8b6c5-abcde
    namespace: shop
    node: node-a
    labels: { app: client }
    ips: [10.203.1.10]
    interface: fca-veth1
  - name: web-0
    namespace: shop
    node: node-a
    labels: { app: web }
    ips: [10.203.1.20]
    interface: fca-veth2
`;

const MINUTES = 20;
const PER_MINUTE = 50;
let dir: string;
let agent: Agent;
let server: string;
let clock = 0;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fca-map-window-'));
  writeFileSync(join(dir, 'endpoints.yaml'), ENDPOINTS);
  const start = Date.now();
  // The simulated 20 minutes end now, so the CLI's --since (relative to its own clock) fits.
  clock = start - MINUTES * 60_000;
  const dp = new FakeDatapath();
  agent = new Agent({
    nodeName: 'node-a',
    endpointsFile: join(dir, 'endpoints.yaml'),
    listenAddress: '127.0.0.1:0',
    unixSocket: join(dir, 'hubble.sock'),
    ringCapacity: 255,
    datapath: dp,
    serviceMap: { now: () => clock + (Date.now() - start) },
    log: { info() {}, warn() {}, error() {} },
  });
  await agent.start();
  server = `127.0.0.1:${agent.tcpPort}`;
  let port = 30000;
  for (let m = 0; m < MINUTES; m++) {
    // One new connection per event: SYN from the client pod, seen where it leaves the pod.
    dp.emit(Array.from({ length: PER_MINUTE }, () => flowEvent({ srcPort: port++, reason: 1 })));
    // The agent parses on its own schedule: let it take this minute's events at this minute.
    while (agent.observer.seenFlows < (m + 1) * PER_MINUTE) await new Promise((r) => setTimeout(r, 5));
    clock += 60_000;
  }
  clock -= 60_000;
});

afterAll(async () => {
  await agent?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function map(args: string[], stderr = '') {
  const r = await flowctl(['map', '--server', server, '-o', 'json', ...args]);
  expect(r.stderr).toEqual(stderr);
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout);
}

describe('flowctl map window', () => {
  it('answers --since beyond the ring from the buckets', async () => {
    expect(agent.observer.ring.length).toBe(255);
    // The buckets begin 20 minutes ago: the answer says so, on stderr and in the JSON.
    const all = await map(['--since', '30m'], expect.stringMatching(/^note: aggregates reach back only to \S+\n$/) as unknown as string);
    expect(Date.parse(all.covered_since)).toBeGreaterThan(Date.now() - 21 * 60_000);
    expect(all.nodes.map((n: { id: string }) => n.id)).toEqual(['shop/client', 'shop/web']);
    expect(all.edges).toHaveLength(1);
    expect(all.edges[0]).toMatchObject({ source: 'shop/client', destination: 'shop/web', port: 8080, protocol: 'TCP', connections: MINUTES * PER_MINUTE, flows: MINUTES * PER_MINUTE });
    // A SYN carries no payload.
    expect(all.edges[0]).toMatchObject({ bytes_sent: 0, bytes_received: 0, packets_sent: MINUTES * PER_MINUTE });
    expect(all.nodes[0]).toMatchObject({ namespace: 'shop', workload: 'client', pods: 1 });
    const obs = await flowctl(['observe', '--server', server, '--since', '30m', '-o', 'json']);
    expect(obs.stdout.trim().split('\n')).toHaveLength(255);
  });

  it('counts only the buckets of a shorter window', async () => {
    // Simulated minute m happened 20 - m minutes before the test's start; the CLI's clock has run
    // on since, and a bucket overlapping the window's edge counts whole: 4 to 6 minutes' worth.
    const last5 = await map(['--since', '5m']);
    const n = last5.edges[0].connections;
    expect(n % PER_MINUTE).toBe(0);
    expect(n / PER_MINUTE).toBeGreaterThanOrEqual(4);
    expect(n / PER_MINUTE).toBeLessThanOrEqual(6);
    const older = await map(['--since', '19m', '--until', '10m']);
    expect(older.edges[0].connections / PER_MINUTE).toBeGreaterThanOrEqual(9);
    expect(older.edges[0].connections / PER_MINUTE).toBeLessThanOrEqual(11);
  });

  it('applies observe filters and --exclude', async () => {
    expect((await map(['--since', '19m', '--to-pod', 'shop/db'])).edges).toEqual([]);
    expect((await map(['--since', '19m', '--to-pod', 'shop/web'])).edges).toHaveLength(1);
    expect((await map(['--since', '19m', '--verdict', 'DROPPED'])).edges).toEqual([]);
    expect((await map(['--since', '19m', '--exclude', 'shop/web'])).edges).toEqual([]);
    expect((await map(['--since', '19m', '--exclude', 'app=web'])).nodes).toEqual([]);
  });
});
