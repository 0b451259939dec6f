// DNS tunnel and blocklist alerts through the real path: the demo cluster's two nodes with agents
// and a relay, pods of our own (fcd-*): a real iodine tunnel (client on node-1, iodined on node-2,
// authoritative for t.tunnel.test) carrying 100 KB; lookups of names from a blocklist file of each
// format and connections to listed addresses; and a benign mix (hundreds of lookups of ordinary,
// CDN and service names through dnsmasq, HTTP between services, a client retrying a down service)
// that must raise nothing. Alerts are read back with `flowctl alerts` through the relay.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, DEMO, FLOWCTL, WORKLOAD } from './paths.js';

const run = promisify(execFile);
const RUN_DIR = '/run/flowctl-detect-dns-e2e';
const RELAY = '127.0.0.1:14251';
const PREFIX = 'fcd';
const NODE = process.execPath;

const IP = {
  tunnelClient: '10.10.1.80', tunnelServer: '10.10.2.80', benign: '10.10.1.81', resolver: '10.10.1.82', web: '10.10.2.85',
  lookup: '10.10.2.81', sinkholeA: '10.10.2.100', sinkholeB: '10.10.1.100', coredns: '10.10.1.53',
};
const pod = (name: string, ns: string, node: 1 | 2, ip: string, netns: string) => `${name}|${ns}|node-${node}|app=${name}|${ip}|lxc-${netns}|${PREFIX}-${netns}`;
const EXTRA_PODS = [
  pod('tunnel-client', 'default', 1, IP.tunnelClient, 'tunc'),
  pod('tunnel-server', 'default', 2, IP.tunnelServer, 'tuns'),
  pod('benign', 'shop', 1, IP.benign, 'benign'),
  pod('resolver', 'infra', 1, IP.resolver, 'resolver'),
  pod('web', 'shop', 2, IP.web, 'web'),
  pod('lookup', 'default', 2, IP.lookup, 'lookup'),
  pod('sinkhole-a', 'default', 2, IP.sinkholeA, 'sink-a'),
  pod('sinkhole-b', 'default', 1, IP.sinkholeB, 'sink-b'),
].join(';');

// One list per format, each naming something the lookup pod asks for or connects to.
const LISTS: Record<string, string> = {
  'hosts': '# hosts file\n127.0.0.1 localhost\n0.0.0.0 tracker.hosts-list.test ads.hosts-list.test\n',
  'domains.txt': '# one per line\n*.wild.domain-list.test\n',
  'urlhaus.csv': '# id,dateadded,url,url_status,last_online,threat,tags,urlhaus_link,reporter\n' +
    '"2718281","2026-12-01 10:00:00","http://payload.urlhaus-list.test:8080/bins/x86","online","2026-12-01 10:00:00","malware_download","elf","https://urlhaus.abuse.ch/url/2718281/","e2e"\n',
  'ips.txt': `; one address or CIDR per line\n${IP.sinkholeB}\n`,
  'drop.json': `{"cidr":"10.10.2.96/28","sblid":"SBL424242","rir":"ripencc"}\n{"type":"metadata","timestamp":1764000000,"size":1,"records":1}\n`,
};

interface AlertLine {
  alert: {
    id: string; kind: string; severity: string; summary: string; time: string; raised: string; updates: number; node: string; target: string;
    source: { ip: string; pod_name: string; namespace: string };
    destination: { ip: string; pod_name: string } | null;
    evidence: Record<string, any>;
  };
}

// Made in beforeAll (a crashed run's copy removed first), removed in afterAll.
const listDir = join(tmpdir(), 'fcd-detect-dns-lists');
const env = {
  ...process.env, FLOWCTL_DEMO_PREFIX: PREFIX, FLOWCTL_DEMO_DIR: RUN_DIR, FLOWCTL_DEMO_RELAY: RELAY, FLOWCTL_SERVER: RELAY,
  FLOWCTL_DEMO_NO_APPS: '1', FLOWCTL_DEMO_EXTRA_PODS: EXTRA_PODS,
  FLOWCTL_DEMO_BLOCKLISTS: Object.keys(LISTS).map((f) => join(listDir, f)).join(':'),
};

