import { describe, expect, it, onTestFinished } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FlowctlError } from '@flowctl/flow/errors';
import { deriveWorkload, loadEndpointsFile, parseEndpoints } from './endpoints.js';
import { RESERVED_IDENTITIES, identityForLabels, MIN_LABEL_IDENTITY, MAX_LABEL_IDENTITY } from './identity.js';

const GOOD = `endpoints:
  - name: order-service-5d8f7     # pod name
    namespace: shop
    node: node-1
    labels: { app: order-service, tier: backend }
    ips: [10.10.1.12]
    interface: lxc-order
    netns: pod-order
  - name: api-gateway-7d9c6b-x2k4p
    namespace: shop
    node: node-2
    labels: { app: api-gateway }
    ips: [10.10.2.5, "fd00:0:0:0::0005"]
  - name: order-service-9q8w7
    namespace: shop
    node: node-2
    labels: { tier: backend, app: order-service }
    ips: [10.10.2.6]
  - name: db
    namespace: other
    labels: { app: order-service, tier: backend }
    ips: [10.10.3.1]
    workload: StatefulSet/db
`;

function errorOf(text: string): FlowctlError {
  try {
    parseEndpoints(text, 'eps.yaml');
  } catch (e) {
    if (e instanceof FlowctlError && e.code === 'CONFIG' && e.file === 'eps.yaml') return e;
    throw e;
  }
  throw new Error('expected a CONFIG FlowctlError');
}

describe('parseEndpoints', () => {
  it('resolves labels, identities, IDs, workloads and IPs', () => {
    const set = parseEndpoints(GOOD, 'eps.yaml');
    expect(set.endpoints).toHaveLength(4);
    const [order, gw, order2, db] = set.endpoints;
    expect(order!.labelList).toEqual(['k8s:app=order-service', 'k8s:io.kubernetes.pod.namespace=shop', 'k8s:tier=backend']);
    expect(order!.interface).toBe('lxc-order');
    expect(order!.netns).toBe('pod-order');
    expect(order!.workloads).toEqual([{ name: 'order-service', kind: 'Deployment' }]);
    expect(gw!.workloads).toEqual([{ name: 'api-gateway', kind: 'Deployment' }]);
    expect(db!.workloads).toEqual([{ name: 'db', kind: 'StatefulSet' }]);
    expect(db!.node).toBe('');
    // Same labels in the same namespace: same identity; other namespace: different identity.
    expect(order2!.identity).toBe(order!.identity);
    expect(db!.identity).not.toBe(order!.identity);
    expect(gw!.identity).not.toBe(order!.identity);
    for (const ep of set.endpoints) {
      expect(ep.identity).toBeGreaterThanOrEqual(MIN_LABEL_IDENTITY);
      expect(ep.identity).toBeLessThanOrEqual(MAX_LABEL_IDENTITY);
    }
    expect(new Set(set.endpoints.map((e) => e.id)).size).toBe(4);
    expect(set.byIp.get('10.10.2.5')).toBe(gw);
    expect(set.byIp.get('fd00::5')).toBe(gw);
    expect(gw!.ips).toEqual(['10.10.2.5', 'fd00::5']);
  });

  it('assigns the same identities and IDs whatever the order of the file (every node agrees)', () => {
    const a = parseEndpoints(GOOD, 'a.yaml');
    const items = GOOD.split(/\n(?=  - )/);
    const reversed = [items[0], ...items.slice(1).reverse()].join('\n');
    const b = parseEndpoints(reversed, 'b.yaml');
    const key = (s: typeof a) => new Map(s.endpoints.map((e) => [`${e.namespace}/${e.name}`, [e.id, e.identity]]));
    expect(key(b)).toEqual(key(a));
    // Without collisions the identity is the plain hash of the label list.
    const order = a.endpoints[0]!;
    expect(order.identity).toBe(identityForLabels(order.labelList));
  });

  it('resolves identity collisions deterministically', () => {
    // 400 distinct label sets in 65280 slots: collisions are likely enough to exercise probing.
    const eps = Array.from({ length: 400 }, (_, i) => `  - { name: p${i}, namespace: ns, labels: { app: a${i} }, ips: [10.1.${i >> 8}.${i & 255}] }`);
    const a = parseEndpoints(`endpoints:\n${eps.join('\n')}\n`, 'x');
    const b = parseEndpoints(`endpoints:\n${[...eps].reverse().join('\n')}\n`, 'x');
    expect(new Set(a.endpoints.map((e) => e.identity)).size).toBe(400);
    const m = (s: typeof a) => new Map(s.endpoints.map((e) => [e.name, e.identity]));
    expect(m(b)).toEqual(m(a));
  });

  it('accepts an empty file and an empty list', () => {
    expect(parseEndpoints('', 'e').endpoints).toEqual([]);
    expect(parseEndpoints('endpoints: []\n', 'e').endpoints).toEqual([]);
  });

  it.each([
    ['unknown field', 'endpoints:\n  - name: a\n    namespace: n\n    lables: {app: x}\n', 4, /unknown field "lables"/],
    ['unknown top-level field', 'endpoint:\n  - name: a\n', 1, /unknown field "endpoint"/],
    ['syntax error', 'endpoints:\n  - name: a\n    namespace: [n\n', 4, /YAML syntax error/],
    ['duplicate IP', 'endpoints:\n  - name: a\n    namespace: n\n    ips: [10.0.0.1]\n  - name: b\n    namespace: n\n    ips:\n      - 10.0.0.2\n      - 10.0.0.1\n', 9, /duplicate IP 10\.0\.0\.1 \(already used by n\/a at line 4\)/],
    ['bad IP', 'endpoints:\n  - name: a\n    namespace: n\n    ips: [10.0.0.300]\n', 4, /invalid IP address "10\.0\.0\.300"/],
    ['missing name', 'endpoints:\n  - namespace: n\n    ips: [10.0.0.1]\n', 2, /missing "name"/],
    ['missing namespace', 'endpoints:\n  - name: a\n\n    ips: [10.0.0.1]\n', 2, /missing "namespace"/],
    ['duplicate endpoint', 'endpoints:\n  - {name: a, namespace: n}\n  - {name: a, namespace: n}\n', 3, /duplicate endpoint n\/a/],
    ['bad label value', 'endpoints:\n  - name: a\n    namespace: n\n    labels:\n      app: "x y"\n', 5, /invalid value "x y" for label "app"/],
    ['duplicate key', 'endpoints:\n  - name: a\n    name: b\n    namespace: n\n', 3, /YAML syntax error/],
  ])('reports %s with file and line', (_what, text, line, re) => {
    const e = errorOf(text);
    expect(e.line).toBe(line);
    expect(e.message).toMatch(new RegExp(`^eps\\.yaml:${line}: `));
    expect(e.message).toMatch(re);
    expect(e.message).not.toContain('\n');
  });

  it('loads from disk and names the file when it cannot be read', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fcp-eps-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const f = join(dir, 'endpoints.yaml');
    writeFileSync(f, GOOD);
    expect(loadEndpointsFile(f).endpoints).toHaveLength(4);
    expect(() => loadEndpointsFile(join(dir, 'missing.yaml'))).toThrow(/missing\.yaml:0: cannot read: ENOENT/);
  });
});

