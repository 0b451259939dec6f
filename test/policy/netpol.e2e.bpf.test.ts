// Kubernetes NetworkPolicy conformance on the real kernel (issue 23), in the upstream e2e suite's
// model: namespaces x, y, z with pods a, b, c, each serving TCP and UDP on 80 and 81, every pair
// probed in parallel and compared with the truth table of each case. Cases: ipBlock on pod
// addresses (a /32, a wide block with an except, two pods with the same labels), named ports (one
// name, two numbers), namespace labels and a namespace label change while the agent runs. For
// every case `flowctl policy check` against the agent must give the kernel's answer.
// Prefix fck-, subnet 10.207.0.0/16 (docs/design/contracts.md).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerPolicyCommand } from '../../packages/cli/src/commands/policy.js';
import { bpfSkipReason, buildLab, cleanupLab, inNs, startAgent, waitFor as labWaitFor, type Lab, type LabAgent } from './lab.js';

const PREFIX = 'fck-';
const NODE_NS = 'fck-node';
const NAMESPACES = ['x', 'y', 'z'] as const;
const POD_NAMES = ['a', 'b', 'c'] as const;
type Proto = 'TCP' | 'UDP';
const PORTS: [number, Proto][] = [[80, 'TCP'], [81, 'TCP'], [80, 'UDP'], [81, 'UDP']];

interface Pod {
  ns: string;
  name: string;
  id: string; // x/a
  netns: string;
  hostIf: string;
  ip: string;
}

const PODS: Pod[] = NAMESPACES.flatMap((ns, i) =>
  POD_NAMES.map((name, j) => ({ ns, name, id: `${ns}/${name}`, netns: `${PREFIX}${ns}-${name}`, hostIf: `${PREFIX}${ns}${name}`, ip: `10.207.1.${10 * (i + 1) + j + 1}` })),
);
const P = Object.fromEntries(PODS.map((p) => [p.id, p])) as Record<string, Pod>;
const LAB: Lab = { prefix: PREFIX, node: NODE_NS, bridge: 'fck-br0', gateway: '10.207.1.1', pods: PODS };

interface EndpointsOptions {
  /** Labels per namespace (the `namespaces:` list). */
  nsLabels?: Record<string, Record<string, string>>;
  /** Labels per pod id, replacing `pod: <name>`. */
  podLabels?: Record<string, Record<string, string>>;
}
const BASE_NS_LABELS = { x: { ns: 'x', team: 'red' }, y: { ns: 'y', team: 'blue' }, z: { ns: 'z', team: 'green' } };
// Upstream's port names on every pod; `web` is one name for 80 on x/a and for 81 on x/b.
const WEB: Record<string, number> = { 'x/a': 80, 'x/b': 81 };

function endpointsYaml(o: EndpointsOptions = {}): string {
  const flow = (m: Record<string, string>) => `{ ${Object.entries(m).map(([k, v]) => `${k}: ${v}`).join(', ')} }`;
  const nsLabels = o.nsLabels ?? BASE_NS_LABELS;
  return `namespaces:
${NAMESPACES.map((ns) => `  - { name: ${ns}, labels: ${flow(nsLabels[ns] ?? {})} }`).join('\n')}
endpoints:
${PODS.map((p) => `  - name: ${p.name}
    namespace: ${p.ns}
    node: ${NODE_NS}
    labels: ${flow(o.podLabels?.[p.id] ?? { pod: p.name })}
    ips: [${p.ip}]
    interface: ${p.hostIf}
    netns: ${p.netns}
    ports:
      - { name: serve-80-tcp, port: 80, protocol: TCP }
      - { name: serve-81-tcp, port: 81, protocol: TCP }
      - { name: serve-80-udp, port: 80, protocol: UDP }
      - { name: serve-81-udp, port: 81, protocol: UDP }${WEB[p.id] ? `\n      - { name: web, port: ${WEB[p.id]} }` : ''}`).join('\n')}
`;
}

