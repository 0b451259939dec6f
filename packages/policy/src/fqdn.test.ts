import { describe, expect, it } from 'vitest';
import { checkConnection, lookupEgressFqdn } from './check.js';
import { compilePolicies } from './compile.js';
import { parseEndpoints } from './endpoints.js';
import { FQDN_MATCH_ANY, FQDN_MATCH_GLOB, FQDN_MATCH_LABEL, FQDN_MATCH_NAME, fqdnMatches, kernelMatch, wireNameHash } from './fqdn.js';
import { MIN_CIDR_IDENTITY, MIN_FQDN_IDENTITY, RESERVED_IDENTITIES } from './identity.js';
import { parsePolicies } from './policy-doc.js';

const EPS = parseEndpoints(
  'endpoints:\n' +
    '  - { name: client, namespace: fcz, node: n1, labels: { app: client }, ips: [10.99.0.2] }\n' +
    '  - { name: dns, namespace: fcz, node: n1, labels: { app: dns }, ips: [10.99.0.3] }\n' +
    '  - { name: other, namespace: fcz, node: n1, labels: { app: other }, ips: [10.99.0.4] }\n',
  'eps.yaml',
);
const id = (name: string): number => EPS.endpoints.find((e) => e.name === name)!.identity;

const cnp = (spec: string, name = 'fq') =>
  `apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: { name: ${name}, namespace: fcz }\nspec:\n${spec.replace(/^/gm, '  ')}\n`;

const POLICY = cnp(
  'endpointSelector: { matchLabels: { app: client } }\n' +
    'egress:\n' +
    '  - toEndpoints: [ { matchLabels: { app: dns } } ]\n' +
    '    toPorts: [ { ports: [ { port: "53", protocol: ANY } ], rules: { dns: [ { matchPattern: "*" } ] } } ]\n' +
    '  - toFQDNs: [ { matchPattern: "*.allowed.test" }, { matchName: "Exact.Test." } ]\n' +
    '    toPorts: [ { ports: [ { port: "80", protocol: TCP } ] } ]\n',
);

describe('Cilium matchName / matchPattern semantics', () => {
  it.each([
    [{ matchPattern: '*.allowed.test' }, 'api.allowed.test', true],
    [{ matchPattern: '*.allowed.test' }, 'API.Allowed.Test.', true],
    [{ matchPattern: '*.allowed.test' }, 'allowed.test', false],
    [{ matchPattern: '*.allowed.test' }, 'a.b.allowed.test', false],
    [{ matchPattern: '*.allowed.test' }, 'xallowed.test', false],
    [{ matchPattern: '*allowed.test' }, 'allowed.test', true],
    [{ matchPattern: '*allowed.test' }, 'notallowed.test', true],
    [{ matchPattern: '*allowed.test' }, 'www.allowed.test', false],
    [{ matchPattern: 'sub*.allowed.test' }, 'subway.allowed.test', true],
    [{ matchPattern: 'sub*.allowed.test' }, 'www.allowed.test', false],
    [{ matchPattern: 'sub*.allowed.test' }, 'sub.allowed.test', true],
    [{ matchPattern: 'sub*.allowed.test' }, 'sub.x.allowed.test', false],
    [{ matchPattern: 'api-*.allowed.test' }, 'api-v2.allowed.test', true],
    [{ matchPattern: 'api-*.allowed.test' }, 'API-V2_b.allowed.test.', true],
    [{ matchPattern: 'api-*.allowed.test' }, 'api-v2.eu.allowed.test', false],
    [{ matchPattern: 'api-*.allowed.test' }, 'web.allowed.test', false],
    [{ matchPattern: 'api-*.allowed.test' }, 'apiv2.allowed.test', false],
    [{ matchPattern: '*.*.allowed.test' }, 'a.b.allowed.test', true],
    [{ matchPattern: '*.*.allowed.test' }, 'a.allowed.test', false],
    [{ matchPattern: '*.*.allowed.test' }, 'a.b.c.allowed.test', false],
    [{ matchPattern: 'a*b*c.test' }, 'abc.test', true],
    [{ matchPattern: 'a*b*c.test' }, 'a-xb-yc.test', true],
    [{ matchPattern: 'a*b*c.test' }, 'a.b.c.test', false],
    [{ matchPattern: '*' }, 'a.b.c.example', true],
    [{ matchPattern: '*' }, 'anything.example', true],
    [{ matchName: 'exact.test' }, 'EXACT.test.', true],
    [{ matchName: 'exact.test' }, 'a.exact.test', false],
  ])('%j vs %s: %s', (sel, name, want) => {
    expect(fqdnMatches(sel, name)).toBe(want);
  });

  it('the kernel matches names, one leading label and "*" by hash; other patterns as text', () => {
    expect(kernelMatch({ matchName: 'api.allowed.test' })).toEqual({ kind: FQDN_MATCH_NAME, hash: wireNameHash('api.allowed.test') });
    expect(kernelMatch({ matchPattern: '*.allowed.test' })).toEqual({ kind: FQDN_MATCH_LABEL, hash: wireNameHash('allowed.test') });
    expect(kernelMatch({ matchPattern: '*' })).toEqual({ kind: FQDN_MATCH_ANY, hash: 0n });
    expect(kernelMatch({ matchPattern: 'sub*.allowed.test' })).toEqual({ kind: FQDN_MATCH_GLOB, glob: 'sub*.allowed.test' });
    expect(kernelMatch({ matchPattern: '*.*.test' })).toEqual({ kind: FQDN_MATCH_GLOB, glob: '*.*.test' });
  });

  it('hashes the wire form: FNV-1a 64 over length-prefixed labels', () => {
    // \x01a\x04test, computed by hand with the FNV-1a 64 constants.
    let h = 0xcbf29ce484222325n;
    for (const b of [1, 0x61, 4, 0x74, 0x65, 0x73, 0x74]) h = ((h ^ BigInt(b)) * 0x100000001b3n) & ((1n << 64n) - 1n);
    expect(wireNameHash('a.test')).toBe(h);
    expect(wireNameHash('a.test')).not.toBe(wireNameHash('at.est'));
  });
});

