import { describe, expect, it } from 'vitest';
import { MIN_FQDN_IDENTITY, compilePolicies, parseEndpoints, parsePolicies } from '@flowctl/policy';
import type { FqdnAnswer } from '../datapath/datapath.js';
import { FqdnLearner } from './fqdn-learner.js';

const EPS = parseEndpoints(
  'endpoints:\n' +
    '  - { name: client, namespace: fcz, node: n1, labels: { app: client }, ips: [10.99.0.2, "fd00::2"] }\n' +
    '  - { name: other, namespace: fcz, node: n1, labels: { app: other }, ips: [10.99.0.4] }\n',
  'eps.yaml',
);
const POLICY = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: fq, namespace: fcz }
spec:
  endpointSelector: { matchLabels: { app: client } }
  egress:
    - toFQDNs: [ { matchPattern: "*.allowed.test" }, { matchPattern: "api-*.allowed.test" } ]
      toPorts: [ { ports: [ { port: "80", protocol: TCP } ] } ]
`;

function setup() {
  const c = compilePolicies(parsePolicies(POLICY, 'p.yaml'), EPS);
  const ids = new Map(EPS.endpoints.flatMap((e) => e.ips.map((ip) => [ip, e.identity] as const)));
  const got: FqdnAnswer[] = [];
  const l = new FqdnLearner((a) => (got.push(a), a.addrs.length), (ip) => ids.get(ip));
  l.setPolicy(c);
  const bit = (pattern: string) => 1n << BigInt(c.fqdnSelectors.find((f) => f.selector.matchPattern === pattern)!.identity - MIN_FQDN_IDENTITY);
  return { l, got, bit };
}

describe('FqdnLearner: what the kernel does not learn', () => {
  it('over UDP, learns through patterns matched as text only (the kernel\'s fallback)', () => {
    const { l, got, bit } = setup();
    expect(l.answer('API-V2.allowed.test.', ['192.0.2.1', '2001:db8::1'], 30, '10.99.0.2', false)).toBe(1);
    expect(got).toEqual([{ family: 4, endpoint: '10.99.0.2', name: 'api-v2.allowed.test', addrs: ['192.0.2.1'], ttlS: 30, bits: bit('api-*.allowed.test') }]);
    // *.allowed.test alone: the kernel learned it as the answer passed.
    expect(l.answer('web.allowed.test', ['192.0.2.2'], 30, '10.99.0.2', false)).toBe(0);
    expect(l.answer('api-v2.other.test', ['192.0.2.3'], 30, '10.99.0.2', false)).toBe(0);
    expect(got).toHaveLength(1);
  });

  it('over TCP (the kernel misses answers split over segments), learns through every selector', () => {
    const { l, got, bit } = setup();
    expect(l.answer('api-v2.allowed.test', ['192.0.2.1'], 30, '10.99.0.2', true)).toBe(1);
    expect(got[0]!.bits).toBe(bit('api-*.allowed.test') | bit('*.allowed.test'));
    expect(l.answer('web.allowed.test', ['192.0.2.2'], 30, '10.99.0.2', true)).toBe(1);
    expect(got[1]!.bits).toBe(bit('*.allowed.test'));
  });

  it('learns the other family\'s records for the other address of a dual-stack endpoint', () => {
    const c = compilePolicies(parsePolicies(POLICY, 'p.yaml'), EPS);
    const ids = new Map(EPS.endpoints.flatMap((e) => e.ips.map((ip) => [ip, e.identity] as const)));
    const got: FqdnAnswer[] = [];
    const peers: Record<string, string> = { '10.99.0.2': 'fd00::2', 'fd00::2': '10.99.0.2' };
    const l = new FqdnLearner((a) => (got.push(a), a.addrs.length), (ip) => ids.get(ip), undefined, (ip) => peers[ip]);
    l.setPolicy(c);
    expect(l.answer('api-x.allowed.test', ['192.0.2.1', '2001:db8::1'], 30, '10.99.0.2', false)).toBe(2);
    expect(got.map((a) => [a.family, a.endpoint, a.addrs])).toEqual([[4, '10.99.0.2', ['192.0.2.1']], [6, 'fd00::2', ['2001:db8::1']]]);
  });

  it('keeps the family of the endpoint address; ignores endpoints without toFQDNs rules and other addresses', () => {
    const { l, got } = setup();
    expect(l.answer('api-x.allowed.test', ['192.0.2.1', '2001:db8::1'], 30, 'fd00::2', false)).toBe(1);
    expect(got[0]).toMatchObject({ family: 6, addrs: ['2001:db8::1'] });
    expect(l.answer('api-x.allowed.test', ['192.0.2.1'], 30, '10.99.0.4', false)).toBe(0);
    expect(l.answer('api-x.allowed.test', ['192.0.2.1'], 30, '10.50.0.9', false)).toBe(0);
    expect(l.answer('api-x.allowed.test', ['2001:db8::1'], 30, '10.99.0.2', false)).toBe(0);
    expect(got).toHaveLength(1);
  });

  it('a failing map write is counted and reported at 1, 2, 4... failures, never thrown', () => {
    const c = compilePolicies(parsePolicies(POLICY, 'p.yaml'), EPS);
    const reported: number[] = [];
    const l = new FqdnLearner(() => { throw new Error('ENOMEM'); }, () => EPS.endpoints[0]!.identity, (_e, n) => reported.push(n));
    l.setPolicy(c);
    for (let i = 0; i < 5; i++) expect(l.answer('api-x.allowed.test', ['192.0.2.1'], 30, '10.99.0.2', false)).toBe(0);
    expect(l.failed).toBe(5);
    expect(reported).toEqual([1, 2, 4]);
  });
});
