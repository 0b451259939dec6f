// Kubernetes NetworkPolicy conformance on the compile side (issue 23): ipBlock on pod addresses,
// named ports resolved per endpoint, namespace labels. The same cases on the kernel:
// test/policy/netpol.e2e.bpf.test.ts.
import { describe, expect, it } from 'vitest';
import { checkConnection, endpointIdentities, identityForIp } from './check.js';
import { compilePolicies, type CompiledPolicy } from './compile.js';
import { parseEndpoints, parseEndpointsFast, parseEndpointsReference, type EndpointSet } from './endpoints.js';
import { isFlowctlError } from '@flowctl/flow/errors';
import { MIN_CIDR_IDENTITY } from './identity.js';
import { parsePolicies } from './policy-doc.js';

// Two pods with the same labels (web-1, web-2), one client, one pod in another namespace.
const EPS_TEXT = `namespaces:
  - { name: shop, labels: { team: blue } }
  - { name: lab, labels: { team: red } }
endpoints:
  - { name: web-1, namespace: shop, labels: { app: web }, ips: [10.1.0.1, "fd00::1"], ports: [ { name: serve, port: 80 }, { name: dns, port: 53, protocol: UDP } ] }
  - { name: web-2, namespace: shop, labels: { app: web }, ips: [10.1.0.2], ports: [ { name: serve, port: 8080 } ] }
  - { name: client, namespace: shop, labels: { app: client }, ips: [10.1.0.9] }
  - { name: probe, namespace: lab, labels: { app: client }, ips: [10.2.0.9] }
`;
const EPS = parseEndpoints(EPS_TEXT, 'eps.yaml');

const np = (spec: string, name = 'np', ns = 'shop') =>
  `apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: { name: ${name}, namespace: ${ns} }\nspec:\n${spec.replace(/^/gm, '  ')}\n`;
const cnp = (spec: string, name = 'cnp', ns = 'shop') =>
  `apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: { name: ${name}, namespace: ${ns} }\nspec:\n${spec.replace(/^/gm, '  ')}\n`;

const compile = (yaml: string, eps: EndpointSet = EPS): CompiledPolicy => compilePolicies(parsePolicies(yaml, 'p.yaml'), eps);
/** As the datapath decides: both addresses through the ipcache (identityForIp), then both directions. */
const pass = (c: CompiledPolicy, from: string, to: string, port: number, proto: 'TCP' | 'UDP' = 'TCP', eps = EPS): boolean =>
  checkConnection(c, identityForIp(c, eps, from), identityForIp(c, eps, to), port, proto).allowed;

