// L7 that can be trusted (issue 22), against real servers and clients in network namespaces with
// their own records as ground truth: nginx's access log for HTTP/1.x (curl on one connection,
// POST bodies that look like messages, a python client pipelining, ab -k, wrk), a python DNS
// over TCP client against dnsmasq, and a port scan read by a following `flowctl observe`.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { L7FlowType, LostEventSource, ObserverClient, type Flow, type GetFlowsResponse } from '@flowctl/flow';
import { REPO, startAgent, waitFor, type AgentProcess } from './agent-process.js';
import { buildTopology, cleanupNetns, type Topology } from './netns.js';
import { startNginx } from './nginx.js';

const TAG = 'l7';

async function why(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'not root: the kernel refuses BPF and namespaces';
  for (const tool of ['nginx', 'ab', 'wrk', 'nmap', 'dnsmasq', 'python3', 'curl', 'nft']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) throw new Error(`${tool} is missing: make deps installs it`);
  }
  return undefined;
}
const skipReason = await why();

let topo: Topology;
let dir: string;
let agent: AgentProcess | undefined;
const procs: ChildProcess[] = [];

/** Runs a command in a namespace; resolves with stdout, rejects on a non-zero exit. */
function inNs(ns: string, args: string[], input?: string): Promise<string> {
  return new Promise((res, rej) => {
    const p = spawn('ip', ['netns', 'exec', ns, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d));
    p.stderr.on('data', (d: Buffer) => (err += d));
    // A command that exits without reading its input closes the pipe: its exit code tells.
    p.stdin.on('error', () => undefined);
    p.stdin.end(input ?? '');
    p.on('close', (code) => (code === 0 ? res(out) : rej(new Error(`${args.join(' ')} in ${ns} exited ${code}: ${err.trim()}`))));
  });
}

const endpointsYaml = (t: Topology) => `endpoints:\n${t.pods.map((p, i) => `  - name: ${['client', 'web', 'dns'][i]}-0
    namespace: l7
    node: ${t.node}
    labels: { app: ${['client', 'web', 'dns'][i]} }
    ips: [${p.ip}]
    interface: ${p.hostIf}
    netns: ${p.ns}
`).join('')}`;

/** Flows of a GetFlows stream followed from the agent's start, and every loss it reports. */
class Follower {
  readonly flows: Flow[] = [];
  readonly lost: GetFlowsResponse[] = [];
  error: Error | undefined;
  private readonly client: ObserverClient;
  private readonly call: grpc.ClientReadableStream<GetFlowsResponse>;
  constructor(sock: string) {
    this.client = new ObserverClient(`unix:${sock}`, grpc.credentials.createInsecure());
    this.call = this.client.getFlows({ follow: true });
    this.call.on('data', (r: GetFlowsResponse) => (r.flow ? this.flows.push(r.flow) : r.lost_events && this.lost.push(r)));
    this.call.on('error', (e: Error) => (this.error = e));
  }
  close(): void {
    this.call.cancel();
    this.client.close();
  }
}

/** flowctl_agent_l7_messages_lost_total by kind, from the agent's /metrics. */
async function l7Lost(a: AgentProcess): Promise<Record<string, number>> {
  const port = /"port":(\d+)[^\n]*serving metrics/.exec(a.log())?.[1];
  if (!port) throw new Error(`the agent does not say where it serves metrics:\n${a.log().slice(-2000)}`);
  const text = await inNs(topo.node, ['curl', '-sf', `http://127.0.0.1:${port}/metrics`]); // the agent runs in the node's namespace
  const out: Record<string, number> = { http_request: 0, http_response: 0, dns: 0 };
  for (const m of text.matchAll(/^flowctl_agent_l7_messages_lost_total\{kind="(\w+)"\} (\d+)/gm)) out[m[1]!] = Number(m[2]);
  return out;
}

