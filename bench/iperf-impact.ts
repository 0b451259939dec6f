// Workload impact of the datapath: iperf3 TCP throughput between two network namespaces over a
// veth pair, measured bare, with an empty TC program, with flowctl attached (TC programs on the
// veth plus the tracepoint programs, through KernelDatapath, as the agent attaches them), and
// with tcpdump -s 128 -w /dev/null on the same veth.
//
// Why the setup looks like this:
// - GSO/TSO/GRO are off on both veth ends. With them on, the stack hands TC and AF_PACKET 64 KB
//   super-packets, ~45x fewer than on a wire, so any per-packet cost disappears in the noise
//   (the first version of this script measured tcpdump at 99.9% of bare). Off, every hook sees
//   MTU-sized packets, as it would behind a NIC that does not coalesce.
// - The client is pinned to one CPU and the server (and tcpdump) to the other. veth_xmit queues
//   the packet on the sending CPU's backlog, so the receive path, the TC ingress program and
//   tcpdump's copy all run in softirq on the client's CPU: the per-packet costs land where the
//   bottleneck is, and the modes contend for the CPUs the same way every time.
// - One long iperf3 stream, cut into short slices, each slice in one mode (rotated each round);
//   every figure is the median of per-round ratios to the same round's bare slice. On a shared
//   machine throughput swings by 2x between seconds; slices a second apart see nearly the same
//   load, and no slice pays for a TCP handshake or slow start.
// - Besides throughput, CPU time per GB received (iperf3 client and server, tcpdump, ksoftirqd,
//   and this process, which is the ring consumer in the flowctl mode), read from each task's
//   sum_exec_runtime. Throughput depends on how much CPU the other tenants leave us; CPU per
//   byte much less so.
//
// - TC programs attach as TCX links, as the agent attaches them on kernels that have TCX (6.6+):
//   the clsact path costs an empty program ~6% of the throughput here, TCX ~1.5%.
//
//   pnpm exec tsx --conditions=@flowctl/source bench/iperf-impact.ts [--rounds 160] [--slice 0.5] [--seed 1] [--offloads] [--clsact]
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { BpfObject } from '../addon/lib/index.js';
import { KernelDatapath } from '../packages/agent/src/datapath/kernel.js';
import { rng } from '../packages/flow/src/testing/corpus.js';
import { median, medianCI, percentile, progress, writeSection } from './lib/report.js';
import { benchObject } from './lib/bench-objects.js';
import { createPair, pinned, removePair, runBenchmark, sh, stop, type VethPair, waitFor } from './lib/veth.js';

const A = 'fcb-ipa';
const B = 'fcb-ipb';
const DEV_A = 'fcb-ipa0';
const DEV_B = 'fcb-ipb0';
const IP_A = '10.206.10.1';
const IP_B = '10.206.10.2';
const PORT = 5201;

function arg(name: string, def: number, min = Number.MIN_VALUE): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : def;
  if (!Number.isFinite(v) || v < min) {
    process.stderr.write(`iperf-impact: --${name}: expected a number ${min === Number.MIN_VALUE ? '> 0' : `>= ${min}`}, got ${process.argv[i + 1]}\n`);
    process.exit(2);
  }
  return v;
}
const ROUNDS = arg('rounds', 160);
/** Seed of the slice order (see main). */
const SEED = arg('seed', 1, 0);
/** Seconds measured per slice; each slice also has ~0.1 s to settle after its mode is switched on. */
const SLICE_S = arg('slice', 0.5);
const SETTLE_MS = 100;
/** Keep GSO/TSO/GRO on (the veth default), to show what the first version of this figure measured. */
const KEEP_OFFLOADS = process.argv.includes('--offloads');
/** How the TC programs (flowctl's and the empty one) attach: TCX links (default) or clsact filters. */
const TC_MODE: 'auto' | 'clsact' = process.argv.includes('--clsact') ? 'clsact' : 'auto';

