// Isolating a pod on alert end to end on the real kernel: a node namespace running the real agent
// with `respond: isolate: [port-scan]`, a scanner pod, a web pod, a DNS pod (dnsmasq) and another
// client. The scanner's nmap raises a port-scan alert whose action isolates it: its TCP to the web
// pod is dropped (DROPPED, POLICY_DENY, the entry named) while its DNS over UDP and TCP still
// works; the other client is unaffected; `flowctl block list` shows the isolation and
// `flowctl block remove <pod>` ends it. A dual-stack scanner scanning over IPv6 is isolated on both
// its addresses. The isolation is the pod's: restored after an agent restart when the pod was
// deleted and a new pod took its addresses, the new pod is not isolated; the pod coming back is.
// Prefix fci-, subnets 10.210.0.0/16 and fd10:210::/64 (docs/design/contracts.md).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, flowctl as labFlowctl, bpfSkipReason, buildLab, cleanupLab, inNs, startAgent, waitFor as labWaitFor, type Lab, type LabAgent } from './lab.js';

const NODE_NS = 'fci-node';
const SCANNER = { ns: 'fci-scanner', hostIf: 'fci-h0', ip: '10.210.1.10', name: 'scanner-5c8d7-abcde' };
const WEB = { ns: 'fci-web', hostIf: 'fci-h1', ip: '10.210.1.20', ip6: 'fd10:210::20', name: 'web-6f9b8-fghij' };
const DNS = { ns: 'fci-dns', hostIf: 'fci-h2', ip: '10.210.1.53', ip6: 'fd10:210::53', name: 'dns-7a6c5-klmno' };
const OTHER = { ns: 'fci-other', hostIf: 'fci-h3', ip: '10.210.1.30', ip6: 'fd10:210::30', name: 'other-4d3e2-pqrst' };
const SCANNER6 = { ns: 'fci-scanner6', hostIf: 'fci-h4', ip: '10.210.1.40', ip6: 'fd10:210::40', name: 'scanner6-8b7a6-uvwxy' };
/** The pod created after scanner6 was deleted, given its addresses (same netns and veth). */
const REUSER = { ...SCANNER6, name: 'reuser-2c1d0-zabcd' };
type Pod = { ns: string; hostIf: string; ip: string; ip6?: string; name: string };
const PODS: Pod[] = [SCANNER, WEB, DNS, OTHER, SCANNER6];

const LAB: Lab = {
  prefix: 'fci-',
  node: NODE_NS,
  bridge: 'fci-br0',
  gateway: '10.210.1.1',
  gateway6: 'fd10:210::1',
  pods: PODS.map((p) => ({ netns: p.ns, hostIf: p.hostIf, ip: p.ip, ...(p.ip6 && { ip6: p.ip6 }) })),
};

const endpoints = (pods: Pod[]) =>
  `endpoints:\n${pods.map((p) => `  - { name: ${p.name}, namespace: fci, node: ${NODE_NS}, labels: { app: ${p.name.split('-')[0]} }, ips: [${[p.ip, p.ip6].filter(Boolean).join(', ')}], interface: ${p.hostIf}, netns: ${p.ns} }\n`).join('')}`;
const SERVER = `require('http').createServer((q,s)=>s.end('ok\\n')).listen(80,'::',()=>console.log('up'));`;

const skipReason = await bpfSkipReason('test/policy/isolate.e2e.bpf.test.ts');

const procs: ChildProcess[] = [];
let dir: string;
let sock: string;
let agent: LabAgent | undefined;

const waitFor = <T>(what: string, f: () => Promise<T | undefined> | T | undefined, ms: number): Promise<T> =>
  labWaitFor(what, f, ms, () => `agent log:\n${(agent?.log() ?? '').slice(-3000)}`);

function reaches(from: { ns: string }, to: { ip: string } = WEB, v6 = false): boolean {
  const host = v6 ? `[${(to as Pod).ip6}]` : to.ip;
  return spawnSync('ip', ['netns', 'exec', from.ns, 'curl', '-g', '-s', '-o', '/dev/null', '--max-time', '1', `http://${host}/`]).status === 0;
}

