// The agent with a fake datapath, served over real gRPC (unix socket and TCP), read by our client
// and by the real Hubble CLI, which must agree.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ChangeNotificationType,
  HealthCheckResponse_ServingStatus,
  HealthClient,
  ObserverClient,
  PeerClient,
  Verdict,
  type ChangeNotification,
  type GetFlowsRequest,
  type GetFlowsResponse,
} from '@flowctl/flow';
import { encodeResponse } from '@flowctl/flow/json';
import { hubbleCli } from '@flowctl/flow/testing';
import { Agent } from '../agent.js';
import { FakeDatapath } from '../testing/fake-datapath.js';
import { fixtures, flowEvent } from '../parser/fixtures.js';

const run = promisify(execFile);

const ENDPOINTS = `endpoints:
  - name: client-7d9f8b6c5-bcdfg
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
  - name: db-0
    namespace: bank
    node: node-b
    labels: { app: db }
    ips: [10.203.2.30]
`;

let dir: string;
let agent: Agent;
let dp: FakeDatapath;
let sock: string;
let tcp: string;
const errors: string[] = [];

const POLICY = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: web-ingress, namespace: shop }
spec:
  endpointSelector: { matchLabels: { app: web } }
  ingress:
    - fromEndpoints: [ { matchLabels: { app: client } } ]
      toPorts: [ { ports: [ { port: "8080", protocol: TCP } ] } ]
