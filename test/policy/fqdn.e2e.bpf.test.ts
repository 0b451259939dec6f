// toFQDNs end to end on the real kernel: a node namespace running the real agent, a client pod, a
// DNS pod running dnsmasq (api.allowed.test and other.test), and a server outside the cluster (a
// namespace on the bridge that is no endpoint) with two addresses. A policy allows the client
// `*.allowed.test` on port 80: the client reaches api.allowed.test once it resolved it, and its
// first SYN after the answer is not dropped (the kernel learns the address as the answer passes);
// not other.test, nor the allowed address before resolving it; DROPPED flows name the policy;
// flowctl policy check agrees; the address expires with its TTL. A pattern with a `*` inside a
// label (`api-*.pattern.test`) and an answer over TCP are learned in the kernel as well, with the
// same first-SYN guarantee. Over IPv6, an AAAA answer teaches its address as an A answer does, also
// when it comes over IPv4 to the dual-stack client (the kernel learns it for the client's IPv6
// address).
// Prefix fcz-, subnets 10.209.0.0/16 and fd10:209::/64 (docs/design/contracts.md).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, flowctl, bpfSkipReason, buildLab, cleanupLab, inNs, startAgent, waitFor as labWaitFor, type Lab, type LabAgent } from './lab.js';

const NODE_NS = 'fcz-node';
const CLIENT = { ns: 'fcz-client', hostIf: 'fcz-h0', ip: '10.209.1.10', ip6: 'fd10:209::10', name: 'client-6d5f7-abcde' };
const DNS = { ns: 'fcz-dns', hostIf: 'fcz-h1', ip: '10.209.1.53', ip6: 'fd10:209::53', name: 'dns-7f8c9-fghij' };
const WORLD = { ns: 'fcz-world', hostIf: 'fcz-h2', ip: '10.209.1.80', ip6: 'fd10:209::80' };
const API6_IP = WORLD.ip6; // v6.allowed.test (AAAA only)
const OTHER6_IP = 'fd10:209::81'; // other6.test (AAAA only)
const V4ASKED_IP = 'fd10:209::82'; // v4asked.allowed.test (AAAA only), asked over IPv4
const API_IP = WORLD.ip;
const OTHER_IP = '10.209.1.81';
const PATTERN_IP = '10.209.1.82'; // api-v2.pattern.test
const WEB_IP = '10.209.1.83'; // web.pattern.test
const TCP_IP = '10.209.1.84'; // tcp.allowed.test, resolved over TCP
const TTL_S = 4; // dnsmasq's TTL for its names; the agent runs with --tofqdns-min-ttl 0

const LAB: Lab = {
  prefix: 'fcz-',
  node: NODE_NS,
  bridge: 'fcz-br0',
  gateway: '10.209.1.1',
  pods: [CLIENT, DNS, WORLD].map((p) => ({ netns: p.ns, hostIf: p.hostIf, ip: p.ip, ip6: p.ip6 })),
};

const POLICY = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: allowed-test-egress, namespace: fcz }
spec:
  endpointSelector: { matchLabels: { app: client } }
  egress:
    - toEndpoints: [ { matchLabels: { app: dns } } ]
      toPorts: [ { ports: [ { port: "53", protocol: ANY } ], rules: { dns: [ { matchPattern: "*" } ] } } ]
    - toFQDNs: [ { matchPattern: "*.allowed.test" }, { matchPattern: "api-*.pattern.test" } ]
      toPorts: [ { ports: [ { port: "80", protocol: TCP } ] } ]
`;

// The world namespace is on the bridge but not in the endpoints file: outside the cluster.
const ENDPOINTS = `endpoints:
  - { name: ${CLIENT.name}, namespace: fcz, node: ${NODE_NS}, labels: { app: client }, ips: [${CLIENT.ip}, ${CLIENT.ip6}], interface: ${CLIENT.hostIf}, netns: ${CLIENT.ns} }
  - { name: ${DNS.name}, namespace: fcz, node: ${NODE_NS}, labels: { app: dns }, ips: [${DNS.ip}, ${DNS.ip6}], interface: ${DNS.hostIf}, netns: ${DNS.ns} }