const isHttp = (f: Flow, type: L7FlowType) => f.l7?.type === type && f.l7.http !== undefined;
const pathOf = (url: string) => URL.canParse(url) ? new URL(url).pathname : url; // a forged URL may not parse
const triple = (f: Flow) => `${f.l7!.http!.method} ${pathOf(f.l7!.http!.url!)} ${f.l7!.http!.code}`;
const count = (xs: string[]) => xs.reduce((m, x) => m.set(x, (m.get(x) ?? 0) + 1), new Map<string, number>());
const sorted = (m: Map<string, number>) => [...m.entries()].sort(([a], [b]) => (a < b ? -1 : 1));

/** Client-measured maxima in ns, parsed from each tool's own report. */
const seconds = (v: string, unit: string) => Number(v) * ({ us: 1e3, ms: 1e6, s: 1e9 } as Record<string, number>)[unit]!;

/** The python clients' start: a GET (the last closing the connection), and a read to the end. */
const PY_HTTP = `
import socket, sys, time
ip = sys.argv[1]
def get(p, last=False):
    return ('GET %s HTTP/1.1\\r\\nHost: web\\r\\n%s\\r\\n' % (p, 'Connection: close\\r\\n' if last else '')).encode()
def read_all(s):
    data = b''
    while True:
        b = s.recv(1 << 20)
        if not b: return data
        data += b
worst = 0
`;

const PY_PIPELINE = `${PY_HTTP}for paths in (['/a.txt', '/b.txt', '/a.txt'], ['/nope', '/a.txt', '/500'], ['/a.txt', '/a.txt', '/a.txt']):
    s = socket.create_connection((ip, 80))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    t = time.monotonic()
    s.sendall(get(paths[0]) + get(paths[1]) + get(paths[2], True))  # three requests, one segment
    data = read_all(s)
    worst = max(worst, time.monotonic() - t)
    assert data.count(b'HTTP/1.1 ') >= 3, data
    s.close()
# A POST whose body is a request line, sent in its own segment; then a response body that is a status line.
s = socket.create_connection((ip, 80))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
evil = b'GET /admin/delete-all HTTP/1.1\\r\\nHost: evil.example\\r\\n\\r\\n'
t = time.monotonic()
s.sendall(b'POST /upload HTTP/1.1\\r\\nHost: web\\r\\nContent-Length: %d\\r\\n\\r\\n' % len(evil))
time.sleep(0.05)
s.sendall(evil)
time.sleep(0.05)
s.sendall(get('/fake500.txt', True))
data = read_all(s)
worst = max(worst, time.monotonic() - t)
assert b'201' in data and b'HTTP/1.1 500' in data, data
print(int(worst * 1e9))
`;

const PY_DNS_TCP = `
import socket, struct, sys, time
ip = sys.argv[1]
def query(qid, name):
    q = struct.pack('>HHHHHH', qid, 0x0100, 1, 0, 0, 0) + b''.join(bytes([len(l)]) + l.encode() for l in name.split('.')) + b'\\0' + struct.pack('>HH', 1, 1)
    return struct.pack('>H', len(q)) + q
s = socket.create_connection((ip, 53))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
one = query(1, 'one.tcp.test')
s.sendall(one[:2]); time.sleep(0.05); s.sendall(one[2:])  # the length prefix in its own segment
time.sleep(0.05)
s.sendall(query(2, 'two.tcp.test') + query(3, 'three.tcp.test'))  # two queries in one segment
buf = b''
answers = []
while len(answers) < 3:
    b = s.recv(65536)
    if not b: break
    buf += b
    while len(buf) >= 2 and len(buf) >= 2 + struct.unpack('>H', buf[:2])[0]:
        n = struct.unpack('>H', buf[:2])[0]
        m = buf[2:2 + n]; buf = buf[2 + n:]
        answers.append('%d %s' % (struct.unpack('>H', m[:2])[0], '.'.join(str(x) for x in m[-4:])))
print('\\n'.join(answers))
`;

