// The real datapath: loads bpf/.output/{flowctl,trace,xdp}.bpf.o through bpf-loader, attaches the TC
// programs to endpoint interfaces, the tracepoint programs to the kernel and the XDP drop list to
// node interfaces, and turns the ring buffers into DatapathEvent batches (one batch per wake-up).
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { wireNameHash, type CompiledPolicy } from '@flowctl/policy';
import { BpfObject, forEachRecord } from '@flowctl/bpf-loader';
import type { BpfLink, RingBuffer } from '@flowctl/bpf-loader';
import { FlowctlError } from '../errors.js';
import { ipBytes } from '@flowctl/flow';
import { decodeEvent, readCounters, readEntryCounts } from './abi.js';
import { KDROP_EVENT, TRACE_COUNTERS, TraceEventType, decodeTraceEvent, kdropStableReason, stableDropReasonCode } from './abi-trace.js';
import { setBudget } from './budget.js';
import { DEFAULT_CONN_BUDGET, DEFAULT_FQDN_MAX_IPS_PER_NAME, DEFAULT_FQDN_MIN_TTL_S, DNS_BUDGET_FACTOR, type ConnBudget, type Datapath, type DatapathOptions, type FqdnAnswer, type KernelBlock, type XdpMode } from './datapath.js';
import type { DatapathCounters, DatapathEvent } from './events.js';
import { PolicyMapWriter } from './policy-maps.js';
import type { LearnedAddress } from './fqdn-maps.js';
import { XdpDropList } from './xdp.js';

export interface KernelDatapathOptions extends DatapathOptions {
  /** Directory holding flowctl.bpf.o and trace.bpf.o (default: the repo's bpf/.output). */
  objectDir?: string;
  /** Load and attach the tracepoint programs (TCP lifecycle, kernel drops); default true. */
  tracepoints?: boolean;
  /** Called with a one-line reason for every record that could not be decoded (also counted). */
  onDecodeError?: (message: string) => void;
  /** How TC programs attach: TCX links where the kernel has them ('auto', default), or clsact filters. */
  tcAttach?: 'auto' | 'tcx' | 'clsact';
}

/** src/datapath/kernel.ts and dist/datapath/kernel.js sit at the same depth under packages/agent. */
export function defaultObjectDir(): string {
  return process.env.FLOWCTL_BPF_DIR ?? fileURLToPath(new URL('../../../../bpf/.output/', import.meta.url));
}

const TRACE_PROGRAMS: [prog: string, tracepoint: string][] = [
  ['fct_sock_state', 'inet_sock_set_state'],
  ['fct_tcp_retransmit', 'tcp_retransmit_skb'],
  ['fct_kfree_skb', 'kfree_skb'],
];

const DEFAULT_RING_BYTES = 8 << 20;

/** The tracepoint ring carries fixed 88/72-byte records: a quarter of the flow ring is plenty. */
const MIN_TRACE_RING_BYTES = 1 << 20;

interface Attachment {
  ifname: string;
  netns: string | undefined;
  links: BpfLink[];
  /** netns inode and ifindex, to recognise our own TC drops among kernel drops. */
  netnsIno: number;
  ifindex: number;
}

const MAP_FILL_MAPS = ['flows', 'flows4', 'ipcache', 'policy_enforce', 'policy', 'fqdn_ips'] as const;

const FQDN_SWEEP_MS = 1000;

export class KernelDatapath implements Datapath {
  private readonly flowObj: BpfObject;
  private readonly traceObj: BpfObject | undefined;
  private readonly traceLinks: BpfLink[] = [];
  private readonly xdp: XdpDropList | undefined;
  private readonly attachments = new Map<string, Attachment>();
  private readonly watched = new Map<string, { ino: number; refs: number }>();
  private rings: RingBuffer[] = [];
  private paused = false;
  private closed = false;
  /** Writes the policy maps and ipcache, remembering what it wrote (created on first use). */
  private writer: PolicyMapWriter | undefined;
  private decodeErrors = 0n;
  private ownTcDrops = 0n;
  private readonly onDecodeError: ((message: string) => void) | undefined;
  private readonly tcAttach: 'auto' | 'tcx' | 'clsact';
  private readonly fqdnMaxIpsPerName: number;
  private readonly fqdnMinTtlS: number;
  private fqdnTimer: NodeJS.Timeout | undefined;

