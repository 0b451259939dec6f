import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkConnection, identityForIp, lookupPolicy } from './check.js';
import { compilePolicies, type CompiledPolicy } from './compile.js';
import { parseEndpoints, type EndpointSet } from './endpoints.js';
import { FlowctlError } from '@flowctl/flow/errors';
import { MIN_CIDR_IDENTITY, RESERVED_IDENTITIES } from './identity.js';
import { parsePolicies, loadPolicyDir } from './policy-doc.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const EPS = parseEndpoints(readFileSync(join(here, 'testdata/endpoints.yaml'), 'utf8'), 'endpoints.yaml');
const ORDER_POLICY = readFileSync(join(here, 'testdata/policies/order-service-policy.yaml'), 'utf8');

function ident(eps: EndpointSet, namePrefix: string, ns?: string): number {
  const ep = eps.endpoints.find((e) => e.name.startsWith(namePrefix) && (!ns || e.namespace === ns));
  if (!ep) throw new Error(`no endpoint ${namePrefix}`);
  return ep.identity;
}

function compile(yaml: string, eps: EndpointSet = EPS): CompiledPolicy {
  return compilePolicies(parsePolicies(yaml, 'p.yaml'), eps);
}

function allowed(c: CompiledPolicy, from: string | number, to: string | number, port: number, proto: 'TCP' | 'UDP' = 'TCP', eps = EPS): boolean {
  const id = (x: string | number) => (typeof x === 'number' ? x : x.includes('/') ? ident(eps, x.split('/')[1]!, x.split('/')[0]) : ident(eps, x));
  return checkConnection(c, id(from), id(to), port, proto).allowed;
}

const cnp = (name: string, spec: string, ns = 'shop') =>
  `apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: { name: ${name}, namespace: ${ns} }\nspec:\n${spec.replace(/^/gm, '  ')}\n`;

describe('the issue scenario: order-service-policy', () => {
  const c = compilePolicies(loadPolicyDir(join(here, 'testdata/policies')), EPS);
  it('api-gateway -> order-service:8080 is allowed by the policy', () => {
    const v = checkConnection(c, ident(EPS, 'api-gateway', 'shop'), ident(EPS, 'order-service'), 8080, 'TCP');
    expect(v.allowed).toBe(true);
    expect(v.ingress.policies.map((p) => p.name)).toEqual(['order-service-policy']);
    expect(v.egress.enforced).toBe(false);
  });
  it('another pod -> order-service:8080 is denied by default deny, naming the policy', () => {
    const v = checkConnection(c, ident(EPS, 'other'), ident(EPS, 'order-service'), 8080, 'TCP');
    expect(v.allowed).toBe(false);
    expect(v.ingress.defaultDeny).toBe(true);
    expect(v.policies.map((p) => p.name)).toEqual(['order-service-policy']);
  });
  it('api-gateway on another port, over UDP, or from another namespace is denied', () => {
    expect(allowed(c, 'shop/api-gateway', 'order-service', 8081)).toBe(false);
    expect(allowed(c, 'shop/api-gateway', 'order-service', 8080, 'UDP')).toBe(false);
    expect(allowed(c, 'staging/api-gateway', 'order-service', 8080)).toBe(false);
  });
  it('order-service -> payment-service:8080 is allowed, anything else is denied', () => {
    expect(allowed(c, 'order-service', 'payment-service', 8080)).toBe(true);
    expect(allowed(c, 'order-service', 'payment-service', 8080, 'UDP')).toBe(true); // no protocol = ANY
    expect(allowed(c, 'order-service', 'payment-service', 443)).toBe(false);
    expect(allowed(c, 'order-service', 'other', 8080)).toBe(false);
    expect(allowed(c, 'order-service', RESERVED_IDENTITIES.world, 443)).toBe(false);
    expect(allowed(c, 'order-service', 'coredns', 53, 'UDP')).toBe(false);
  });
  it('endpoints selected by no policy allow everything', () => {
    expect(allowed(c, 'other', 'payment-service', 1)).toBe(true);
    expect(c.enforced.has(ident(EPS, 'other'))).toBe(false);
    expect(c.enforced.get(ident(EPS, 'order-service'))).toEqual({ ingress: true, egress: true });
  });
  it('writes exactly the expected rows', () => {
    const o = ident(EPS, 'order-service');
    const rows = c.entries.map((e) => [e.endpointIdentity, e.direction, e.peerIdentity, e.port, e.proto, e.deny]).sort();
    expect(rows).toEqual(
      [
        [o, 'egress', ident(EPS, 'payment-service'), 8080, 6, false],
        [o, 'egress', ident(EPS, 'payment-service'), 8080, 17, false],
        [o, 'egress', ident(EPS, 'payment-service'), 8080, 132, false],
        [o, 'ingress', ident(EPS, 'api-gateway', 'shop'), 8080, 6, false],
      ].sort(),
    );
    expect(c.refs[0]).toMatchObject({ name: 'order-service-policy', namespace: 'shop', kind: 'CiliumNetworkPolicy' });
    expect(c.refs[0]!.labels).toContain('k8s:io.cilium.k8s.policy.name=order-service-policy');
    expect(typeof c.refs[0]!.revision).toBe('bigint');
  });
});