describe('ipBlock selects pod addresses (Kubernetes), toCIDR does not (Cilium)', () => {
  it('an ipBlock /32 on one of two pods with the same labels allows that pod only', () => {
    const c = compile(np('podSelector: { matchLabels: { app: client } }\npolicyTypes: [ Egress ]\negress:\n  - to: [ { ipBlock: { cidr: 10.1.0.2/32 } } ]'));
    expect(pass(c, '10.1.0.9', '10.1.0.2', 80)).toBe(true);
    expect(pass(c, '10.1.0.9', '10.1.0.1', 80)).toBe(false);
    expect(pass(c, '10.1.0.9', '10.9.9.9', 80)).toBe(false);
    // web-2's address has an identity of its own; web-1 keeps the label identity.
    const web1 = EPS.endpoints.find((e) => e.name === 'web-1')!;
    const web2 = EPS.endpoints.find((e) => e.name === 'web-2')!;
    expect(identityForIp(c, EPS, '10.1.0.1')).toBe(web1.identity);
    expect(identityForIp(c, EPS, '10.1.0.2')).not.toBe(web2.identity);
    expect(identityForIp(c, EPS, '10.1.0.2')).toBeLessThan(MIN_CIDR_IDENTITY);
    expect([...c.addressIdentities]).toEqual([['10.1.0.2', identityForIp(c, EPS, '10.1.0.2')]]);
    expect(endpointIdentities(c, web2)).toEqual([identityForIp(c, EPS, '10.1.0.2')]);
  });

  it('the split identity keeps the labels: selectors still select both pods', () => {
    const c = compile(
      np('podSelector: { matchLabels: { app: client } }\npolicyTypes: [ Egress ]\negress:\n  - to: [ { ipBlock: { cidr: 10.1.0.2/32 } } ]', 'a') +
        '---\n' +
        np('podSelector: { matchLabels: { app: web } }\ningress:\n  - from: [ { podSelector: { matchLabels: { app: client } } } ]\n    ports: [ { port: 80 } ]', 'b'),
    );
    expect(pass(c, '10.1.0.9', '10.1.0.2', 80)).toBe(true);
    expect(pass(c, '10.1.0.9', '10.1.0.2', 81)).toBe(false);
    expect(pass(c, '10.2.0.9', '10.1.0.2', 80)).toBe(false);
    expect(pass(c, '10.2.0.9', '10.1.0.1', 80)).toBe(false);
  });

  it('a wide block with an except allows every pod in it but the excepted one', () => {
    const c = compile(np('podSelector: { matchLabels: { app: client } }\npolicyTypes: [ Egress ]\negress:\n  - to: [ { ipBlock: { cidr: 10.0.0.0/8, except: [ 10.1.0.1/32 ] } } ]'));
    expect(pass(c, '10.1.0.9', '10.1.0.2', 80)).toBe(true);
    expect(pass(c, '10.1.0.9', '10.2.0.9', 80)).toBe(true);
    expect(pass(c, '10.1.0.9', '10.7.7.7', 80)).toBe(true); // not a pod: the CIDR identity
    expect(pass(c, '10.1.0.9', '10.1.0.1', 80)).toBe(false);
    expect(pass(c, '10.1.0.9', 'fd00::1', 80)).toBe(false); // web-1's IPv6 address is outside the block
    expect(pass(c, '10.1.0.9', '11.0.0.1', 80)).toBe(false);
  });

  it('ingress from an ipBlock admits pods by their source address', () => {
    const c = compile(np('podSelector: { matchLabels: { app: web } }\ningress:\n  - from: [ { ipBlock: { cidr: 10.2.0.0/16 } } ]'));
    expect(pass(c, '10.2.0.9', '10.1.0.1', 80)).toBe(true);
    expect(pass(c, '10.1.0.9', '10.1.0.1', 80)).toBe(false);
  });

  it('CNP toCIDR keeps Cilium meaning: a pod address in the CIDR is not matched', () => {
    const c = compile(cnp('endpointSelector: { matchLabels: { app: client } }\negress:\n  - toCIDR: [ 10.1.0.2/32 ]\n  - toCIDRSet: [ { cidr: 10.0.0.0/8, except: [ 10.1.0.1/32 ] } ]'));
    expect(pass(c, '10.1.0.9', '10.1.0.2', 80)).toBe(false);
    expect(pass(c, '10.1.0.9', '10.2.0.9', 80)).toBe(false);
    expect(pass(c, '10.1.0.9', '10.7.7.7', 80)).toBe(true);
    expect(c.addressIdentities.size).toBe(0);
  });

  it('identities are the same whatever the file order', () => {
    const reordered = parseEndpoints(EPS_TEXT.split('\n').filter((l) => !l.includes('web-1')).join('\n') + '  - { name: web-1, namespace: shop, labels: { app: web }, ips: [10.1.0.1, "fd00::1"] }\n', 'eps.yaml');
    const yaml = np('podSelector: {}\npolicyTypes: [ Egress ]\negress:\n  - to: [ { ipBlock: { cidr: 10.1.0.0/31 } } ]');
    expect([...compile(yaml, reordered).addressIdentities].sort()).toEqual([...compile(yaml).addressIdentities].sort());
  });
});