  constructor(opts: KernelDatapathOptions = {}) {
    const dir = opts.objectDir ?? defaultObjectDir();
    const ringBytes = opts.ringBytes ?? DEFAULT_RING_BYTES;
    if (ringBytes < 4096 || (ringBytes & (ringBytes - 1)) !== 0)
      throw new FlowctlError('INVALID_ARGUMENT', `ringBytes: ${ringBytes} is not a power of two >= 4096`);
    const maxPayload = opts.maxPayload ?? 512;
    if (!Number.isInteger(maxPayload) || maxPayload < 0 || maxPayload > 1024)
      throw new FlowctlError('INVALID_ARGUMENT', `maxPayload: ${maxPayload} is not an integer in 0..1024`);
    const statsIntervalS = opts.statsIntervalS ?? 5;
    if (!(statsIntervalS >= 0)) throw new FlowctlError('INVALID_ARGUMENT', `statsIntervalS: ${statsIntervalS} is negative`);
    const budget = opts.connBudget === undefined ? DEFAULT_CONN_BUDGET : opts.connBudget;
    if (budget && !(budget.perSecond > 0 && Number.isInteger(budget.burst) && budget.burst >= 1))
      throw new FlowctlError('INVALID_ARGUMENT', `connBudget: ${budget.perSecond}/s burst ${budget.burst} needs a positive rate and a burst of at least 1`);
    const protect = opts.synFloodProtect ?? 0;
    if (!Number.isInteger(protect) || protect < 0)
      throw new FlowctlError('INVALID_ARGUMENT', `synFloodProtect: ${protect} is not a non-negative integer`);
    if (protect && !budget) throw new FlowctlError('INVALID_ARGUMENT', 'synFloodProtect drops SYNs over their source\'s budget: it needs connBudget');
    this.onDecodeError = opts.onDecodeError;
    this.tcAttach = opts.tcAttach ?? 'auto';
    const minTtl = opts.fqdnMinTtlS ?? DEFAULT_FQDN_MIN_TTL_S;
    if (!Number.isInteger(minTtl) || minTtl < 0 || minTtl > 0xffffffff) throw new FlowctlError('INVALID_ARGUMENT', `fqdnMinTtlS: ${minTtl} is not an integer number of seconds`);
    this.fqdnMinTtlS = minTtl;
    this.fqdnMaxIpsPerName = opts.fqdnMaxIpsPerName ?? DEFAULT_FQDN_MAX_IPS_PER_NAME;
    if (!Number.isInteger(this.fqdnMaxIpsPerName) || this.fqdnMaxIpsPerName < 1) throw new FlowctlError('INVALID_ARGUMENT', `fqdnMaxIpsPerName: ${this.fqdnMaxIpsPerName} is not a positive integer`);

    this.flowObj = BpfObject.open(objectPath(dir, 'flowctl.bpf.o'), { name: 'flowctl' });
    try {
      this.flowObj.setRodata('max_payload', maxPayload);
      this.flowObj.setRodata('every_packet', opts.everyPacket ? 1 : 0);
      this.flowObj.setRodata('stats_interval_ns', BigInt(Math.round(statsIntervalS * 1e9)));
      this.flowObj.setRodata('policy_audit', opts.policyAudit ? 1 : 0);
      this.flowObj.setRodata('conn4_seed', randomBytes(4).readUInt32LE(0));
      setBudget(this.flowObj, budget, { dnsFactor: DNS_BUDGET_FACTOR, synProtect: protect });
      this.flowObj.setRodata('fqdn_min_ttl_s', minTtl);
      this.flowObj.setMaxEntries('events', ringBytes);
      this.flowObj.load();
      if (opts.tracepoints !== false) {
        this.traceObj = BpfObject.open(objectPath(dir, 'trace.bpf.o'), { name: 'flowctl_trace' });
        this.traceObj.setMaxEntries('trace_events', Math.max(MIN_TRACE_RING_BYTES, ringBytes >> 2));
        setBudget(this.traceObj, budget);
        this.traceObj.load();
        for (const [prog, tp] of TRACE_PROGRAMS) this.traceLinks.push(this.traceObj.program(prog).attachRawTracepoint(tp));
      }
      if (opts.xdp) this.xdp = new XdpDropList({ object: objectPath(dir, 'xdp.bpf.o'), budget, synFloodProtect: protect });
    } catch (err) {
      this.close();
      throw err;
    }
  }