describe('selectors', () => {
  it.each([
    ['In', '{ key: app, operator: In, values: [api-gateway, other] }', ['api-gateway', 'other'], ['payment-service']],
    ['NotIn', '{ key: app, operator: NotIn, values: [api-gateway] }', ['other', 'payment-service'], ['api-gateway']],
    ['Exists', '{ key: tier, operator: Exists }', ['payment-service'], ['api-gateway', 'other']],
    ['DoesNotExist', '{ key: tier, operator: DoesNotExist }', ['api-gateway', 'other'], ['payment-service']],
  ])('matchExpressions %s', (_op, expr, yes, no) => {
    const c = compile(cnp('p', `endpointSelector: { matchLabels: { app: order-service } }\ningress:\n  - fromEndpoints: [ { matchExpressions: [ ${expr} ] } ]`));
    for (const y of yes) expect(allowed(c, `shop/${y}`, 'order-service', 80), y).toBe(true);
    for (const n of no) expect(allowed(c, `shop/${n}`, 'order-service', 80), n).toBe(false);
  });
  it('k8s: and any: prefixes mean the same label', () => {
    const c = compile(cnp('p', 'endpointSelector: { matchLabels: { "k8s:app": order-service } }\ningress:\n  - fromEndpoints: [ { matchLabels: { "any:app": other } } ]'));
    expect(allowed(c, 'other', 'order-service', 80)).toBe(true);
    expect(allowed(c, 'shop/api-gateway', 'order-service', 80)).toBe(false);
  });
  it('an empty endpointSelector selects every pod of the namespace, and only those', () => {
    const c = compile(cnp('p', 'endpointSelector: {}\ningress: [ {} ]'));
    expect(allowed(c, 'other', 'order-service', 80)).toBe(false);
    expect(allowed(c, 'other', 'staging/api-gateway', 80)).toBe(true);
  });
});

describe('defaults and directions', () => {
  it('an ingress-only policy leaves egress open', () => {
    const c = compile(cnp('p', 'endpointSelector: { matchLabels: { app: order-service } }\ningress: []'));
    expect(allowed(c, 'shop/api-gateway', 'order-service', 8080)).toBe(false);
    expect(allowed(c, 'order-service', 'other', 8080)).toBe(true);
  });
  it('allow rules add up across rules and policies', () => {
    const c = compile(
      cnp('a', 'endpointSelector: { matchLabels: { app: order-service } }\ningress:\n  - fromEndpoints: [ { matchLabels: { app: api-gateway } } ]') +
        '---\n' +
        cnp('b', 'endpointSelector: { matchLabels: { tier: backend } }\ningress:\n  - fromEndpoints: [ { matchLabels: { app: other } } ]\n    toPorts: [ { ports: [ { port: "9090", protocol: TCP } ] } ]'),
    );
    expect(allowed(c, 'shop/api-gateway', 'order-service', 1234)).toBe(true);
    expect(allowed(c, 'other', 'order-service', 9090)).toBe(true);
    expect(allowed(c, 'other', 'order-service', 9091)).toBe(false);
    expect(allowed(c, 'other', 'payment-service', 9090)).toBe(true);
    expect(allowed(c, 'shop/api-gateway', 'payment-service', 9090)).toBe(false);
  });
  it('toPorts without peers allows any peer on those ports', () => {
    const c = compile(cnp('p', 'endpointSelector: { matchLabels: { app: order-service } }\ningress:\n  - toPorts: [ { ports: [ { port: "80", protocol: TCP } ] } ]'));
    expect(allowed(c, 'other', 'order-service', 80)).toBe(true);
    expect(allowed(c, RESERVED_IDENTITIES.world, 'order-service', 80)).toBe(true);
    expect(allowed(c, 'other', 'order-service', 81)).toBe(false);
  });
});

