// Typed facade over the native object model: BpfObject owns programs, maps, links and ring
// buffers; closing it detaches and frees all of them.
import { readFileSync } from 'node:fs';
import { native, type Features, type NativeLink, type NativeLinkInfo, type NativeMap, type NativeMapInfo, type NativeObject, type NativeProgram, type NativeVariable } from './native.js';
import { installExitCleanup } from './cleanup.js';
import { iterateRing, RingBuffer, type RingBatch, type RingCallback } from './ring-buffer.js';

export type Direction = 'ingress' | 'egress';

export interface TcAttachOptions {
  ifname?: string;
  ifindex?: number;
  direction: Direction;
  /** Network namespace: a name under /run/netns, or a path such as /proc/<pid>/ns/net. */
  netns?: string;
  /** tc filter priority and handle; 0 lets the kernel choose. Either one implies `mode: 'clsact'` under 'auto'. */
  priority?: number;
  handle?: number;
  /**
   * 'auto' (default): TCX (a bpf_link, kernel 6.6+) where the kernel has it, else a clsact filter.
   * 'tcx' fails where TCX is missing; 'clsact' always uses a filter on a clsact qdisc.
   */
  mode?: 'auto' | 'tcx' | 'clsact';
}

export interface XdpAttachOptions {
  ifname?: string;
  ifindex?: number;
  netns?: string;
  /**
   * 'auto' (default): native (driver) mode where the driver has it, else generic (skb) mode;
   * 'native' fails on drivers without XDP; 'generic' always uses skb mode. info().xdpMode says which.
   */
  mode?: 'auto' | 'native' | 'generic';
}

export interface TestRunOptions {
  data?: Buffer;
  ctx?: Buffer;
  repeat?: number;
  /** Room for data_out (default: input length + 512). */
  dataOutSize?: number;
  ctxOutSize?: number;
}

export interface TestRunResult {
  retval: number;
  /** Average duration of one run, as reported by the kernel. */
  durationNs: number;
  data: Buffer;
  ctx?: Buffer;
}

/** BPF_ANY / BPF_NOEXIST / BPF_EXIST, or a raw flags number (e.g. with BPF_F_LOCK = 4). */
export type UpdateFlag = 'any' | 'noexist' | 'exist' | number;
const UPDATE_FLAGS = { any: 0, noexist: 1, exist: 2 } as const;

export class BpfLink {
  /** @internal */
  constructor(private readonly link: NativeLink) {}
  /** Idempotent; a link whose interface or namespace is already gone counts as detached. */
  detach(): void {
    this.link.detach();
  }
  get detached(): boolean {
    return this.link.detached;
  }
  get description(): string {
    return this.link.description;
  }
  info(): NativeLinkInfo {
    return this.link.info();
  }
}

export class BpfProgram {
  /** @internal */
  constructor(private readonly prog: NativeProgram) {}
  get name(): string {
    return this.prog.name;
  }
  get fd(): number {
    return this.prog.fd;
  }
  /** libbpf's program type name, e.g. `sched_cls`. */
  get type(): string {
    return this.prog.type;
  }
  get section(): string {
    return this.prog.section;
  }
  /**
   * TC ingress/egress. TCX links vanish with the process; clsact filters are removed on detach, and
   * the qdisc too if we created it.
   */
  attachTc(opts: TcAttachOptions): BpfLink {
    return new BpfLink(this.prog.attachTc(opts));
  }
  attachTracepoint(category: string, name: string): BpfLink {
    return new BpfLink(this.prog.attachTracepoint(category, name));
  }
  attachRawTracepoint(name: string): BpfLink {
    return new BpfLink(this.prog.attachRawTracepoint(name));
  }
  /** cgroup_skb, cgroup_sock and cgroup_sock_addr programs; `path` is a cgroup v2 directory. */
  attachCgroup(path: string): BpfLink {
    return new BpfLink(this.prog.attachCgroup(path));
  }
  attachXdp(target: number | XdpAttachOptions): BpfLink {
    return new BpfLink(this.prog.attachXdp(target));
  }
  testRun(opts: TestRunOptions = {}): TestRunResult {
    return this.prog.testRun(opts);
  }
  pin(path: string): void {
    this.prog.pin(path);
  }
  unpin(path: string): void {
    this.prog.unpin(path);
  }
}