const SERVER = `
import socket, threading
def echo(c):
    try:
        while True:
            d = c.recv(64)
            if not d:
                break
            c.sendall(d)
    except OSError:
        pass
    c.close()
def tcp(s):
    while True:
        c, _ = s.accept()
        threading.Thread(target=echo, args=(c,), daemon=True).start()
def udp(s):
    while True:
        d, a = s.recvfrom(64)
        s.sendto(b'ok', a)
for port in (80, 81):
    t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); t.bind(('0.0.0.0', port)); t.listen(512)
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(('0.0.0.0', port))
    threading.Thread(target=tcp, args=(t,), daemon=True).start()
    threading.Thread(target=udp, args=(u,), daemon=True).start()
print('up', flush=True)
threading.Event().wait()
`;

// An established TCP connection to argv[1]:80 sending a line every 50 ms, printing the time of every answer.
const PINGER = `
import socket, sys, time
s = socket.create_connection((sys.argv[1], 80), timeout=5)
s.settimeout(0.05)
print('CONNECTED', flush=True)
while True:
    try:
        s.sendall(b'ping\\n')
        if s.recv(64):
            print('PONG', int(time.time() * 1000), flush=True)
    except socket.timeout:
        pass
    except OSError:
        time.sleep(0.05)
    time.sleep(0.05)
`;

// Probes every [ip, port, proto] of argv[1] at once; prints a JSON list of booleans. UDP: three
// datagrams a third of the timeout apart, any answer counts.
const PROBER = `
import json, socket, sys, threading
targets = json.loads(sys.argv[1]); timeout = float(sys.argv[2]); res = [False] * len(targets)
def probe(i, ip, port, proto):
    try:
        if proto == 'TCP':
            socket.create_connection((ip, port), timeout=timeout).close()
            res[i] = True
            return
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(timeout / 3)
        for _ in range(3):
            s.sendto(b'probe', (ip, port))
            try:
                s.recv(16); res[i] = True; return
            except socket.timeout:
                pass
    except OSError:
        pass
ts = [threading.Thread(target=probe, args=(i, *t)) for i, t in enumerate(targets)]
for t in ts: t.start()
for t in ts: t.join()
print(json.dumps(res))
`;


const skipReason = await bpfSkipReason('test/policy/netpol.e2e.bpf.test.ts');

const procs: ChildProcess[] = [];
let dir: string;
let sock: string;
let policyDir: string;
let agent: LabAgent | undefined;


function waitFor<T>(what: string, f: () => Promise<T | undefined> | T | undefined, ms: number): Promise<T> {
  return labWaitFor(what, f, ms, () => `agent log:\n${agent?.log().slice(-3000) ?? ''}`);
}

/** A probe: from pod, to pod, port, protocol. */
interface Probe {
  from: Pod;
  to: Pod;
  port: number;
  proto: Proto;
}
const key = (p: Probe) => `${p.from.id} -> ${p.to.id} ${p.port}/${p.proto}`;
const ALL: Probe[] = PODS.flatMap((from) => PODS.flatMap((to) => PORTS.map(([port, proto]) => ({ from, to, port, proto }))));

/** Runs `probes` from every source pod at once; the answers by key. */
async function probeAll(probes: Probe[], timeoutS: number): Promise<Map<string, boolean>> {
  const out = new Map<string, boolean>();
  await Promise.all(
    PODS.map(async (from) => {
      const mine = probes.filter((p) => p.from === from);
      if (!mine.length) return;
      const targets = mine.map((p) => [p.to.ip, p.port, p.proto]);
      const o = await inNs(from.netns, ['/usr/bin/python3', '-c', PROBER, JSON.stringify(targets), String(timeoutS)], (timeoutS + 10) * 1000);
      (JSON.parse(o) as boolean[]).forEach((ok, i) => out.set(key(mine[i]!), ok));
    }),
  );
  return out;
}

/**
 * The kernel's answer for every pair and port: every probe at once with a 1 s timeout, then the
 * ones that disagree with `want` once more with 3 s (a busy machine can miss a first deadline; a
 * real disagreement stays).
 */
async function reachability(want: (p: Probe) => boolean): Promise<Map<string, boolean>> {
  const got = await probeAll(ALL, 1);
  const again = ALL.filter((p) => got.get(key(p)) !== want(p));
  if (again.length) for (const [k, v] of await probeAll(again, 3)) got.set(k, v);
  return got;
}

