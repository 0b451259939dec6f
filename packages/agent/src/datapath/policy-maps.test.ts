import type { CompiledPolicy, PolicyEntry } from '@flowctl/policy';
import { describe, expect, it } from 'vitest';
import type { MapHandle, PolicyMaps } from './policy-maps.js';
import {
  encodeIpcacheKey,
  encodePolicyKey,
  encodePolicyValue,
  readConfig,
  writeIpcache,
  writePolicyMaps,
} from './policy-maps.js';

type Op = [map: string, op: 'update' | 'delete', key: string];

/** An in-memory hash map that logs writes in order, shared log across maps. */
class FakeMap implements MapHandle {
  readonly m = new Map<string, Buffer>();
  constructor(
    readonly name: string,
    readonly log: Op[],
  ) {}
  lookup(key: Buffer): Buffer | undefined {
    return this.m.get(key.toString('hex'));
  }
  update(key: Buffer, value: Buffer): void {
    this.log.push([this.name, 'update', key.toString('hex')]);
    this.m.set(key.toString('hex'), Buffer.from(value));
  }
  delete(key: Buffer): boolean {
    this.log.push([this.name, 'delete', key.toString('hex')]);
    return this.m.delete(key.toString('hex'));
  }
  keys(): Buffer[] {
    return [...this.m.keys()].map((k) => Buffer.from(k, 'hex'));
  }
}

function fakeMaps(): PolicyMaps & { log: Op[] } {
  const log: Op[] = [];
  return {
    log,
    ipcache: new FakeMap('ipcache', log),
    policyEnforce: new FakeMap('policy_enforce', log),
    policy: new FakeMap('policy', log),
    config: new FakeMap('config', log),
  };
}

const entry = (p: Partial<PolicyEntry>): PolicyEntry => ({
  endpointIdentity: 1000,
  peerIdentity: 2000,
  port: 8080,
  proto: 6,
  direction: 'ingress',
  deny: false,
  ruleRef: 1,
  ...p,
});

function compiled(revision: number, entries: PolicyEntry[], enforced: [number, boolean, boolean][]): CompiledPolicy {
  return {
    revision,
    entries,
    enforced: new Map(enforced.map(([id, ingress, egress]) => [id, { ingress, egress }])),
    cidrIdentities: [],
    refs: [],
    selectedBy: new Map(),
  } as CompiledPolicy;
}

describe('encodings (bpf/flowctl.h layouts)', () => {
  it('policy key and value', () => {
    expect(encodePolicyKey(entry({ endpointIdentity: 0x01020304, peerIdentity: 0, port: 0x1f90, proto: 17, direction: 'egress' })).toString('hex')).toBe(
      '04030201' + '00000000' + '901f' + '11' + '02',
    );
    expect(encodePolicyKey(entry({ direction: 'ingress' })).readUInt8(11)).toBe(1);
    expect(encodePolicyValue(true, 7).toString('hex')).toBe('07000000' + '01000000');
    expect(encodePolicyValue(false, 0x10000).toString('hex')).toBe('00000100' + '00000000');
  });

  it('ipcache keys: family in the prefix, host bits cleared, bare addresses are host routes', () => {
    expect(encodeIpcacheKey('10.202.0.7').toString('hex')).toBe('40000000' + '04000000' + '0aca0007' + '00'.repeat(12));
    expect(encodeIpcacheKey('10.202.3.7/16').toString('hex')).toBe('30000000' + '04000000' + '0aca0000' + '00'.repeat(12));
    expect(encodeIpcacheKey('10.202.3.7/20').subarray(8, 12).toString('hex')).toBe('0aca0000');
    expect(encodeIpcacheKey('10.202.19.7/20').subarray(8, 12).toString('hex')).toBe('0aca1000');
    expect(encodeIpcacheKey('0.0.0.0/0').readUInt32LE(0)).toBe(32);
    expect(encodeIpcacheKey('fd00::1').toString('hex')).toBe('a0000000' + '06000000' + 'fd000000000000000000000000000001');
    expect(encodeIpcacheKey('2001:db8:ffff::/33').subarray(8).toString('hex')).toBe('20010db8800000000000000000000000');
    expect(encodeIpcacheKey('::ffff:10.0.0.1').subarray(8).toString('hex')).toBe('00000000000000000000ffff0a000001');
  });

  it.each(['10.0.0.256', '10.0.0', '10.0.0.1/33', 'fd00::/129', 'fd00:::1', 'g::1', '1:2:3:4:5:6:7:8:9', '10.0.0.1/', ''])(
    'rejects %j with its place',
    (bad) => {
      expect(() => encodeIpcacheKey(bad, 'ipcache entry 3')).toThrow(/^ipcache entry 3: /);
    },
  );
});