`;

function getFlows(client: ObserverClient, req: GetFlowsRequest): Promise<GetFlowsResponse[]> {
  return new Promise((resolve, reject) => {
    const out: GetFlowsResponse[] = [];
    const s = client.getFlows(req);
    s.on('data', (r: GetFlowsResponse) => out.push(r));
    s.on('end', () => resolve(out));
    s.on('error', reject);
  });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fca-agent-'));
  writeFileSync(join(dir, 'endpoints.yaml'), ENDPOINTS);
  mkdirSync(join(dir, 'policies'));
  writeFileSync(join(dir, 'policies', 'web.yaml'), POLICY);
  sock = join(dir, 'hubble.sock');
  dp = new FakeDatapath();
  agent = new Agent({
    nodeName: 'node-a',
    endpointsFile: join(dir, 'endpoints.yaml'),
    policyDir: join(dir, 'policies'),
    unixSocket: sock,
    listenAddress: '127.0.0.1:0',
    ringCapacity: 63,
    datapath: dp,
    watchIntervalMs: 100,
    log: { info() {}, warn() {}, error: (_o: unknown, msg?: string) => void errors.push(String(msg)) },
  });
  await agent.start();
  tcp = `127.0.0.1:${agent.tcpPort}`;
  dp.emit([fixtures.tcpSyn, fixtures.tcpSynAckReply, fixtures.udp, fixtures.icmpEcho, fixtures.policyDrop]);
  dp.emit([flowEvent({ dstIp: '10.203.2.30', dstPort: 5432 })]);
  await new Promise((r) => setTimeout(r, 50));
});

afterAll(async () => {
  await agent?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('agent over gRPC (fake datapath)', () => {
  it('attached the datapath to the interfaces of this node\'s endpoints and filled identities', () => {
    expect([...dp.attached.keys()].sort()).toEqual(['/fca-veth1', '/fca-veth2']);
    const ids = new Map(dp.identities.map((r) => [r.cidr, r.identity]));
    expect(ids.get('10.203.2.30/32')).toBeGreaterThanOrEqual(256);
    expect([...ids.values()]).toContain(1); // node IPs as reserved:host
  });

  it('serves flows on the unix socket and TCP identically to our client', async () => {
    const u = new ObserverClient(`unix:${sock}`, grpc.credentials.createInsecure());
    const t = new ObserverClient(tcp, grpc.credentials.createInsecure());
    const a = await getFlows(u, { number: 100n });
    const b = await getFlows(t, { number: 100n });
    u.close();
    t.close();
    expect(a).toHaveLength(6);
    expect(a.map(encodeResponse)).toEqual(b.map(encodeResponse));
    const syn = a[0]!.flow!;
    expect(syn.source?.pod_name).toBe('client-7d9f8b6c5-bcdfg');
    expect(syn.destination?.namespace).toBe('shop');
    expect(a[0]!.node_name).toBe('node-a');
    expect(a[0]!.time).toEqual(syn.time);
    expect(a[4]!.flow?.verdict).toBe(Verdict.DROPPED);
    expect(a[5]!.flow?.destination?.labels).toContain('k8s:app=db');
  });

  it('filters server-side and rejects first+follow with InvalidArgument', async () => {
    const c = new ObserverClient(tcp, grpc.credentials.createInsecure());
    const dropped = await getFlows(c, { whitelist: [{ verdict: [Verdict.DROPPED] }] });
    expect(dropped.map((r) => r.flow?.Summary)).toEqual(['TCP Flags: SYN']);
    const err = await getFlows(c, { first: true, follow: true }).catch((e: grpc.ServiceError) => e);
    expect((err as grpc.ServiceError).code).toBe(grpc.status.INVALID_ARGUMENT);
    const bad = await getFlows(c, { whitelist: [{ source_ip: ['10.0.0.0/99'] }] }).catch((e: grpc.ServiceError) => e);
    expect((bad as grpc.ServiceError).code).toBe(grpc.status.INVALID_ARGUMENT);
    c.close();
  });

  it('answers ServerStatus, GetNamespaces, GetNodes (Unimplemented), Health and Peer', async () => {
    const c = new ObserverClient(tcp, grpc.credentials.createInsecure());
    const status = await new Promise<any>((res, rej) => c.serverStatus({}, (e, r) => (e ? rej(e) : res(r))));
    expect(status.num_flows).toBe(6n);
    expect(status.max_flows).toBe(63n);
    expect(status.seen_flows).toBe(6n);
    expect(status.version).toBe('flowctl-agent v0.1.0');
    expect(status.uptime_ns).toBeGreaterThan(0n);
    const ns = await new Promise<any>((res, rej) => c.getNamespaces({}, (e, r) => (e ? rej(e) : res(r))));
    expect(ns.namespaces.map((n: { namespace: string }) => n.namespace)).toEqual(['bank', 'shop']);
    const nodesErr = await new Promise<grpc.ServiceError>((res) => c.getNodes({}, (e) => res(e!)));
    expect(nodesErr.code).toBe(grpc.status.UNIMPLEMENTED);
    c.close();

    const h = new HealthClient(tcp, grpc.credentials.createInsecure());
    const hr = await new Promise<any>((res, rej) => h.check({ service: 'hubble.server.Observer' }, (e, r) => (e ? rej(e) : res(r))));
    expect(hr.status).toBe(HealthCheckResponse_ServingStatus.SERVING);
    h.close();

    const p = new PeerClient(`unix:${sock}`, grpc.credentials.createInsecure());
    const first = await new Promise<ChangeNotification>((res, rej) => {
      const s = p.notify({});
      s.on('data', (n: ChangeNotification) => {
        res(n);
        s.cancel();
      });
      s.on('error', (e: grpc.ServiceError) => e.code !== grpc.status.CANCELLED && rej(e));
    });
    expect(first.type).toBe(ChangeNotificationType.PEER_ADDED);
    expect(first.name).toBe('node-a');
    expect(first.address).toMatch(/:\d+$/);
    p.close();
  });

  it('the real Hubble CLI reads the same flows as our client', { tags: ['hubble'] }, async () => {
    const { stdout } = await run(hubbleCli(), ['observe', '--server', `unix://${sock}`, '--last', '100', '-o', 'json'], { timeout: 20_000 });
    const lines = stdout.trim().split('\n').map((l) => JSON.parse(l));
    const c = new ObserverClient(`unix:${sock}`, grpc.credentials.createInsecure());
    const ours = (await getFlows(c, { number: 100n })).map((r) => JSON.parse(encodeResponse(r)));
    c.close();
    expect(lines).toHaveLength(ours.length);
    const key = (j: any) => [j.flow.uuid, j.flow.verdict, j.flow.source?.pod_name ?? '', j.flow.destination?.pod_name ?? '', j.flow.Summary, j.flow.time, j.node_name];
    expect(lines.map(key)).toEqual(ours.map(key));
    expect(lines[0].flow.l4.TCP.flags).toEqual({ SYN: true });
    expect(lines[0].flow.source.labels).toEqual(['k8s:app=client', 'k8s:io.kubernetes.pod.namespace=shop']);

    const st = await run(hubbleCli(), ['status', '--server', `unix://${sock}`], { timeout: 20_000 });
    expect(st.stdout).toMatch(/Healthcheck \(via unix:\/\/.*\): Ok/);
    expect(st.stdout).toMatch(/Current\/Max Flows: 6\/63/);
  });

  it('reloads the endpoints file within 2 s; a bad file keeps the last good state', async () => {
    const file = join(dir, 'endpoints.yaml');
    writeFileSync(file, ENDPOINTS.replace('interface: fca-veth2', 'interface: fca-veth3'));
    await waitFor(() => dp.attached.has('/fca-veth3'), 2000);
    expect(dp.attached.has('/fca-veth2')).toBe(false);
    writeFileSync(file, 'endpoints:\n  - name: broken\n    bogus: 1\n');
    await new Promise((r) => setTimeout(r, 400));
    expect(dp.attached.has('/fca-veth3')).toBe(true);
    dp.emit([flowEvent({ srcIp: '10.203.2.30' })]);
    await new Promise((r) => setTimeout(r, 20));
    const c = new ObserverClient(tcp, grpc.credentials.createInsecure());
    const last = await getFlows(c, { number: 1n });
    c.close();
    expect(last[0]!.flow?.source?.pod_name).toBe('db-0');
  });
});

