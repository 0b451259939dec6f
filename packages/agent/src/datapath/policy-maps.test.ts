import type { CompiledPolicy, PolicyEntry } from '@flowctl/policy';
import { describe, expect, it } from 'vitest';
import type { MapHandle, PolicyMaps } from './policy-maps.js';
import { PolicyMapWriter, encodeIpcacheKey, encodePolicyKey, encodePolicyValue, readConfig } from './policy-maps.js';

/** One writer per map set, as a datapath holds one. */
const writers = new WeakMap<PolicyMaps, PolicyMapWriter>();
function writerOf(maps: PolicyMaps): PolicyMapWriter {
  let w = writers.get(maps);
  if (!w) writers.set(maps, (w = new PolicyMapWriter(maps)));
  return w;
}

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
    fqdnSelectors: [],
    cidrIdentities: [],
    refs: [],
    selectedBy: new Map(),
    addressIdentities: new Map(),
  };
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

describe('PolicyMapWriter.writePolicy', () => {
  it('writes rows and enforcement, then the revision; replaces without a deny window', () => {
    const maps = fakeMaps();
    const a = entry({ ruleRef: 1 });
    const b = entry({ port: 9090, ruleRef: 2 });
    writerOf(maps).writePolicy(compiled(5, [a, b], [[1000, true, false]]));
    expect(maps.policy.lookup(encodePolicyKey(a))?.readUInt32LE(0)).toBe(1);
    expect(maps.policyEnforce.lookup(Buffer.from('e8030000', 'hex'))?.readUInt32LE(0)).toBe(1);
    expect(readConfig(maps.config)).toEqual({ epoch: 1n, policyRevision: 5n });

    maps.log.length = 0;
    const c = entry({ port: 7070, ruleRef: 3 });
    const stats = writerOf(maps).writePolicy(compiled(6, [b, c], [[1000, true, true], [3000, false, true]]));
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
    writerOf(maps).writePolicy(compiled(1, [entry({})], [[1000, true, false]]));
    maps.log.length = 0;
    writerOf(maps).writePolicy(compiled(2, [entry({})], [[1000, false, false]]));
    expect(maps.log.filter((o) => o[0] === 'policy')).toEqual([]);
    expect(maps.policyEnforce.keys()).toEqual([]);
  });

  it('two rows for one key: deny wins whatever the order', () => {
    for (const order of [
      [entry({ ruleRef: 1 }), entry({ deny: true, ruleRef: 2 })],
      [entry({ deny: true, ruleRef: 2 }), entry({ ruleRef: 1 })],
    ]) {
      const maps = fakeMaps();
      writerOf(maps).writePolicy(compiled(1, order, []));
      expect(maps.policy.lookup(encodePolicyKey(entry({})))?.toString('hex')).toBe('02000000' + '01000000');
    }
  });

  it('a bad entry changes nothing and names the entry', () => {
    const maps = fakeMaps();
    writerOf(maps).writePolicy(compiled(1, [entry({})], [[1000, true, false]]));
    maps.log.length = 0;
    expect(() => writerOf(maps).writePolicy(compiled(2, [entry({ port: 80 }), entry({ port: 70000 })], []))).toThrow(
      'policy entry 1: port 70000 is not in 0..65535',
    );
    expect(() => writerOf(maps).writePolicy(compiled(2, [entry({ ruleRef: 0 })], []))).toThrow(/policy entry 0 ruleRef: 0/);
    expect(maps.log).toEqual([]);
  });
});