  start(onEvents: (events: DatapathEvent[]) => void): void {
    this.assertOpen('start');
    if (this.rings.length) throw new FlowctlError('INVALID_ARGUMENT', 'KernelDatapath.start: already started');
    this.rings.push(
      this.flowObj.ringBuffer('events', (batch, count) => {
        const out: DatapathEvent[] = [];
        forEachRecord(batch, count, (buf, off, len) => {
          try {
            out.push(decodeEvent(buf, off, len));
          } catch (err) {
            this.decodeFailed(err);
          }
        });
        if (out.length) onEvents(out);
      }),
    );
    if (this.traceObj) {
      this.rings.push(
        this.traceObj.ringBuffer('trace_events', (batch, count) => {
          const out: DatapathEvent[] = [];
          forEachRecord(batch, count, (buf, off, len) => {
            try {
              if (this.isOwnTcDrop(buf, off, len)) return;
              out.push(decodeTraceEvent(buf, off, len));
            } catch (err) {
              this.decodeFailed(err);
            }
          });
          if (out.length) onEvents(out);
        }),
      );
    }
    if (this.xdp) this.rings.push(this.xdp.start(onEvents, (err) => this.decodeFailed(err)));
    if (this.paused) for (const r of this.rings) r.pause();
    this.fqdnTimer = setInterval(() => this.sweepFqdn(), FQDN_SWEEP_MS);
    this.fqdnTimer.unref();
  }

  /** Removes learned addresses past their TTL or their endpoint's per-name limit; returns how many. */
  sweepFqdn(): number {
    if (this.closed) return 0;
    const w = this.policyWriter();
    const removed = w.fqdn?.sweep(process.hrtime.bigint(), this.fqdnMaxIpsPerName) ?? 0;
    // Connections allowed through them are looked at again: expiry removes the allowance.
    if (removed) w.bumpEpoch();
    return removed;
  }

  learnFqdn(a: FqdnAnswer): number {
    if (this.closed) return 0;
    const w = this.policyWriter();
    if (!w.fqdn) return 0;
    // As the kernel (bpf/fqdn.bpf.h): at least the minimum TTL, on the kernel's clock.
    const expiresNs = process.hrtime.bigint() + BigInt(Math.max(a.ttlS, this.fqdnMinTtlS)) * 1_000_000_000n;
    const nameHash = wireNameHash(a.name);
    let learned = 0;
    for (const addr of a.addrs) if (w.fqdn.learn({ family: a.family, endpoint: a.endpoint, addr, expiresNs, bits: a.bits, nameHash })) learned++;
    if (learned) w.bumpEpoch(); // a connection denied before (same tuple) must be looked at again
    return learned;
  }

  setFqdnPeers(pairs: readonly { v4: string; v6: string }[]): void {
    if (!this.closed) this.policyWriter().fqdn?.setPeers(pairs);
  }

