// BPF_MAP_UPDATE_BATCH / BPF_MAP_DELETE_BATCH through BpfMap.updateBatch/deleteBatch, on the real
// kernel: packed layouts, chunking past 65,536 elements, missing keys, partial failures, per-CPU
// value sizes, and the map kinds the agent writes (hash, LPM trie).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BpfError, BpfObject } from '../lib/index.js';
import { batchObject, skipReason } from './helpers.js';

const skip = skipReason();

function packU32(ns: readonly number[]): Buffer {
  const b = Buffer.alloc(4 * ns.length);
  ns.forEach((n, i) => b.writeUInt32LE(n, 4 * i));
  return b;
}

function packU64(ns: readonly number[]): Buffer {
  const b = Buffer.alloc(8 * ns.length);
  ns.forEach((n, i) => b.writeBigUInt64LE(BigInt(n), 8 * i));
  return b;
}

function caught(fn: () => unknown): BpfError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(BpfError);
    return e as BpfError;
  }
  throw new Error('expected a BpfError');
}

describe.skipIf(skip)('BpfMap batch update/delete (real kernel)', () => {
  let obj: BpfObject;
  beforeAll(() => {
    obj = BpfObject.open(batchObject);
    obj.load();
  });
  afterAll(() => obj?.close());

  it('writes and deletes a hash map in one call each, across chunk boundaries', () => {
    const big = obj.map('big');
    const n = 140_000; // three chunks of at most 65,536
    const ids = Array.from({ length: n }, (_, i) => i * 7 + 3);
    expect(big.updateBatch(packU32(ids), packU64(ids.map((i) => i * 2)))).toBe(n);
    expect(big.keys().length).toBe(n);
    for (const i of [0, 65_535, 65_536, 131_072, n - 1]) expect(big.lookup(packU32([ids[i]!]))!.readBigUInt64LE()).toBe(BigInt(ids[i]! * 2));

    // Overwrite in place: same count, new values.
    expect(big.updateBatch(packU32(ids.slice(0, 10)), packU64(Array(10).fill(1)))).toBe(10);
    expect(big.keys().length).toBe(n);
    expect(big.lookup(packU32([ids[9]!]))!.readBigUInt64LE()).toBe(1n);

    // Read it all back in one call per chunk: the same rows as key-by-key iteration.
    const all = big.lookupBatch({ chunk: 1000 });
    expect(all.count).toBe(n);
    expect(all.keys.length).toBe(4 * n);
    expect(all.values.length).toBe(8 * n);
    const seen = new Map<number, bigint>();
    for (let i = 0; i < n; i++) seen.set(all.keys.readUInt32LE(4 * i), all.values.readBigUInt64LE(8 * i));
    expect(seen.size).toBe(n);
    expect(seen.get(ids[9]!)).toBe(1n);
    expect(seen.get(ids[n - 1]!)).toBe(BigInt(ids[n - 1]! * 2));

    // Delete every other key, with keys that were never there mixed in (stepped over, not counted).
    const gone = ids.filter((_, i) => i % 2 === 0);
    const withMissing = [1, ...gone.slice(0, 70_000), 2, 4, ...gone.slice(70_000), 5];
    expect(big.deleteBatch(packU32(withMissing))).toBe(gone.length);
    expect(big.keys().length).toBe(n - gone.length);
    expect(big.lookup(packU32([ids[0]!]))).toBeUndefined();
    expect(big.lookup(packU32([ids[1]!]))).toBeDefined();
    // Deleting keys none of which are there deletes nothing and does not fail.
    expect(big.deleteBatch(packU32(gone.slice(0, 100)))).toBe(0);
    expect(big.deleteBatch(packU32(ids.filter((_, i) => i % 2 === 1)))).toBe(n - gone.length);
    expect(big.keys()).toEqual([]);
    expect(big.lookupBatch()).toEqual({ keys: Buffer.alloc(0), values: Buffer.alloc(0), count: 0 });
    // Nothing to do is not an error.
    expect(big.updateBatch(Buffer.alloc(0), Buffer.alloc(0))).toBe(0);
    expect(big.deleteBatch(Buffer.alloc(0))).toBe(0);
  });

  it('rejects buffers that do not match the map layout, naming the map', () => {
    const big = obj.map('big');
    expect(() => big.updateBatch(Buffer.alloc(6), Buffer.alloc(16))).toThrow("map 'big' keys is 6 bytes, not a multiple of 4");
    expect(() => big.updateBatch(Buffer.alloc(8), Buffer.alloc(12))).toThrow("map 'big' values is 12 bytes, not a multiple of 8");
    expect(() => big.updateBatch(packU32([1, 2]), packU64([1]))).toThrow("map 'big': 2 keys but 1 values");
    expect(() => big.deleteBatch(Buffer.alloc(3))).toThrow("map 'big' keys is 3 bytes, not a multiple of 4");
    expect(() => big.updateBatch('x' as unknown as Buffer, Buffer.alloc(0))).toThrow("map 'big' keys: expected a Buffer");
    expect(big.keys()).toEqual([]);
  });

  it('a failure mid-batch says how many were done; those stay written', () => {
    const small = obj.map('small');
    small.update(packU32([30]), packU64([0]));
    // Four slots, one taken: the fourth new key finds the map full.
    let e = caught(() => small.updateBatch(packU32([10, 20, 30, 40, 50, 60]), packU64([1, 2, 3, 4, 5, 6])));
    expect(e.code).toBe('E2BIG');
    expect(e.done).toBe(4); // 10, 20, 30 (replaced), 40
    expect(e.total).toBe(6);
    expect(e.message).toBe('bpf_map_update_batch(small) after 4 of 6: E2BIG');
    expect(small.keys().map((k) => k.readUInt32LE()).sort((a, b) => a - b)).toEqual([10, 20, 30, 40]);
    expect(small.lookup(packU32([30]))!.readBigUInt64LE()).toBe(3n);
    expect(small.deleteBatch(packU32([10, 20, 30, 40]))).toBe(4);
    // The first element fails: nothing done, not "all of them" (the kernel leaves the count as asked).
    e = caught(() => obj.map('arr').updateBatch(packU32([9, 1]), packU64([1, 1])));
    expect(e.code).toBe('E2BIG');
    expect(e.done).toBe(0);
    // Arrays have no batch delete: an error that is not a missing key is thrown, with the count.
    e = caught(() => obj.map('arr').deleteBatch(packU32([0, 1])));
    expect(e.code).toBe('ENOTSUPP');
    expect(e.errno).toBe(524);
    expect(e.done).toBe(0);
    expect(e.message).toBe('bpf_map_delete_batch(arr) after 0 of 2: ENOTSUPP');
  });

  it('per-CPU values are valueBufferSize each; arrays batch too', () => {
    const pc = obj.map('pcpu_kv');
    const slot = pc.info.valueBufferSize;
    const cpus = slot / 8;
    expect(pc.info.perCpu).toBe(true);
    expect(Number.isInteger(cpus) && cpus >= 1).toBe(true);
    const vals = Buffer.alloc(2 * slot);
    for (let c = 0; c < cpus; c++) {
      vals.writeUInt32LE(100 + c, 8 * c);
      vals.writeUInt32LE(200 + c, slot + 8 * c);
    }
    expect(pc.updateBatch(packU32([1, 2]), vals)).toBe(2);
    const two = pc.lookup(packU32([2]))!;
    for (let c = 0; c < cpus; c++) expect(two.readUInt32LE(8 * c)).toBe(200 + c);
    // One CPU's worth per value is a layout error, caught before the kernel sees it (unless 1 CPU).
    if (cpus > 1) expect(() => pc.updateBatch(packU32([1, 2]), Buffer.alloc(8 * 2 + 8))).toThrow(/values is 24 bytes, not a multiple of/);
    const back = pc.lookupBatch();
    expect(back.count).toBe(2);
    expect(back.values.length).toBe(2 * slot);
    const at = back.keys.readUInt32LE(0) === 2 ? 0 : 1;
    for (let c = 0; c < cpus; c++) expect(back.values.readUInt32LE(at * slot + 8 * c)).toBe(200 + c);
    expect(pc.deleteBatch(packU32([1, 2, 3]))).toBe(2);

    const arr = obj.map('arr');
    expect(arr.updateBatch(packU32([0, 7]), packU64([11, 77]))).toBe(2);
    expect(arr.lookup(packU32([7]))!.readBigUInt64LE()).toBe(77n);
    expect(caught(() => arr.updateBatch(packU32([8]), packU64([1]))).code).toBe('E2BIG');
  });

  it('LPM trie (the ipcache kind): batch update, longest-prefix lookups, batch delete', () => {
    const lpm = obj.map('lpm');
    const key = (prefix: number, a: number[]) => Buffer.from([prefix, 0, 0, 0, ...a]);
    const keys = Buffer.concat([key(8, [10, 0, 0, 0]), key(24, [10, 1, 2, 0]), key(32, [10, 1, 2, 3])]);
    expect(lpm.updateBatch(keys, packU32([8, 24, 32]))).toBe(3);
    expect(lpm.lookup(key(32, [10, 1, 2, 3]))!.readUInt32LE()).toBe(32);
    expect(lpm.lookup(key(32, [10, 1, 2, 9]))!.readUInt32LE()).toBe(24);
    expect(lpm.lookup(key(32, [10, 9, 9, 9]))!.readUInt32LE()).toBe(8);
    expect(lpm.deleteBatch(Buffer.concat([key(24, [10, 1, 2, 0]), key(16, [10, 1, 0, 0])]))).toBe(1);
    expect(lpm.lookup(key(32, [10, 1, 2, 9]))!.readUInt32LE()).toBe(8);
    const back = lpm.lookupBatch();
    expect(back.count).toBe(2);
    expect(new Set([0, 1].map((i) => back.keys.toString('hex', 8 * i, 8 * i + 8)))).toEqual(new Set([key(8, [10, 0, 0, 0]), key(32, [10, 1, 2, 3])].map((k) => k.toString('hex'))));
    expect(lpm.deleteBatch(keys)).toBe(2);
    expect(lpm.keys()).toEqual([]);
  });
});