const inNs = (ns: string, cmd: string[], timeout = 120_000) => run('ip', ['netns', 'exec', `${PREFIX}-${ns}`, ...cmd], { timeout, maxBuffer: 64 << 20 });
const children: ChildProcess[] = [];
function background(ns: string, cmd: string[]): { proc: ChildProcess; out: () => string } {
  let out = '';
  const proc = spawn('ip', ['netns', 'exec', `${PREFIX}-${ns}`, ...cmd], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  children.push(proc);
  return { proc, out: () => out };
}

async function alerts(args: string[]): Promise<AlertLine[]> {
  const { stdout } = await run(FLOWCTL, ['alerts', '-o', 'json', ...args], { env, timeout: 30_000 });
  return stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as AlertLine);
}

async function eventually<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, ms: number): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

// Lookups with node's resolver (c-ares): one query per name and type, no search list.
const RESOLVE = `
const { Resolver } = require('dns').promises;
const [server, plan] = [process.argv[1], JSON.parse(process.argv[2])];
const r = new Resolver({ timeout: 2000, tries: 1 }); r.setServers([server]);
(async () => { let ok = 0, failed = 0;
  for (const [type, name] of plan) { try { await r.resolve(name, type); ok++; } catch { failed++; } }
  console.log(JSON.stringify({ ok, failed })); })();`;

const hex = (n: number, seed: number) => Array.from({ length: n }, (_, i) => ((seed * 7919 + i * 104729) % 16).toString(16)).join('');

const isRoot = process.getuid?.() === 0;
const built = existsSync(join(ROOT, 'packages', 'agent', 'dist', 'main.js'));
const tools = ['iodine', 'iodined', 'dnsmasq', 'curl'].every((t) => ['/usr/bin', '/usr/sbin', '/bin', '/sbin'].some((d) => existsSync(join(d, t))));