describe('named ports', () => {
  it('ingress resolves the name on each selected pod: one name, two numbers', () => {
    const c = compile(np('podSelector: { matchLabels: { app: web } }\ningress:\n  - ports: [ { port: serve } ]'));
    expect(pass(c, '10.1.0.9', '10.1.0.1', 80)).toBe(true);
    expect(pass(c, '10.1.0.9', '10.1.0.1', 8080)).toBe(false);
    expect(pass(c, '10.1.0.9', '10.1.0.2', 8080)).toBe(true);
    expect(pass(c, '10.1.0.9', '10.1.0.2', 80)).toBe(false);
    expect(pass(c, '10.1.0.9', '10.1.0.1', 80, 'UDP')).toBe(false); // the policy says TCP (default)
  });

  it('egress resolves the name on each destination pod', () => {
    const c = compile(cnp('endpointSelector: { matchLabels: { app: client } }\negress:\n  - toEndpoints: [ { matchLabels: { app: web } } ]\n    toPorts: [ { ports: [ { port: serve }, { port: dns } ] } ]'));
    expect(pass(c, '10.1.0.9', '10.1.0.1', 80)).toBe(true);
    expect(pass(c, '10.1.0.9', '10.1.0.2', 8080)).toBe(true);
    expect(pass(c, '10.1.0.9', '10.1.0.2', 80)).toBe(false);
    expect(pass(c, '10.1.0.9', '10.1.0.1', 53, 'UDP')).toBe(true); // CNP without protocol: the declared one
    expect(pass(c, '10.1.0.9', '10.1.0.1', 53, 'TCP')).toBe(false);
    expect(pass(c, '10.1.0.9', '10.2.0.9', 80)).toBe(false);
  });

  it('egress to any peer on a named port reaches the pods that declare it', () => {
    const c = compile(np('podSelector: { matchLabels: { app: client } }\npolicyTypes: [ Egress ]\negress:\n  - ports: [ { port: serve }, { port: 443 } ]'));
    expect(pass(c, '10.1.0.9', '10.1.0.2', 8080)).toBe(true);
    expect(pass(c, '10.1.0.9', '10.1.0.1', 8080)).toBe(false);
    expect(pass(c, '10.1.0.9', '10.2.0.9', 80)).toBe(false);
    expect(pass(c, '10.1.0.9', '10.7.7.7', 443)).toBe(true);
  });

  it('a name no selected pod declares allows nothing; SCTP named ports compile', () => {
    const c = compile(np('podSelector: { matchLabels: { app: web } }\ningress:\n  - ports: [ { port: nosuch }, { port: serve, protocol: SCTP } ]'));
    expect(pass(c, '10.1.0.9', '10.1.0.1', 80)).toBe(false);
    expect(c.entries).toEqual([]);
    expect(c.enforced.get(identityForIp(c, EPS, '10.1.0.1'))).toEqual({ ingress: true, egress: false });
    const sctp = parseEndpoints('endpoints:\n  - { name: s, namespace: shop, labels: { app: web }, ips: [10.1.0.5], ports: [ { name: serve, port: 9, protocol: SCTP } ] }\n', 'e.yaml');
    const cs = compile(np('podSelector: { matchLabels: { app: web } }\ningress:\n  - ports: [ { port: serve, protocol: SCTP } ]'), sctp);
    expect(cs.entries.map((e) => [e.port, e.proto])).toEqual([[9, 132]]);
  });

  it('pods with the same labels and different numbers for a name get identities of their own', () => {
    const c = compile(np('podSelector: { matchLabels: { app: web } }\ningress:\n  - ports: [ { port: serve } ]'));
    expect(identityForIp(c, EPS, '10.1.0.1')).not.toBe(identityForIp(c, EPS, '10.1.0.2'));
    // Without a named port in any policy, they share the label identity.
    const plain = compile(np('podSelector: { matchLabels: { app: web } }\ningress:\n  - ports: [ { port: 80 } ]'));
    expect(identityForIp(plain, EPS, '10.1.0.1')).toBe(identityForIp(plain, EPS, '10.1.0.2'));
  });
});

