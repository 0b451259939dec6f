// `flowctl policy list|check` against a running agent process (no kernel needed: the agent in
// --replay mode still loads, watches and reports its endpoints and policy directory), with real
// argv and the real CLI entry point.
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const TESTDATA = join(ROOT, 'packages/policy/src/testdata');

let dir: string;
let sock: string;
let policyDir: string;
let agent: ChildProcess | undefined;
let agentLog = '';

function run(file: string, args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((res) => {
    const p = spawn(process.execPath, ['--conditions=@flowctl/source', '--import', 'tsx', file, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout!.on('data', (d: Buffer) => (out += d));
    p.stderr!.on('data', (d: Buffer) => (err += d));
    p.on('close', (code) => res({ code, out, err }));
  });
}
const flowctl = (...args: string[]) => run(join(ROOT, 'packages/cli/src/bin.ts'), args);

async function waitFor<T>(what: string, f: () => Promise<T | undefined> | T | undefined, ms: number): Promise<T> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const v = await f();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} not within ${ms} ms\nagent log:\n${agentLog.slice(-2000)}`);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fcp-server-'));
  sock = join(dir, 'agent.sock');
  policyDir = join(dir, 'policies');
  mkdirSync(policyDir);
  copyFileSync(join(TESTDATA, 'policies', 'order-service-policy.yaml'), join(policyDir, 'order-service-policy.yaml'));
  copyFileSync(join(TESTDATA, 'endpoints.yaml'), join(dir, 'endpoints.yaml'));
  writeFileSync(join(dir, 'flows.json'), '{"flow":{"verdict":"FORWARDED","Summary":"x"},"node_name":"n"}\n');
  agent = spawn(process.execPath, ['--conditions=@flowctl/source', '--import', 'tsx', join(ROOT, 'packages/agent/src/main.ts'),
    '--node-name', 'fcp-node-a', '--replay', join(dir, 'flows.json'), '--endpoints', join(dir, 'endpoints.yaml'), '--policy-dir', policyDir,
    '--unix-socket', sock, '--listen-address', '', '--metrics-address', ''], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  agent.stdout!.on('data', (d: Buffer) => (agentLog += d));
  agent.stderr!.on('data', (d: Buffer) => (agentLog += d));
  await waitFor('agent serving', () => (existsSync(sock) && agentLog.includes('"msg":"serving"') ? true : undefined), 30_000);
}, 60_000);

afterAll(() => {
  if (agent && agent.exitCode === null) agent.kill('SIGKILL');
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('flowctl policy against a running agent', () => {
  it('list: the policies in force on the node, with their source and the endpoints they select', async () => {
    const r = await flowctl('--server', `unix://${sock}`, 'policy', 'list');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const [head, row, more] = r.out.trim().split('\n');
    expect(head).toMatch(/^NODE\s+REVISION\s+NAMESPACE\s+NAME\s+KIND\s+SELECTS\s+ENDPOINTS\s+INGRESS\s+EGRESS\s+SOURCE$/);
    expect(row).toMatch(new RegExp(`^fcp-node-a\\s+\\d+\\s+shop\\s+order-service-policy\\s+CiliumNetworkPolicy\\s+\\S+\\s+1\\s+1 allow\\s+1 allow\\s+${join(policyDir, 'order-service-policy.yaml')}#1$`));
    expect(more).toBeUndefined();
  });

  it('check without --policy-dir uses the agent\'s policies and endpoints', async () => {
    const denied = await flowctl('policy', 'check', '--server', `unix://${sock}`, '--from', 'app=other', '--from-namespace', 'shop', '--to', 'app=order-service', '--to-namespace', 'shop', '--port', '8080/TCP');
    expect(denied.code).toBe(1);
    expect(denied.out.split('\n')[0]).toBe('DENIED  shop/{app=other} -> shop/{app=order-service} 8080/TCP');
    expect(denied.out).toMatch(/policies in force on fcp-node-a \(revision \d+\)/);
    // By IP: only the agent's endpoints file knows 10.205.1.11 (no --endpoints given here).
    const byIp = await flowctl('--server', `unix://${sock}`, 'policy', 'check', '--from-ip', '10.205.1.11', '--to-ip', '8.8.8.8', '--port', '443', '-o', 'json');
    expect(byIp.code).toBe(1);
    const v = JSON.parse(byIp.out) as { from: { endpoint: string }; egress: { default_deny: boolean }; nodes: string[] };
    expect(v.from.endpoint).toBe('shop/order-service-5d8f7 (10.205.1.11)');
    expect(v.egress.default_deny).toBe(true);
    expect(v.nodes).toEqual(['fcp-node-a']);
  });

  it('follows the directory: a bad file is reported and the previous policy stays; a good change shows up', async () => {
    const before = JSON.parse((await flowctl('--server', `unix://${sock}`, 'policy', 'list', '-o', 'json')).out) as { revision: number };
    writeFileSync(join(policyDir, 'bad.yaml'), 'apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: { name: x, namespace: shop }\nspec: { nonsense: 1 }\n');
    const warned = await waitFor('rejection reported', async () => {
      const r = await flowctl('--server', `unix://${sock}`, 'policy', 'list');
      return r.err.includes('rejected') ? r : undefined;
    }, 5000);
    expect(warned.err.trim()).toMatch(new RegExp(`^Warning: node fcp-node-a: newest policy rejected, the previous one stays in force: ${join(policyDir, 'bad.yaml')}: document 1: `));
    expect(warned.out).toContain('order-service-policy');
    expect(warned.code).toBe(0);

    rmSync(join(policyDir, 'bad.yaml'));
    writeFileSync(join(policyDir, 'allow-other.yaml'), `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: allow-other, namespace: shop }
spec:
  podSelector: { matchLabels: { app: order-service } }
  policyTypes: [Ingress]
  ingress:
    - from: [ { podSelector: { matchLabels: { app: other } } } ]
      ports: [ { port: 8080, protocol: TCP } ]
`);
    const after = await waitFor('new policy in force', async () => {
      const r = await flowctl('--server', `unix://${sock}`, 'policy', 'list', '-o', 'json');
      const lines = r.out.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { name: string; revision: number });
      return lines.some((l) => l.name === 'allow-other') ? lines : undefined;
    }, 5000);
    expect(after.every((l) => l.revision > before.revision)).toBe(true);
    const allowed = await flowctl('--server', `unix://${sock}`, 'policy', 'check', '--from', 'app=other', '--from-namespace', 'shop', '--to', 'app=order-service', '--to-namespace', 'shop', '--port', '8080/TCP');
    expect(allowed.code).toBe(0);
    expect(allowed.out).toContain('allowed by NetworkPolicy shop/allow-other');
  });

  it('an unreachable server is one line and exit 1; --node names an unknown node as bad input', async () => {
    const r = await flowctl('--server', `unix://${join(dir, 'nope.sock')}`, '--timeout', '1s', 'policy', 'list');
    expect(r.code).toBe(1);
    expect(r.err.trim().split('\n')).toHaveLength(1);
    expect(r.err).toMatch(/^error: cannot reach the server at unix:\/\/.*nope\.sock: /);
    const n = await flowctl('--server', `unix://${sock}`, 'policy', 'check', '--node', 'elsewhere', '--from', 'app=a', '--to', 'app=b', '--port', '80');
    expect(n.code).toBe(2);
    expect(n.err.trim()).toBe(`error: --node elsewhere: no such node behind unix://${sock}`);
  });
});