describe.skipIf(!isRoot)('DNS tunnel and blocklist alerts from real traffic, and none from a benign mix', () => {
  let dataStart = 0;
  let tunnelSeenAt = 0;

  beforeAll(async () => {
    if (!built) throw new Error('flowctl is not built: run `make build` first');
    if (!tools) throw new Error('iodine, dnsmasq and curl are needed (make deps installs them)');
    rmSync(listDir, { recursive: true, force: true });
    mkdirSync(listDir);
    for (const [f, text] of Object.entries(LISTS)) writeFileSync(join(listDir, f), text);
    await run(DEMO, ['up'], { env, timeout: 120_000 });

    // iodined on node-2, authoritative for t.tunnel.test; the client on node-1 sends its queries
    // straight to it (-r: DNS only, no raw UDP mode), as a resolver would forward them.
    const server = background('tuns', ['iodined', '-f', '-c', '-P', 'fcd-e2e-secret', '192.168.77.1/24', 't.tunnel.test']);
    await eventually('iodined listening', () => (/Listening to dns/i.test(server.out()) ? true : undefined), 20_000);
    const client = background('tunc', ['iodine', '-f', '-r', '-P', 'fcd-e2e-secret', IP.tunnelServer, 't.tunnel.test']);
    await eventually('the tunnel set up', () => (/Connection setup complete/.test(client.out()) ? true : undefined), 60_000)
      .catch((e: Error) => { throw new Error(`${e.message}\niodine: ${client.out()}\niodined: ${server.out()}`); });
    // 100 KB from the client through the tunnel to a listener on the server's tunnel address.
    const sink = background('tuns', [NODE, '-e', `let n=0;require('net').createServer((c)=>{c.on('data',(d)=>{n+=d.length});c.on('end',()=>{console.log('received '+n)})}).listen(9000,'192.168.77.1',()=>console.log('sink up'))`]);
    await eventually('the sink listening', () => (sink.out().includes('sink up') ? true : undefined), 10_000);
    dataStart = Date.now();
    await inNs('tunc', [NODE, '-e', `const c=require('net').connect(9000,'192.168.77.1',()=>c.end(require('crypto').randomBytes(102400)));c.on('error',(e)=>{console.error(e.message);process.exit(1)})`], 120_000);
    await eventually('100 KB through the tunnel', () => (sink.out().includes('received 102400') ? true : undefined), 120_000);
    await eventually('a dns-tunnel alert', async () => {
      const got = await alerts(['--kind', 'dns-tunnel']);
      if (got.some((a) => a.alert.source.ip === IP.tunnelClient)) tunnelSeenAt ||= Date.now();
      return tunnelSeenAt ? true : undefined;
    }, 60_000);
    process.stderr.write(`iodine: ${client.out().split('\n').filter((l) => /codec|fragment size|lazy/i.test(l)).join('; ')}\n`);

    // Lookups of listed names (one per list format) and connections to listed addresses.
    const listed = [['A', 'tracker.hosts-list.test'], ['A', 'c2.wild.domain-list.test'], ['A', 'payload.urlhaus-list.test']];
    await inNs('lookup', [NODE, '-e', RESOLVE, IP.coredns, JSON.stringify(listed)]);
    for (const ip of [IP.sinkholeA, IP.sinkholeB]) await inNs('lookup', ['curl', '-s', '--max-time', '1', `http://${ip}:8080/`]).catch(() => undefined);

    // The benign mix: a resolver of our own with CDN, service and ordinary names.
    background('resolver', ['dnsmasq', '--keep-in-foreground', '--no-daemon', '--no-resolv', '--no-hosts', `--listen-address=${IP.resolver}`,
      '--bind-interfaces', '--user=root', `--pid-file=${join(listDir, 'resolver.pid')}`, '--local=/#/',
      '--address=/cloudfront.net/10.10.2.91', '--address=/akamaiedge.net/10.10.2.92', '--address=/example.com/10.10.2.93',
      '--address=/github.com/10.10.2.94', '--address=/npmjs.org/10.10.2.95', '--host-record=dc1.corp.example,10.10.2.96',
      '--srv-host=_ldap._tcp.dc._msdcs.corp.example,dc1.corp.example,389', '--srv-host=_kerberos._tcp.dc._msdcs.corp.example,dc1.corp.example,88',
      '--srv-host=_ldap._tcp.default-first-site-name._sites.dc._msdcs.corp.example,dc1.corp.example,389',
      '--srv-host=_gc._tcp.corp.example,dc1.corp.example,3268', '--txt-record=corp.example,"v=spf1 mx -all"']);
    background('web', [NODE, WORKLOAD, 'server', '--port', '8080', '--name', 'web']);
    await eventually('web and resolver up', async () => {
      const r = await inNs('benign', [NODE, '-e', RESOLVE, IP.resolver, JSON.stringify([['A', 'www.example.com']])]).catch(() => undefined);
      const h = await inNs('benign', ['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '1', `http://${IP.web}:8080/healthz`]).catch(() => undefined);
      return r && JSON.parse(r.stdout).ok === 1 && h?.stdout === '200' ? true : undefined;
    }, 20_000);
    const ordinary = ['www.example.com', 'cdn.example.com', 'api.github.com', 'codeload.github.com', 'registry.npmjs.org', 'dc1.corp.example'];
    const cdn = Array.from({ length: 60 }, (_, i) => `d${hex(13, i + 1)}.cloudfront.net`);
    const akamai = Array.from({ length: 40 }, (_, i) => `e${1000 + i * 37}.dscb.akamaiedge.net`);
    const services = ['_ldap._tcp.dc._msdcs.corp.example', '_kerberos._tcp.dc._msdcs.corp.example', '_ldap._tcp.default-first-site-name._sites.dc._msdcs.corp.example', '_gc._tcp.corp.example'];
    const plan: [string, string][] = [];
    for (let round = 0; round < 2; round++) {
      for (const n of ordinary) plan.push(['A', n], ['AAAA', n]);
      for (const n of cdn) plan.push(['A', n]);
      for (const n of akamai) plan.push(['A', n]);
      for (const n of services) plan.push(['SRV', n]);
      plan.push(['TXT', 'corp.example']);
    }
    const benign = JSON.parse((await inNs('benign', [NODE, '-e', RESOLVE, IP.resolver, JSON.stringify(plan)])).stdout) as { ok: number; failed: number };
    expect(benign.ok, JSON.stringify(benign)).toBeGreaterThanOrEqual(plan.length - 30);
    // Kubernetes-style search-path misses at the cluster resolver.
    const misses = Array.from({ length: 30 }, (_, i) => `svc-${i}.payments`).flatMap((n) => [['A', `${n}.shop.svc.cluster.local`], ['A', `${n}.svc.cluster.local`], ['A', `${n}.cluster.local`]]);
    await inNs('benign', [NODE, '-e', RESOLVE, IP.coredns, JSON.stringify(misses)]);
    // HTTP between services, and a client retrying a service that is down (nothing on 9090).
    for (let i = 0; i < 30; i++) await inNs('benign', ['curl', '-s', '-o', '/dev/null', '--max-time', '2', `http://${IP.web}:8080/orders/${i}`]);
    for (let i = 0; i < 10; i++) {
      await inNs('benign', ['curl', '-s', '--max-time', '1', `http://${IP.web}:9090/orders`]).catch(() => undefined);
      await new Promise((r) => setTimeout(r, 300));
    }
    // Findings reach the store at once; give publishing and the relay a moment.
    await new Promise((r) => setTimeout(r, 3000));
  }, 420_000);

  afterAll(async () => {
    for (const c of children) if (c.pid) try { process.kill(-c.pid, 'SIGKILL'); } catch { /* gone */ }
    await run(DEMO, ['down'], { env, timeout: 60_000 }).catch((err: unknown) => process.stderr.write(`demo down failed: ${String(err)}\n`));
    rmSync(listDir, { recursive: true, force: true });
  }, 90_000);

  it('raises one dns-tunnel alert naming the iodine client within 60 s of the tunnel carrying data', async () => {
    const got = await alerts(['--kind', 'dns-tunnel', '--since', '10m']);
    expect(got, JSON.stringify(got)).toHaveLength(1);
    const a = got[0]!.alert;
    expect(a).toMatchObject({ kind: 'dns-tunnel', severity: 'high', node: 'node-1', target: 'tunnel.test',
      source: { ip: IP.tunnelClient, pod_name: 'tunnel-client', namespace: 'default' } });
    expect(a.evidence.distinct_names).toBeGreaterThanOrEqual(20);
    // Sizes from the packets: every iodine answer echoes its ~250-character question.
    expect(a.evidence.answer_message_bytes / a.evidence.queries).toBeGreaterThan(200);
    const latency = Math.max(0, Date.parse(a.raised) - dataStart);
    console.log(`dns-tunnel raised ${Date.parse(a.raised) - dataStart} ms after data started (seen by flowctl alerts after ${tunnelSeenAt - dataStart} ms); ${a.summary}`);
    expect(latency).toBeLessThan(60_000);
    expect(tunnelSeenAt - dataStart).toBeLessThan(60_000);
  });

  it('raises blocklisted-domain for a lookup of a name in each list format', async () => {
    const got = await alerts(['--kind', 'blocklisted-domain', '--since', '10m']);
    const byTarget = new Map(got.map((a) => [a.alert.target, a.alert]));
    for (const [name, format, entry] of [
      ['tracker.hosts-list.test', 'hosts', 'tracker.hosts-list.test'],
      ['c2.wild.domain-list.test', 'plain', '*.wild.domain-list.test'],
      ['payload.urlhaus-list.test', 'urlhaus-csv', 'payload.urlhaus-list.test'],
    ] as const) {
      const a = byTarget.get(name);
      expect(a, `${name}: ${JSON.stringify(got)}`).toBeDefined();
      expect(a).toMatchObject({ node: 'node-2', source: { ip: IP.lookup, pod_name: 'lookup' }, evidence: { format, entry, matched_in: 'query' } });
    }
    expect(got.filter((a) => a.alert.source.ip !== IP.lookup), JSON.stringify(got)).toEqual([]);
  });

  it('raises blocklisted-ip for connections to a listed address and a listed CIDR', async () => {
    const got = await alerts(['--kind', 'blocklisted-ip', '--since', '10m']);
    const byTarget = new Map(got.map((a) => [a.alert.target, a.alert]));
    expect(byTarget.get(IP.sinkholeB), JSON.stringify(got)).toMatchObject({ source: { pod_name: 'lookup' }, destination: { pod_name: 'sinkhole-b' },
      evidence: { format: 'plain', entry: `${IP.sinkholeB}/32`, direction: 'outbound', port: 8080 } });
    expect(byTarget.get(IP.sinkholeA), JSON.stringify(got)).toMatchObject({ source: { pod_name: 'lookup' }, destination: { pod_name: 'sinkhole-a' },
      evidence: { format: 'drop-json', entry: '10.10.2.96/28', ref: 'SBL424242' } });
    expect(got, JSON.stringify(got)).toHaveLength(2);
  });

  it('raises nothing about the benign mix: lookups, CDN and service names, HTTP, a retrying client', async () => {
    const all = await alerts(['--since', '10m']);
    // The cluster resolver answered the lookup pod's listed names too: it may be a destination, never a source.
    const quiet = new Set([IP.benign, IP.resolver, IP.web]);
    expect(all.filter((a) => quiet.has(a.alert.source.ip) || quiet.has(a.alert.destination?.ip ?? '') || a.alert.source.ip === IP.coredns), JSON.stringify(all)).toEqual([]);
    // Everything raised is about the tunnel client or the lookup pod.
    expect(all.filter((a) => a.alert.source.ip !== IP.tunnelClient && a.alert.source.ip !== IP.lookup), JSON.stringify(all)).toEqual([]);
  });
});