// commander is a dependency of the CLI package, not of the repository root.
const requireFromCli = createRequire(new URL('../../packages/cli/package.json', import.meta.url));
const { Command } = (await import(requireFromCli.resolve('commander'))) as typeof import('commander');

/** `flowctl policy check --server <agent> --from-ip A --to-ip B --port P/proto -o json`, in process. */
async function policyCheck(p: Probe): Promise<boolean> {
  const out: string[] = [];
  const err: string[] = [];
  const program = new Command('flowctl').exitOverride();
  const status = { exitCode: 0 };
  registerPolicyCommand(program, status, { out: (s) => out.push(s), err: (s) => err.push(s) });
  await program.parseAsync(['policy', 'check', '--server', `unix://${sock}`, '--from-ip', p.from.ip, '--to-ip', p.to.ip, '--port', `${p.port}/${p.proto}`, '-o', 'json'], { from: 'user' });
  if (err.length || out.length !== 1) throw new Error(`policy check ${key(p)}: exit ${status.exitCode}: ${[...err, ...out].join('\n')}`);
  const allowed = (JSON.parse(out[0]!) as { verdict: string }).verdict === 'ALLOWED';
  expect(status.exitCode, `policy check ${key(p)} exit status`).toBe(allowed ? 0 : 1);
  return allowed;
}

/** policy check on every pair but a pod with itself (loopback: never through the datapath). */
async function checkAll(): Promise<Map<string, boolean>> {
  const out = new Map<string, boolean>();
  const probes = ALL.filter((p) => p.from !== p.to);
  for (let i = 0; i < probes.length; i += 96) {
    const batch = probes.slice(i, i + 96);
    const r = await Promise.all(batch.map(policyCheck));
    batch.forEach((p, j) => out.set(key(p), r[j]!));
  }
  return out;
}

/** The probes where `got` differs from `want`, as `key: got` lines (empty when exact). */
function diff(got: Map<string, boolean>, want: (p: Probe) => boolean, probes = ALL): string[] {
  return probes.filter((p) => got.has(key(p)) && got.get(key(p)) !== want(p)).map((p) => `${key(p)}: got ${got.get(key(p)) ? 'allowed' : 'denied'}`);
}

/** Writes atomically (the agent must never read half a file). */
function put(path: string, text: string): void {
  writeFileSync(`${path}.tmp`, text);
  renameSync(`${path}.tmp`, path);
}


/** Writes `write` and resolves once the agent has applied a policy compiled after it. */
async function applied(write: () => void): Promise<number> {
  const count = () => agent!.log().split('"msg":"policy applied"').length - 1;
  const before = count();
  const t0 = Date.now();
  write();
  await waitFor('policy applied', () => (count() > before ? true : undefined), 10_000);
  const ms = Date.now() - t0;
  // The identities (ipcache) are written right after the policy is logged as applied.
  await new Promise((r) => setTimeout(r, 300));
  return ms;
}

/** Installs `policies` (file name → YAML), then a new endpoints file, each once applied. */
async function apply(policies: Record<string, string> | undefined, endpoints?: string): Promise<number> {
  let ms = 0;
  if (policies) {
    ms = await applied(() => {
      for (const f of readdirSync(policyDir)) if (!(f in policies)) rmSync(join(policyDir, f));
      for (const [f, text] of Object.entries(policies)) put(join(policyDir, f), text);
    });
  }
  if (endpoints !== undefined) ms = await applied(() => put(join(dir, 'endpoints.yaml'), endpoints));
  return ms;
}

const self = (p: Probe) => p.from === p.to;

/** Kernel and policy check both exact for `want`. */
async function expectExact(name: string, want: (p: Probe) => boolean): Promise<void> {
  const t0 = Date.now();
  const [kernel, check] = await Promise.all([reachability(want), checkAll()]);
  const allowed = ALL.filter((p) => kernel.get(key(p))).length;
  process.stderr.write(`${name}: ${allowed}/${ALL.length} probes allowed, kernel and policy check in ${Date.now() - t0} ms\n`);
  expect(diff(kernel, want), `kernel vs truth table (${name})`).toEqual([]);
  expect(diff(check, want), `policy check vs truth table (${name})`).toEqual([]);
  // Not every probe the same way: the case really separates pairs.
  expect(allowed).toBeGreaterThan(0);
  expect(allowed).toBeLessThan(ALL.length);
}