describe('deny wins over allow', () => {
  const c = compile(
    cnp('allow-all', 'endpointSelector: { matchLabels: { app: order-service } }\ningress:\n  - fromEntities: [ all ]') +
      '---\n' +
      cnp('deny-other', 'endpointSelector: { matchLabels: { app: order-service } }\ningressDeny:\n  - fromEndpoints: [ { matchLabels: { app: other } } ]\n    toPorts: [ { ports: [ { port: "8080", protocol: TCP } ] } ]'),
  );
  it('denies the narrower deny even though a broader allow is found later in the lookup order', () => {
    const v = checkConnection(c, ident(EPS, 'other'), ident(EPS, 'order-service'), 8080, 'TCP');
    expect(v.allowed).toBe(false);
    expect(v.ingress.defaultDeny).toBe(false);
    expect(v.policies.map((p) => p.name)).toEqual(['deny-other']);
    expect(allowed(c, 'other', 'order-service', 8081)).toBe(true);
    expect(allowed(c, 'shop/api-gateway', 'order-service', 8080)).toBe(true);
  });
  it('writes the intersection of a peer allow and a port deny as a deny row', () => {
    const c2 = compile(
      cnp('allow-gw', 'endpointSelector: { matchLabels: { app: order-service } }\ningress:\n  - fromEndpoints: [ { matchLabels: { app: api-gateway } } ]') +
        '---\n' +
        cnp('deny-22', 'endpointSelector: { matchLabels: { app: order-service } }\ningressDeny:\n  - toPorts: [ { ports: [ { port: "22", protocol: TCP } ] } ]'),
    );
    const gw = ident(EPS, 'api-gateway', 'shop');
    // Without the (gw, 22, TCP) deny row, the (gw, 0, 0) allow would be the first hit.
    expect(c2.entries).toContainEqual(expect.objectContaining({ peerIdentity: gw, port: 22, proto: 6, deny: true, ruleRef: 2 }));
    expect(allowed(c2, 'shop/api-gateway', 'order-service', 22)).toBe(false);
    expect(allowed(c2, 'shop/api-gateway', 'order-service', 23)).toBe(true);
  });
});

describe('ports and ranges', () => {
  it('expands endPort ranges and protocols', () => {
    const c = compile(cnp('p', 'endpointSelector: { matchLabels: { app: order-service } }\ningress:\n  - toPorts: [ { ports: [ { port: "8000", endPort: 8002, protocol: TCP }, { port: 53, protocol: UDP } ] } ]'));
    expect(c.entries).toHaveLength(4);
    for (const p of [8000, 8001, 8002]) expect(allowed(c, 'other', 'order-service', p)).toBe(true);
    expect(allowed(c, 'other', 'order-service', 8003)).toBe(false);
    expect(allowed(c, 'other', 'order-service', 8000, 'UDP')).toBe(false);
    expect(allowed(c, 'other', 'order-service', 53, 'UDP')).toBe(true);
  });
  it('port 0 with a protocol means every port of that protocol', () => {
    const c = compile(cnp('p', 'endpointSelector: { matchLabels: { app: order-service } }\ningress:\n  - toPorts: [ { ports: [ { port: "0", protocol: UDP } ] } ]'));
    expect(allowed(c, 'other', 'order-service', 5353, 'UDP')).toBe(true);
    expect(allowed(c, 'other', 'order-service', 5353, 'TCP')).toBe(false);
  });
});