describe('PolicyMapWriter.writeIdentities', () => {
  it('replaces entries, keeps the first of duplicates, bumps the epoch but not the revision', () => {
    const maps = fakeMaps();
    writerOf(maps).writePolicy(compiled(9, [], []));
    writerOf(maps).writeIdentities([{ cidr: '10.202.0.1', identity: 300 }, { cidr: '10.0.0.0/8', identity: 2 }]);
    maps.log.length = 0;
    const stats = writerOf(maps).writeIdentities(
      [
        { cidr: '10.202.0.1/32', identity: 301 },
        { cidr: '10.202.0.1', identity: 999 },
        { cidr: 'fd00::1', identity: 302 },
      ],
    );
    expect(stats).toEqual({ written: 2, deleted: 1 });
    expect(maps.ipcache.lookup(encodeIpcacheKey('10.202.0.1'))?.readUInt32LE(0)).toBe(301);
    expect(maps.ipcache.lookup(encodeIpcacheKey('10.0.0.0/8'))).toBeUndefined();
    expect(maps.log.at(-1)?.[0]).toBe('config');
    expect(readConfig(maps.config)).toEqual({ epoch: 3n, policyRevision: 9n });
  });

  it('rejects a bad identity or CIDR before writing anything', () => {
    const maps = fakeMaps();
    expect(() => writerOf(maps).writeIdentities([{ cidr: '10.0.0.1', identity: 5 }, { cidr: '10.0.0.x', identity: 5 }])).toThrow(
      'ipcache entry 1: "10.0.0.x" is not an IP address or CIDR',
    );
    expect(() => writerOf(maps).writeIdentities([{ cidr: '10.0.0.1', identity: 0 }])).toThrow(/ipcache entry 0 \(10.0.0.1\) identity: 0/);
    expect(maps.log).toEqual([]);
  });
});

type BatchOp = [map: string, op: 'updateBatch' | 'deleteBatch' | 'lookupBatch' | 'update' | 'delete' | 'lookup' | 'keys', count: number];

/** A FakeMap with the batch calls of bpf-loader's BpfMap; logs every call with its row count. */
class BatchMap implements MapHandle {
  readonly m = new Map<string, Buffer>();
  /** Throw after writing this many rows of the next batch update (then stop failing). */
  failAfter: number | undefined;
  constructor(
    readonly name: string,
    readonly keySize: number,
    readonly valueSize: number,
    readonly log: BatchOp[],
  ) {}
  lookup(key: Buffer): Buffer | undefined {
    this.log.push([this.name, 'lookup', 1]);
    return this.m.get(key.toString('hex'));
  }
  update(key: Buffer, value: Buffer): void {
    this.log.push([this.name, 'update', 1]);
    this.m.set(key.toString('hex'), Buffer.from(value));
  }
  delete(key: Buffer): boolean {
    this.log.push([this.name, 'delete', 1]);
    return this.m.delete(key.toString('hex'));
  }
  keys(): Buffer[] {
    this.log.push([this.name, 'keys', this.m.size]);
    return [...this.m.keys()].map((k) => Buffer.from(k, 'hex'));
  }
  updateBatch(keys: Buffer, values: Buffer): number {
    const n = keys.length / this.keySize;
    expect(values.length).toBe(n * this.valueSize);
    this.log.push([this.name, 'updateBatch', n]);
    for (let i = 0; i < n; i++) {
      if (this.failAfter !== undefined && i === this.failAfter) {
        this.failAfter = undefined;
        throw Object.assign(new Error(`bpf_map_update_batch(${this.name}) after ${i} of ${n}: E2BIG`), { done: i });
      }
      this.m.set(keys.toString('hex', i * this.keySize, (i + 1) * this.keySize), Buffer.from(values.subarray(i * this.valueSize, (i + 1) * this.valueSize)));
    }
    return n;
  }
  /** Set to false to take lookupBatch away (a map kind without batch lookups). */
  batchLookups = true;
  get lookupBatch(): (() => { keys: Buffer; values: Buffer; count: number }) | undefined {
    if (!this.batchLookups) return undefined;
    return () => {
      this.log.push([this.name, 'lookupBatch', this.m.size]);
      const keys = [...this.m.keys()].map((k) => Buffer.from(k, 'hex'));
      return { keys: Buffer.concat(keys), values: Buffer.concat(keys.map((k) => this.m.get(k.toString('hex'))!)), count: keys.length };
    };
  }
  deleteBatch(keys: Buffer): number {
    const n = keys.length / this.keySize;
    this.log.push([this.name, 'deleteBatch', n]);
    let deleted = 0;
    for (let i = 0; i < n; i++) if (this.m.delete(keys.toString('hex', i * this.keySize, (i + 1) * this.keySize))) deleted++;
    return deleted;
  }
}

