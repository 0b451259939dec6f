import { describe, expect, it } from 'vitest';
import { parseEndpoints } from '@flowctl/policy';
import { EndpointDirectory } from './directory.js';

describe('EndpointDirectory CIDR identities', () => {
  const dir = new EndpointDirectory('n1');
  dir.setEndpoints(parseEndpoints('endpoints:\n  - { name: a, namespace: ns, node: n1, labels: { app: a }, ips: [10.1.2.3] }\n', 'eps.yaml'));
  dir.setHostIps(['10.1.0.1']);
  dir.setCidrIdentities([
    { cidr: '10.0.0.0/8', identity: 16777217 },
    { cidr: '10.1.0.0/16', identity: 16777218 },
    { cidr: 'fd00:aa::/32', identity: 16777219 },
  ]);

  it('labels peers by the longest matching prefix plus reserved:world, as Cilium does', () => {
    expect(dir.forIp('10.9.9.9')).toEqual({ identity: 16777217, labels: ['cidr:10.0.0.0/8', 'reserved:world'] });
    expect(dir.forIp('10.1.9.9')).toEqual({ identity: 16777218, labels: ['cidr:10.1.0.0/16', 'reserved:world'] });
    expect(dir.forIp('fd00:aa::5')).toEqual({ identity: 16777219, labels: ['cidr:fd00-aa--0/32', 'reserved:world'] });
  });

  it('endpoints and node IPs win over CIDRs; other IPs stay reserved:world', () => {
    expect(dir.forIp('10.1.2.3').pod_name).toBe('a');
    expect(dir.forIp('10.1.0.1').labels).toEqual(['reserved:host']);
    expect(dir.forIp('192.0.2.1')).toEqual({ identity: 2, labels: ['reserved:world'] });
    expect(dir.forIp('192.0.2.1')).toBe(dir.forIp('192.0.2.1')); // cached, shared
  });

  it('a new policy replaces the CIDRs', () => {
    dir.setCidrIdentities([]);
    expect(dir.forIp('10.9.9.9').labels).toEqual(['reserved:world']);
  });
});

describe('EndpointDirectory address identities (pods an ipBlock or a named port tells apart)', () => {
  const eps = parseEndpoints('endpoints:\n  - { name: a, namespace: ns, node: n1, labels: { app: w }, ips: [10.1.2.3, "fd00::3"] }\n  - { name: b, namespace: ns, node: n1, labels: { app: w }, ips: [10.1.2.4] }\n', 'eps.yaml');
  const label = eps.endpoints[0]!.identity;
  const dir = new EndpointDirectory('n1');
  dir.setEndpoints(eps);

  it('flows and the ipcache get the address identity; the rest keeps the label identity', () => {
    dir.setAddressIdentities(new Map([['10.1.2.4', 300]]));
    expect(dir.forIp('10.1.2.4')).toMatchObject({ identity: 300, pod_name: 'b', labels: ['k8s:app=w', 'k8s:io.kubernetes.pod.namespace=ns'] });
    expect(dir.forIp('10.1.2.3').identity).toBe(label);
    expect(dir.identities()).toEqual([
      { cidr: '10.1.2.3/32', identity: label },
      { cidr: 'fd00::3/128', identity: label },
      { cidr: '10.1.2.4/32', identity: 300 },
    ]);
  });

  it('survives an endpoints reload and goes away with the policy', () => {
    dir.setEndpoints(eps);
    expect(dir.forIp('10.1.2.4').identity).toBe(300);
    dir.setAddressIdentities(new Map());
    expect(dir.forIp('10.1.2.4').identity).toBe(label);
  });
});