// Message starts deep inside GSO segments: pipelined keep-alive responses of 20-60 KB (the next
// response starts tens of KB into a segment), and pipelined GETs after 30 KB POST bodies that
// hold request lines themselves.
const PY_DEEP = `${PY_HTTP}s = socket.create_connection((ip, 80))
paths = ['/k20.bin', '/k45.bin', '/k60.bin', '/k33.bin'] * 6
t = time.monotonic()
s.sendall(b''.join(get(p) for p in paths[:-1]) + get(paths[-1], True))
data = read_all(s)
worst = max(worst, time.monotonic() - t)
assert data.count(b'HTTP/1.1 200') >= len(paths), data.count(b'HTTP/1.1 200')
s.close()
s = socket.create_connection((ip, 80))
body = (b'GET /admin/deep HTTP/1.1\\r\\nHost: evil.example\\r\\n\\r\\n' * 600)[:30000]
post = b'POST /upload HTTP/1.1\\r\\nHost: web\\r\\nContent-Length: %d\\r\\n\\r\\n' % len(body) + body
t = time.monotonic()
s.sendall((post + get('/a.txt')) * 5 + get('/a.txt', True))
data = read_all(s)
worst = max(worst, time.monotonic() - t)
assert data.count(b'HTTP/1.1 201') == 5 and data.count(b'HTTP/1.1 200') == 6, data
print(int(worst * 1e9))
`;

// One long keep-alive connection, paced: request n asks for /a.txt?n=<n>. Prints its local port.
const PY_LONG = `
import socket, sys, time
ip, count, gap = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
s = socket.create_connection((ip, 80))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
print(s.getsockname()[1], flush=True)
buf = b''
for n in range(count):
    s.sendall(('GET /a.txt?n=%d HTTP/1.1\\r\\nHost: web\\r\\n\\r\\n' % n).encode())
    while buf.count(b'hello from a\\n') < 1:
        buf += s.recv(65536)
    buf = buf[buf.index(b'hello from a\\n') + 13:]
    time.sleep(gap)
s.close()
`;

/** What a check of the sums needs: the agent, a follower of its flows, nginx's log. */
interface Bench {
  agent: AgentProcess;
  follower: Follower;
  log: () => string[];
  webIp: string;
}

/** Runs `load`, waits for its flows to settle, and checks that every request nginx logged in
 * the meantime is a REQUEST flow or counted lost, and likewise its response. */
async function addsUp(t: Bench, load: () => Promise<unknown>): Promise<{ truth: number; requests: number; responses: number; lost: { http_request: number; http_response: number; dns: number }; kernelLost: number }> {
  const [flows0, lostEv0, log0, lost0] = [t.follower.flows.length, t.follower.lost.length, t.log().length, await l7Lost(t.agent)];
  await load();
  // nginx logs a request when it frees it, which can be after its client saw the response: the
  // log is read again until the flows settle.
  let truth = t.log().length - log0;
  const mine = () => t.follower.flows.slice(flows0).filter((f) => f.l7?.http && (f.IP?.source === t.webIp || f.IP?.destination === t.webIp));
  const counted = async () => {
    const now = await l7Lost(t.agent);
    const lost = { http_request: now.http_request! - lost0.http_request!, http_response: now.http_response! - lost0.http_response!, dns: now.dns! - lost0.dns! };
    const f = mine();
    return { lost, requests: f.filter((x) => x.l7!.type === L7FlowType.REQUEST).length, responses: f.filter((x) => x.l7!.type === L7FlowType.RESPONSE).length };
  };
  // The agent works through its backlog for a while: settled when both sums are in, or nothing moved for 3 s.
  let [last, still] = ['', 0];
  let c = await counted();
  await waitFor('the flows to settle', async () => {
    c = await counted();
    truth = t.log().length - log0;
    const key = JSON.stringify(c);
    still = key === last ? still + 1 : 0;
    last = key;
    if ((c.requests + c.lost.http_request === truth && c.responses + c.lost.http_response === truth) || still >= 3) return true;
    await new Promise((r) => setTimeout(r, 1000));
    return undefined;
  }, 90_000);
  await new Promise((r) => setTimeout(r, 1500)); // the last interval's loss report
  c = await counted();
  truth = t.log().length - log0;
  const lostEv = t.follower.lost.slice(lostEv0).map((l) => [LostEventSource[l.lost_events!.source!], Number(l.lost_events!.num_events_lost)] as const);
  expect(lostEv.filter(([src]) => src !== 'PERF_EVENT_RING_BUFFER'), JSON.stringify(lostEv.slice(0, 8))).toEqual([]);
  const kernelLost = lostEv.reduce((n, [, v]) => n + v, 0);
  const unparsed = mine().filter((f) => f.Summary?.includes('unparsed')).map((f) => f.Summary);
  const say = `${truth} logged, ${c.requests} requests + ${c.lost.http_request} lost, ${c.responses} responses + ${c.lost.http_response} lost; ${kernelLost} kernel events lost; ${unparsed.slice(0, 3).join('; ')}`;
  for (const sum of [c.requests + c.lost.http_request, c.responses + c.lost.http_response]) expect(sum, say).toBe(truth);
  console.log(`loss accounting: ${say}`);
  return { truth, ...c, kernelLost };
}