function batchMaps(): { ipcache: BatchMap; policyEnforce: BatchMap; policy: BatchMap; config: BatchMap; log: BatchOp[] } {
  const log: BatchOp[] = [];
  return {
    log,
    ipcache: new BatchMap('ipcache', 24, 8, log),
    policyEnforce: new BatchMap('policy_enforce', 4, 4, log),
    policy: new BatchMap('policy', 12, 8, log),
    config: new BatchMap('config', 4, 16, log),
  };
}

/** What the maps must hold for `c`, built independently of the writer: hex key → hex value. */
function expected(c: CompiledPolicy): { policy: Map<string, string>; enforce: Map<string, string> } {
  const policy = new Map<string, string>();
  for (const e of c.entries) {
    const k = encodePolicyKey(e).toString('hex');
    const cur = policy.get(k);
    if (cur !== undefined && (cur.endsWith('01000000') || !e.deny)) continue;
    policy.set(k, encodePolicyValue(e.deny, e.ruleRef).toString('hex'));
  }
  const enforce = new Map<string, string>();
  for (const [id, d] of c.enforced) {
    if (!d.ingress && !d.egress) continue;
    const k = Buffer.alloc(4);
    k.writeUInt32LE(id);
    enforce.set(k.toString('hex'), ((d.ingress ? 1 : 0) | (d.egress ? 2 : 0)).toString(16).padStart(2, '0') + '000000');
  }
  return { policy, enforce };
}

function contents(m: BatchMap): Map<string, string> {
  return new Map([...m.m].map(([k, v]) => [k, v.toString('hex')]));
}

/** 40 endpoints × 3 peers × 5 ports, both directions, some denies: 1,200 rows. */
function bigPolicy(revision: number, change?: (e: PolicyEntry) => PolicyEntry): CompiledPolicy {
  const entries: PolicyEntry[] = [];
  const enforced: [number, boolean, boolean][] = [];
  for (let ep = 0; ep < 40; ep++) {
    for (const direction of ['ingress', 'egress'] as const)
      for (let peer = 0; peer < 3; peer++)
        for (let port = 0; port < 5; port++) {
          const e = entry({ endpointIdentity: 1000 + ep, peerIdentity: peer === 2 ? 1 << 24 : 2000 + peer, port: 8000 + port, direction, deny: port === 4 && peer === 0, ruleRef: 1 + ep });
          entries.push(change ? change(e) : e);
        }
    enforced.push([1000 + ep, true, ep % 2 === 0]);
  }
  return compiled(revision, entries, enforced);
}