describe('parsing toFQDNs and rules.dns', () => {
  it('accepts toFQDNs with toPorts and DNS rules, and says the document has DNS rules', () => {
    const [d] = parsePolicies(POLICY, 'p.yaml');
    expect(d!.dnsRules).toBe(true);
    expect(d!.rules[0]!.egress![1]!.peers).toEqual([
      { type: 'fqdn', selector: { matchPattern: '*.allowed.test' } },
      { type: 'fqdn', selector: { matchName: 'exact.test' } },
    ]);
  });

  it.each([
    ['both fields', 'egress:\n  - toFQDNs: [ { matchName: a.test, matchPattern: "*.a.test" } ]', /toFQDNs\[0\]: needs exactly one of matchName and matchPattern/],
    ['bad name', 'egress:\n  - toFQDNs: [ { matchName: "a b.test" } ]', /toFQDNs\[0\]\.matchName: invalid matchName "a b\.test"/],
    ['empty label', 'egress:\n  - toFQDNs: [ { matchPattern: "a..test" } ]', /has an empty label/],
    ['with toCIDR', 'egress:\n  - toFQDNs: [ { matchName: a.test } ]\n    toCIDR: [ 10.0.0.0/8 ]', /toFQDNs: cannot be combined with toCIDR/],
    ['in egressDeny', 'egressDeny:\n  - toFQDNs: [ { matchName: a.test } ]', /egressDeny\[0\]\.toFQDNs: not supported/],
    ['http rules', 'egress:\n  - toPorts: [ { ports: [ { port: "80" } ], rules: { http: [ {} ] } } ]', /rules\.http: not supported/],
    ['dns rules in ingress', 'ingress:\n  - toPorts: [ { ports: [ { port: "53" } ], rules: { dns: [ { matchPattern: "*" } ] } } ]', /rules: not supported/],
  ])('rejects %s', (_what, body, re) => {
    expect(() => parsePolicies(cnp(`endpointSelector: {}\n${body}`), 'p.yaml')).toThrow(re);
  });
});

