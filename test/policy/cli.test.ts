// `flowctl policy` in its own process with real argv: exit codes, stdout and stderr as a user or a
// script sees them.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const testdata = join(root, 'packages/policy/src/testdata');
const POLICIES = join(testdata, 'policies');
const ENDPOINTS = join(testdata, 'endpoints.yaml');

function flowctl(...args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, ['--conditions=@flowctl/source', '--import', 'tsx', join(root, 'test/policy/flowctl-policy.ts'), 'policy', ...args], {
    cwd: root,
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('flowctl policy', () => {
  it('validate: exit 0 for a valid file, 1 with file, document and reason for an invalid one', () => {
    const ok = flowctl('validate', '-f', join(POLICIES, 'order-service-policy.yaml'));
    expect(ok.code).toBe(0);
    expect(ok.out).toContain('valid (1 policy: CiliumNetworkPolicy shop/order-service-policy)');

    const dir = mkdtempSync(join(tmpdir(), 'fcp-cli-'));
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: { name: a }\nspec: { podSelector: {} }\n---\napiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: { name: b }\nspec:\n  endpointSelector: {}\n  ingress:\n    - toPorts: [ { ports: [ { port: "90", endPort: 80 } ] } ]\n');
    const r = flowctl('validate', '-f', bad);
    expect(r.code).toBe(1);
    expect(r.err.trim()).toBe(`error: ${bad}: document 2: spec.ingress[0].toPorts[0].ports[0].endPort: port range 90-80 is inverted`);
  });

  it('check: ALLOWED (exit 0) names the policy that allows', () => {
    const r = flowctl('check', '--from', 'app=api-gateway', '--from-namespace', 'shop', '--to', 'app=order-service', '--to-namespace', 'shop', '--port', '8080/TCP', '--policy-dir', POLICIES);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out.split('\n')[0]).toBe('ALLOWED  shop/{app=api-gateway} -> shop/{app=order-service} 8080/TCP');
    expect(r.out).toContain('ingress of shop/{app=order-service}: allowed by CiliumNetworkPolicy shop/order-service-policy');
  });

  it('check: DENIED (exit 1) names the policy that puts the destination in default deny', () => {
    const r = flowctl('check', '--from', 'app=other', '--from-namespace', 'shop', '--to', 'k8s:app=order-service', '--to-namespace', 'shop', '--port', '8080', '--policy-dir', POLICIES, '--endpoints', ENDPOINTS);
    expect(r.code).toBe(1);
    expect(r.out.split('\n')[0]).toMatch(/^DENIED /);
    expect(r.out).toContain('denied by default (no rule allows it; selected by CiliumNetworkPolicy shop/order-service-policy)');
  });

  it('check by IP against the endpoints file, JSON output', () => {
    const r = flowctl('check', '--from-ip', '10.205.1.11', '--to-ip', '8.8.8.8', '--port', '443/TCP', '--policy-dir', POLICIES, '--endpoints', ENDPOINTS, '-o', 'json');
    expect(r.code).toBe(1);
    const v = JSON.parse(r.out) as { verdict: string; from: { endpoint: string }; to: { identity: number }; egress: { default_deny: boolean; policies: { name: string }[] } };
    expect(v.verdict).toBe('DENIED');
    expect(v.from.endpoint).toBe('shop/order-service-5d8f7 (10.205.1.11)');
    expect(v.to.identity).toBe(2);
    expect(v.egress.default_deny).toBe(true);
    expect(v.egress.policies.map((p) => p.name)).toEqual(['order-service-policy']);
  });

  it('check: bad input is exit 2 with one line', () => {
    const r = flowctl('check', '--from', 'app', '--to', 'app=b', '--port', '8080/TCP', '--policy-dir', POLICIES);
    expect(r.code).toBe(2);
    expect(r.err.trim()).toBe('error: --from "app": expected key=value');
  });

  it('list: the policies of a directory with the endpoints they select', () => {
    const r = flowctl('list', '--policy-dir', POLICIES, '--endpoints', ENDPOINTS);
    expect(r.code).toBe(0);
    const [head, row] = r.out.trim().split('\n');
    expect(head).toMatch(/^NAMESPACE\s+NAME\s+KIND\s+SELECTS\s+ENDPOINTS\s+INGRESS\s+EGRESS\s+SOURCE$/);
    expect(row).toMatch(/^shop\s+order-service-policy\s+CiliumNetworkPolicy\s+app=order-service,io.kubernetes.pod.namespace=shop\s+1\s+1 allow\s+1 allow\s+/);
  });
});
