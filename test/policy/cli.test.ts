// `flowctl policy` in its own process with real argv: exit codes, stdout and stderr as a user or a
// script sees them.
import { describe, expect, it, onTestFinished } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: { name: a }\nspec: { podSelector: {} }\n---\napiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: { name: b }\nspec:\n  endpointSelector: {}\n  ingress:\n    - toPorts: [ { ports: [ { port: "90", endPort: 80 } ] } ]\n');
    const r = flowctl('validate', '-f', bad);
    expect(r.code).toBe(1);
    expect(r.err.trim()).toBe(`error: ${bad}: document 2: spec.ingress[0].toPorts[0].ports[0].endPort: port range 90-80 is inverted`);
  });

  it('validate -f DIR: every bad file is reported, valid ones are not, and no yaml warning leaks', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fcp-cli-dir-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, 'a-collection-key.yaml'), 'apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: { name: a, namespace: shop }\nspec:\n  endpointSelector: {}\n  ? [x, y]\n  : 1\n');
    writeFileSync(join(dir, 'b-good.yaml'), 'apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: { name: b, namespace: shop }\nspec:\n  endpointSelector: {}\n');
    writeFileSync(join(dir, 'c-bad-kind.yaml'), 'kind: Bogus\n');
    const r = flowctl('validate', '-f', dir);
    expect(r.code).toBe(1);
    expect(r.out).toBe('');
    expect(r.err.trim().split('\n')).toEqual([
      `error: ${join(dir, 'a-collection-key.yaml')}: document 1: spec: unknown field "[ x, y ]"`,
      expect.stringMatching(new RegExp(`^error: ${join(dir, 'c-bad-kind.yaml')}: document 1: kind: unsupported kind "Bogus"`)),
    ]);
  });

  it('check: a selector that matches nothing in its namespace is named on stderr, with where it matches', () => {
    const r = flowctl('check', '--from', 'app=api-gateway', '--to', 'app=order-service', '--port', '8080', '--policy-dir', POLICIES, '--endpoints', ENDPOINTS);
    expect(r.err.trim().split('\n')).toEqual([
      'Warning: --from app=api-gateway matches no endpoint in namespace default; it matches in shop, staging (--from-namespace shop)',
      'Warning: --to app=order-service matches no endpoint in namespace default; it matches in shop (--to-namespace shop)',
    ]);
    expect(r.out.split('\n')[0]).toBe('ALLOWED  default/{app=api-gateway} -> default/{app=order-service} 8080/TCP');
    const none = flowctl('check', '--from', 'app=api-gateway', '--from-namespace', 'shop', '--to', 'app=nope', '--to-namespace', 'shop', '--port', '8080', '--policy-dir', POLICIES, '--endpoints', ENDPOINTS);
    expect(none.err.trim()).toBe('Warning: --to app=nope matches no endpoint in namespace shop, nor in any other namespace');
    const fine = flowctl('check', '--from', 'app=api-gateway', '--from-namespace', 'shop', '--to', 'app=order-service', '--to-namespace', 'shop', '--port', '8080', '--policy-dir', POLICIES, '--endpoints', ENDPOINTS);
    expect(fine.err).toBe('');
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
  it('toFQDNs: validate warns once that DNS rules are not enforced; check --to-fqdn answers per name', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fcp-cli-fqdn-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const pol = join(dir, 'fqdn.yaml');
    writeFileSync(pol, [
      'apiVersion: cilium.io/v2', 'kind: CiliumNetworkPolicy', 'metadata: { name: fq, namespace: shop }', 'spec:',
      '  endpointSelector: { matchLabels: { app: order-service } }', '  egress:',
      '    - toPorts: [ { ports: [ { port: "53", protocol: UDP } ], rules: { dns: [ { matchPattern: "*" } ] } } ]',
      '    - toFQDNs: [ { matchPattern: "*.allowed.test" } ]', '',
    ].join('\n'));
    const v = flowctl('validate', '-f', pol);
    expect(v.code).toBe(0);
    expect(v.err.trim().split('\n')).toEqual([expect.stringMatching(/^Warning: toPorts rules\.dns \(CiliumNetworkPolicy shop\/fq\) accepted but not enforced/)]);
    const base = ['check', '--from', 'app=order-service', '--from-namespace', 'shop', '--port', '443', '--policy-dir', pol, '--endpoints', ENDPOINTS];
    const ok = flowctl(...base, '--to-fqdn', 'api.allowed.test');
    expect(ok.code).toBe(0);
    expect(ok.out.split('\n').slice(0, 2)).toEqual([
      'ALLOWED  shop/{app=order-service} -> api.allowed.test 443/TCP',
      '  egress of shop/{app=order-service}: allowed by CiliumNetworkPolicy shop/fq (toFQDNs *.allowed.test)',
    ]);
    expect(flowctl(...base, '--to-fqdn', 'other.test').code).toBe(1);
    // An address not learned through a name is world, denied; a pod is never reached by name.
    expect(flowctl(...base, '--to-ip', '192.0.2.7').code).toBe(1);
    expect(flowctl(...base, '--to-ip', '10.205.2.11', '--to-fqdn', 'api.allowed.test').code).toBe(1);
  });

  it('toFQDNs: a pattern with a `*` inside a label validates without a note and allows what it matches', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fcp-cli-fqdn-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const pol = join(dir, 'fqdn.yaml');
    writeFileSync(pol, [
      'apiVersion: cilium.io/v2', 'kind: CiliumNetworkPolicy', 'metadata: { name: fq, namespace: shop }', 'spec:',
      '  endpointSelector: { matchLabels: { app: order-service } }', '  egress:',
      '    - toFQDNs: [ { matchPattern: "api-*.allowed.test" } ]', '',
    ].join('\n'));
    const v = flowctl('validate', '-f', pol);
    expect(v.code).toBe(0);
    expect(v.err).toBe('');
    const base = ['check', '--from', 'app=order-service', '--from-namespace', 'shop', '--port', '443', '--policy-dir', pol, '--endpoints', ENDPOINTS];
    const ok = flowctl(...base, '--to-fqdn', 'api-v2.allowed.test');
    expect(ok.code).toBe(0);
    expect(ok.out).toContain('allowed by CiliumNetworkPolicy shop/fq (toFQDNs api-*.allowed.test)');
    expect(flowctl(...base, '--to-fqdn', 'web.allowed.test').code).toBe(1);
  });
});