// One A query for web.fci.test to the DNS server over UDP or TCP; prints the first answer's address
// or nothing (no answer within 1 s).
const QUERY = `const [server,tcp]=process.argv.slice(1);const name=Buffer.concat(['web','fci','test'].map((l)=>Buffer.concat([Buffer.from([l.length]),Buffer.from(l)])));
const q=Buffer.concat([Buffer.from([0x12,0x34,1,0,0,1,0,0,0,0,0,0]),name,Buffer.from([0,0,1,0,1])]);
const done=(m)=>{const a=m.subarray(m.length-4);console.log(m.readUInt16BE(6)?a.join('.'):'');process.exit(0)};setTimeout(()=>process.exit(0),1000);
if(tcp==='1'){const c=require('net').connect(53,server,()=>{const l=Buffer.alloc(2);l.writeUInt16BE(q.length);c.write(Buffer.concat([l,q]))});let b=Buffer.alloc(0);
c.on('data',(d)=>{b=Buffer.concat([b,d]);if(b.length>=2&&b.length>=2+b.readUInt16BE(0))done(b.subarray(2))});c.on('error',()=>process.exit(0));}
else{const s=require('dgram').createSocket(server.includes(':')?'udp6':'udp4');s.on('message',done);s.send(q,53,server);}`;

/** The address the DNS pod answered for web.fci.test over UDP or TCP, asked over IPv4 or IPv6 ('' when none). */
function resolves(from: { ns: string }, tcp: boolean, v6 = false): string {
  return spawnSync('ip', ['netns', 'exec', from.ns, process.execPath, '-e', QUERY, v6 ? DNS.ip6 : DNS.ip, tcp ? '1' : '0'], { encoding: 'utf8' }).stdout.trim();
}

/** Sends `n` UDP datagrams of 100 bytes to the web pod's port 9999 (at its IPv4 or IPv6 address);
 * returns how many left the pod, counted by nftables in its namespace. */
function sent(from: { ns: string }, n: number, v6 = false): number {
  const to = v6 ? WEB.ip6 : WEB.ip;
  const inPod = (args: string[], input?: string) => spawnSync('ip', ['netns', 'exec', from.ns, ...args], { encoding: 'utf8', ...(input && { input }) });
  inPod(['nft', '-f', '-'], `table inet fci_count {\n counter out { }\n chain o {\n type filter hook output priority 0;\n ${v6 ? 'ip6' : 'ip'} daddr ${to} udp dport 9999 counter name "out"\n }\n}\n`);
  try {
    inPod([process.execPath, '-e', `const s=require('dgram').createSocket('${v6 ? 'udp6' : 'udp4'}');let i=0;const f=()=>i++<${n}?s.send(Buffer.alloc(100),9999,'${to}',f):s.close();f();`]);
    const listed = JSON.parse(inPod(['nft', '-j', 'list', 'counter', 'inet', 'fci_count', 'out']).stdout) as { nftables: { counter?: { packets: number } }[] };
    return listed.nftables.find((o) => o.counter)?.counter?.packets ?? -1;
  } finally {
    inPod(['nft', 'delete', 'table', 'inet', 'fci_count']);
  }
}

const flowctl = (...args: string[]) => labFlowctl('--server', `unix://${sock}`, ...args);

const jsonLines = <T>(out: string): T[] => out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as T);

/** nmap's SYN scan of the web pod (over IPv6 with `v6`) from `from`; the port-scan alert it raises. */
async function scanAlert(from: Pod, v6 = false): Promise<{ action?: string }> {
  const scan = spawnSync('ip', ['netns', 'exec', from.ns, 'nmap', ...(v6 ? ['-6'] : []), '-sS', '-Pn', '-n', '-T4', '--max-retries', '0', '--max-rtt-timeout', '200ms', '-p', '1-200', v6 ? WEB.ip6 : WEB.ip], { encoding: 'utf8' });
  expect(scan.status, scan.stderr).toBe(0);
  const source = v6 ? from.ip6 : from.ip;
  return waitFor(`the port-scan alert of ${source}`, async () => {
    const as = jsonLines<{ alert?: { kind?: string; action?: string; source?: { ip?: string } } }>((await flowctl('alerts', '-o', 'json')).out).map((l) => l.alert);
    return as.find((a) => a?.kind === 'port-scan' && a.source?.ip === source);
  }, 10_000);
}

/** The (one) drop-list entry's counters. */
const entry = async () => jsonLines<{ dropped_packets: number; dropped_bytes: number }>((await flowctl('block', 'list', '-o', 'json')).out)[0]!;

interface JsonFlow {
  verdict?: string;
  drop_reason_desc?: string;
  IP?: { source?: string; destination?: string };
  l4?: { TCP?: { destination_port?: number } };
  extensions?: { value?: { block?: { cidr?: string; reason?: string } } };
}