`;

const skipReason = await bpfSkipReason('test/policy/fqdn.e2e.bpf.test.ts');

const SERVER = `require('http').createServer((q,s)=>s.end('hello from '+q.socket.localAddress+'\\n')).listen(80,'::',()=>console.log('up'));`;
// Resolves a name with the given server (real UDP DNS; A, or AAAA with family 6), then connects at
// once to its first address: prints the answer, CONNECTED or FAILED, and the connect time in ms.
const RESOLVE_CONNECT = `const [name,server,timeout,family]=process.argv.slice(1);const dns=require('dns').promises;const r=new dns.Resolver();r.setServers([server]);
(family==='6'?r.resolve6(name):r.resolve4(name)).then((a)=>{const t0=process.hrtime.bigint();const c=require('net').connect({port:80,host:a[0]});const t=setTimeout(()=>{console.log(JSON.stringify({addrs:a,ok:false,why:'timeout'}));process.exit(0)},+timeout);
c.on('connect',()=>{clearTimeout(t);console.log(JSON.stringify({addrs:a,ok:true,ms:Number(process.hrtime.bigint()-t0)/1e6}));c.end();});c.on('error',(e)=>{clearTimeout(t);console.log(JSON.stringify({addrs:a,ok:false,why:e.code}));});},
(e)=>console.log(JSON.stringify({ok:false,why:'dns '+e.code})));`;
// Resolves an A record over TCP (RFC 1035 4.2.2, one query), then connects at once to its first
// address as RESOLVE_CONNECT does; prints the same JSON.
const RESOLVE_TCP = `const [name,server,timeout]=process.argv.slice(1);const q=Buffer.concat([Buffer.from([0x12,0x34,1,0,0,1,0,0,0,0,0,0]),...name.split('.').map((l)=>Buffer.concat([Buffer.from([l.length]),Buffer.from(l)])),Buffer.from([0,0,1,0,1])]);
const s=require('net').connect(53,server,()=>{const l=Buffer.alloc(2);l.writeUInt16BE(q.length);s.write(Buffer.concat([l,q]));});let b=Buffer.alloc(0);
s.on('data',(d)=>{b=Buffer.concat([b,d]);if(b.length<2||b.length<2+b.readUInt16BE(0))return;s.end();const m=b.subarray(2);let o=12;while(m[o])o+=1+m[o];o+=5;const a=[];
for(let i=0;i<m.readUInt16BE(6);i++){if((m[o]&0xc0)===0xc0)o+=2;else{while(m[o])o+=1+m[o];o++;}const t=m.readUInt16BE(o),n=m.readUInt16BE(o+8);if(t===1&&n===4)a.push([...m.subarray(o+10,o+14)].join('.'));o+=10+n;}
const t0=process.hrtime.bigint();const c=require('net').connect({port:80,host:a[0]});const t=setTimeout(()=>{console.log(JSON.stringify({addrs:a,ok:false,why:'timeout'}));process.exit(0)},+timeout);
c.on('connect',()=>{clearTimeout(t);console.log(JSON.stringify({addrs:a,ok:true,ms:Number(process.hrtime.bigint()-t0)/1e6}));c.end();});c.on('error',(e)=>{clearTimeout(t);console.log(JSON.stringify({addrs:a,ok:false,why:e.code}));});});
s.on('error',(e)=>console.log(JSON.stringify({ok:false,why:'dns '+e.code})));`;
const CONNECT = `const c=require('net').connect({port:80,host:process.argv[1]});const t=setTimeout(()=>{console.log('FAILED');process.exit(0)},+process.argv[2]);c.on('connect',()=>{console.log('CONNECTED');clearTimeout(t);c.end();});c.on('error',(e)=>{console.log('FAILED '+e.code);clearTimeout(t);});`;

const procs: ChildProcess[] = [];
let dir: string;
let sock: string;
let agent: LabAgent | undefined;

function background(ns: string, args: string[]): ChildProcess {
  const p = spawn('ip', ['netns', 'exec', ns, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  procs.push(p);
  return p;
}

const waitFor = <T>(what: string, f: () => Promise<T | undefined> | T | undefined, ms: number): Promise<T> =>
  labWaitFor(what, f, ms, () => `agent log:\n${(agent?.log() ?? '').slice(-3000)}`);

async function connect(ip: string, timeoutMs = 1500): Promise<boolean> {
  return (await inNs(CLIENT.ns, [process.execPath, '-e', CONNECT, ip, String(timeoutMs)], timeoutMs + 10_000)).includes('CONNECTED');
}

/** With `v6`: an AAAA query (to the DNS pod's IPv6 address unless `server` says), and a connection over IPv6. */
async function resolveConnect(name: string, timeoutMs = 1500, v6 = false, server = v6 ? `[${DNS.ip6}]:53` : DNS.ip): Promise<{ addrs?: string[]; ok: boolean; ms?: number; why?: string }> {
  const args = [process.execPath, '-e', RESOLVE_CONNECT, name, server, String(timeoutMs), v6 ? '6' : '4'];
  return JSON.parse(await inNs(CLIENT.ns, args, timeoutMs + 10_000)) as { ok: boolean };
}

interface JsonFlow {
  verdict?: string;
  drop_reason_desc?: string;
  IP?: { source?: string; destination?: string };
  l4?: { TCP?: { destination_port?: number; flags?: Record<string, boolean> } };
  egress_denied_by?: { name: string; namespace: string }[];
  egress_allowed_by?: { name: string }[];
}

async function flows(...filters: string[]): Promise<JsonFlow[]> {
  const r = await flowctl('--server', `unix://${sock}`, 'observe', '--last', '100000', '-o', 'json', ...filters);
  if (r.code !== 0) throw new Error(`flowctl observe exited ${r.code}: ${r.err}`);
  return r.out.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { flow: JsonFlow }).flow).filter(Boolean);
}

