// Objects, global variables, maps and BPF_PROG_TEST_RUN against the real kernel.
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BpfError, BpfMap, BpfObject, probeMapType, probeProgType, setLogger } from '../lib/index.js';
import { rejectedObject, sh, shQuiet, skipReason, testObject, u32, u64 } from './helpers.js';

const skip = skipReason();

describe.skipIf(skip)('BpfObject (real kernel)', () => {
  let obj: BpfObject;
  beforeAll(() => {
    obj = BpfObject.open(testObject)
      .setRodata('retval_magic', 0x1234)
      .setRodata('tag64', 0x1122334455667788n);
    obj.load();
  });
  afterAll(() => obj?.close());

  it('lists variables from the BTF datasecs and sets rodata before load', () => {
    const vars = BpfObject.open(testObject);
    try {
      const names = vars.variables().map((v) => `${v.section}:${v.name}:${v.size}`);
      expect(names).toContain('.rodata:retval_magic:4');
      expect(names).toContain('.rodata:tag64:8');
      expect(names).toContain('.bss:bss_counter:8');
      expect(() => vars.setRodata('no_such_var', 1)).toThrow(/setVariable\('no_such_var'\).*ENOENT/);
      expect(() => vars.setRodata('retval_magic', Buffer.alloc(3))).toThrow(/3 bytes, variable is 4/);
      expect(() => vars.setRodata('retval_magic', 2 ** 33)).toThrow(/does not fit in 4 bytes/);
    } finally {
      vars.close();
    }
    // After load the rodata map is frozen; the object refuses rather than silently ignoring.
    expect(() => obj.setRodata('retval_magic', 1)).toThrow(BpfError);
  });

  it('test_run returns the rodata value, the rewritten packet and a duration', () => {
    const data = Buffer.alloc(64, 0x11);
    const r = obj.program('ret_magic').testRun({ data, repeat: 5 });
    expect(r.retval).toBe(0x1234);
    expect(r.data.length).toBe(64);
    expect(r.data[0]).toBe(0xab);
    expect(r.data[1]).toBe(0x11);
    expect(r.durationNs).toBeGreaterThanOrEqual(0);
    // .bss written by the program: tag64 added once per run.
    const pcpu = obj.map('pcpu');
    expect(pcpu.info.perCpu).toBe(true);
    const v = pcpu.lookup(u32(0))!;
    expect(v.length).toBe(pcpu.info.valueBufferSize);
    let total = 0;
    for (let off = 0; off < v.length; off += 8) total += v.readUInt32LE(off);
    expect(total).toBe(5);
  });

  it('map CRUD with flags, iteration and batch drain', () => {
    const kv = obj.map('kv');
    expect(kv.info).toMatchObject({ name: 'kv', type: 'hash', keySize: 4, valueSize: 8, maxEntries: 1024 });
    for (let i = 1; i <= 100; i++) kv.update(u32(i), u64(i * 10), 'noexist');
    expect(() => kv.update(u32(1), u64(0), 'noexist')).toThrow(/bpf_map_update_elem\(kv, flags=1\): EEXIST/);
    expect(() => kv.update(u32(1000), u64(0), 'exist')).toThrow(/ENOENT/);
    kv.update(u32(1), u64(11), 'exist');
    expect(kv.lookup(u32(1))!.readBigUInt64LE()).toBe(11n);
    expect(kv.lookup(u32(5000))).toBeUndefined();
    expect(kv.delete(u32(2))).toBe(true);
    expect(kv.delete(u32(2))).toBe(false);
    const keys = kv.keys().map((k) => k.readUInt32LE()).sort((a, b) => a - b);
    expect(keys.length).toBe(99);
    expect(keys[0]).toBe(1);
    expect(keys.includes(2)).toBe(false);
    expect([...kv.entries()].length).toBe(99);
    expect(() => kv.lookup(Buffer.alloc(3))).toThrow(/key is 3 bytes, expected 4/);

    const drained = kv.lookupAndDeleteBatch({ chunk: 16 });
    expect(drained.length).toBe(99);
    const got = new Map(drained.map((e) => [e.key.readUInt32LE(), e.value.readBigUInt64LE()]));
    expect(got.get(1)).toBe(11n);
    expect(got.get(50)).toBe(500n);
    expect(kv.keys().length).toBe(0);
    // Arrays cannot delete, so the kernel refuses the batch drain.
    expect(() => obj.map('counters').lookupAndDeleteBatch()).toThrow(BpfError);
  });

  it('pins and reopens a map in bpffs', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fcl-bpffs-'));
    sh('mount', ['-t', 'bpf', 'bpf', dir]);
    try {
      const kv = obj.map('kv');
      kv.update(u32(7), u64(70));
      const path = join(dir, 'kv');
      kv.pin(path);
      expect(existsSync(path)).toBe(true);
      const pinned = BpfMap.openPinned(path);
      expect(pinned.lookup(u32(7))!.readBigUInt64LE()).toBe(70n);
      expect(pinned.info.name).toBe('kv');
      kv.unpin(path);
      expect(existsSync(path)).toBe(false);
      kv.delete(u32(7));
    } finally {
      shQuiet('umount', [dir]);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('opens from a buffer and probes types', () => {
    const o = BpfObject.open(readFileSync(testObject), { name: 'frombuf' });
    try {
      o.setAutoload('on_fork', false).setAutoload('on_fork_raw', false);
      o.load();
      expect(o.programNames()).toContain('writer');
      expect(o.program('writer').type).toBe('sched_cls');
      expect(() => o.program('on_fork').testRun()).toThrow(/not loaded.*EBADF/);
    } finally {
      o.close();
    }
    expect(probeProgType('sched_cls')).toBe(true);
    expect(probeMapType('ringbuf')).toBe(true);
    expect(() => probeProgType('nonsense')).toThrow(/unknown program type/);
  });

  it('error paths: missing file, verifier rejection with log, closed object', () => {
    try {
      BpfObject.open('/nonexistent/fcl.bpf.o');
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(BpfError);
      expect((e as BpfError).code).toBe('ENOENT');
      expect((e as BpfError).message).toBe('bpf_object__open_file(/nonexistent/fcl.bpf.o): ENOENT');
    }
    const logged: string[] = [];
    setLogger((level, msg) => logged.push(`${level}: ${msg}`));
    const bad = BpfObject.open(rejectedObject);
    try {
      bad.load();
      expect.unreachable();
    } catch (e) {
      const err = e as BpfError;
      expect(err).toBeInstanceOf(BpfError);
      expect(err.op).toBe('bpf_object__load(rejected)');
      expect(err.code).toBe('EACCES');
      expect(err.errno).toBe(13);
      // The verifier's own words about the unchecked packet access.
      expect(err.log).toMatch(/invalid access to packet/);
    } finally {
      bad.close();
      setLogger(null);
    }
    expect(logged.some((l) => l.startsWith('warn: ') && l.includes('BEGIN PROG LOAD LOG'))).toBe(true);
    const closed = BpfObject.open(testObject);
    closed.close();
    closed.close();
    expect(() => closed.load()).toThrow(/is closed: EBADF/);
  });
});
