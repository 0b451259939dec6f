// Policy compile time: 1,000 CiliumNetworkPolicies over 10,000 endpoints (issue 8 goal: < 1 s).
// Baseline in the same run: parsing the same policy YAML alone, so the figure reads as "compile
// costs N× reading the files".
// Run: pnpm exec tsx --conditions=@flowctl/source bench/policy-compile.ts
import { performance } from 'node:perf_hooks';
import { compilePolicies, parseEndpoints, parsePolicies } from '../packages/policy/src/index.js';
import { median, progress, writeSection } from './lib/report.js';

const NAMESPACES = 20;
const APPS_PER_NS = 50; // 1,000 apps, one policy each
const PODS_PER_APP = 10; // 10,000 endpoints
const RUNS = 5;

function endpointsYaml(): string {
  const lines = ['endpoints:'];
  let n = 0;
  for (let ns = 0; ns < NAMESPACES; ns++)
    for (let app = 0; app < APPS_PER_NS; app++)
      for (let p = 0; p < PODS_PER_APP; p++, n++) {
        // Two versions per app: 2,000 distinct label sets, as with a rolling update.
        lines.push(`  - { name: app${app}-${p}, namespace: ns${ns}, node: node-${n % 8}, labels: { app: app${app}, version: v${p % 2}, tier: t${app % 3} }, ips: [10.${100 + (n >> 16)}.${(n >> 8) & 255}.${n & 255}] }`);
      }
  lines.push('  - { name: coredns-5d78c, namespace: kube-system, labels: { k8s-app: kube-dns }, ips: [10.99.0.53] }');
  return lines.join('\n') + '\n';
}

function policiesYaml(): string {
  const docs: string[] = [];
  for (let ns = 0; ns < NAMESPACES; ns++)
    for (let app = 0; app < APPS_PER_NS; app++) {
      const up = (app + 1) % APPS_PER_NS;
      const down = (app + APPS_PER_NS - 1) % APPS_PER_NS;
      const deny = app % 10 === 0 ? `\n  ingressDeny:\n    - fromEndpoints: [ { matchLabels: { app: app${down}, version: v1 } } ]\n      toPorts: [ { ports: [ { port: "9090", protocol: TCP } ] } ]` : '';
      docs.push(`apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: app${app}-policy, namespace: ns${ns} }
spec:
  endpointSelector: { matchLabels: { app: app${app} } }
  ingress:
    - fromEndpoints: [ { matchLabels: { app: app${down} } }, { matchExpressions: [ { key: tier, operator: In, values: [t${app % 3}] } ] } ]
      toPorts: [ { ports: [ { port: "8080", protocol: TCP }, { port: "9090", endPort: 9093, protocol: TCP } ] } ]
  egress:
    - toEndpoints: [ { matchLabels: { app: app${up} } } ]
      toPorts: [ { ports: [ { port: "8080" } ] } ]
    - toEndpoints: [ { matchLabels: { "k8s:io.kubernetes.pod.namespace": kube-system, k8s-app: kube-dns } } ]
      toPorts: [ { ports: [ { port: "53", protocol: UDP } ] } ]
    - toCIDR: [ 192.0.${app}.0/24 ]${deny}`);
    }
  return docs.join('\n---\n') + '\n';
}

const epsText = endpointsYaml();
const polText = policiesYaml();
const eps = parseEndpoints(epsText, 'endpoints.yaml');
progress(`${eps.endpoints.length} endpoints, ${new Set(eps.endpoints.map((e) => e.identity)).size} identities`);

const parseMs: number[] = [];
const compileMs: number[] = [];
const endpointsMs: number[] = [];
let entries = 0;
for (let i = 0; i < RUNS + 1; i++) {
  const t0 = performance.now();
  const docs = parsePolicies(polText, 'policies.yaml');
  const t1 = performance.now();
  const c = compilePolicies(docs, eps);
  const t2 = performance.now();
  parseEndpoints(epsText, 'endpoints.yaml');
  const t3 = performance.now();
  entries = c.entries.length;
  if (i === 0) continue; // warm-up
  parseMs.push(t1 - t0);
  compileMs.push(t2 - t1);
  endpointsMs.push(t3 - t2);
  progress(`run ${i}: parse ${(t1 - t0).toFixed(0)} ms, compile ${(t2 - t1).toFixed(0)} ms, ${entries} entries`);
}

const p = median(parseMs);
const c = median(compileMs);
const e = median(endpointsMs);
const md = `## Policy compile (issue 8)

1,000 CiliumNetworkPolicies (each: endpoint selector, ingress from two selectors on 8080 and a
9090-9093 range, egress to a neighbour on 8080/ANY, DNS to kube-dns, a toCIDR, every tenth an
ingressDeny) compiled over ${eps.endpoints.length.toLocaleString('en')} endpoints
(${new Set(eps.endpoints.map((x) => x.identity)).size.toLocaleString('en')} identities) into ${entries.toLocaleString('en')} policy-map rows.
Median of ${RUNS} runs after one warm-up.

| step | median | vs. baseline |
|---|---|---|
| parse the policy YAML (baseline) | ${p.toFixed(0)} ms | 1.00× |
| compile to map rows | ${c.toFixed(0)} ms | ${(c / p).toFixed(2)}× |
| parse + compile | ${(p + c).toFixed(0)} ms | ${((p + c) / p).toFixed(2)}× |
| parse the endpoints file (for scale) | ${e.toFixed(0)} ms | ${(e / p).toFixed(2)}× |

Goal: parse + compile under 1 s: **${p + c < 1000 ? 'met' : 'not met'}** (${(p + c).toFixed(0)} ms). Writing the rows into the
kernel maps is measured by the datapath benchmark, not here.

Reproduce: \`pnpm exec tsx --conditions=@flowctl/source bench/policy-compile.ts\``;
writeSection('policy-compile', md);
progress(`parse ${p.toFixed(0)} ms, compile ${c.toFixed(0)} ms, ${entries} entries`);