describe.skipIf(skipReason !== undefined)('respond: isolate on the real kernel', () => {
  beforeAll(async () => {
    buildLab(LAB);
    dir = mkdtempSync(join(tmpdir(), 'fci-isolate-e2e-'));
    sock = join(dir, 'agent.sock');
    writeFileSync(join(dir, 'endpoints.yaml'), endpoints(PODS));
    writeFileSync(join(dir, 'detect.yaml'), `respond:\n  isolate: [port-scan]\n  never-block: [${DNS.ip}, ${DNS.ip6}]\n`);
    for (const pod of [WEB, SCANNER, SCANNER6]) {
      const s = spawn('ip', ['netns', 'exec', pod.ns, process.execPath, '-e', SERVER], { stdio: ['ignore', 'pipe', 'pipe'] });
      procs.push(s);
      await new Promise<void>((r) => s.stdout!.once('data', () => r()));
    }
    procs.push(spawn('ip', ['netns', 'exec', DNS.ns,
      'dnsmasq', '--keep-in-foreground', '--no-resolv', '--no-hosts', '--no-poll', `--pid-file=${join(dir, 'dnsmasq.pid')}`,
      `--listen-address=${DNS.ip}`, `--listen-address=${DNS.ip6}`, '--bind-interfaces', `--address=/web.fci.test/${WEB.ip}`,
    ], { stdio: 'ignore' }));
    await waitFor('dnsmasq', async () => ((await inNs(DNS.ns, ['ss', '-tln'])).includes(`${DNS.ip}:53`) ? true : undefined), 10_000);
    await waitFor('dnsmasq on IPv6', async () => ((await inNs(DNS.ns, ['ss', '-tln'])).includes(`[${DNS.ip6}]:53`) ? true : undefined), 10_000);
    agent = await start();
  }, 90_000);

  const start = () => startAgent(LAB, ['--endpoints', join(dir, 'endpoints.yaml'), '--detect-config', join(dir, 'detect.yaml'), '--state-dir', join(dir, 'state'), '--metrics-address', '127.0.0.1:0'], sock);

  afterAll(async () => {
    await agent?.stop();
    for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
    cleanupLab(LAB);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('a port scan isolates the scanner: its TCP is dropped, its DNS works, others are unaffected; block remove ends it', async () => {
    expect(reaches(SCANNER)).toBe(true);
    expect(resolves(SCANNER, false)).toBe(WEB.ip);
    expect(reaches(OTHER, SCANNER)).toBe(true);
    const alert = await scanAlert(SCANNER);
    expect(alert.action).toBe(`isolate fci/${SCANNER.name} (${SCANNER.ip}) until removed`);

    const list = await flowctl('block', 'list', '-o', 'json');
    expect(jsonLines(list.out)).toMatchObject([{ cidr: `${SCANNER.ip}/32`, isolated_pod: `fci/${SCANNER.name}`, origin: 'alert:port-scan', nodes: [NODE_NS] }]);
    expect((await flowctl('block', 'list')).out).toContain(`isolate fci/${SCANNER.name}`);

    expect(reaches(SCANNER)).toBe(false);
    expect(resolves(SCANNER, false)).toBe(WEB.ip);
    expect(resolves(SCANNER, true)).toBe(WEB.ip);
    expect(reaches(OTHER)).toBe(true);
    // Connections others open to the isolated pod are not its egress.
    expect(reaches(OTHER, SCANNER)).toBe(true);

    // Every packet the isolation drops is counted on its entry: 20 datagrams of 100 bytes (142 on
    // the wire with Ethernet, IPv4 and UDP headers), as the scanner's own nft counter saw them leave.
    const before = await entry();
    expect(before.dropped_packets).toBeGreaterThan(0); // the connection attempts above
    expect(sent(SCANNER, 20)).toBe(20);
    const after = await entry();
    expect(after.dropped_packets - before.dropped_packets).toBe(20);
    expect(after.dropped_bytes - before.dropped_bytes).toBe(20 * 142);
    expect((await flowctl('block', 'list')).out).toMatch(new RegExp(`isolate fci/${SCANNER.name} +never +${after.dropped_packets.toLocaleString('en-US')} `));

    const drop = await waitFor('the DROPPED flow of the scanner to port 80', async () => {
      const r = await flowctl('observe', '--last', '100000', '-o', 'json', '--verdict', 'DROPPED', '--from-ip', SCANNER.ip);
      return jsonLines<{ flow?: JsonFlow }>(r.out).map((l) => l.flow).find((f) => f?.l4?.TCP?.destination_port === 80);
    }, 5000);
    expect(drop).toMatchObject({ drop_reason_desc: 'POLICY_DENY', IP: { source: SCANNER.ip, destination: WEB.ip }, extensions: { value: { block: { cidr: `${SCANNER.ip}/32` } } } });
    expect(drop.extensions!.value!.block!.reason).toMatch(new RegExp(`^isolated fci/${SCANNER.name}: .*scanned \\d+ ports`));

    const rm = await flowctl('block', 'remove', `fci/${SCANNER.name}`);
    expect(rm.code, rm.err).toBe(0);
    expect(rm.out).toBe(`ended the isolation of fci/${SCANNER.name} (${SCANNER.ip}/32) on ${NODE_NS}\n`);
    expect(reaches(SCANNER)).toBe(true);
    expect(jsonLines((await flowctl('block', 'list', '-o', 'json')).out)).toEqual([]);
  }, 60_000);

  it('a scan over IPv6 isolates a dual-stack pod on both its addresses; its DNS over IPv6 still works', async () => {
    expect(reaches(SCANNER6, WEB, true)).toBe(true);
    expect(resolves(SCANNER6, false, true)).toBe(WEB.ip);
    const alert = await scanAlert(SCANNER6, true);
    expect(alert.action).toBe(`isolate fci/${SCANNER6.name} (${SCANNER6.ip6}) until removed`);
    expect(jsonLines((await flowctl('block', 'list', '-o', 'json')).out)).toMatchObject([
      { cidr: `${SCANNER6.ip6}/128`, isolated_pod: `fci/${SCANNER6.name}`, isolated_addresses: [SCANNER6.ip, SCANNER6.ip6] },
    ]);

    expect(reaches(SCANNER6, WEB, true)).toBe(false);
    expect(reaches(SCANNER6, WEB)).toBe(false); // the pod, not the address the alert named
    expect(resolves(SCANNER6, false, true)).toBe(WEB.ip);
    expect(resolves(SCANNER6, true, true)).toBe(WEB.ip);
    expect(reaches(OTHER, WEB, true)).toBe(true);
    expect(reaches(OTHER, SCANNER6, true)).toBe(true);

    // 20 datagrams over IPv6: 162 bytes each on the wire (Ethernet, IPv6, UDP, 100 of payload).
    const before = await entry();
    expect(sent(SCANNER6, 20, true)).toBe(20);
    const after = await entry();
    expect(after.dropped_packets - before.dropped_packets).toBe(20);
    expect(after.dropped_bytes - before.dropped_bytes).toBe(20 * 162);

    const drop = await waitFor('the DROPPED IPv6 flow of the scanner to port 80', async () => {
      const r = await flowctl('observe', '--last', '100000', '-o', 'json', '--verdict', 'DROPPED', '--from-ip', SCANNER6.ip6);
      return jsonLines<{ flow?: JsonFlow }>(r.out).map((l) => l.flow).find((f) => f?.l4?.TCP?.destination_port === 80);
    }, 5000);
    expect(drop).toMatchObject({ drop_reason_desc: 'POLICY_DENY', IP: { source: SCANNER6.ip6, destination: WEB.ip6 }, extensions: { value: { block: { cidr: `${SCANNER6.ip6}/128` } } } });
  }, 60_000);

  it('an isolation restored after a restart stays with its pod: a new pod at its addresses is not isolated, the pod back is', async () => {
    // scanner6 is isolated (above). The agent stops; the pod is deleted and a new one takes its addresses.
    await agent!.stop();
    writeFileSync(join(dir, 'endpoints.yaml'), endpoints([...PODS.filter((p) => p !== SCANNER6), REUSER]));
    agent = await start();
    expect(agent.log()).toContain('drop list: restored 1 entry');
    expect(reaches(REUSER, WEB)).toBe(true);
    expect(reaches(REUSER, WEB, true)).toBe(true);
    expect(jsonLines((await flowctl('block', 'list', '-o', 'json')).out)).toMatchObject([{ isolated_pod: `fci/${SCANNER6.name}`, isolated_addresses: [] }]);
    expect((await flowctl('block', 'list')).out).toContain(`isolate fci/${SCANNER6.name} (pod gone)`);

    // The pod comes back under its name (the endpoints file reloaded live): isolated again.
    writeFileSync(join(dir, 'endpoints.yaml'), endpoints(PODS));
    await waitFor('the isolation back on the pod', () => (reaches(SCANNER6, WEB) ? undefined : true), 10_000);
    expect(reaches(SCANNER6, WEB, true)).toBe(false);
    const rm = await flowctl('block', 'remove', `fci/${SCANNER6.name}`);
    expect(rm.code, rm.err).toBe(0);
    expect(reaches(SCANNER6, WEB, true)).toBe(true);
  }, 60_000);
});