describe('namespaces', () => {
  it('peer selectors match only in the policy namespace unless the namespace label says otherwise', () => {
    const c = compile(
      cnp('p', 'endpointSelector: { matchLabels: { app: order-service } }\ningress:\n  - fromEndpoints: [ { matchLabels: { app: api-gateway, "k8s:io.kubernetes.pod.namespace": staging } } ]'),
    );
    expect(allowed(c, 'staging/api-gateway', 'order-service', 80)).toBe(true);
    expect(allowed(c, 'shop/api-gateway', 'order-service', 80)).toBe(false);
  });
  it('a policy in another namespace does not select shop pods', () => {
    const c = compile(cnp('p', 'endpointSelector: { matchLabels: { app: order-service } }\ningress: []', 'staging'));
    expect(c.enforced.size).toBe(0);
    expect(allowed(c, 'other', 'order-service', 80)).toBe(true);
  });
  it('DNS to the cluster resolver is allowable like any rule', () => {
    const c = compile(
      cnp('dns', 'endpointSelector: { matchLabels: { app: order-service } }\negress:\n  - toEndpoints: [ { matchLabels: { "k8s:io.kubernetes.pod.namespace": kube-system, k8s-app: kube-dns } } ]\n    toPorts: [ { ports: [ { port: "53", protocol: UDP }, { port: "53", protocol: TCP } ] } ]'),
    );
    expect(allowed(c, 'order-service', 'coredns', 53, 'UDP')).toBe(true);
    expect(allowed(c, 'order-service', 'coredns', 53, 'TCP')).toBe(true);
    expect(allowed(c, 'order-service', 'coredns', 54, 'UDP')).toBe(false);
    expect(allowed(c, 'order-service', 'payment-service', 53, 'UDP')).toBe(false);
  });
});

describe('entities and CIDRs', () => {
  it('world, cluster, host and all', () => {
    const c = compile(
      cnp('p', 'endpointSelector: { matchLabels: { app: order-service } }\negress:\n  - toEntities: [ world ]\n    toPorts: [ { ports: [ { port: "443", protocol: TCP } ] } ]\n  - toEntities: [ cluster ]\n    toPorts: [ { ports: [ { port: "80", protocol: TCP } ] } ]\ningress:\n  - fromEntities: [ host ]'),
    );
    const world = identityForIp(c, EPS, '8.8.8.8');
    expect(world).toBe(RESERVED_IDENTITIES.world);
    expect(allowed(c, 'order-service', world, 443)).toBe(true);
    expect(allowed(c, 'order-service', world, 80)).toBe(false);
    expect(allowed(c, 'order-service', 'other', 80)).toBe(true);
    expect(allowed(c, 'order-service', 'other', 443)).toBe(false);
    expect(allowed(c, 'order-service', RESERVED_IDENTITIES.host, 80)).toBe(true);
    expect(allowed(c, RESERVED_IDENTITIES.host, 'order-service', 9999)).toBe(true);
    expect(allowed(c, 'other', 'order-service', 9999)).toBe(false);
    const all = compile(cnp('p', 'endpointSelector: { matchLabels: { app: order-service } }\ningress:\n  - fromEntities: [ all ]'));
    expect(all.entries).toEqual([expect.objectContaining({ peerIdentity: 0, port: 0, proto: 0 })]);
  });
  it('toCIDR and toCIDRSet with except get CIDR identities, longest prefix wins', () => {
    const c = compile(
      cnp('p', 'endpointSelector: { matchLabels: { app: order-service } }\negress:\n  - toCIDR: [ 192.0.2.0/24 ]\n  - toCIDRSet: [ { cidr: 198.51.100.0/24, except: [ 198.51.100.128/25 ] } ]'),
    );
    expect(c.cidrIdentities.map((x) => x.cidr)).toEqual(['192.0.2.0/24', '198.51.100.0/24', '198.51.100.128/25']);
    for (const x of c.cidrIdentities) expect(x.identity).toBeGreaterThanOrEqual(MIN_CIDR_IDENTITY);
    const to = (ip: string) => allowed(c, 'order-service', identityForIp(c, EPS, ip), 443);
    expect(to('192.0.2.7')).toBe(true);
    expect(to('198.51.100.7')).toBe(true);
    expect(to('198.51.100.200')).toBe(false);
    expect(to('203.0.113.1')).toBe(false);
    // Endpoint addresses keep their label identity even inside a CIDR.
    expect(identityForIp(c, EPS, '10.205.2.10')).toBe(ident(EPS, 'payment-service'));
  });
});