  /** What endpoints learned from DNS answers (toFQDNs). */
  fqdnLearned(): LearnedAddress[] {
    return this.closed ? [] : (this.policyWriter().fqdn?.learned() ?? []);
  }

  attachXdp(ifname: string): XdpMode {
    this.assertOpen('attachXdp');
    return this.xdpList('attachXdp').attach(ifname);
  }

  writeBlock(entry: KernelBlock): void {
    this.assertOpen('writeBlock');
    this.xdpList('writeBlock').write(entry);
  }

  deleteBlock(entry: KernelBlock): void {
    if (this.closed) return;
    this.xdpList('deleteBlock').delete(entry);
  }

  writeIsolation(entry: KernelBlock): void {
    this.assertOpen('writeIsolation');
    const v = Buffer.alloc(4);
    v.writeUInt32LE(entry.id);
    this.flowObj.map('isolated').update(isolateKey(entry), v);
    // Connections the endpoint opened before are looked at again: they stop too.
    this.policyWriter().bumpEpoch();
  }

  deleteIsolation(entry: KernelBlock): void {
    if (this.closed) return;
    if (this.flowObj.map('isolated').delete(isolateKey(entry))) this.policyWriter().bumpEpoch();
  }

  endIsolation(id: number): void {
    if (!this.closed) this.flowObj.map('isolate_counts').delete(u32(id));
  }

  /** What each entry dropped: at XDP (drop list), at TC (isolations); ids are distinct. */
  blockCounts(): Map<number, { packets: bigint; bytes: bigint }> {
    if (this.closed) return new Map();
    const isolations = readEntryCounts(this.flowObj.map('isolate_counts').entries());
    return this.xdp ? new Map([...this.xdp.counts(), ...isolations]) : isolations;
  }

  private xdpList(op: string): XdpDropList {
    if (!this.xdp) throw new FlowctlError('UNAVAILABLE', `KernelDatapath.${op}: the XDP drop list is not loaded (no --xdp-interface)`);
    return this.xdp;
  }

  attach(ifname: string, netns?: string): void {
    this.assertOpen('attach');
    const key = attachKey(ifname, netns);
    if (this.attachments.has(key)) return;
    const links: BpfLink[] = [];
    try {
      const where = netns === undefined ? { ifname } : { ifname, netns };
      const mode = this.tcAttach;
      links.push(this.flowObj.program('flowctl_tc_ingress').attachTc({ ...where, direction: 'ingress', mode }));
      links.push(this.flowObj.program('flowctl_tc_egress').attachTc({ ...where, direction: 'egress', mode }));
    } catch (err) {
      for (const l of links) l.detach();
      throw err;
    }
    this.attachments.set(key, {
      ifname,
      netns,
      links,
      netnsIno: netnsInode(netns),
      ifindex: links[0]?.info().ifindex ?? interfaceIndex(ifname, netns),
    });
  }

  detach(ifname: string, netns?: string): void {
    const key = attachKey(ifname, netns);
    const a = this.attachments.get(key);
    if (!a) return;
    this.attachments.delete(key);
    for (const l of a.links) l.detach();
  }

  /** Interfaces currently attached, as `netns/ifname` ('' for the agent's own netns). */
  attachedInterfaces(): string[] {
    return [...this.attachments.keys()];
  }

  /**
   * Reports TCP lifecycle events and kernel drops of a network namespace: a name under
   * /run/netns, a path (/proc/PID/ns/net), or undefined for the agent's own namespace.
   * Reference counted: every watchNetns needs one unwatchNetns.
   */
  watchNetns(name?: string): number {
    this.assertOpen('watchNetns');
    const key = name ?? '';
    const w = this.watched.get(key);
    if (w) {
      w.refs++;
      return w.ino;
    }
    const ino = netnsInode(name);
    if (this.traceObj) this.traceObj.map('watched_netns').update(u32(ino), Buffer.from([1]));
    this.watched.set(key, { ino, refs: 1 });
    return ino;
  }