export class BpfMap {
  /** @internal */
  constructor(private readonly m: NativeMap) {}

  /** Opens a map pinned in bpffs, independent of any object. */
  static openPinned(path: string): BpfMap {
    const addon = native();
    return new BpfMap(new addon.BpfMap(path));
  }
  get name(): string {
    return this.m.name;
  }
  get fd(): number {
    return this.m.fd;
  }
  /** Live metadata; `valueBufferSize` is what lookup returns (per-CPU: 8-byte slots × possible CPUs). */
  get info(): NativeMapInfo {
    return this.m.info();
  }
  lookup(key: Buffer): Buffer | undefined {
    return this.m.lookup(key);
  }
  update(key: Buffer, value: Buffer, flags: UpdateFlag = 'any'): void {
    this.m.update(key, value, typeof flags === 'number' ? flags : UPDATE_FLAGS[flags]);
  }
  /** Returns false when the key was not present. */
  delete(key: Buffer): boolean {
    return this.m.delete(key);
  }
  keys(): Buffer[] {
    return this.m.keys();
  }
  *entries(): IterableIterator<[Buffer, Buffer]> {
    for (const k of this.m.keys()) {
      const v = this.m.lookup(k);
      if (v) yield [k, v];  // deleted between keys() and lookup(): skip, as bpftool does
    }
  }
  /**
   * Drains the map atomically per chunk with BPF_MAP_LOOKUP_AND_DELETE_BATCH. Hash maps only;
   * the kernel rejects arrays (BpfError EINVAL/ENOTSUPP).
   */
  lookupAndDeleteBatch(opts: { chunk?: number } = {}): { key: Buffer; value: Buffer }[] {
    const { keys, values } = this.m.lookupAndDeleteBatch(opts.chunk);
    return keys.map((key, i) => ({ key, value: values[i]! }));
  }
  /**
   * Writes `keys.length / keySize` elements with BPF_MAP_UPDATE_BATCH: `keys` and `values` are the
   * keys and values packed back to back (values of per-CPU maps are `info.valueBufferSize` each).
   * One syscall per 65,536 elements instead of one per element. Creates or replaces (the kernel
   * takes no noexist/exist per batch). Returns the number written; on failure throws a BpfError
   * whose `done` says how many were written before it (the first `done`, in order).
   */
  updateBatch(keys: Buffer, values: Buffer): number {
    return this.m.updateBatch(keys, values);
  }
  /**
   * Deletes the packed `keys` with BPF_MAP_DELETE_BATCH; keys that are not in the map are stepped
   * over. Returns how many were deleted; on failure a BpfError with `done` (deleted so far).
   */
  deleteBatch(keys: Buffer): number {
    return this.m.deleteBatch(keys);
  }
  /**
   * Every element with BPF_MAP_LOOKUP_BATCH, keys and values packed back to back (values of
   * per-CPU maps are `info.valueBufferSize` each). Hash, LRU, per-CPU, array and (kernel 6.x) LPM
   * trie maps; others throw BpfError ENOTSUPP. Like `entries()`, not a snapshot of a map being written.
   */
  lookupBatch(opts: { chunk?: number } = {}): { keys: Buffer; values: Buffer; count: number } {
    return this.m.lookupBatch(opts.chunk);
  }
  pin(path: string): void {
    this.m.pin(path);
  }
  unpin(path?: string): void {
    this.m.unpin(path);
  }
}

export interface OpenOptions {
  /** Object name (libbpf prefixes internal map names with it). */
  name?: string;
}

export interface RingBufferOptions {
  /** A batch ends at the first record that reaches this size; the rest comes on the next loop iteration (default 4 MiB). */
  maxBatchBytes?: number;
}

export class BpfObject {
  private readonly programs = new Map<string, BpfProgram>();
  private readonly maps = new Map<string, BpfMap>();

  private constructor(private readonly obj: NativeObject) {}