const np = (spec: string, name = 'np', ns = 'shop') =>
  `apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: { name: ${name}, namespace: ${ns} }\nspec:\n${spec.replace(/^/gm, '  ')}\n`;

describe('Kubernetes NetworkPolicy', () => {
  it('podSelector + ingress.from podSelector + ports (TCP by default)', () => {
    const c = compile(np('podSelector: { matchLabels: { app: order-service } }\ningress:\n  - from: [ { podSelector: { matchLabels: { app: api-gateway } } } ]\n    ports: [ { port: 8080 } ]'));
    expect(allowed(c, 'shop/api-gateway', 'order-service', 8080)).toBe(true);
    expect(allowed(c, 'shop/api-gateway', 'order-service', 8080, 'UDP')).toBe(false);
    expect(allowed(c, 'staging/api-gateway', 'order-service', 8080)).toBe(false);
    expect(allowed(c, 'order-service', 'other', 1)).toBe(true); // policyTypes defaults to Ingress only
    expect(c.refs[0]!.kind).toBe('NetworkPolicy');
  });
  it('namespaceSelector by kubernetes.io/metadata.name, and with podSelector', () => {
    const c = compile(np('podSelector: {}\ningress:\n  - from: [ { namespaceSelector: { matchLabels: { kubernetes.io/metadata.name: staging } }, podSelector: { matchLabels: { app: api-gateway } } } ]'));
    expect(allowed(c, 'staging/api-gateway', 'order-service', 1)).toBe(true);
    expect(allowed(c, 'shop/api-gateway', 'order-service', 1)).toBe(false);
    const any = compile(np('podSelector: {}\ningress:\n  - from: [ { namespaceSelector: {} } ]'));
    expect(allowed(any, 'staging/api-gateway', 'order-service', 1)).toBe(true);
    expect(allowed(any, RESERVED_IDENTITIES.world, 'order-service', 1)).toBe(false);
  });
  it('empty from allows every source; no ingress rules deny all; Egress policyType', () => {
    const open = compile(np('podSelector: { matchLabels: { app: order-service } }\ningress: [ {} ]'));
    expect(allowed(open, RESERVED_IDENTITIES.world, 'order-service', 1)).toBe(true);
    const closed = compile(np('podSelector: { matchLabels: { app: order-service } }\npolicyTypes: [ Ingress, Egress ]'));
    expect(allowed(closed, 'other', 'order-service', 1)).toBe(false);
    expect(allowed(closed, 'order-service', 'other', 1)).toBe(false);
    const egressOnly = compile(np('podSelector: { matchLabels: { app: order-service } }\npolicyTypes: [ Egress ]\negress:\n  - to: [ { ipBlock: { cidr: 10.0.0.0/8, except: [ 10.1.0.0/16 ] } } ]\n    ports: [ { port: 5432, protocol: TCP } ]'));
    expect(allowed(egressOnly, 'other', 'order-service', 1)).toBe(true);
    const to = (ip: string, port: number) => allowed(egressOnly, 'order-service', identityForIp(egressOnly, EPS, ip), port);
    expect(to('10.9.9.9', 5432)).toBe(true);
    expect(to('10.1.2.3', 5432)).toBe(false);
    expect(to('10.9.9.9', 5433)).toBe(false);
  });
});

