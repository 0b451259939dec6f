import { describe, expect, it } from 'vitest';
import { compilePolicies, parsePolicies, parseEndpoints, wireNameHash } from '@flowctl/policy';
import { listLearned, type LearnedSources } from './fqdn-learned.js';

const POLICY = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: egress, namespace: shop }
spec:
  endpointSelector: { matchLabels: { app: client } }
  egress:
    - toFQDNs: [ { matchPattern: "*.allowed.test" } ]
      toPorts: [ { ports: [ { port: "80", protocol: TCP } ] } ]
`;
const eps = parseEndpoints('endpoints:\n  - { name: client-1, namespace: shop, node: n, labels: { app: client }, ips: [10.0.0.5, "fd00::5"] }\n', 'eps');
const policy = compilePolicies(parsePolicies(POLICY, 'p.yaml'), eps);
const sel = policy.fqdnSelectors[0]!.identity;
const S = 1_000_000_000n;

function sources(): LearnedSources {
  return {
    learned: () => [
      { family: 4, endpoint: '10.0.0.5', addr: '192.0.2.10', expiresNs: 30n * S, selectors: [sel], nameHash: wireNameHash('api.allowed.test') },
      { family: 6, endpoint: 'fd00::5', addr: '2001:db8::10', expiresNs: 60n * S, selectors: [sel], nameHash: wireNameHash('api.allowed.test') },
      { family: 4, endpoint: '10.0.0.5', addr: '192.0.2.11', expiresNs: 40n * S, selectors: [sel], nameHash: wireNameHash('web.allowed.test') },
      { family: 4, endpoint: '10.0.0.5', addr: '192.0.2.12', expiresNs: 5n * S, selectors: [sel], nameHash: wireNameHash('old.allowed.test') },
    ],
    policy: () => policy,
    endpointOf: (ip) => (ip === '10.0.0.5' || ip === 'fd00::5' ? 'shop/client-1' : undefined),
    namesOf: (ip) => (ip === '192.0.2.11' ? ['www.example.com', 'web.allowed.test'] : []),
    nowNs: () => 10n * S,
  };
}

describe('listLearned (PolicyService/ListLearnedFqdns)', () => {
  it('lists what a name taught each endpoint, both families, with the selector and the time left', () => {
    expect(listLearned({ name: 'API.allowed.test.' }, sources())).toEqual([
      { endpoint_ip: '10.0.0.5', endpoint: 'shop/client-1', name: 'api.allowed.test', address: '192.0.2.10', expires_in_s: 20, selectors: ['*.allowed.test'] },
      { endpoint_ip: 'fd00::5', endpoint: 'shop/client-1', name: 'api.allowed.test', address: '2001:db8::10', expires_in_s: 50, selectors: ['*.allowed.test'] },
    ]);
    expect(listLearned({ name: 'api.allowed.test', endpoint_ip: 'FD00:0::5' }, sources()).map((l) => l.address)).toEqual(['2001:db8::10']);
  });

  it('names every entry from the answers the agent saw (the map keeps a hash), expired ones left out', () => {
    expect(listLearned({}, sources()).map((l) => [l.address, l.name])).toEqual([
      ['192.0.2.10', ''], // no answer seen for it: the hash only
      ['192.0.2.11', 'web.allowed.test'],
      ['2001:db8::10', ''],
    ]);
  });

  it('refuses a bad name or address with one line', () => {
    expect(() => listLearned({ name: 'a b' }, sources())).toThrow('name "a b" is not a DNS name');
    expect(() => listLearned({ endpoint_ip: '10.0.0.300' }, sources())).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', message: 'endpoint_ip "10.0.0.300" is not an IP address' }));
  });
});