describe('namespace labels', () => {
  const byTeam = (team: string) => np(`podSelector: { matchLabels: { app: web } }\ningress:\n  - from: [ { namespaceSelector: { matchLabels: { team: ${team} } } } ]`);

  it('namespaceSelector matches the labels of the namespaces list and metadata.name', () => {
    expect(pass(compile(byTeam('red')), '10.2.0.9', '10.1.0.1', 80)).toBe(true);
    expect(pass(compile(byTeam('red')), '10.1.0.9', '10.1.0.1', 80)).toBe(false);
    expect(pass(compile(byTeam('blue')), '10.1.0.9', '10.1.0.1', 80)).toBe(true);
    const byName = np('podSelector: { matchLabels: { app: web } }\ningress:\n  - from: [ { namespaceSelector: { matchLabels: { kubernetes.io/metadata.name: lab } } } ]');
    expect(pass(compile(byName), '10.2.0.9', '10.1.0.1', 80)).toBe(true);
  });

  it('a namespace label change changes what the same policy selects', () => {
    const moved = parseEndpoints(EPS_TEXT.replace('team: red', 'team: blue'), 'eps.yaml');
    expect(pass(compile(byTeam('red'), moved), '10.2.0.9', '10.1.0.1', 80, 'TCP', moved)).toBe(false);
    expect(pass(compile(byTeam('blue'), moved), '10.2.0.9', '10.1.0.1', 80, 'TCP', moved)).toBe(true);
    // Identities do not depend on namespace labels: only policy rows change.
    expect(moved.endpoints.map((e) => e.identity)).toEqual(EPS.endpoints.map((e) => e.identity));
  });

  it('CNP endpoint selectors see them as io.cilium.k8s.namespace.labels.*', () => {
    const c = compile(cnp('endpointSelector: { matchLabels: { app: web } }\ningress:\n  - fromEndpoints: [ { matchLabels: { io.cilium.k8s.namespace.labels.team: red, io.kubernetes.pod.namespace: lab } } ]'));
    expect(pass(c, '10.2.0.9', '10.1.0.1', 80)).toBe(true);
    expect(pass(c, '10.1.0.9', '10.1.0.1', 80)).toBe(false);
  });
});

describe('endpoints file: namespaces and ports', () => {
  it('fast path and reference reader agree', () => {
    const fast = parseEndpointsFast(EPS_TEXT);
    expect(fast).toBeDefined();
    expect(parseEndpointsReference(EPS_TEXT, 'eps.yaml')).toEqual(fast);
    expect(fast!.namespaces).toEqual(new Map([['shop', { team: 'blue' }], ['lab', { team: 'red' }]]));
    expect(fast!.endpoints[1]!.ports).toEqual([{ name: 'serve', port: 8080, protocol: 'TCP' }]);
  });

  const errorOf = (text: string): string => {
    try {
      parseEndpoints(text, 'eps.yaml');
    } catch (e) {
      if (isFlowctlError(e, 'CONFIG')) return e.message;
      throw e;
    }
    throw new Error('accepted');
  };

  it.each([
    ['metadata.name written', 'namespaces:\n  - name: x\n    labels: { kubernetes.io/metadata.name: y }\nendpoints: []\n', 'eps.yaml:2: namespace x: label "kubernetes.io/metadata.name" is set from "name"'],
    ['duplicate namespace', 'namespaces:\n  - { name: x }\n  - { name: x }\nendpoints: []\n', 'eps.yaml:3: duplicate namespace x'],
    ['unknown namespace field', 'namespaces:\n  - { name: x, owner: y }\nendpoints: []\n', 'eps.yaml:2: unknown field "owner" in namespace (expected name, labels)'],
    ['bad port name', 'endpoints:\n  - name: a\n    namespace: x\n    ports:\n      - { name: serve, port: 80 }\n      - { name: Serve_1, port: 81 }\n', 'eps.yaml:6: invalid port name "Serve_1"'],
    ['duplicate port name', 'endpoints:\n  - name: a\n    namespace: x\n    ports: [ { name: s, port: 80 }, { name: s, port: 81 } ]\n', 'eps.yaml:4: duplicate port name "s"'],
    ['bad port number', 'endpoints:\n  - name: a\n    namespace: x\n    ports: [ { name: s, port: 0 } ]\n', 'eps.yaml:4: port "s": invalid number "0" (1-65535)'],
    ['bad protocol', 'endpoints:\n  - name: a\n    namespace: x\n    ports: [ { name: s, port: 1, protocol: ICMP } ]\n', 'eps.yaml:4: port "s": invalid protocol "ICMP"'],
  ])('%s', (_what, text, msg) => {
    expect(errorOf(text).startsWith(msg)).toBe(true);
  });
});
