// The real agent process in a node network namespace with three pod namespaces, real TCP, UDP,
// HTTP and DNS (dnsmasq) traffic, read back over gRPC by our client and by the Hubble CLI.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DropReason,
  FlowType,
  L7FlowType,
  ObserverClient,
  TrafficDirection,
  Verdict,
  type Flow,
  type GetFlowsResponse,
} from '@flowctl/flow';
import { encodeResponse } from '@flowctl/flow/json';
import { hubbleCli } from '@flowctl/flow/testing';
import { startAgent, waitFor } from './agent-process.js';
import { buildTopology, cleanupNetns, linkExists, ownTcxLinks, sh, type Topology } from './netns.js';

const run = promisify(execFile);
const TAG = 'e2e';

// Skip only when the kernel refuses BPF; a missing build is a failure, not a skip.
async function why(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'not root: the kernel refuses BPF and namespaces';
  try {
    const { KernelDatapath } = await import('../datapath/kernel.js');
    new KernelDatapath({ ringBytes: 1 << 16 }).close();
  } catch (e) {
    const err = e as { code?: string; errno?: number; message?: string };
    if (err.code === 'EPERM' || err.code === 'EACCES' || err.errno === 1 || err.errno === 13) {
      return `the kernel refused BPF: ${String(err.message).split('\n')[0]}`;
    }
  }
  return undefined;
}
const skipReason = await why();
if (skipReason) process.stderr.write(`\n!!! SKIPPING agent-netns.bpf.test.ts: ${skipReason} !!!\n\n`);

let topo: Topology;
let dir: string;
let sock: string;
let agent: ChildProcess | undefined;
let agentLog = () => '';
const procs: ChildProcess[] = [];
let flows: Flow[] = [];

const endpointsYaml = (t: Topology) => `endpoints:
  - name: client-6b7f9d8c4-x2k9p
    namespace: shop
    node: ${t.node}
    labels: { app: client }
    ips: [${t.pods[0]!.ip}]
    interface: ${t.pods[0]!.hostIf}
    netns: ${t.pods[0]!.ns}
  - name: web-0
    namespace: shop
    node: ${t.node}
    labels: { app: web, tier: frontend }
    ips: [${t.pods[1]!.ip}]
    interface: ${t.pods[1]!.hostIf}
    netns: ${t.pods[1]!.ns}
  - name: dns-5f6c7d8b9-q4w7e
    namespace: infra
    node: ${t.node}
    labels: { app: dns }
    ips: [${t.pods[2]!.ip}]
    interface: ${t.pods[2]!.hostIf}
    netns: ${t.pods[2]!.ns}
`;

// web accepts TCP 8080 only from app=client: the dns pod's attempt must be DROPPED by policy.
const POLICY = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: web-from-client, namespace: shop }
spec:
  endpointSelector: { matchLabels: { app: web } }
  ingress:
    - fromEndpoints: [ { matchLabels: { app: client } } ]
      toPorts: [ { ports: [ { port: "8080", protocol: TCP } ] } ]