describe('compiling and checking toFQDNs', () => {
  const c = compilePolicies(parsePolicies(POLICY, 'p.yaml'), EPS);

  it('numbers selectors by text from MIN_FQDN_IDENTITY, with the kernel form, and marks the subject', () => {
    expect(c.fqdnSelectors).toEqual([
      { identity: MIN_FQDN_IDENTITY, selector: { matchName: 'exact.test' }, kernel: { kind: FQDN_MATCH_NAME, hash: wireNameHash('exact.test') } },
      { identity: MIN_FQDN_IDENTITY + 1, selector: { matchPattern: '*.allowed.test' }, kernel: { kind: FQDN_MATCH_LABEL, hash: wireNameHash('allowed.test') } },
    ]);
    expect(c.enforced.get(id('client'))).toEqual({ ingress: false, egress: true, fqdn: 1 });
    const rows = c.entries.filter((e) => e.peerIdentity >= MIN_FQDN_IDENTITY).map((e) => [e.endpointIdentity, e.peerIdentity, e.port, e.proto, e.deny]);
    expect(rows).toEqual([
      [id('client'), MIN_FQDN_IDENTITY + 1, 80, 6, false],
      [id('client'), MIN_FQDN_IDENTITY, 80, 6, false],
    ]);
  });

  it('allows an address learned through a matching name, on the rule\'s ports only', () => {
    const world = RESERVED_IDENTITIES.world;
    expect(checkConnection(c, id('client'), world, 80, 'TCP', ['api.allowed.test']).allowed).toBe(true);
    expect(checkConnection(c, id('client'), world, 80, 'TCP', ['api.allowed.test']).egress.fqdn).toBe('*.allowed.test');
    expect(checkConnection(c, id('client'), world, 443, 'TCP', ['api.allowed.test']).allowed).toBe(false);
    expect(checkConnection(c, id('client'), world, 80, 'TCP', ['other.test']).allowed).toBe(false);
    expect(checkConnection(c, id('client'), world, 80, 'TCP', []).allowed).toBe(false);
    expect(lookupEgressFqdn(c, id('client'), MIN_CIDR_IDENTITY + 5, ['exact.test'], 80, 6).allowed).toBe(true);
  });

  it('a pattern with a `*` inside a label (matched as text) allows what it matches', () => {
    const only = compilePolicies(parsePolicies(POLICY.replace('{ matchPattern: "*.allowed.test" }, { matchName: "Exact.Test." }', '{ matchPattern: "sub*.other.test" }'), 'p.yaml'), EPS);
    expect(only.fqdnSelectors.map((f) => f.kernel)).toEqual([{ kind: FQDN_MATCH_GLOB, glob: 'sub*.other.test' }]);
    const v = checkConnection(only, id('client'), RESERVED_IDENTITIES.world, 80, 'TCP', ['subway.other.test']);
    expect(v.allowed).toBe(true);
    expect(v.egress.fqdn).toBe('sub*.other.test');
    expect(checkConnection(only, id('client'), RESERVED_IDENTITIES.world, 80, 'TCP', ['a.subway.other.test']).allowed).toBe(false);
    expect(checkConnection(only, id('client'), RESERVED_IDENTITIES.world, 80, 'TCP', ['way.other.test']).allowed).toBe(false);
  });

  it('never reaches pods through a name (toFQDNs selects addresses outside the cluster)', () => {
    expect(checkConnection(c, id('client'), id('other'), 80, 'TCP', ['api.allowed.test']).allowed).toBe(false);
  });

  it('a deny rule still wins over an address learned through a name', () => {
    const deny = cnp('endpointSelector: { matchLabels: { app: client } }\negressDeny:\n  - toEntities: [ world ]\n    toPorts: [ { ports: [ { port: "80", protocol: TCP } ] } ]', 'deny');
    const cd = compilePolicies(parsePolicies(POLICY + '---\n' + deny, 'p.yaml'), EPS);
    const v = checkConnection(cd, id('client'), RESERVED_IDENTITIES.world, 80, 'TCP', ['api.allowed.test']);
    expect(v.allowed).toBe(false);
    expect(v.policies.map((p) => p.name)).toEqual(['deny']);
  });
});