describe('PolicyMapWriter.writePolicy: incremental batches', () => {
  const writes = (log: BatchOp[], map?: string) => log.filter((o) => (map === undefined || o[0] === map) && o[1] !== 'lookup' && o[1] !== 'keys' && o[1] !== 'lookupBatch');
  const reads = (log: BatchOp[]) => log.filter((o) => o[1] === 'lookup' || o[1] === 'keys' || o[1] === 'lookupBatch');

  it('fresh maps: one batch per map, no lookups; the maps hold exactly the policy', () => {
    const maps = batchMaps();
    const c = bigPolicy(1);
    expect(writerOf(maps).writePolicy(c)).toEqual({ written: 1200 + 40, deleted: 0 });
    // Empty maps are learned with one call each, nothing is looked up row by row.
    expect(reads(maps.log)).toEqual([
      ['policy', 'lookupBatch', 0],
      ['policy_enforce', 'lookupBatch', 0],
      ['config', 'lookup', 1],
    ]);
    expect(writes(maps.log)).toEqual([
      ['policy', 'updateBatch', 1200],
      ['policy_enforce', 'updateBatch', 40],
      ['config', 'update', 1],
    ]);
    expect(contents(maps.policy)).toEqual(expected(c).policy);
    expect(contents(maps.policyEnforce)).toEqual(expected(c).enforce);
  });

  it('a change writes only the changed rows, in the safe order, without reading the maps back', () => {
    const maps = batchMaps();
    writerOf(maps).writePolicy(bigPolicy(1));
    maps.log.length = 0;
    // Endpoint 1005 moves port 8001 to 9001 (one row added, one deleted), 1006 flips a value,
    // 1007 starts enforcing egress, 1038 stops enforcing ingress, 1039 is no longer enforced.
    const next = bigPolicy(2, (e) => {
      if (e.endpointIdentity === 1005 && e.port === 8001 && e.peerIdentity === 2000 && e.direction === 'ingress') return { ...e, port: 9001 };
      if (e.endpointIdentity === 1006 && e.port === 8002 && e.peerIdentity === 2001 && e.direction === 'egress') return { ...e, deny: true };
      return e;
    });
    next.enforced.set(1007, { ingress: true, egress: true });
    next.enforced.set(1038, { ingress: false, egress: true });
    next.enforced.delete(1039);
    const stats = writerOf(maps).writePolicy(next);
    expect(stats).toEqual({ written: 2 + 2, deleted: 1 + 1 });
    expect(reads(maps.log)).toEqual([['config', 'lookup', 1]]);
    expect(writes(maps.log)).toEqual([
      ['policy', 'updateBatch', 2],
      ['policy_enforce', 'updateBatch', 2],
      ['policy_enforce', 'deleteBatch', 1],
      ['policy', 'deleteBatch', 1],
      ['config', 'update', 1],
    ]);
    expect(contents(maps.policy)).toEqual(expected(next).policy);
    expect(contents(maps.policyEnforce)).toEqual(expected(next).enforce);
    expect(readConfig(maps.config)).toEqual({ epoch: 2n, policyRevision: 2n });

    // The same policy again, recompiled (new objects): nothing to write but the revision.
    maps.log.length = 0;
    expect(writerOf(maps).writePolicy({ ...next, revision: 3, entries: next.entries.map((e) => ({ ...e })) })).toEqual({ written: 0, deleted: 0 });
    expect(writes(maps.log)).toEqual([['config', 'update', 1]]);
  });

  it('a write that fails part-way leaves no record: the next write reads the maps back and repairs them', () => {
    const maps = batchMaps();
    const a = bigPolicy(1);
    writerOf(maps).writePolicy(a);
    const b = bigPolicy(2, (e) => (e.port === 8003 ? { ...e, port: 7003 } : e));
    maps.policy.failAfter = 100;
    expect(() => writerOf(maps).writePolicy(b)).toThrow('bpf_map_update_batch(policy) after 100 of 240: E2BIG');
    // Half of b's new rows are in, none of a's stale ones are gone, the revision did not move.
    expect(maps.policy.m.size).toBe(1200 + 100);
    expect(readConfig(maps.config).policyRevision).toBe(1n);

    // Retrying b: the writer does not trust its record of a; it reads the map and writes the rest.
    maps.log.length = 0;
    const stats = writerOf(maps).writePolicy(b);
    expect(reads(maps.log).filter((o) => o[0] !== 'config')).toEqual([
      ['policy', 'lookupBatch', 1300],
      ['policy_enforce', 'lookupBatch', 40],
    ]);
    expect(stats).toEqual({ written: 140, deleted: 240 });
    expect(contents(maps.policy)).toEqual(expected(b).policy);
    expect(contents(maps.policyEnforce)).toEqual(expected(b).enforce);
    expect(readConfig(maps.config).policyRevision).toBe(2n);

    // And after the repair, incremental again.
    maps.log.length = 0;
    writerOf(maps).writePolicy(a);
    expect(reads(maps.log)).toEqual([['config', 'lookup', 1]]);
    expect(contents(maps.policy)).toEqual(expected(a).policy);
  });

  it.each([true, false])('maps filled by someone else (pinned, reused): the first write reads them back; forget() forces it again (batch lookups: %s)', (batchLookups) => {
    const maps = batchMaps();
    maps.policy.batchLookups = maps.policyEnforce.batchLookups = batchLookups;
    const c = bigPolicy(1);
    // Left behind: a row of c with another value, a row c does not have, an enforced identity c lacks.
    const rows = [...expected(c).policy];
    maps.policy.m.set(rows[0]![0], encodePolicyValue(true, 99));
    maps.policy.m.set(rows[1]![0], Buffer.from(rows[1]![1], 'hex'));
    maps.policy.m.set(encodePolicyKey(entry({ endpointIdentity: 5 })).toString('hex'), encodePolicyValue(false, 1));
    maps.policyEnforce.m.set('05000000', Buffer.from('01000000', 'hex'));
    expect(writerOf(maps).writePolicy(c)).toEqual({ written: 1199 + 40, deleted: 2 });
    // Read back in one call, or one get_next_key walk plus one lookup per row the map has.
    expect(reads(maps.log).filter((o) => o[0] === 'policy')).toEqual(batchLookups ? [['policy', 'lookupBatch', 3]] : [['policy', 'keys', 3], ['policy', 'lookup', 1], ['policy', 'lookup', 1]]);
    expect(contents(maps.policy)).toEqual(expected(c).policy);
    expect(contents(maps.policyEnforce)).toEqual(expected(c).enforce);

    maps.policy.m.clear();
    writerOf(maps).forget();
    maps.log.length = 0;
    expect(writerOf(maps).writePolicy(c).written).toBe(1200);
    expect(contents(maps.policy)).toEqual(expected(c).policy);
  });

  it('a bad entry changes nothing and keeps the record: the next write is still incremental', () => {
    const maps = batchMaps();
    writerOf(maps).writePolicy(bigPolicy(1));
    maps.log.length = 0;
    expect(() => writerOf(maps).writePolicy(bigPolicy(2, (e) => (e.endpointIdentity === 1039 && e.port === 8004 ? { ...e, proto: 256 } : e)))).toThrow(
      /^policy entry \d+: proto 256 is not in 0..255$/,
    );
    expect(maps.log).toEqual([]);
    writerOf(maps).writePolicy(bigPolicy(2, (e) => (e.endpointIdentity === 1039 && e.port === 8004 ? { ...e, port: 8005 } : e)));
    expect(reads(maps.log)).toEqual([['config', 'lookup', 1]]);
    expect(writes(maps.log, 'policy')).toEqual([
      ['policy', 'updateBatch', 6],
      ['policy', 'deleteBatch', 6],
    ]);
  });

  it('peer identities too large for the diff still write correctly, by reading the maps back', () => {
    const maps = batchMaps();
    const big = (rev: number, port: number) => compiled(rev, [entry({ peerIdentity: 0xfffffff0, port }), entry({ peerIdentity: 0xfffffff0, port, deny: true, ruleRef: 2 }), entry({ port: 1 })], [[1000, true, false]]);
    writerOf(maps).writePolicy(big(1, 80));
    expect(contents(maps.policy)).toEqual(expected(big(1, 80)).policy);
    writerOf(maps).writePolicy(big(2, 81));
    expect(contents(maps.policy)).toEqual(expected(big(2, 81)).policy);
    expect(maps.log.filter((o) => o[0] === 'policy' && o[1] === 'lookupBatch').length).toBe(2);
  });
});