const NCPU = cpus().length;
const CPU_CLIENT = '0';
/** --server-cpu 0 puts everything on one CPU: no cache line crosses CPUs between ingress and egress. */
const CPU_SERVER = String(process.argv.includes('--server-cpu') ? arg('server-cpu', 1, 0) : NCPU > 1 ? 1 : 0);
if (!/^\d+$/.test(CPU_SERVER) || Number(CPU_SERVER) >= NCPU) {
  process.stderr.write(`iperf-impact: --server-cpu: ${CPU_SERVER} is not a CPU of this machine (0..${NCPU - 1})\n`);
  process.exit(2);
}

const PAIR: VethPair = { a: A, b: B, devA: DEV_A, devB: DEV_B, ipA: IP_A, ipB: IP_B };
const cleanup = () => removePair(PAIR);
const setup = () => createPair(PAIR, KEEP_OFFLOADS);

/** Nanoseconds on CPU (sum_exec_runtime) of a live process; 0 once it is gone. */
function cpuNs(pid: number | undefined): number {
  if (!pid) return 0;
  try {
    return Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]);
  } catch {
    return 0;
  }
}

/** Softirq work deferred under load runs in ksoftirqd, outside every process we start. */
const KSOFTIRQD = sh('pgrep', '-x', 'ksoftirqd/[0-9]+')
  .split('\n')
  .map(Number)
  .filter((p) => p > 0);
/** The client CPU's ksoftirqd: deferred receive work for the packets the client sends. */
const KSOFTIRQD_CLIENT = Number(sh('pgrep', '-x', `ksoftirqd/${CPU_CLIENT}`).trim());

type Mode = 'bare' | 'tc-nop' | 'flowctl' | 'tcpdump' | 'flowctl-tc' | 'flowctl-fresh' | 'tc-pad';
const ALL_MODES: Mode[] = ['bare', 'tc-nop', 'flowctl', 'tcpdump', 'flowctl-tc', 'flowctl-fresh', 'tc-pad'];
/**
 * --modes a,b,... picks the modes (bare first); the diagnostic ones split flowctl's cost:
 * flowctl-tc is flowctl without its tracepoint programs (loaded once, like flowctl),
 * flowctl-fresh is flowctl loaded afresh for each slice and closed after it, which measures
 * the first ~second after a load (see the report); tc-pad is a program that only spends ~150
 * cycles (bpf/test/pad.bpf.c): what that much time per packet costs the stream.
 */
const MODES: Mode[] = (() => {
  const i = process.argv.indexOf('--modes');
  if (i < 0) return ['bare', 'tc-nop', 'flowctl', 'tcpdump'];
  const list = (process.argv[i + 1] ?? '').split(',') as Mode[];
  const bad = list.find((m) => !ALL_MODES.includes(m));
  if (bad !== undefined || list[0] !== 'bare') {
    process.stderr.write(`iperf-impact: --modes: expected bare first, then any of ${ALL_MODES.join(', ')}; got ${process.argv[i + 1]}\n`);
    process.exit(2);
  }
  return list;
})();