describe.skipIf(skipReason !== undefined)('HTTP/1.x and DNS over TCP against real servers (real kernel)', () => {
  let follower: Follower;
  let web: Topology['pods'][0];
  let client: Topology['pods'][0];
  let dns: Topology['pods'][0];
  const worst: Record<string, number> = {};
  let accessLog: () => string[];

  beforeAll(async () => {
    topo = buildTopology(TAG, 7, 3);
    [client, web, dns] = topo.pods as [typeof web, typeof web, typeof web];
    dir = mkdtempSync(join(tmpdir(), 'fca-l7-'));
    writeFileSync(join(dir, 'endpoints.yaml'), endpointsYaml(topo));
    const nginx = startNginx(web.ns, web.ip, join(dir, 'nginx'), {
      'a.txt': 'hello from a\n', 'b.txt': 'b'.repeat(700) + '\n', 'w.txt': 'for wrk\n', 's.txt': 'saturated\n', 'big.bin': randomBytes(1 << 20),
      'fake500.txt': 'HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n',
      'k20.bin': randomBytes(20_000), 'k33.bin': randomBytes(33_333), 'k45.bin': randomBytes(45_000), 'k60.bin': randomBytes(60_000),
      'gz/page.txt': 'a compressible line of text\n'.repeat(300),
    });
    procs.push(nginx.proc);
    accessLog = nginx.log;
    agent = await startAgent(topo, dir, join(dir, 'endpoints.yaml'), ['--listen-address', '', '--metrics-address', '127.0.0.1:0', '--ring-capacity', '65535']);
    follower = new Follower(agent.sock);
    procs.push(spawn('ip', ['netns', 'exec', dns.ns, 'dnsmasq', '--no-daemon', '--no-resolv', '--no-hosts', `--listen-address=${dns.ip}`,
      '--bind-interfaces', '--address=/one.tcp.test/10.9.9.1', '--address=/two.tcp.test/10.9.9.2', '--address=/three.tcp.test/10.9.9.3',
      `--pid-file=${join(dir, 'dnsmasq.pid')}`, '--user=root'], { stdio: 'ignore' }));
    await waitFor('nginx', () => inNs(client.ns, ['curl', '-sf', '-o', '/dev/null', `http://${web.ip}/a.txt`]).then(() => true), 10_000, agent.log);
  }, 120_000);

  afterAll(() => {
    follower?.close();
    for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
    if (agent && agent.proc.exitCode === null) agent.proc.kill('SIGKILL');
    if (topo) cleanupNetns(TAG);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('curl on one connection: repeated URLs, 404, 500, a 1 MB body, HEAD, chunked (gzip) bodies', async () => {
    const urls = ['/a.txt', '/a.txt', '/a.txt', '/b.txt', '/nope', '/500', '/big.bin', '/a.txt', '/fake500.txt', '/b.txt']
      .flatMap((p) => ['-o', '/dev/null', `http://${web.ip}${p}`]);
    const times = await inNs(client.ns, ['curl', '-s', '-w', '%{time_total}\\n', ...urls]);
    const head = await inNs(client.ns, ['curl', '-s', '-I', '-w', '%{time_total}\\n', '-o', '/dev/null', `http://${web.ip}/big.bin`,
      '-o', '/dev/null', `http://${web.ip}/a.txt`]);
    const gz = await inNs(client.ns, ['curl', '-s', '--compressed', '-w', '%{time_total}\\n', '-o', '/dev/null', `http://${web.ip}/gz/page.txt`,
      '-o', '/dev/null', `http://${web.ip}/gz/page.txt`, '-o', '/dev/null', `http://${web.ip}/a.txt`]);
    worst.curl = Math.max(...`${times}${head}${gz}`.trim().split('\n').map((s) => seconds(s, 's')));
  });

  it('a python client: three pipelined requests per segment, and bodies that look like messages', async () => {
    worst.python = Number((await inNs(client.ns, ['python3', '-', web.ip], PY_PIPELINE)).trim());
  });

  it('message starts deep in GSO segments: pipelined 20-60 KB responses, GETs after 30 KB POST bodies', async () => {
    const r = await addsUp({ agent: agent!, follower, log: accessLog, webIp: web.ip }, async () => {
      worst.deep = Number((await inNs(client.ns, ['python3', '-', web.ip], PY_DEEP)).trim());
    });
    expect(r.truth).toBe(24 + 11);
    // Every start copied where it lies: nothing lost, nothing unparsed.
    expect(r.lost).toEqual({ http_request: 0, http_response: 0, dns: 0 });
    expect([r.requests, r.responses]).toEqual([35, 35]);
  });

  it('ab -k and wrk (paced by its delay hook) on keep-alive connections', async () => {
    const ab = await inNs(client.ns, ['ab', '-k', '-q', '-n', '2000', '-c', '4', `http://${web.ip}/a.txt`]);
    expect(ab).toMatch(/Complete requests:\s+2000/);
    worst.ab = seconds(/100%\s+(\d+) \(longest request\)/.exec(ab)![1]!, 'ms') + 1e6; // ab rounds to the ms
    // 1 ms between a connection's requests: a rate the agent keeps up with on a loaded machine (the
    // saturation case below is unpaced).
    writeFileSync(join(dir, 'paced.lua'), 'function delay()\n  return 1\nend\n');
    const wrk = await inNs(client.ns, ['wrk', '-t1', '-c4', '-d1s', '-s', join(dir, 'paced.lua'), `http://${web.ip}/w.txt`]);
    const m = /Latency\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)\b/.exec(wrk)!;
    worst.wrk = seconds(m[1]!, m[2]!);
  });

  it("nginx's access log is the truth: each request once as a RESPONSE paired with its request, no forged flow", async () => {
    const log = accessLog;
    const ours = (f: Flow) => f.IP?.source === web.ip || f.IP?.destination === web.ip;
    const responses = () => follower.flows.filter((f) => ours(f) && isHttp(f, L7FlowType.RESPONSE));
    const why = () => `${follower.error ?? ''} ${responses().length} responses for ${log().length} log lines; ` +
      `${follower.flows.length} flows, lost ${JSON.stringify(follower.lost.map((l) => [l.lost_events?.source, String(l.lost_events?.num_events_lost)]))}, ` +
      `requests ${follower.flows.filter((f) => ours(f) && isHttp(f, L7FlowType.REQUEST)).length}, L7 ${follower.flows.filter((f) => f.l7).length}, ` +
      `truth ${JSON.stringify(sorted(count(log())))} seen ${JSON.stringify(sorted(count(responses().map(triple))))}, unparsed: ${follower.flows.filter((f) => f.Summary?.includes('unparsed')).slice(0, 5).map((f) => f.Summary).join('; ')}`;
    // Every response, or the kernel reported a loss and the flows stopped coming.
    let last = -1;
    await waitFor('all responses', async () => {
      const n = responses().length;
      if (n >= log().length) return true;
      const settled = follower.lost.length > 0 && n === last;
      last = n;
      await new Promise((r) => setTimeout(r, 1000));
      return settled || undefined;
    }, 30_000, why);
    await new Promise((r) => setTimeout(r, 500)); // and no more than that
    // Exact: nothing lost anywhere, every logged request once as a response, and as a request.
    expect(follower.lost.map((l) => `${LostEventSource[l.lost_events!.source!]} ${l.lost_events!.num_events_lost}`)).toEqual([]);
    const truth = count(log());
    expect(truth.get('GET /w.txt 200')).toBeGreaterThan(500);
    expect(truth.get('GET /a.txt 200')).toBeGreaterThan(2000);
    expect(truth.get('POST /upload 201')).toBe(1 + 5); // the python client's, then the deep test's
    expect(sorted(count(responses().map(triple))), why()).toEqual(sorted(truth));
    const requests = follower.flows.filter((f) => ours(f) && isHttp(f, L7FlowType.REQUEST));
    expect(requests.length).toBe(log().length);
    const max = Math.max(...Object.values(worst));
    for (const f of responses()) expect(Number(f.l7!.latency_ns)).toBeLessThan(max);
    // Nothing named by a body, nothing unparsed.
    expect(follower.flows.filter((f) => ours(f) && f.l7 && `${f.Summary} ${f.l7.http?.url}`.includes('admin'))).toEqual([]);
    expect(follower.flows.filter((f) => ours(f) && f.Summary?.includes('unparsed')).map((f) => f.Summary)).toEqual([]);
  });

  it('DNS over TCP with a split length prefix and two queries in one segment, against dnsmasq', async () => {
    const answers = (await inNs(client.ns, ['python3', '-', dns.ip], PY_DNS_TCP)).trim().split('\n').sort();
    expect(answers).toEqual(['1 10.9.9.1', '2 10.9.9.2', '3 10.9.9.3']);
    const tcpDns = (type: L7FlowType) => follower.flows.filter((f) => f.l4?.TCP && f.l7?.type === type && f.l7.dns);
    await waitFor('DNS answers', () => (tcpDns(L7FlowType.RESPONSE).length >= 3 ? true : undefined), 10_000, agent!.log);
    expect(tcpDns(L7FlowType.REQUEST).map((f) => f.l7!.dns!.query).sort()).toEqual(['one.tcp.test.', 'three.tcp.test.', 'two.tcp.test.']);
    expect(tcpDns(L7FlowType.RESPONSE).map((f) => `${f.l7!.dns!.query} ${f.l7!.dns!.ips}`).sort())
      .toEqual(['one.tcp.test. 10.9.9.1', 'three.tcp.test. 10.9.9.3', 'two.tcp.test. 10.9.9.2']);
  });

  it('2% of packets dropped at both ends (nftables): retransmissions fill the gaps, the sums add up', async () => {
    const table = 'table inet fcl7loss {\n chain out {\n  type filter hook output priority 0;\n  numgen random mod 100 < 2 drop\n }\n}\n';
    for (const ns of [client.ns, web.ns]) await inNs(ns, ['nft', '-f', '-'], table);
    try {
      const r = await addsUp({ agent: agent!, follower, log: accessLog, webIp: web.ip }, async () => {
        const ab = await inNs(client.ns, ['ab', '-k', '-q', '-n', '600', '-c', '4', `http://${web.ip}/a.txt`]);
        expect(ab).toMatch(/Complete requests:\s+600/);
        await inNs(client.ns, ['curl', '-s', '-o', '/dev/null', `http://${web.ip}/big.bin`, '-o', '/dev/null', `http://${web.ip}/a.txt`, '-o', '/dev/null', `http://${web.ip}/big.bin`]);
      });
      expect(r.truth).toBe(603);
      // A drop upstream of the agent is retransmitted: the stream waits for it and loses nothing.
      expect(r.lost).toEqual({ http_request: 0, http_response: 0, dns: 0 });
    } finally {
      for (const ns of [client.ns, web.ns]) await inNs(ns, ['nft', 'delete', 'table', 'inet', 'fcl7loss']).catch(() => undefined);
    }
  });

});

describe.skipIf(skipReason !== undefined)('under a 64 KiB kernel ring, saturated by an unpaced ab -k (real kernel)', () => {
  let t: Bench;
  let web: Topology['pods'][0];
  let client: Topology['pods'][0];
  beforeAll(async () => {
    topo = buildTopology(TAG, 7, 2);
    [client, web] = topo.pods as [typeof web, typeof web];
    dir = mkdtempSync(join(tmpdir(), 'fca-l7-'));
    writeFileSync(join(dir, 'endpoints.yaml'), endpointsYaml(topo));
    const nginx = startNginx(web.ns, web.ip, join(dir, 'nginx'), { 's.txt': 'saturated\n', 'a.txt': 'hello from a\n' });
    procs.push(nginx.proc);
    const a = await startAgent(topo, dir, join(dir, 'endpoints.yaml'),
      ['--listen-address', '', '--metrics-address', '127.0.0.1:0', '--ring-capacity', '65535', '--kernel-ring-bytes', String(64 << 10)]);
    t = { agent: a, follower: new Follower(a.sock), log: nginx.log, webIp: web.ip };
    await waitFor('nginx', () => inNs(client.ns, ['curl', '-sf', '-o', '/dev/null', `http://${web.ip}/s.txt`]).then(() => true), 10_000, a.log);
    // And its flows, so that they are not taken for the test's.
    await waitFor('the first flows', () => t.follower.flows.some((f) => f.l7?.type === L7FlowType.RESPONSE) || undefined, 10_000, a.log);
  }, 120_000);
  afterAll(() => {
    t?.follower.close();
    for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
    if (t && t.agent.proc.exitCode === null) t.agent.proc.kill('SIGKILL');
    cleanupNetns(TAG);
    rmSync(dir, { recursive: true, force: true });
  });

  it('a long keep-alive connection finds its place again after events lost in the kernel, under 2% packet loss', async () => {
    const n = 1000;
    let port = 0;
    // The connection's own packets only: wrk must still fill the ring.
    const table = (match: string) => `table inet fcl7gap {\n chain out {\n  type filter hook output priority 0;\n  ${match} numgen random mod 100 < 2 drop\n }\n}\n`;
    const r = await addsUp(t, async () => {
      const py = spawn('ip', ['netns', 'exec', client.ns, 'python3', '-', web.ip, String(n), '0.002'], { stdio: ['pipe', 'pipe', 'pipe'] });
      procs.push(py);
      py.stdin.end(PY_LONG);
      let out = '';
      py.stdout.on('data', (d: Buffer) => (out += d));
      const done = new Promise((res) => py.on('close', res));
      await waitFor('the client', () => (out.includes('\n') ? true : undefined), 10_000);
      port = Number(out.trim());
      await inNs(client.ns, ['nft', '-f', '-'], table(`tcp sport ${port}`));
      await inNs(web.ns, ['nft', '-f', '-'], table(`tcp dport ${port}`));
      await new Promise((res) => setTimeout(res, 700));
      // Unpaced ab beside it fills the 64 KiB ring: the connection's events are lost for a while.
      // ab, not wrk: it ends with no request in flight, which nginx would never log.
      await inNs(client.ns, ['ab', '-k', '-q', '-c', '4', '-n', '15000', `http://${web.ip}/s.txt`]);
      await done;
    }).finally(async () => {
      for (const ns of [client.ns, web.ns]) await inNs(ns, ['nft', 'delete', 'table', 'inet', 'fcl7gap']).catch(() => undefined);
    });
    expect(r.kernelLost).toBeGreaterThan(0);
    const mine = t.follower.flows.filter((f) => f.l4?.TCP && (f.l4.TCP.source_port === port || f.l4.TCP.destination_port === port) && f.l7);
    expect(mine.some((f) => f.Summary?.includes('unparsed')), 'the connection lost its place at least once').toBe(true);
    // After the flood, every request is a RESPONSE paired with it again.
    const paired = new Set(mine.filter((f) => f.l7!.type === L7FlowType.RESPONSE && f.l7!.http?.url)
      .map((f) => Number(new URL(f.l7!.http!.url!).searchParams.get('n'))));
    const missing = Array.from({ length: 300 }, (_, i) => n - 300 + i).filter((i) => !paired.has(i));
    const tail = mine.slice(-6).map((f) => f.Summary).join('; ');
    expect(missing, `${mine.length} flows of the connection, ending ${tail}`).toEqual([]);
  });

  it('events lost in the kernel: every request is a flow or counted lost, and the two add up', async () => {
    // ab, not wrk: it ends with no request in flight. wrk's last requests may never reach nginx's
    // log, yet are reported now that streams are read on after losses.
    const r = await addsUp(t, () => inNs(client.ns, ['ab', '-k', '-q', '-c', '4', '-n', '20000', `http://${web.ip}/s.txt`]));
    expect(r.truth).toBeGreaterThan(1000);
    expect(r.kernelLost).toBeGreaterThan(0);
    expect(r.lost.http_request + r.lost.http_response).toBeGreaterThan(0);
  });
});

describe.skipIf(skipReason !== undefined)('a port scan burst reaches a following reader whole (default ring)', () => {
  let scanAgent: AgentProcess;
  beforeAll(async () => {
    topo = buildTopology(TAG, 7, 2);
    dir = mkdtempSync(join(tmpdir(), 'fca-l7-'));
    writeFileSync(join(dir, 'endpoints.yaml'), endpointsYaml(topo));
    scanAgent = await startAgent(topo, dir, join(dir, 'endpoints.yaml'), ['--listen-address', '', '--metrics-address', '']);
  }, 60_000);
  afterAll(() => {
    if (scanAgent && scanAgent.proc.exitCode === null) scanAgent.proc.kill('SIGKILL');
    cleanupNetns(TAG);
    rmSync(dir, { recursive: true, force: true });
  });

  it('nmap -sS -p 1-1000 in one second: every SYN, no lost events, read by flowctl observe --follow', async () => {
    const reader = spawn(join(REPO, 'bin/flowctl'), ['observe', '--server', `unix://${scanAgent.sock}`, '--follow', '-o', 'json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    procs.push(reader);
    let out = '';
    reader.stdout!.on('data', (d: Buffer) => (out += d));
    await new Promise((r) => setTimeout(r, 1500));
    const [src, dst] = topo.pods as [Topology['pods'][0], Topology['pods'][0]];
    await inNs(src.ns, ['nmap', '-sS', '-n', '-Pn', '-T5', '--max-retries', '0', '-p', '1-1000', dst.ip]);
    await waitFor('the scan read', () => {
      const ports = new Set(out.split('\n').filter((l) => l.includes('"SYN":true') && l.includes(`"destination":"${dst.ip}"`))
        .map((l) => (JSON.parse(l) as { flow: Flow }).flow.l4?.TCP?.destination_port));
      return ports.size >= 1000 ? true : undefined;
    }, 15_000, () => `${scanAgent.log()}\nreader lines: ${out.split('\n').length}`).catch((e: Error) => {
      throw new Error(`${e.message}\nlost: ${out.split('\n').filter((l) => l.includes('lost_events')).slice(0, 5).join('\n')}`);
    });
    reader.kill('SIGTERM');
    const lost = out.split('\n').filter((l) => l.includes('"lost_events"'));
    expect(lost, `${LostEventSource[LostEventSource.HUBBLE_RING_BUFFER]} and others`).toEqual([]);
  });
});