  unwatchNetns(name?: string): void {
    const key = name ?? '';
    const w = this.watched.get(key);
    if (!w || --w.refs > 0) return;
    this.watched.delete(key);
    // Two names can be the same namespace (a name and its /proc path): keep it while one remains.
    if ([...this.watched.values()].some((o) => o.ino === w.ino)) return;
    if (this.traceObj && !this.closed) this.traceObj.map('watched_netns').delete(u32(w.ino));
  }

  setIdentities(entries: { cidr: string; identity: number }[]): void {
    this.assertOpen('setIdentities');
    this.policyWriter().writeIdentities(entries);
  }

  setPolicy(policy: CompiledPolicy): void {
    this.assertOpen('setPolicy');
    this.policyWriter().writePolicy(policy);
  }

  pause(): void {
    this.paused = true;
    for (const r of this.rings) r.pause();
  }

  resume(): void {
    this.paused = false;
    for (const r of this.rings) r.resume();
  }

  counters(): DatapathCounters {
    const out: DatapathCounters = { ringbufFull: 0n, flowMapFull: 0n, malformed: 0n };
    if (!this.closed) {
      const flowMap = this.flowObj.map('counters');
      Object.assign(out, readCounters((k) => flowMap.lookup(k)));
    }
    const trace = this.closed || !this.traceObj ? [] : sumPerCpu(this.traceObj, 'trace_counters', TRACE_COUNTERS.length);
    TRACE_COUNTERS.forEach((n, i) => (out[n] = trace[i] ?? 0n));
    if (this.xdp && !this.closed) Object.assign(out, this.xdp.counters());
    // ringbufFull is every event the kernel could not queue, from any ring.
    out.flowRingbufFull = out.ringbufFull;
    out.ringbufFull = out.flowRingbufFull + (out.traceRingbufFull ?? 0n) + (out.xdpRingbufFull ?? 0n);
    out.decodeErrors = this.decodeErrors;
    out.ownTcDropsSuppressed = this.ownTcDrops;
    return out;
  }

  /** Entries in use per map, for flowctl_agent_bpf_map_fill_ratio. Walks the keys of each map
   *  (one syscall per entry): milliseconds for tens of thousands of entries, fine once per scrape. */
  mapFill(): { map: string; entries: number; max: number }[] {
    if (this.closed) return [];
    const fill: { map: string; entries: number; max: number }[] = MAP_FILL_MAPS.map((name) => {
      const m = this.flowObj.map(name);
      return { map: name, entries: m.keys().length, max: m.info.maxEntries };
    });
    // An array has every key: its slots in use are counted by the program as it takes them.
    const counters = this.counters();
    for (const [map, taken] of [['conns4', counters.conn4Slots], ['conns6', counters.conn6Slots]] as const) {
      fill.push({ map, entries: Number(taken ?? 0n), max: this.flowObj.map(map).info.maxEntries });
    }
    return fill;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.fqdnTimer);
    for (const r of this.rings) r.close();
    this.rings = [];
    for (const a of this.attachments.values()) for (const l of a.links) l.detach();
    this.attachments.clear();
    for (const l of this.traceLinks) l.detach();
    this.traceLinks.length = 0;
    this.xdp?.close();
    this.watched.clear();
    this.traceObj?.close();
    this.flowObj.close();
  }

  private policyWriter(): PolicyMapWriter {
    this.writer ??= new PolicyMapWriter({
      ipcache: this.flowObj.map('ipcache'),
      policyEnforce: this.flowObj.map('policy_enforce'),
      policy: this.flowObj.map('policy'),
      config: this.flowObj.map('config'),
      fqdn: { names: this.flowObj.map('fqdn_names'), ips: this.flowObj.map('fqdn_ips'), peers: this.flowObj.map('fqdn_peers'), globs: this.flowObj.map('fqdn_globs') },
    });
    return this.writer;
  }

  // Our verdict program drops with TC_ACT_SHOT and reports the drop itself (POLICY_DENIED);
  // the kernel then frees the packet with reason TC_INGRESS/TC_EGRESS. Reporting both would show
  // one packet dropped twice.
  private isOwnTcDrop(buf: Buffer, off: number, len: number): boolean {
    if (this.attachments.size === 0 || len < KDROP_EVENT.size || buf.readUInt8(off) !== TraceEventType.KDrop) return false;
    const r = kdropStableReason(buf, off);
    if (r !== TC_INGRESS && r !== TC_EGRESS) return false;
    const ino = buf.readUInt32LE(off + KDROP_EVENT.netns_ino);
    const ifindex = buf.readUInt32LE(off + KDROP_EVENT.ifindex);
    for (const a of this.attachments.values()) {
      if (a.ifindex === ifindex && a.netnsIno === ino) {
        this.ownTcDrops++;
        return true;
      }
    }
    return false;
  }

  private decodeFailed(err: unknown): void {
    this.decodeErrors++;
    this.onDecodeError?.(err instanceof Error ? err.message : String(err));
  }

  private assertOpen(op: string): void {
    if (this.closed) throw new FlowctlError('INVALID_ARGUMENT', `KernelDatapath.${op}: datapath is closed`);
  }
}