`;

function inNs(ns: string, args: string[], input?: string): Promise<string> {
  return new Promise((res, rej) => {
    const p = spawn('ip', ['netns', 'exec', ns, ...args], { stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout!.on('data', (d: Buffer) => (out += d));
    p.stderr!.on('data', (d: Buffer) => (err += d));
    if (input !== undefined) p.stdin!.end(input);
    p.on('close', (code) => (code === 0 ? res(out) : rej(new Error(`${args.join(' ')} in ${ns} exited ${code}: ${err.trim()}`))));
  });
}

function background(ns: string, args: string[]): ChildProcess {
  const p = spawn('ip', ['netns', 'exec', ns, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  procs.push(p);
  return p;
}

function getFlows(): Promise<GetFlowsResponse[]> {
  const c = new ObserverClient(`unix:${sock}`, grpc.credentials.createInsecure());
  return new Promise((res, rej) => {
    const out: GetFlowsResponse[] = [];
    const s = c.getFlows({ number: 100000n });
    s.on('data', (r: GetFlowsResponse) => out.push(r));
    s.on('end', () => {
      c.close();
      res(out);
    });
    s.on('error', rej);
  });
}

const HTTP_SERVER = `require('http').createServer((q,s)=>{const c=q.url==='/ok'?200:q.url==='/missing'?404:500;s.writeHead(c,{'content-type':'text/plain'});s.end('x');}).listen(8080,process.argv[1],()=>console.log('up'));`;

describe.skipIf(skipReason !== undefined)('agent in network namespaces (real kernel)', () => {
  beforeAll(async () => {
    topo = buildTopology(TAG, 1, 3);
    dir = mkdtempSync(join(tmpdir(), 'fca-agent-e2e-'));
    sock = join(dir, 'hubble.sock');
    writeFileSync(join(dir, 'endpoints.yaml'), endpointsYaml(topo));
    mkdirSync(join(dir, 'policies'));
    writeFileSync(join(dir, 'policies', 'web.yaml'), POLICY);

    const a = await startAgent(topo, dir, join(dir, 'endpoints.yaml'), [
      '--policy-dir', join(dir, 'policies'), '--listen-address', ':4244', '--disable-tls', '--ring-capacity', '65535', '--metrics-address', '',
    ]);
    agent = a.proc;
    agentLog = a.log;

    const [client, web, dns] = topo.pods as [typeof topo.pods[0], typeof topo.pods[0], typeof topo.pods[0]];
    const srv = background(web.ns, [process.execPath, '-e', HTTP_SERVER, web.ip]);
    await new Promise<void>((r) => srv.stdout!.once('data', () => r()));
    background(dns.ns, ['dnsmasq', '--no-daemon', '--no-resolv', '--no-hosts', `--listen-address=${dns.ip}`, '--bind-interfaces',
      '--address=/web.shop.test/' + web.ip, `--pid-file=${join(dir, 'dnsmasq.pid')}`, '--user=root']);
    await new Promise((r) => setTimeout(r, 300));

    for (const path of ['/ok', '/missing', '/fail']) {
      await inNs(client.ns, ['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', `http://${web.ip}:8080${path}`]);
    }
    const resolved = await inNs(client.ns, [process.execPath, '-e',
      `const r=new (require('dns').promises.Resolver)();r.setServers(['${dns.ip}']);r.resolve4('web.shop.test').then(a=>console.log(a.join(',')))`]);
    expect(resolved.trim()).toBe(web.ip);
    await inNs(client.ns, [process.execPath, '-e',
      `const s=require('dgram').createSocket('udp4');s.send('ping',9999,'${dns.ip}',()=>setTimeout(()=>s.close(),200));`]);
    // The policy denies dns → web:8080; the SYN is dropped, so the connect times out.
    await inNs(dns.ns, [process.execPath, '-e',
      `const c=require('net').connect(8080,'${web.ip}');c.on('connect',()=>{console.log('CONNECTED');c.end()});c.on('error',()=>{});setTimeout(()=>{c.destroy();},1500);`])
      .then((out) => expect(out).not.toContain('CONNECTED'));

    await waitFor('flows', async () => {
      const rs = await getFlows();
      const fs = rs.flatMap((r) => (r.flow ? [r.flow] : []));
      return fs.some((f) => f.verdict === Verdict.DROPPED) && fs.some((f) => f.l7?.http?.code === 500) ? fs : undefined;
    }, 10_000, agentLog).then((fs) => (flows = fs));
  }, 120_000);

  afterAll(async () => {
    for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
    if (agent && agent.exitCode === null) agent.kill('SIGKILL');
    if (topo) cleanupNetns(TAG);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const dump = (fs: Flow[]) => fs.map((f) => encodeResponse({ flow: f })).join('\n');
  const pod = (f: Flow, side: 'source' | 'destination') => f[side]?.pod_name ?? '';

  it('sees TCP between pods with pod names, namespaces, labels, flags and directions', () => {
    const syn = flows.find((f) => pod(f, 'source') === 'client-6b7f9d8c4-x2k9p' && pod(f, 'destination') === 'web-0' &&
      f.l4?.TCP?.flags?.SYN && !f.l4.TCP.flags.ACK && f.trace_observation_point !== undefined);
    expect(syn, dump(flows.slice(0, 8))).toBeDefined();
    expect(syn!.verdict).toBe(Verdict.FORWARDED);
    expect(syn!.source?.namespace).toBe('shop');
    expect(syn!.source?.labels).toEqual(['k8s:app=client', 'k8s:io.kubernetes.pod.namespace=shop']);
    expect(syn!.destination?.labels).toContain('k8s:tier=frontend');
    expect(syn!.source?.workloads).toEqual([{ name: 'client', kind: 'Deployment' }]);
    expect(syn!.l4?.TCP?.destination_port).toBe(8080);
    expect(syn!.Summary).toBe('TCP Flags: SYN');
    expect(syn!.node_name).toBe(topo.node);
    expect(syn!.interface?.name).toMatch(/^fca-h[01]$/);
    const synAck = flows.find((f) => pod(f, 'source') === 'web-0' && f.l4?.TCP?.flags?.SYN && f.l4.TCP.flags.ACK);
    expect(synAck?.is_reply).toBe(true);
    expect(synAck?.Summary).toBe('TCP Flags: SYN, ACK');
    const toEp = flows.find((f) => pod(f, 'destination') === 'web-0' && f.l4?.TCP?.flags?.SYN && !f.l4.TCP.flags.ACK && f.trace_observation_point === 101);
    expect(toEp?.traffic_direction).toBe(TrafficDirection.INGRESS);
  });

  it('sees UDP and the DNS exchange, with the query name and answer', () => {
    const udp = flows.find((f) => f.l4?.UDP?.destination_port === 9999 && pod(f, 'destination') === 'dns-5f6c7d8b9-q4w7e');
    expect(udp?.source?.pod_name).toBe('client-6b7f9d8c4-x2k9p');
    expect(udp?.destination?.namespace).toBe('infra');
    expect(udp?.Summary).toBe('UDP');
    const dnsResp = flows.find((f) => f.Type === FlowType.L7 && f.l7?.dns && f.l7.type === L7FlowType.RESPONSE);
    expect(dnsResp?.l7?.dns?.query).toBe('web.shop.test.');
    expect(dnsResp?.l7?.dns?.ips).toContain(topo.pods[1]!.ip);
  });

  it('sees HTTP status codes 200, 404 and 500', () => {
    const codes = flows.filter((f) => f.l7?.http?.code).map((f) => f.l7!.http!.code).sort();
    expect(codes).toEqual(expect.arrayContaining([200, 404, 500]));
  });

  it('sees the policy drop with its reason', () => {
    const drop = flows.find((f) => f.verdict === Verdict.DROPPED && pod(f, 'source') === 'dns-5f6c7d8b9-q4w7e');
    expect(drop, dump(flows.filter((f) => f.verdict === Verdict.DROPPED))).toBeDefined();
    expect(drop!.drop_reason_desc).toBe(DropReason.POLICY_DENIED);
    expect(drop!.destination?.pod_name).toBe('web-0');
    expect(drop!.event_type?.type).toBe(1);
  });

  it('the Hubble CLI sees the same flows as our client', { tags: ['hubble'] }, async () => {
    const { stdout } = await run(hubbleCli(), ['observe', '--server', `unix://${sock}`, '--last', '100000', '-o', 'json'], { timeout: 30_000, maxBuffer: 64 << 20 });
    if (process.env.FCA_DUMP) writeFileSync(process.env.FCA_DUMP, stdout);
    const hubbleLines: { flow?: Flow & Record<string, unknown> }[] = stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
    const ours = new Set(flows.map((f) => f.uuid));
    const theirs = hubbleLines.flatMap((l) => (l.flow ? [l.flow] : []));
    expect(theirs.length).toBeGreaterThanOrEqual(flows.length);
    for (const f of theirs.slice(0, flows.length)) expect(ours.has(f.uuid as string)).toBe(true);
    const mine = flows.find((f) => f.drop_reason_desc === DropReason.POLICY_DENIED)!;
    const theirsDrop = theirs.find((f) => f.uuid === mine.uuid) as Record<string, any>;
    expect(theirsDrop.verdict).toBe('DROPPED');
    expect(theirsDrop.drop_reason_desc).toBe('POLICY_DENIED');
    expect(theirsDrop.source.pod_name).toBe('dns-5f6c7d8b9-q4w7e');
    expect(JSON.parse(encodeResponse({ flow: mine })).flow.uuid).toBe(theirsDrop.uuid);
  });

  it('on SIGTERM stops serving, detaches from every interface and exits 0', async () => {
    // The agent attaches TCX links (kernel 6.6+) on both directions of each pod's interface; they must go with it.
    const hostIfs = new Set(topo.pods.map((p) => Number(sh(['ip', '-n', topo.node, '-j', 'link', 'show', p.hostIf]).match(/"ifindex":(\d+)/)![1])));
    const links = ownTcxLinks(agent!.pid!);
    expect(links.filter((l) => hostIfs.has(l.ifindex))).toHaveLength(2 * topo.pods.length);
    const exited = new Promise<number | null>((r) => agent!.once('exit', (code) => r(code)));
    agent!.kill('SIGTERM');
    expect(await exited).toBe(0);
    for (const p of topo.pods) {
      for (const dirn of ['ingress', 'egress']) {
        expect(sh(['ip', 'netns', 'exec', topo.node, 'tc', 'filter', 'show', 'dev', p.hostIf, dirn]).trim()).toBe('');
      }
    }
    expect(links.map((l) => l.linkId).filter(linkExists)).toEqual([]);
    expect(existsSync(sock)).toBe(false);
  });
});