const np = (name: string, ns: string, spec: string) =>
  `apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: { name: ${name}, namespace: ${ns} }\nspec:\n${spec.replace(/^/gm, '  ')}\n`;

describe.skipIf(skipReason !== undefined)('Kubernetes NetworkPolicy conformance on the real kernel (x, y, z × a, b, c)', () => {
  beforeAll(async () => {
    buildLab(LAB);
    dir = mkdtempSync(join(tmpdir(), 'fck-netpol-e2e-'));
    sock = join(dir, 'agent.sock');
    policyDir = join(dir, 'policies');
    mkdirSync(policyDir);
    writeFileSync(join(dir, 'endpoints.yaml'), endpointsYaml());
    await Promise.all(
      PODS.map((p) => {
        const s = spawn('ip', ['netns', 'exec', p.netns, '/usr/bin/python3', '-c', SERVER], { stdio: ['ignore', 'pipe', 'pipe'] });
        procs.push(s);
        return new Promise<void>((r) => s.stdout!.once('data', () => r()));
      }),
    );
    agent = await startAgent(LAB, ['--endpoints', join(dir, 'endpoints.yaml'), '--policy-dir', policyDir, '--metrics-address', ''], sock);
  }, 90_000);

  afterAll(async () => {
    for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
    await agent?.stop();
    cleanupLab(LAB);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('without policy every pod reaches every pod on TCP and UDP 80 and 81', async () => {
    const got = await reachability(() => true);
    expect(diff(got, () => true)).toEqual([]);
  });

  it('ipBlock /32 on a pod: x/a may send only to y/b', async () => {
    await apply({ 'p.yaml': np('egress-to-yb', 'x', `podSelector: { matchLabels: { pod: a } }\npolicyTypes: [ Egress ]\negress:\n  - to: [ { ipBlock: { cidr: ${P['y/b']!.ip}/32 } } ]`) });
    await expectExact('ipBlock /32', (p) => self(p) || p.from.id !== 'x/a' || p.to.id === 'y/b');
  });

  it('ipBlock 10.0.0.0/8 except one pod: x/a may send to every pod but z/c', async () => {
    await apply({ 'p.yaml': np('egress-wide', 'x', `podSelector: { matchLabels: { pod: a } }\npolicyTypes: [ Egress ]\negress:\n  - to: [ { ipBlock: { cidr: 10.0.0.0/8, except: [ ${P['z/c']!.ip}/32 ] } } ]`) });
    await expectExact('ipBlock except', (p) => self(p) || p.from.id !== 'x/a' || p.to.id !== 'z/c');
  });

  it('ipBlock ingress with an except, on UDP 81 only: y/b accepts every pod but x/a', async () => {
    await apply({ 'p.yaml': np('ingress-block', 'y', `podSelector: { matchLabels: { pod: b } }\ningress:\n  - from: [ { ipBlock: { cidr: 10.207.1.0/24, except: [ ${P['x/a']!.ip}/32 ] } } ]\n    ports: [ { port: 81, protocol: UDP } ]`) });
    await expectExact('ipBlock ingress', (p) => self(p) || p.to.id !== 'y/b' || (p.from.id !== 'x/a' && p.port === 81 && p.proto === 'UDP'));
  });

  it('ipBlock tells apart two pods with the same labels (x/b and x/c both pod=b)', async () => {
    const same = endpointsYaml({ podLabels: { 'x/c': { pod: 'b' } } });
    await apply(
      {
        'p.yaml': np('egress-to-xb', 'y', `podSelector: { matchLabels: { pod: a } }\npolicyTypes: [ Egress ]\negress:\n  - to: [ { ipBlock: { cidr: ${P['x/b']!.ip}/32 } } ]`),
        // Both pods are still selected by their labels, whatever identity their address has.
        'q.yaml': np('ingress-pod-b', 'x', 'podSelector: { matchLabels: { pod: b } }\ningress:\n  - from: [ { namespaceSelector: { matchLabels: { ns: y } } } ]\n    ports: [ { port: 80, protocol: TCP } ]'),
      },
      same,
    );
    const toB = (p: Probe) => p.to.id === 'x/b' || p.to.id === 'x/c';
    await expectExact('same labels', (p) => {
      if (self(p)) return true;
      if (p.from.id === 'y/a' && p.to.id !== 'x/b') return false;
      if (toB(p)) return p.from.ns === 'y' && p.port === 80 && p.proto === 'TCP';
      return true;
    });
    await apply(undefined, endpointsYaml());
  });

  it('named port: one name, 80 on x/a and 81 on x/b; serve-81-udp everywhere', async () => {
    await apply({ 'p.yaml': np('ingress-web', 'x', 'podSelector: {}\ningress:\n  - ports: [ { port: web }, { port: serve-81-udp, protocol: UDP } ]') });
    await expectExact('named port ingress', (p) => {
      if (self(p) || p.to.ns !== 'x') return true;
      if (p.port === 81 && p.proto === 'UDP') return true;
      return p.proto === 'TCP' && p.port === WEB[p.to.id];
    });
  });

  it('named port in a CNP egress resolves on each destination pod', async () => {
    const cnp = `apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: { name: egress-web, namespace: y }\nspec:\n  endpointSelector: { matchLabels: { pod: a } }\n  egress:\n    - toEndpoints: [ { matchLabels: { io.kubernetes.pod.namespace: x } } ]\n      toPorts: [ { ports: [ { port: web } ] } ]\n`;
    await apply({ 'p.yaml': cnp });
    await expectExact('named port egress', (p) => self(p) || p.from.id !== 'y/a' || (p.proto === 'TCP' && p.port === WEB[p.to.id]));
  });

  const fromTeams = np(
    'ingress-teams',
    'x',
    'podSelector: { matchLabels: { pod: a } }\ningress:\n  - from:\n      - namespaceSelector: { matchLabels: { team: blue } }\n      - namespaceSelector: { matchExpressions: [ { key: team, operator: NotIn, values: [ blue, red ] } ] }\n        podSelector: { matchLabels: { pod: c } }',
  );

  it('namespaceSelector on namespace labels: x/a accepts namespace team=blue (y) and pod c of other teams (z/c)', async () => {
    await apply({ 'p.yaml': fromTeams });
    await expectExact('namespace labels', (p) => self(p) || p.to.id !== 'x/a' || p.from.ns === 'y' || p.from.id === 'z/c');
  });

  it('a namespace label change re-evaluates the policy live: z joins team blue', async () => {
    const ms = await apply(undefined, endpointsYaml({ nsLabels: { ...BASE_NS_LABELS, z: { ns: 'z', team: 'blue' } } }));
    process.stderr.write(`namespace label change applied ${ms} ms after the write\n`);
    expect(agent!.proc.exitCode).toBeNull();
    await expectExact('namespace label change', (p) => self(p) || p.to.id !== 'x/a' || p.from.ns === 'y' || p.from.ns === 'z');
    // And back: z/a and z/b lose access again, also on a connection established meanwhile.
    const pinger = spawn('ip', ['netns', 'exec', P['z/a']!.netns, '/usr/bin/python3', '-c', PINGER, P['x/a']!.ip], { stdio: ['ignore', 'pipe', 'pipe'] });
    procs.push(pinger);
    const pongs: number[] = [];
    pinger.stdout!.on('data', (d: Buffer) => {
      for (const m of String(d).matchAll(/PONG (\d+)/g)) pongs.push(Number(m[1]));
    });
    await waitFor('pongs on the established connection', () => (pongs.length >= 5 ? true : undefined), 5000);
    const t0 = Date.now();
    await apply(undefined, endpointsYaml());
    await new Promise((r) => setTimeout(r, 700));
    pinger.kill('SIGKILL');
    const last = pongs[pongs.length - 1]!;
    process.stderr.write(`namespace label change back: the established connection's last answer ${last - t0} ms after the write\n`);
    expect(last - t0).toBeLessThan(2000);
    expect(Date.now() - last).toBeGreaterThan(600); // no answer since: really stopped
    await expectExact('namespace label change back', (p) => self(p) || p.to.id !== 'x/a' || p.from.ns === 'y' || p.from.id === 'z/c');
  });
});
