// Locates and loads the compiled addon. Loaded on first use, so importing this package (the agent
// in --fake or replay mode) never needs the .node file.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BpfError } from './errors.js';

export interface NativeLinkInfo {
  kind: 'tc' | 'tcx' | 'xdp' | 'bpf_link';
  description: string;
  ifindex?: number;
  direction?: 'ingress' | 'egress';
  /** XDP links: the mode the kernel accepted. */
  xdpMode?: 'native' | 'generic';
  handle?: number;
  priority?: number;
  fd?: number;
}
export interface NativeLink {
  detach(): void;
  info(): NativeLinkInfo;
  readonly detached: boolean;
  readonly description: string;
}
export interface NativeMapInfo {
  name: string;
  type: string;
  typeId: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  id: number;
  perCpu: boolean;
  valueBufferSize: number;
}
export interface NativeMap {
  lookup(key: Buffer, flags?: number): Buffer | undefined;
  update(key: Buffer, value: Buffer, flags?: number): void;
  delete(key: Buffer): boolean;
  keys(): Buffer[];
  lookupAndDeleteBatch(chunk?: number): { keys: Buffer[]; values: Buffer[] };
  updateBatch(keys: Buffer, values: Buffer): number;
  deleteBatch(keys: Buffer): number;
  lookupBatch(chunk?: number): { keys: Buffer; values: Buffer; count: number };
  info(): NativeMapInfo;
  pin(path: string): void;
  unpin(path?: string): void;
  readonly name: string;
  readonly fd: number;
}
export interface NativeTestRunResult {
  retval: number;
  durationNs: number;
  data: Buffer;
  ctx?: Buffer;
}
export interface NativeProgram {
  attachTc(o: { ifname?: string; ifindex?: number; direction: string; netns?: string; priority?: number; handle?: number; mode?: string }): NativeLink;
  attachTracepoint(category: string, name: string): NativeLink;
  attachRawTracepoint(name: string): NativeLink;
  attachCgroup(path: string): NativeLink;
  attachXdp(o: number | { ifname?: string; ifindex?: number; netns?: string; mode?: string }): NativeLink;
  testRun(o: { data?: Buffer; ctx?: Buffer; repeat?: number; dataOutSize?: number; ctxOutSize?: number }): NativeTestRunResult;
  pin(path: string): void;
  unpin(path: string): void;
  readonly name: string;
  readonly fd: number;
  readonly type: string;
  readonly section: string;
}
export interface NativeRingStats {
  consumed: number;
  calls: number;
  discarded: number;
  paused: boolean;
  closed: boolean;
}
export interface NativeRing {
  pause(): void;
  resume(): void;
  close(): void;
  discard(): number;
  ref(): void;
  unref(): void;
  stats(): NativeRingStats;
}
export interface NativeVariable {
  name: string;
  section: string;
  offset: number;
  size: number;
}
export interface NativeObject {
  setVariable(name: string, value: Buffer | number | bigint | boolean): void;
  variables(): NativeVariable[];
  setAutoload(prog: string, on: boolean): void;
  setMaxEntries(map: string, n: number): void;
  load(): void;
  program(name: string): NativeProgram;
  map(name: string): NativeMap;
  programNames(): string[];
  mapNames(): string[];
  ringBuffer(map: string, cb: (batch: Buffer, count: number) => void, maxBatchBytes?: number): NativeRing;
  close(): void;
  readonly name: string;
  readonly loaded: boolean;
  readonly closed: boolean;
}
export interface Features {
  privileged: boolean;
  privilegeError?: string;
  btf: boolean;
  capabilities: { sysAdmin: boolean; netAdmin: boolean; perfmon: boolean; bpf: boolean };
  ringbuf: boolean;
  lpmTrie: boolean;
  lruHash: boolean;
  tc: boolean;
  xdp: boolean;
  tracepoint: boolean;
  rawTracepoint: boolean;
  cgroupSkb: boolean;
  cgroupSock: boolean;
  cgroupSockAddr: boolean;
  helpers: Record<string, boolean>;
  kernel: string;
  libbpf: string;
}
export interface NativeAddon {
  BpfObject: new (src: string | Buffer, name?: string) => NativeObject;
  BpfMap: new (pinPath: string) => NativeMap;
  setErrorClass(c: typeof BpfError): void;
  setLogger(fn: ((level: string, message: string) => void) | null): void;
  closeAll(): number;
  openObjects(): { objects: number; links: number };
  probeFeatures(): Features;
  probeProgType(name: string): boolean;
  probeMapType(name: string): boolean;
  probeHelper(progType: string, helperId: number): boolean;
}

const here = dirname(fileURLToPath(import.meta.url));
let cached: NativeAddon | undefined;

/** Paths tried, in order: $FLOWCTL_BPF_ADDON, then build/{Release,Debug} beside lib/ and dist/. */
export function addonCandidates(): string[] {
  const root = join(here, '..');
  const list = [join(root, 'build', 'Release', 'bpf_loader.node'), join(root, 'build', 'Debug', 'bpf_loader.node')];
  const env = process.env['FLOWCTL_BPF_ADDON'];
  return env ? [env, ...list] : list;
}

export function native(): NativeAddon {
  if (cached) return cached;
  const tried = addonCandidates();
  const found = tried.find((p) => existsSync(p));
  if (!found) {
    throw new Error(
      `bpf-loader: native addon not built; tried ${tried.join(', ')}. Run \`make addon\` (or \`cd addon && pnpm run build:native\`).`,
    );
  }
  const addon = createRequire(import.meta.url)(found) as NativeAddon;
  addon.setErrorClass(BpfError);
  cached = addon;
  return addon;
}