describe('invalid policies', () => {
  it.each([
    ['unknown field', cnp('p', 'endpointSelector: {}\ningres: []'), /document 1: spec: unknown field "ingres"/],
    ['bad operator', cnp('p', 'endpointSelector: { matchExpressions: [ { key: app, operator: Like, values: [a] } ] }'), /spec\.endpointSelector\.matchExpressions\[0\]\.operator: unknown operator "Like"/],
    ['In without values', cnp('p', 'endpointSelector: { matchExpressions: [ { key: app, operator: In } ] }'), /needs at least one value/],
    ['bad label key', cnp('p', 'endpointSelector: { matchLabels: { "bad key": x } }'), /invalid label key "bad key"/],
    ['bad port', cnp('p', 'endpointSelector: {}\ningress:\n  - toPorts: [ { ports: [ { port: "70000" } ] } ]'), /port 70000 out of range/],
    ['bad port name', cnp('p', 'endpointSelector: {}\ningress:\n  - toPorts: [ { ports: [ { port: http_x } ] } ]'), /invalid port "http_x" \(a number, or a name/],
    ['named port range', np('podSelector: {}\ningress:\n  - ports: [ { port: http, endPort: 90 } ]'), /endPort needs a numeric port, not the named port "http"/],
    ['bad protocol', cnp('p', 'endpointSelector: {}\ningress:\n  - toPorts: [ { ports: [ { port: "80", protocol: ICMP } ] } ]'), /invalid protocol "ICMP"/],
    ['inverted range', cnp('p', 'endpointSelector: {}\ningress:\n  - toPorts: [ { ports: [ { port: "90", endPort: 80 } ] } ]'), /port range 90-80 is inverted/],
    ['absurd range', cnp('p', 'endpointSelector: {}\ningress:\n  - toPorts: [ { ports: [ { port: "1", endPort: 65535 } ] } ]'), /spans 65535 ports/],
    ['L7 rules', cnp('p', 'endpointSelector: {}\ningress:\n  - toPorts: [ { ports: [ { port: "80" } ], rules: { http: [ {} ] } } ]'), /rules: not supported/],
    ['unknown entity', cnp('p', 'endpointSelector: {}\negress:\n  - toEntities: [ internet ]'), /unknown entity "internet"/],
    ['bad CIDR', cnp('p', 'endpointSelector: {}\negress:\n  - toCIDR: [ 10.0.0.0/33 ]'), /invalid CIDR "10\.0\.0\.0\/33"/],
    ['except outside', cnp('p', 'endpointSelector: {}\negress:\n  - toCIDRSet: [ { cidr: 10.0.0.0/8, except: [ 11.0.0.0/8 ] } ]'), /11\.0\.0\.0\/8 is not inside 10\.0\.0\.0\/8/],
    ['missing selector', cnp('p', 'ingress: []'), /missing endpointSelector/],
    ['unknown kind', 'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: x }\n', /unsupported kind "ConfigMap"/],
    ['wrong apiVersion', 'apiVersion: cilium.io/v3\nkind: CiliumNetworkPolicy\nmetadata: { name: x }\nspec: { endpointSelector: {} }\n', /unsupported apiVersion "cilium\.io\/v3"/],
    ['bad policyType', np('podSelector: {}\npolicyTypes: [ Both ]'), /invalid policy type "Both"/],
    ['ipBlock with podSelector', np('podSelector: {}\ningress:\n  - from: [ { ipBlock: { cidr: 10.0.0.0/8 }, podSelector: {} } ]'), /ipBlock cannot be combined/],
    ['syntax', 'kind: [\n', /document 1: YAML syntax error at line/],
  ])('%s', (_what, yaml, re) => {
    expect(() => parsePolicies(yaml, 'p.yaml')).toThrow(FlowctlError);
    expect(() => parsePolicies(yaml, 'p.yaml')).toThrow(expect.objectContaining({ code: 'POLICY', file: 'p.yaml' }));
    expect(() => parsePolicies(yaml, 'p.yaml')).toThrow(/^p\.yaml: document \d+: /);
    expect(() => parsePolicies(yaml, 'p.yaml')).toThrow(re);
  });
  it('numbers documents from 1 and accepts v1alpha1, specs and empty documents', () => {
    const good = cnp('a', 'endpointSelector: {}').replace('cilium.io/v2', 'cilium.io/v1alpha1');
    const specs = 'apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: { name: s, namespace: shop }\nspecs:\n  - endpointSelector: { matchLabels: { app: a } }\n    ingress: []\n  - endpointSelector: { matchLabels: { app: b } }\n    egress: []\n';
    const docs = parsePolicies(`${good}---\n---\n${specs}`, 'p.yaml');
    expect(docs.map((d) => [d.name, d.document, d.rules.length])).toEqual([['a', 1, 1], ['s', 3, 2]]);
    expect(() => parsePolicies(`${good}---\n${cnp('b', 'endpointSelector: {}\nbogus: 1')}`, 'p.yaml')).toThrow(/^p\.yaml: document 2: spec: unknown field "bogus"$/);
  });
});