const TC_INGRESS = stableDropReasonCode('TC_INGRESS');
const TC_EGRESS = stableDropReasonCode('TC_EGRESS');

function objectPath(dir: string, file: string): string {
  const p = `${dir.replace(/\/$/, '')}/${file}`;
  if (!existsSync(p)) throw new FlowctlError('UNAVAILABLE', `${p}: BPF object not found (run make -C bpf)`);
  return p;
}

function attachKey(ifname: string, netns: string | undefined): string {
  return `${netns ?? ''}/${ifname}`;
}

function netnsPath(name: string | undefined): string {
  if (name === undefined) return '/proc/self/ns/net';
  return name.includes('/') ? name : `/run/netns/${name}`;
}

function netnsInode(name: string | undefined): number {
  const p = netnsPath(name);
  try {
    return Number(statSync(p).ino);
  } catch (err) {
    throw new FlowctlError('INVALID_ARGUMENT', `network namespace ${name ?? '(own)'}: cannot stat ${p}: ${(err as Error).message}`);
  }
}

/** ifindex of an interface in a netns, through netlink (sysfs shows the mounter's netns). 0 if unknown. */
function interfaceIndex(ifname: string, netns: string | undefined): number {
  const ip = ['ip', '-j', 'link', 'show', 'dev', ifname];
  const [cmd, ...args] = netns === undefined ? ip : ['nsenter', `--net=${netnsPath(netns)}`, ...ip];
  try {
    const out = execFileSync(cmd!, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const parsed = JSON.parse(out) as { ifindex?: number }[];
    return parsed[0]?.ifindex ?? 0;
  } catch {
    return 0;
  }
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}

/** Sums a per-CPU array of u64 over CPUs, index by index. */
function sumPerCpu(obj: BpfObject, map: string, n: number): bigint[] {
  const m = obj.map(map);
  const out: bigint[] = [];
  for (let i = 0; i < n; i++) {
    const v = m.lookup(u32(i));
    let s = 0n;
    if (v) for (let off = 0; off + 8 <= v.length; off += 8) s += v.readBigUInt64LE(off);
    out.push(s);
  }
  return out;
}

/** struct flowctl_isolate_key of an entry's address (a /32 or /128). */
function isolateKey(entry: KernelBlock): Buffer {
  const k = Buffer.alloc(20);
  k.set(ipBytes(entry.prefix.v6, entry.prefix.addr), 0);
  k.writeUInt32LE(entry.prefix.v6 ? 6 : 4, 16);
  return k;
}