describe('policy directory', () => {
  it('compiled the policy at start, pushed it to the datapath, and names it on verdicts', async () => {
    expect(dp.policyUpdates).toBeGreaterThanOrEqual(1); // + one recompile per endpoints reload
    expect(dp.policy?.refs.map((r) => r.name)).toEqual(['web-ingress']);
    expect(dp.policy?.entries.length).toBeGreaterThan(0);
    const ref = dp.policy!.entries[0]!.ruleRef;
    dp.emit([flowEvent({ obsPoint: 2, verdict: 2, dropReason: 133, reason: 6, policyRef: ref, policyDirection: 1, dstPort: 9999 })]);
    await new Promise((r) => setTimeout(r, 20));
    const c = new ObserverClient(tcp, grpc.credentials.createInsecure());
    const [last] = await getFlows(c, { number: 1n });
    c.close();
    expect(last!.flow?.ingress_denied_by?.[0]).toMatchObject({ name: 'web-ingress', namespace: 'shop' });
  });

  it('reloads on change within 2 s; an invalid policy is reported with file and document, the previous stays', async () => {
    const before = dp.policyUpdates;
    writeFileSync(join(dir, 'policies', 'web.yaml'), POLICY.replace('"8080"', '"8081"'));
    await waitFor(() => dp.policyUpdates > before, 2000);
    expect(dp.policy?.entries.some((e) => e.port === 8081)).toBe(true);
    const good = dp.policy;
    writeFileSync(join(dir, 'policies', 'bad.yaml'), 'apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: { name: x }\nspec: { nonsense: 1 }\n');
    await waitFor(() => errors.some((e) => e.includes('bad.yaml')), 2000);
    expect(errors.find((e) => e.includes('bad.yaml'))).toMatch(/bad\.yaml: document 1: /);
    expect(dp.policy).toBe(good);
  });
});

async function waitFor(cond: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