const synsTo = (fs: JsonFlow[], ip: string) => fs.filter((f) => f.IP?.destination === ip && f.l4?.TCP?.flags?.SYN && !f.l4.TCP.flags.ACK);
/** The SYNs from `from` to `to` with `verdict`, once the agent reports one (within 5 s). */
const synFlows = (verdict: string, from: string, to: string): Promise<JsonFlow[]> =>
  waitFor(`${verdict} SYN from ${from} to ${to}`, async () => {
    const fs = synsTo(await flows('--verdict', verdict, '--from-ip', from), to);
    return fs.length ? fs : undefined;
  }, 5000);

describe.skipIf(skipReason !== undefined)('toFQDNs on the real kernel', () => {
  beforeAll(async () => {
    buildLab(LAB);
    dir = mkdtempSync(join(tmpdir(), 'fcz-fqdn-e2e-'));
    sock = join(dir, 'agent.sock');
    const policyDir = join(dir, 'policies');
    mkdirSync(policyDir);
    writeFileSync(join(dir, 'endpoints.yaml'), ENDPOINTS);
    writeFileSync(join(policyDir, 'fqdn.yaml'), POLICY);
    for (const ip of [OTHER_IP, PATTERN_IP, WEB_IP, TCP_IP]) await inNs(WORLD.ns, ['ip', 'addr', 'add', `${ip}/24`, 'dev', 'eth0']);
    for (const ip of [OTHER6_IP, V4ASKED_IP]) await inNs(WORLD.ns, ['ip', 'addr', 'add', `${ip}/64`, 'dev', 'eth0', 'nodad']);
    const s = background(WORLD.ns, [process.execPath, '-e', SERVER]);
    await new Promise<void>((r) => s.stdout!.once('data', () => r()));
    background(DNS.ns, [
      'dnsmasq', '--keep-in-foreground', '--no-resolv', '--no-hosts', '--no-poll', `--pid-file=${join(dir, 'dnsmasq.pid')}`,
      `--listen-address=${DNS.ip}`, `--listen-address=${DNS.ip6}`, '--bind-interfaces', `--local-ttl=${TTL_S}`, '--log-queries', `--log-facility=${join(dir, 'dnsmasq.log')}`,
      `--address=/api.allowed.test/${API_IP}`, `--address=/other.test/${OTHER_IP}`,
      `--address=/api-v2.pattern.test/${PATTERN_IP}`, `--address=/web.pattern.test/${WEB_IP}`, `--address=/tcp.allowed.test/${TCP_IP}`,
      `--address=/v6.allowed.test/${API6_IP}`, `--address=/other6.test/${OTHER6_IP}`, `--address=/v4asked.allowed.test/${V4ASKED_IP}`,
    ]);
    await waitFor('dnsmasq', async () => ((await inNs(DNS.ns, ['ss', '-uln'])).includes(`${DNS.ip}:53`) ? true : undefined), 10_000);
    // The agent attaches to the endpoints only: not to the world's interface.
    agent = await startAgent({ ...LAB, pods: LAB.pods.slice(0, 2) }, ['--endpoints', join(dir, 'endpoints.yaml'), '--policy-dir', policyDir, '--metrics-address', '127.0.0.1:0', '--tofqdns-min-ttl', '0'], sock);
  }, 90_000);

  afterAll(async () => {
    await agent?.stop();
    for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
    cleanupLab(LAB);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('the allowed address is unreachable before the client resolved it; the drop names the policy', async () => {
    expect(await connect(API_IP)).toBe(false);
    const drops = await synFlows('DROPPED', CLIENT.ip, API_IP);
    expect(drops[0]!.drop_reason_desc).toBe('POLICY_DENIED');
    expect(drops[0]!.egress_denied_by?.map((p) => `${p.namespace}/${p.name}`)).toEqual(['fcz/allowed-test-egress']);
  });

  it('resolving api.allowed.test through dnsmasq lets the very first SYN through', async () => {
    const r = await resolveConnect('api.allowed.test');
    expect(r.addrs).toEqual([API_IP]);
    expect(r).toMatchObject({ ok: true });
    // No retransmission: a dropped SYN would cost at least the 1 s initial RTO.
    expect(r.ms!).toBeLessThan(200);
    expect(readFileSync(join(dir, 'dnsmasq.log'), 'utf8')).toMatch(new RegExp(`config api\\.allowed\\.test is ${API_IP.replace(/\./g, '\\.')}`));
    // The connection's SYN was forwarded, allowed by the policy; none was dropped after the answer.
    const fwd = await synFlows('FORWARDED', CLIENT.ip, API_IP);
    expect(fwd[0]!.egress_allowed_by?.map((p) => p.name)).toEqual(['allowed-test-egress']);
    expect(synsTo(await flows('--verdict', 'DROPPED', '--from-ip', CLIENT.ip), API_IP)).toHaveLength(1);
    // Learned per endpoint: flowctl policy check against the agent agrees, by name.
    let check = await flowctl('--server', `unix://${sock}`, 'policy', 'check', '--from-ip', CLIENT.ip, '--to-fqdn', 'api.allowed.test', '--to-ip', API_IP, '--port', '80');
    expect(check.code).toBe(0);
    expect(check.out).toContain('allowed by CiliumNetworkPolicy fcz/allowed-test-egress (toFQDNs *.allowed.test)');
    // ... and says what the pod really learned, asking the agent (resolved again: a fresh TTL).
    expect((await resolveConnect('api.allowed.test')).ok).toBe(true);
    check = await flowctl('--server', `unix://${sock}`, 'policy', 'check', '--from-ip', CLIENT.ip, '--to-fqdn', 'api.allowed.test', '--to-ip', API_IP, '--port', '80');
    expect(check.out).toMatch(new RegExp(`  learned on ${NODE_NS}: fcz/${CLIENT.name} \\(${CLIENT.ip}\\) resolved api\\.allowed\\.test to ${API_IP.replace(/\./g, '\\.')} \\(toFQDNs \\*\\.allowed\\.test; expires in [1-4]s\\)\n`));
    const json = await flowctl('--server', `unix://${sock}`, 'policy', 'check', '--from-ip', CLIENT.ip, '--to-fqdn', 'api.allowed.test', '--port', '80', '-o', 'json');
    expect(JSON.parse(json.out).learned).toMatchObject([{ name: 'api.allowed.test', addresses: [{ node: NODE_NS, endpoint_ip: CLIENT.ip, address: API_IP, selectors: ['*.allowed.test'] }] }]);
  });

  it('other.test resolves but stays unreachable; policy check agrees', async () => {
    const r = await resolveConnect('other.test');
    expect(r.addrs).toEqual([OTHER_IP]);
    expect(r.ok).toBe(false);
    const drops = await synFlows('DROPPED', CLIENT.ip, OTHER_IP);
    expect(drops[0]!.egress_denied_by?.map((p) => p.name)).toEqual(['allowed-test-egress']);
    const check = await flowctl('--server', `unix://${sock}`, 'policy', 'check', '--from-ip', CLIENT.ip, '--to-fqdn', 'other.test', '--to-ip', OTHER_IP, '--port', '80');
    expect(check.code).toBe(1);
    expect(check.out).toContain('selected by CiliumNetworkPolicy fcz/allowed-test-egress');
    expect(check.out).toContain(`  learned on ${NODE_NS}: fcz/${CLIENT.name} (${CLIENT.ip}) has not resolved other.test through a toFQDNs selector (or it expired)\n`);
  });

  it('a pattern with `*` inside a label: api-v2.pattern.test\'s first SYN passes, web.pattern.test is not reached', async () => {
    expect(await connect(PATTERN_IP)).toBe(false);
    const r = await resolveConnect('api-v2.pattern.test');
    expect(r.addrs).toEqual([PATTERN_IP]);
    expect(r).toMatchObject({ ok: true });
    expect(r.ms!).toBeLessThan(200); // no retransmission (1 s RTO)
    const w = await resolveConnect('web.pattern.test');
    expect(w.addrs).toEqual([WEB_IP]);
    expect(w.ok).toBe(false);
    const fwd = await synFlows('FORWARDED', CLIENT.ip, PATTERN_IP);
    expect(fwd[0]!.egress_allowed_by?.map((p) => p.name)).toEqual(['allowed-test-egress']);
    const check = await flowctl('--server', `unix://${sock}`, 'policy', 'check', '--from-ip', CLIENT.ip, '--to-fqdn', 'api-v2.pattern.test', '--to-ip', PATTERN_IP, '--port', '80');
    expect(check.code).toBe(0);
    expect(check.out).toContain('(toFQDNs api-*.pattern.test)');
    const denied = await flowctl('--server', `unix://${sock}`, 'policy', 'check', '--from-ip', CLIENT.ip, '--to-fqdn', 'web.pattern.test', '--to-ip', WEB_IP, '--port', '80');
    expect(denied.code).toBe(1);
  }, 30_000);

  it('an answer over TCP lets the very first SYN through too', async () => {
    expect(await connect(TCP_IP)).toBe(false);
    const r = JSON.parse(await inNs(CLIENT.ns, [process.execPath, '-e', RESOLVE_TCP, 'tcp.allowed.test', DNS.ip, '1500'], 10_000)) as { addrs?: string[]; ok: boolean; ms?: number };
    expect(r.addrs).toEqual([TCP_IP]);
    expect(r).toMatchObject({ ok: true });
    expect(r.ms!).toBeLessThan(200); // no retransmission (1 s RTO): learned as the answer passed
    expect(synsTo(await flows('--verdict', 'DROPPED', '--from-ip', CLIENT.ip), TCP_IP)).toHaveLength(1);
  }, 30_000);

  it('over IPv6: an AAAA answer lets the very first SYN to its address through; another name\'s stays unreachable', async () => {
    expect(await connect(API6_IP)).toBe(false);
    const r = await resolveConnect('v6.allowed.test', 1500, true);
    expect(r.addrs).toEqual([API6_IP]);
    expect(r).toMatchObject({ ok: true });
    expect(r.ms!).toBeLessThan(200); // no retransmission (1 s RTO)
    const o = await resolveConnect('other6.test', 1500, true);
    expect(o.addrs).toEqual([OTHER6_IP]);
    expect(o.ok).toBe(false);
    const fwd = await synFlows('FORWARDED', CLIENT.ip6, API6_IP);
    expect(fwd[0]!.egress_allowed_by?.map((p) => p.name)).toEqual(['allowed-test-egress']);
    // The one SYN dropped to it is the one before resolving.
    expect(synsTo(await flows('--verdict', 'DROPPED', '--from-ip', CLIENT.ip6), API6_IP)).toHaveLength(1);
    const drops = await synFlows('DROPPED', CLIENT.ip6, OTHER6_IP);
    expect(drops[0]!.egress_denied_by?.map((p) => p.name)).toEqual(['allowed-test-egress']);
    expect((await resolveConnect('v6.allowed.test', 1500, true)).ok).toBe(true);
    const check = await flowctl('--server', `unix://${sock}`, 'policy', 'check', '--from-ip', CLIENT.ip6, '--to-fqdn', 'v6.allowed.test', '--port', '80');
    expect(check.out).toContain(`  learned on ${NODE_NS}: fcz/${CLIENT.name} (${CLIENT.ip6}) resolved v6.allowed.test to ${API6_IP} (toFQDNs *.allowed.test;`);
  }, 30_000);

  it('a dual-stack pod asking its IPv4 resolver for AAAA reaches that IPv6 address with its first SYN', async () => {
    expect(await connect(V4ASKED_IP)).toBe(false);
    const r = await resolveConnect('v4asked.allowed.test', 1500, true, DNS.ip);
    expect(r.addrs).toEqual([V4ASKED_IP]);
    expect(r).toMatchObject({ ok: true });
    expect(r.ms!).toBeLessThan(200);
    const check = await flowctl('--server', `unix://${sock}`, 'policy', 'check', '--from-ip', CLIENT.ip6, '--to-fqdn', 'v4asked.allowed.test', '--port', '80');
    expect(check.out).toContain(`  learned on ${NODE_NS}: fcz/${CLIENT.name} (${CLIENT.ip6}) resolved v4asked.allowed.test to ${V4ASKED_IP} (toFQDNs *.allowed.test;`);
  }, 30_000);

  it('the address expires with its TTL: new connections are denied again', async () => {
    expect((await resolveConnect('api.allowed.test')).ok).toBe(true);
    expect(await connect(API_IP)).toBe(true);
    // TTL plus the agent's 1 s sweep.
    await new Promise((r) => setTimeout(r, (TTL_S + 2) * 1000));
    expect(await connect(API_IP)).toBe(false);
  }, 30_000);
});
