import { describe, expect, it } from 'vitest';
import { attachBlockInfo, blockInfo, mergeBlockLists, parseBlockCidr } from './block.js';
import type { Flow } from './gen/flow/flow.js';
import { encodeFlow } from './json.js';

describe('parseBlockCidr', () => {
  it('canonicalises addresses and prefixes, clearing host bits', () => {
    expect(parseBlockCidr('10.1.2.3').cidr).toBe('10.1.2.3/32');
    expect(parseBlockCidr(' 10.1.2.3/24 ').cidr).toBe('10.1.2.0/24');
    expect(parseBlockCidr('2001:DB8:0::1/48').cidr).toBe('2001:db8::/48');
    expect(parseBlockCidr('0.0.0.0/0').prefix).toEqual({ v6: false, addr: 0n, bits: 0 });
  });

  it.each(['', 'example.com', '10.1.2.3/33', '10.1.2', '010.1.2.3', 'fe80::1%eth0/64', '10.0.0.0/08'])('refuses %j with one line', (s) => {
    expect(() => parseBlockCidr(s)).toThrow(`invalid CIDR "${s}": want an IPv4 or IPv6 address or prefix, e.g. 203.0.113.0/24 or 2001:db8::/32`);
  });
});

describe('block info in Flow.extensions', () => {
  it('round-trips and prints as protojson under extensions.value.block', () => {
    const f: Flow = {};
    attachBlockInfo(f, { cidr: '192.0.2.0/24', reason: 'r', packets: 3, bytes: 180, matched: 'destination' });
    expect(blockInfo(f)).toEqual({ cidr: '192.0.2.0/24', reason: 'r', packets: 3, bytes: 180, matched: 'destination' });
    expect(JSON.parse(encodeFlow(f))).toEqual({
      extensions: { '@type': 'type.googleapis.com/google.protobuf.Struct', value: { block: { cidr: '192.0.2.0/24', reason: 'r', packets: 3, bytes: 180, matched: 'destination' } } },
    });
    expect(blockInfo({})).toBeUndefined();
  });
});

describe('mergeBlockLists', () => {
  const ts = (s: number) => ({ seconds: BigInt(s), nanos: 0 });
  it('is the union by CIDR: counts summed, nodes joined, latest expiry (never wins), earliest creation', () => {
    const merged = mergeBlockLists([
      [
        { cidr: '10.0.0.0/8', reason: 'a', created: ts(10), expires: ts(100), dropped_packets: 5n, dropped_bytes: 50n, nodes: ['n1'] },
        { cidr: '192.0.2.0/24', reason: '', created: ts(5), dropped_packets: 1n, dropped_bytes: 1n, nodes: ['n1'] },
      ],
      [
        { cidr: '10.0.0.0/8', reason: 'a', created: ts(8), expires: ts(200), dropped_packets: 7n, dropped_bytes: 70n, nodes: ['n2'] },
        { cidr: '192.0.2.0/24', reason: 'late', created: ts(6), expires: ts(50), dropped_packets: 2n, dropped_bytes: 2n, nodes: ['n0'] },
      ],
      [],
    ]);
    expect(merged).toEqual([
      { cidr: '10.0.0.0/8', reason: 'a', created: ts(8), expires: ts(200), dropped_packets: 12n, dropped_bytes: 120n, nodes: ['n1', 'n2'] },
      { cidr: '192.0.2.0/24', reason: 'late', created: ts(5), dropped_packets: 3n, dropped_bytes: 3n, nodes: ['n0', 'n1'] },
    ]);
  });

  it('keeps an isolation apart from a drop entry and from another pod\'s isolation of the same address', () => {
    const merged = mergeBlockLists([
      [
        { cidr: '10.0.0.9/32', nodes: ['n1'], dropped_packets: 1n },
        { cidr: '10.0.0.9/32', nodes: ['n1'], isolated_pod: 'shop/old-1', isolated_addresses: [] },
        { cidr: '10.0.0.9/32', nodes: ['n1'], isolated_pod: 'shop/new-2', isolated_addresses: ['10.0.0.9'], dropped_packets: 4n },
      ],
      [{ cidr: '10.0.0.9/32', nodes: ['n2'], dropped_packets: 2n }],
    ]);
    expect(merged.map((e) => [e.isolated_pod, e.isolated_addresses, e.nodes, e.dropped_packets])).toEqual([
      [undefined, undefined, ['n1', 'n2'], 3n],
      ['shop/new-2', ['10.0.0.9'], ['n1'], 4n],
      ['shop/old-1', [], ['n1'], undefined],
    ]);
  });
});