describe('deriveWorkload: the same rules for every pod without `workload:`', () => {
  it.each([
    // Kubernetes-generated names first: <deployment>-<pod-template-hash>-<suffix>, <name>-<suffix>, ...
    ['api-gateway-7d9c6b5f4-x2k4p', {}, 'api-gateway', 'Deployment'],
    ['x-7d9c6b-bcdfg', {}, 'x', 'Deployment'],
    ['order-service-5d8f7', { app: 'other' }, 'order-service', 'Deployment'],
    ['coredns-6f8b9', { 'k8s-app': 'kube-dns' }, 'coredns', 'Deployment'],
    ['backup-28391234-q4w7z', {}, 'backup', 'CronJob'],
    ['web-0', { app: 'web' }, 'web', 'StatefulSet'],
    ['kafka-broker-12', {}, 'kafka-broker', 'StatefulSet'],
    // ... then the app label: 4b2a1 and x2k9a have letters Kubernetes never generates (a, 1).
    ['payment-service-4b2a1', { app: 'payment-service', tier: 'backend' }, 'payment-service', ''],
    ['client-6b7f9d8c4-x2k9a', { app: 'client' }, 'client', ''],
    ['my-redis', { 'app.kubernetes.io/name': 'redis' }, 'redis', ''],
    // ... then the pod itself.
    ['payment-service-4b2a1', {}, 'payment-service-4b2a1', 'Pod'],
    ['db', { tier: 'data' }, 'db', 'Pod'],
  ] as const)('%s with labels %j is %s (%s)', (pod, labels, name, kind) => {
    expect(deriveWorkload(pod, labels as Record<string, string>)).toEqual([{ name, kind }]);
  });

  it('an explicit workload: wins, as name, kind/name or {name, kind}', () => {
    const ep = (w: string) => parseEndpoints(`endpoints:\n  - name: web-0\n    namespace: shop\n    labels: { app: web }\n    workload: ${w}\n`, 'e.yaml').endpoints[0]!.workloads;
    expect(ep('frontend')).toEqual([{ name: 'frontend', kind: 'Deployment' }]);
    expect(ep('DaemonSet/agent')).toEqual([{ name: 'agent', kind: 'DaemonSet' }]);
    expect(ep('{ name: batch, kind: Job }')).toEqual([{ name: 'batch', kind: 'Job' }]);
  });
});

describe('reserved identities', () => {
  it('match Hubble', () => {
    expect(RESERVED_IDENTITIES).toMatchObject({ host: 1, world: 2, unmanaged: 3, health: 4, init: 5, 'remote-node': 6, 'kube-apiserver': 7, ingress: 8, 'world-ipv4': 9, 'world-ipv6': 10 });
  });
});