  static open(pathOrBuffer: string | Buffer, opts: OpenOptions = {}): BpfObject {
    const addon = native();
    installExitCleanup(addon);
    return new BpfObject(new addon.BpfObject(pathOrBuffer, opts.name));
  }

  get name(): string {
    return this.obj.name;
  }
  get loaded(): boolean {
    return this.obj.loaded;
  }
  get closed(): boolean {
    return this.obj.closed;
  }
  /** Sets a `const volatile` global (`.rodata`) before load; numbers and bigints are sized to the variable. */
  setRodata(name: string, value: Buffer | number | bigint | boolean): this {
    this.obj.setVariable(name, value);
    return this;
  }
  /** Same for any global in .rodata, .data or .bss (initial value, before load). */
  setVariable(name: string, value: Buffer | number | bigint | boolean): this {
    this.obj.setVariable(name, value);
    return this;
  }
  variables(): NativeVariable[] {
    return this.obj.variables();
  }
  setAutoload(program: string, autoload: boolean): this {
    this.obj.setAutoload(program, autoload);
    return this;
  }
  /** Resizes a map before load (e.g. the ring buffer: a power-of-two multiple of the page size). */
  setMaxEntries(map: string, n: number): this {
    this.obj.setMaxEntries(map, n);
    return this;
  }
  /** Throws BpfError with `log` set to the verifier log when a program is rejected. */
  load(): this {
    this.obj.load();
    return this;
  }
  programNames(): string[] {
    return this.obj.programNames();
  }
  mapNames(): string[] {
    return this.obj.mapNames();
  }
  program(name: string): BpfProgram {
    let p = this.programs.get(name);
    if (!p) this.programs.set(name, (p = new BpfProgram(this.obj.program(name))));
    return p;
  }
  map(name: string): BpfMap {
    let m = this.maps.get(name);
    if (!m) this.maps.set(name, (m = new BpfMap(this.obj.map(name))));
    return m;
  }
  /** Starts consuming a ringbuf map: `cb` is called once per wake-up with a batch (see forEachRecord). */
  ringBuffer(map: string, cb: RingCallback, opts: RingBufferOptions = {}): RingBuffer {
    return new RingBuffer(this.obj.ringBuffer(map, cb, opts.maxBatchBytes), map);
  }
  /** The same as an async iterator with backpressure (pauses the ring above `highWaterMark` batches). */
  ringBatches(map: string, opts: RingBufferOptions & { highWaterMark?: number } = {}): AsyncIterableIterator<RingBatch> & { ring: RingBuffer } {
    return iterateRing((cb) => this.ringBuffer(map, cb, opts), opts);
  }
  /** Detaches every link, closes ring buffers and frees the kernel objects. Idempotent. */
  close(): void {
    this.obj.close();
    this.programs.clear();
    this.maps.clear();
  }
}

export function probeFeatures(): Features {
  return native().probeFeatures();
}
export function probeProgType(name: string): boolean {
  return native().probeProgType(name);
}
export function probeMapType(name: string): boolean {
  return native().probeMapType(name);
}
export function probeHelper(progType: string, helperId: number): boolean {
  return native().probeHelper(progType, helperId);
}

/**
 * Possible CPUs as libbpf counts them (libbpf_num_possible_cpus: the highest CPU in
 * /sys/devices/system/cpu/possible, plus one): the number of values of a per-CPU map entry.
 */
export function possibleCpus(): number {
  const text = readFileSync('/sys/devices/system/cpu/possible', 'utf8').trim();
  let max = -1;
  for (const part of text.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) throw new Error(`/sys/devices/system/cpu/possible: cannot parse "${text}"`);
    max = Math.max(max, Number(m[2] ?? m[1]));
  }
  return max + 1;
}

export type Logger = (level: 'warn' | 'info' | 'debug', message: string) => void;

/** Routes libbpf's own messages; `null` restores the default (warnings to stderr under FLOWCTL_DEBUG). */
export function setLogger(fn: Logger | null): void {
  native().setLogger(fn as ((level: string, message: string) => void) | null);
}

/** Closes every open object of this process (what the exit and signal hooks do). */
export function closeAll(): number {
  return native().closeAll();
}