function shuffled<T>(xs: readonly T[], rand: () => number): T[] {
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

interface Slice {
  gbps: number;
  /** CPU seconds per GB received, all parties. */
  cpuPerGB: number;
  ksoftirqdPerGB: number;
  /**
   * CPU seconds per GB on the client's CPU (the client and that CPU's ksoftirqd): the sender and
   * the whole receive path up to the socket, so the bottleneck when the CPU is ours alone.
   */
  clientCpuPerGB: number;
  /** Share of wall time the client and the server were on a CPU: how much the other tenants left us. */
  clientBusy: number;
  serverBusy: number;
  /** Gbit/s per CPU-second of the client's CPU: the throughput the stream would reach with that CPU to itself. */
  fullCpuGbps: number;
  /** GB per CPU-second of all parties: the throughput if every CPU we use were ours alone. */
  gbPerCpuS: number;
  /** CPU milliseconds per GB received, by party (the parts of cpuPerGB, with the client's ksoftirqd apart). */
  parts: Record<Party, number>;
  /** flowctl: events delivered and lost in the kernel; tcpdump: packets captured and dropped. */
  events: number;
  lost: bigint;
}

const PARTIES = ['client', 'ksoftirqdClient', 'server', 'ksoftirqdOther', 'tcpdump', 'bench'] as const;
type Party = (typeof PARTIES)[number];
const PARTY_LABEL: Record<Party, string> = {
  client: 'iperf3 client (and softirq work run in its context)',
  ksoftirqdClient: "ksoftirqd of the client's CPU",
  server: 'iperf3 server',
  ksoftirqdOther: 'other ksoftirqd',
  tcpdump: 'tcpdump',
  bench: 'benchmark process (flowctl ring consumer)',
};

interface Procs {
  client: ChildProcess;
  server: ChildProcess;
}

/** Bytes the iperf3 server has read from its sockets: goodput, without headers or retransmits. */
function serverBytes(server: ChildProcess): number {
  const m = /^rchar: (\d+)$/m.exec(readFileSync(`/proc/${server.pid}/io`, 'utf8'));
  if (!m) throw new Error(`/proc/${server.pid}/io: no rchar line`);
  return Number(m[1]);
}

const sleep = (ms: number) => new Promise((res) => setTimeout(res, ms));

/** One measured slice of the running stream, with every party's CPU time. */
async function measure(p: Procs, extra: ChildProcess | undefined): Promise<Omit<Slice, 'events' | 'lost'>> {
  await sleep(SETTLE_MS);
  const snap = () => ({
    t: performance.now(),
    bytes: serverBytes(p.server),
    client: cpuNs(p.client.pid),
    ksoftClient: cpuNs(KSOFTIRQD_CLIENT),
    server: cpuNs(p.server.pid),
    extra: cpuNs(extra?.pid),
    ksoft: KSOFTIRQD.reduce((s, pid) => s + cpuNs(pid), 0),
    self: process.cpuUsage(),
  });
  const s0 = snap();
  // A timer, not a blocking wait: the flowctl ring is consumed on this thread during the slice.
  await sleep(SLICE_S * 1000);
  const s1 = snap();
  if (p.client.exitCode !== null || p.server.exitCode !== null) throw new Error('iperf3 stopped during the run');
  const gb = (s1.bytes - s0.bytes) / 1e9;
  if (gb <= 0) throw new Error('iperf3: no bytes received during a slice');
  const self = process.cpuUsage(s0.self);
  const ksoft = (s1.ksoft - s0.ksoft) / 1e9;
  const clientTask = (s1.client - s0.client) / 1e9;
  const ksoftClient = (s1.ksoftClient - s0.ksoftClient) / 1e9;
  const client = clientTask + ksoftClient;
  const server = (s1.server - s0.server) / 1e9;
  const extraS = (s1.extra - s0.extra) / 1e9;
  const selfS = (self.user + self.system) / 1e6;
  const cpuS = clientTask + server + extraS + ksoft + selfS;
  const wall = (s1.t - s0.t) / 1000;
  const ms = (x: number) => (x * 1000) / gb;
  return {
    parts: {
      client: ms(clientTask),
      ksoftirqdClient: ms(ksoftClient),
      server: ms(server),
      ksoftirqdOther: ms(ksoft - ksoftClient),
      tcpdump: ms(extraS),
      bench: ms(selfS),
    },
    gbps: (gb * 8) / wall,
    cpuPerGB: cpuS / gb,
    ksoftirqdPerGB: ksoft / gb,
    clientCpuPerGB: client / gb,
    clientBusy: client / wall,
    fullCpuGbps: (gb * 8) / client,
    gbPerCpuS: gb / cpuS,
    serverBusy: server / wall,
  };
}

/**
 * flowctl as an agent runs it: loaded once, before the stream starts (a fresh load costs the
 * next second of traffic: allocating and zeroing ~50 MB of maps, a new JIT image; flowctl-fresh
 * measures that), ring consumed by this process. Its TC programs are attached for its own slices
 * only; its tracepoint programs stay attached but watch our namespaces only during them (in the
 * other slices they return at once for the few kfree_skb calls).
 */
interface Kept {
  dp: KernelDatapath;
  events: number;
  tracing: boolean;
}
const kept = new Map<Mode, Kept>();
function loadKept(mode: 'flowctl' | 'flowctl-tc'): void {
  const k: Kept = { dp: new KernelDatapath({ tcAttach: TC_MODE, tracepoints: mode === 'flowctl' }), events: 0, tracing: mode === 'flowctl' };
  kept.set(mode, k);
  k.dp.start((batch) => (k.events += batch.length));
}

async function slice(mode: Mode, p: Procs, nop: BpfObject, pad: BpfObject | undefined): Promise<Slice> {
  if (mode === 'bare') return { ...(await measure(p, undefined)), events: 0, lost: 0n };
  if (mode === 'tc-nop' || mode === 'tc-pad') {
    // The hook's own price: an empty program at the same two TC attach points (tc-pad: one that
    // only spends ~150 cycles, bpf/test/pad.bpf.c).
    const prog = mode === 'tc-pad' ? pad!.program('bench_pad') : nop.program('bench_nop');
    const links = (['ingress', 'egress'] as const).map((direction) => prog.attachTc({ ifname: DEV_B, netns: B, direction, mode: TC_MODE }));
    try {
      return { ...(await measure(p, undefined)), events: 0, lost: 0n };
    } finally {
      for (const l of links) l.detach();
    }
  }
  if (mode === 'tcpdump') {
    const td = pinned(CPU_SERVER, B, ['tcpdump', '-i', DEV_B, '-s', '128', '-w', '/dev/null']);
    let err = '';
    td.stderr!.on('data', (d: Buffer) => (err += d));
    let m: Omit<Slice, 'events' | 'lost'>;
    try {
      await waitFor(td, /listening on/, 'tcpdump');
      m = await measure(p, td);
    } finally {
      await stop(td);
    }
    // tcpdump that cannot keep up drops in the kernel and looks cheaper than it is: report it.
    const captured = /(\d+) packets? captured/.exec(err);
    const dropped = /(\d+) packets? dropped by kernel/.exec(err);
    if (!captured || !dropped) throw new Error(`tcpdump: no statistics at exit: ${err.trim()}`);
    return { ...m, events: Number(captured[1]), lost: BigInt(dropped[1]!) };
  }
  const k = kept.get(mode);
  if (k) {
    const lost = () => {
      const c = k.dp.counters();
      return c.ringbufFull + c.flowMapFull;
    };
    const e0 = k.events;
    const l0 = lost();
    if (k.tracing) {
      k.dp.watchNetns(A);
      k.dp.watchNetns(B);
    }
    // B plays the node: fcb-ipb0 is the host side of pod A's veth, where the agent attaches.
    k.dp.attach(DEV_B, B);
    try {
      const m = await measure(p, undefined);
      await sleep(20);
      return { ...m, events: k.events - e0, lost: lost() - l0 };
    } finally {
      k.dp.detach(DEV_B, B);
      if (k.tracing) {
        k.dp.unwatchNetns(A);
        k.dp.unwatchNetns(B);
      }
    }
  }
  // flowctl-fresh: loaded for this slice (~0.4 s of verifier time, outside the measurement).
  const dp = new KernelDatapath({ tcAttach: TC_MODE, tracepoints: true });
  let events = 0;
  try {
    dp.watchNetns(A);
    dp.watchNetns(B);
    dp.start((batch) => (events += batch.length));
    dp.attach(DEV_B, B);
    const m = await measure(p, undefined);
    await sleep(20);
    const c = dp.counters();
    return { ...m, events, lost: c.ringbufFull + c.flowMapFull };
  } finally {
    dp.close();
    // The kernel frees the maps in deferred work: let that happen before the next slice rather
    // than in it.
    await sleep(200);
  }
}

async function main(): Promise<void> {
  const t0 = Date.now();
  setup();
  const nop = BpfObject.open(benchObject('nop'), { name: 'nop' });
  const pad = MODES.includes('tc-pad') ? BpfObject.open(benchObject('pad'), { name: 'pad' }) : undefined;
  const server = pinned(CPU_SERVER, B, ['iperf3', '-s', '-1', '--forceflush', '-B', IP_B, '-p', String(PORT)]);
  let client: ChildProcess | undefined;
  const timeline: { mode: Mode; s: Slice }[] = [];
  try {
    nop.load();
    pad?.load();
    for (const m of ['flowctl', 'flowctl-tc'] as const) if (MODES.includes(m)) loadKept(m);
    await waitFor(server, /Server listening/, 'iperf3 server');
    // Longer than the run will take; stopped once the last slice is measured.
    const budget = Math.ceil(10 + ROUNDS * MODES.length * (SLICE_S + 1));
    client = pinned(CPU_CLIENT, A, ['iperf3', '-c', IP_B, '-p', String(PORT), '-t', String(budget), '-i', '0', '--forceflush']);
    // The client flushes its output only at the end; the server reports the data connection.
    await waitFor(server, /local .* connected to/, 'iperf3 data connection');
    await sleep(1000); // past slow start, ARP, the first autotuning of the receive buffer
    const p = { client, server };
    const rand = rng(SEED);
    for (let r = 0; r < ROUNDS; r++) {
      // A fresh random order each round (seeded, so a run can be repeated): each mode takes each
      // place in the round, follows each other mode and sits at each distance from the bare
      // slices equally often on average. A fixed order (even rotated) makes each mode nearly always
      // follow the same one, and any carry-over from one slice to the next then biases one mode.
      for (const mode of shuffled(MODES, rand)) {
        const res = await slice(mode, p, nop, pad);
        timeline.push({ mode, s: res });
        progress(`round ${r + 1}/${ROUNDS} ${mode}: ${res.gbps.toFixed(2)} Gbit/s, ${res.cpuPerGB.toFixed(2)} CPU-s/GB`);
      }
    }
  } finally {
    for (const k of kept.values()) k.dp.close();
    if (client) await stop(client);
    await stop(server);
    nop.close();
    pad?.close();
    cleanup();
  }
  report(timeline, (Date.now() - t0) / 1000);
}

/**
 * Each `mode` slice's figure divided by the mean of the nearest `base` slice before and after it:
 * the machine's load drifts over seconds, and a baseline taken on both sides cancels the drift.
 */
type Key = 'gbps' | 'cpuPerGB' | 'fullCpuGbps' | 'gbPerCpuS';

function neighbourRatios(timeline: { mode: Mode; s: Slice }[], mode: Mode, base: Mode, key: Key): number[] {
  return neighbourCompare(timeline, mode, base, (s) => s[key], (x, ref) => x / ref);
}

/** The same, for any figure of a slice and any comparison (a ratio, a difference). */
function neighbourCompare(
  timeline: { mode: Mode; s: Slice }[],
  mode: Mode,
  base: Mode,
  get: (s: Slice) => number,
  cmp: (x: number, ref: number) => number,
): number[] {
  const out: number[] = [];
  timeline.forEach((e, i) => {
    if (e.mode !== mode) return;
    const before = timeline.slice(0, i).findLast((x) => x.mode === base);
    const after = timeline.slice(i + 1).find((x) => x.mode === base);
    const refs = [before, after].filter((x) => x !== undefined);
    if (refs.length) out.push(cmp(get(e.s), refs.reduce((a, x) => a + get(x.s), 0) / refs.length));
  });
  return out;
}

function report(timeline: { mode: Mode; s: Slice }[], elapsedS: number): void {
  const of = (m: Mode) => timeline.filter((e) => e.mode === m).map((e) => e.s);
  const med = (m: Mode, key: Key) => median(of(m).map((x) => x[key]));
  const ratios = (m: Mode, key: Key, base: Mode = 'bare') => neighbourRatios(timeline, m, base, key);
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  const iqr = (xs: number[]) => `${pct(percentile(xs, 25))}–${pct(percentile(xs, 75))}`;
  const cell = (xs: number[]) => `${pct(median(xs))} (${iqr(xs)})`;
  const fmt = (xs: number[]) => xs.map((x) => x.toFixed(2)).join(', ');
  const all = timeline.map((e) => e.s);
  const partsOf = (m: Mode) => PARTIES.map((q) => `${q} ${median(of(m).map((x) => x.parts[q])).toFixed(1)}`).join(', ');
  /** A party's median difference from the neighbouring bare slices, signed, in CPU-ms per GB. */
  const partDelta = (m: Mode, q: Party) => {
    const d = median(neighbourCompare(timeline, m, 'bare', (s) => s.parts[q], (x, ref) => x - ref));
    return `${d >= 0 ? '+' : ''}${d.toFixed(1)}`;
  };
  const partsDelta = (m: Mode) => PARTIES.map((q) => `${q} ${partDelta(m, q)}`).join(', ');
  const line = (key: Key) => MODES.slice(1).map((m) => `${m} ${cell(ratios(m, key))}`).join(', ');
  const summary = () => {
    progress(`throughput: ${line('gbps')}`);
    progress(`at a full CPU: ${line('fullCpuGbps')}`);
    progress(`CPU/GB: ${line('cpuPerGB')}; ${elapsedS.toFixed(0)} s`);
    progress(`CPU ms/GB by party, bare: ${partsOf('bare')}`);
    for (const m of MODES.slice(1)) progress(`  ${m} minus neighbouring bare: ${partsDelta(m)}`);
  };
  // A --modes run is a diagnosis: progress lines only; docs/benchmarks.md keeps the standard run.
  if (MODES.join() !== 'bare,tc-nop,flowctl,tcpdump') return summary();

  const oursCI = medianCI(ratios('flowctl', 'gbps'));
  const oursCpu = median(ratios('flowctl', 'cpuPerGB')) - 1;
  const dumpCpu = median(ratios('tcpdump', 'cpuPerGB')) - 1;
  const events = of('flowctl').reduce((s, x) => s + x.events, 0);
  const lost = of('flowctl').reduce((s, x) => s + x.lost, 0n);
  const ksoft = median(all.map((x) => x.ksoftirqdPerGB / x.cpuPerGB));
  const setupText = KEEP_OFFLOADS
    ? 'veth offloads left on (GSO/TSO/GRO: 64 KB super-packets through every hook)'
    : 'GSO, TSO and GRO off on both veth ends (`ethtool -K`), so every hook sees MTU-sized packets';
  const label: Record<Mode, string> = {
    bare: 'bare',
    'tc-nop': 'empty TC program',
    flowctl: 'flowctl attached',
    tcpdump: 'tcpdump -s 128',
    'flowctl-tc': 'flowctl, TC programs only',
    'flowctl-fresh': 'flowctl, loaded for each slice',
    'tc-pad': 'a program that only spends ~150 cycles',
  };
  const row = (m: Mode) =>
    m === 'bare'
      ? `| ${label[m]} | ${med(m, 'gbps').toFixed(2)} | 100% | ${med(m, 'fullCpuGbps').toFixed(2)} | 100% | ${med(m, 'cpuPerGB').toFixed(2)} | 100% |`
      : `| ${label[m]} | ${med(m, 'gbps').toFixed(2)} | ${cell(ratios(m, 'gbps'))} | ${med(m, 'fullCpuGbps').toFixed(2)} | ${cell(ratios(m, 'fullCpuGbps'))} | ${med(m, 'cpuPerGB').toFixed(2)} | ${cell(ratios(m, 'cpuPerGB'))} |`;

  writeSection(
    'iperf-impact',
    `## Workload impact (iperf3 over veth)

One iperf3 TCP stream from a "pod" namespace to a "node" namespace over a veth pair with
${setupText}; iperf3 client pinned to CPU ${CPU_CLIENT}, server and tcpdump to CPU ${CPU_SERVER} (\`taskset\`).
veth queues each packet on the sender's CPU, so the receive path, including the TC ingress
program and tcpdump's packet copy, runs in softirq on the client's CPU. The stream is cut into
${ROUNDS} rounds of ${MODES.length} slices (${MODES.join(', ')}, in a new random order each round, seed ${SEED}), each measured for
${SLICE_S} s after ${SETTLE_MS} ms to settle. *flowctl*: \`KernelDatapath\` with default knobs, as the agent
runs it (aggregated events, 512-byte L7 snippets, tracepoint programs on, ring consumed by the
benchmark process), loaded once before the stream starts; its TC programs are attached for the
flowctl slices only, and its tracepoint programs watch both namespaces only during them (they stay
attached, returning at once for the few kfree_skb calls of the other slices), both TC programs on the node side of the veth, ${TC_MODE === 'clsact' ? 'as clsact filters (`--clsact`)' : 'as TCX links (kernel 6.6+; the agent falls back to clsact filters on older kernels; `--clsact` measures those)'}. *empty TC program*:
\`bpf/test/nop.bpf.c\` at the same two attach points, the price of the hook itself. *tcpdump*:
\`tcpdump -i <veth> -s 128 -w /dev/null\` on the same interface.

Figures per slice: throughput (bytes the server read, over wall time); throughput at a full CPU
(bytes per CPU-second of the client's CPU: the iperf3 client and that CPU's ksoftirqd, read from
\`/proc/PID/schedstat\`; what the stream would reach with that CPU to itself); CPU per GB (client,
server, tcpdump, ksoftirqd — ${pct(ksoft)} of it — and the benchmark process, which is the ring consumer
in the flowctl slices). "vs bare" is the median over slices of the slice's figure divided by the
mean of the nearest bare slice before and after it (interquartile range in brackets).

| mode | Gbit/s (median) | throughput vs bare | Gbit/s at a full CPU | vs bare | CPU-s/GB | vs bare |
|---|---:|---:|---:|---:|---:|---:|
${MODES.map(row).join('\n')}

flowctl against the neighbouring empty-TC-program slices: throughput ${cell(ratios('flowctl', 'gbps', 'tc-nop'))},
at a full CPU ${cell(ratios('flowctl', 'fullCpuGbps', 'tc-nop'))}, CPU per GB ${cell(ratios('flowctl', 'cpuPerGB', 'tc-nop'))}.
The other tenants left the client ${pct(median(all.map((x) => x.clientBusy)))} of its CPU and the server ${pct(median(all.map((x) => x.serverBusy)))} of its own (medians).

A report, not a goal: the throughput ratio cannot resolve a few nanoseconds per packet on this
shared 2-vCPU machine (95% CI of flowctl's median throughput ratio: ${pct(oursCI[0])}–${pct(oursCI[1])}). The
datapath's cost goal is its CPU time per packet (bench/bpf-cost.ts, bench/tc-real-cost.ts).

CPU per GB: flowctl adds ${pct(oursCpu)}, tcpdump ${pct(dumpCpu)}. By party, in CPU-ms per GB (bare: median;
other modes: median difference from their neighbouring bare slices):

| party | bare | ${MODES.slice(1).join(' | ')} |
|---|---:|${MODES.slice(1).map(() => '---:|').join('')}
${PARTIES.map((q) => `| ${PARTY_LABEL[q]} | ${median(of('bare').map((x) => x.parts[q])).toFixed(1)} | ${MODES.slice(1).map((m) => partDelta(m, q)).join(' | ')} |`).join('\n')}

flowctl delivered ${events} events over its slices; events lost in the kernel: ${lost}.
tcpdump captured ${of('tcpdump').reduce((a, x) => a + x.events, 0)} packets over its slices (from start to stop, so more than the measured part); dropped by the kernel: ${of('tcpdump').reduce((a, x) => a + x.lost, 0n)}.
Throughput per slice (Gbit/s): ${MODES.map((m) => `${m}: ${fmt(of(m).map((x) => x.gbps))}`).join('; ')}.
The build machine is shared (${NCPU} vCPUs, several concurrent jobs, load ${loadavg()[0]!.toFixed(1)} at the end): read the IQR before the median. The run took ${elapsedS.toFixed(0)} s.

\`--offloads\` leaves GSO/TSO/GRO on, the setup of the first version of this figure, in which tcpdump
and flowctl both came out within the noise of bare (100% and 104%): 64 KB super-packets hide
per-packet costs. \`--server-cpu 0\` puts everything on one CPU. \`--modes bare,tc-nop,flowctl,flowctl-tc,flowctl-fresh\`
splits flowctl's cost and prints only: flowctl-tc is flowctl without its tracepoint programs,
flowctl-fresh loads flowctl for each slice and closes it after (so it includes the first ~second
after a load); tc-pad attaches a program
that only spends ~150 cycles (\`bpf/test/pad.bpf.c\`), a calibration of what time per packet costs.

Command: \`pnpm exec tsx --conditions=@flowctl/source bench/iperf-impact.ts --rounds ${ROUNDS} --slice ${SLICE_S}${SEED !== 1 ? ` --seed ${SEED}` : ''}${CPU_SERVER !== '1' ? ` --server-cpu ${CPU_SERVER}` : ''}${KEEP_OFFLOADS ? ' --offloads' : ''}${TC_MODE === 'clsact' ? ' --clsact' : ''}\` (root; ethtool; after \`make -C bpf\`)`,
  );
  summary();
}

runBenchmark('iperf-impact', main, cleanup);