describe('PolicyMapWriter.writeIdentities: incremental batches', () => {
  const ips = (n: number, identity: (i: number) => number) => Array.from({ length: n }, (_, i) => ({ cidr: `10.202.${i >> 8}.${i & 255}`, identity: identity(i) }));

  it('writes only what changed; a failed write is repaired by reading the map back', () => {
    const maps = batchMaps();
    expect(writerOf(maps).writeIdentities(ips(1000, () => 300))).toEqual({ written: 1000, deleted: 0 });
    maps.log.length = 0;
    const next = ips(999, (i) => (i === 7 ? 301 : 300)).concat([{ cidr: '10.0.0.0/8', identity: 1 << 24 }]);
    expect(writerOf(maps).writeIdentities(next)).toEqual({ written: 2, deleted: 1 });
    expect(maps.log.filter((o) => o[0] === 'ipcache')).toEqual([
      ['ipcache', 'updateBatch', 2],
      ['ipcache', 'deleteBatch', 1],
    ]);
    expect(maps.log.at(-1)).toEqual(['config', 'update', 1]);

    maps.ipcache.failAfter = 0;
    expect(() => writerOf(maps).writeIdentities(ips(1000, () => 400))).toThrow(/E2BIG/);
    maps.log.length = 0;
    expect(writerOf(maps).writeIdentities(ips(1000, () => 400))).toEqual({ written: 1000, deleted: 1 });
    expect(maps.log.filter((o) => o[0] === 'ipcache' && o[1] === 'lookupBatch').length).toBe(1);
    expect(maps.ipcache.m.size).toBe(1000);
    expect([...maps.ipcache.m.values()].every((v) => v.readUInt32LE(0) === 400)).toBe(true);
  });
});