describe('writePolicyMaps', () => {
  it('writes rows and enforcement, then the revision; replaces without a deny window', () => {
    const maps = fakeMaps();
    const a = entry({ ruleRef: 1 });
    const b = entry({ port: 9090, ruleRef: 2 });
    writePolicyMaps(maps, compiled(5, [a, b], [[1000, true, false]]));
    expect(maps.policy.lookup(encodePolicyKey(a))?.readUInt32LE(0)).toBe(1);
    expect(maps.policyEnforce.lookup(Buffer.from('e8030000', 'hex'))?.readUInt32LE(0)).toBe(1);
    expect(readConfig(maps.config)).toEqual({ epoch: 1n, policyRevision: 5n });

    maps.log.length = 0;
    const c = entry({ port: 7070, ruleRef: 3 });
    const stats = writePolicyMaps(maps, compiled(6, [b, c], [[1000, true, true], [3000, false, true]]));
    expect(stats).toEqual({ written: 3, deleted: 1 });
    // Every write of the new state precedes the first delete; the config epoch is the very last.
    const firstDelete = maps.log.findIndex((o) => o[1] === 'delete');
    const lastUpdate = maps.log.findLastIndex((o) => o[1] === 'update' && o[0] !== 'config');
    expect(lastUpdate).toBeLessThan(firstDelete);
    expect(maps.log.at(-1)?.[0]).toBe('config');
    // Rows go in before enforcement bits.
    expect(maps.log.findIndex((o) => o[0] === 'policy_enforce')).toBeGreaterThan(maps.log.findLastIndex((o) => o[0] === 'policy' && o[1] === 'update'));
    expect(maps.policy.lookup(encodePolicyKey(a))).toBeUndefined();
    expect(maps.policy.lookup(encodePolicyKey(c))?.readUInt32LE(0)).toBe(3);
    expect(maps.policyEnforce.lookup(Buffer.from('b80b0000', 'hex'))?.readUInt32LE(0)).toBe(2);
    expect(readConfig(maps.config)).toEqual({ epoch: 2n, policyRevision: 6n });
  });

  it('unchanged rows are not rewritten; an identity with no enforced direction is removed', () => {
    const maps = fakeMaps();
    writePolicyMaps(maps, compiled(1, [entry({})], [[1000, true, false]]));
    maps.log.length = 0;
    writePolicyMaps(maps, compiled(2, [entry({})], [[1000, false, false]]));
    expect(maps.log.filter((o) => o[0] === 'policy')).toEqual([]);
    expect(maps.policyEnforce.keys()).toEqual([]);
  });

  it('two rows for one key: deny wins whatever the order', () => {
    for (const order of [
      [entry({ ruleRef: 1 }), entry({ deny: true, ruleRef: 2 })],
      [entry({ deny: true, ruleRef: 2 }), entry({ ruleRef: 1 })],
    ]) {
      const maps = fakeMaps();
      writePolicyMaps(maps, compiled(1, order, []));
      expect(maps.policy.lookup(encodePolicyKey(entry({})))?.toString('hex')).toBe('02000000' + '01000000');
    }
  });

  it('a bad entry changes nothing and names the entry', () => {
    const maps = fakeMaps();
    writePolicyMaps(maps, compiled(1, [entry({})], [[1000, true, false]]));
    maps.log.length = 0;
    expect(() => writePolicyMaps(maps, compiled(2, [entry({ port: 80 }), entry({ port: 70000 })], []))).toThrow(
      'policy entry 1: port 70000 is not in 0..65535',
    );
    expect(() => writePolicyMaps(maps, compiled(2, [entry({ ruleRef: 0 })], []))).toThrow(/policy entry 0 ruleRef: 0/);
    expect(maps.log).toEqual([]);
  });
});

describe('writeIpcache', () => {
  it('replaces entries, keeps the first of duplicates, bumps the epoch but not the revision', () => {
    const maps = fakeMaps();
    writePolicyMaps(maps, compiled(9, [], []));
    writeIpcache(maps.ipcache, [{ cidr: '10.202.0.1', identity: 300 }, { cidr: '10.0.0.0/8', identity: 2 }], maps.config);
    maps.log.length = 0;
    const stats = writeIpcache(
      maps.ipcache,
      [
        { cidr: '10.202.0.1/32', identity: 301 },
        { cidr: '10.202.0.1', identity: 999 },
        { cidr: 'fd00::1', identity: 302 },
      ],
      maps.config,
    );
    expect(stats).toEqual({ written: 2, deleted: 1 });
    expect(maps.ipcache.lookup(encodeIpcacheKey('10.202.0.1'))?.readUInt32LE(0)).toBe(301);
    expect(maps.ipcache.lookup(encodeIpcacheKey('10.0.0.0/8'))).toBeUndefined();
    expect(maps.log.at(-1)?.[0]).toBe('config');
    expect(readConfig(maps.config)).toEqual({ epoch: 3n, policyRevision: 9n });
  });

  it('rejects a bad identity or CIDR before writing anything', () => {
    const maps = fakeMaps();
    expect(() => writeIpcache(maps.ipcache, [{ cidr: '10.0.0.1', identity: 5 }, { cidr: '10.0.0.x', identity: 5 }])).toThrow(
      'ipcache entry 1: "10.0.0.x" is not an IP address or CIDR',
    );
    expect(() => writeIpcache(maps.ipcache, [{ cidr: '10.0.0.1', identity: 0 }])).toThrow(/ipcache entry 0 \(10.0.0.1\) identity: 0/);
    expect(maps.log).toEqual([]);
  });
});
