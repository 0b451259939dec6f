// Port scans, as Zeek's scan.zeek counts them: per source, failed connection attempts to distinct
// ports of one host (vertical) or to one port on distinct hosts (horizontal) within a window.
// Failed means refused or blocked: a SYN answered by RST, an ICMP unreachable, a kernel drop for
// want of a listening socket, a policy drop. Successful connections never count, so a client
// retrying one service (one port, one host) cannot look like a scan.
import { DropReason, FlowType, Verdict, type Flow } from '@flowctl/flow';
import type { AlertPeer, DetectContext, Detector, DetectorSpec, Finding, Severity } from './detector.js';
import { HeldUpdates } from './held-updates.js';
import { LruMap } from './lru.js';
import { describePeer, peerOf } from './peer.js';
import { ownedHere } from './syn.js';
import type { SectionValues } from './config.js';

export interface PortScanOptions {
  windowMs: number;
  /** Distinct failed ports on one host that make a vertical scan (Zeek: 15). */
  ports: number;
  /** Distinct hosts failing on one port that make a horizontal scan (Zeek: 25). */
  hosts: number;
  /** Sources tracked at once (least recently active forgotten first). */
  maxSources: number;
  /** Hosts tracked per source. */
  maxHosts: number;
  /** Ports tracked per source for horizontal scans. */
  maxPorts: number;
  /** Least time between two updates of one scanner's alert. */
  updateMs: number;
}

/** A host's failed ports: a small Set, then a 65,536-bit map (8 KB) once it is clearly a scan. */
class PortSet {
  private small: Set<number> | undefined = new Set();
  private bits: Uint8Array | undefined;
  count = 0;

  /** Adds `port`; true when it was new. `mayGrow` allows the switch to a bit map. */
  add(port: number, mayGrow: () => boolean): boolean {
    if (this.bits) {
      const b = 1 << (port & 7);
      if (this.bits[port >> 3]! & b) return false;
      this.bits[port >> 3]! |= b;
      this.count++;
      return true;
    }
    const s = this.small!;
    if (s.has(port)) return false;
    if (s.size < SMALL_PORTS) {
      s.add(port);
      this.count++;
      return true;
    }
    if (!mayGrow()) return false;
    this.bits = new Uint8Array(8192);
    for (const p of s) this.bits[p >> 3]! |= 1 << (p & 7);
    this.small = undefined;
    return this.add(port, mayGrow);
  }

  /** Memory held, in bytes (for the state-size figures). */
  get bytes(): number {
    return this.bits ? 8192 : this.small!.size * 16;
  }
}

const SMALL_PORTS = 64;
/** Hosts per source whose ports may grow past SMALL_PORTS (so memory per source stays bounded). */
const BIG_HOSTS = 4;
const SAMPLE = 10;

interface SourceState {
  peer: AlertPeer;
  windowStart: number;
  firstFailMs: number;
  failed: number;
  hosts: Map<string, HostPorts>;
  bigHosts: number;
  distinctPorts: number;
  /** The host with the most failed ports, and the port failing on the most hosts. */
  top: HostPorts | undefined;
  wide: { port: number; hosts: number } | undefined;
  /** Horizontal: port → hosts that refused it. */
  ports: Map<number, Set<string>>;
  samplePorts: number[];
  reportedMs: number;
  /** Failed attempts at hosts past maxHosts. */
  untracked: number;
}

interface HostPorts {
  ip: string;
  peer: AlertPeer;
  ports: PortSet;
}

export class PortScanDetector implements Detector {
  readonly name = 'port-scan';
  private readonly sources: LruMap<string, SourceState>;
  private readonly held: HeldUpdates<SourceState>;

  constructor(private readonly o: PortScanOptions, private readonly isLocalIp: (ip: string) => boolean = () => true) {
    this.held = new HeldUpdates(o.updateMs);
    this.sources = new LruMap(o.maxSources, (s) => this.held.forget(s));
  }

  stateSize(): number {
    return this.sources.size;
  }

  stateEvicted(): number {
    return this.sources.evicted;
  }

  /** Approximate bytes of state (bench figure). */
  stateBytes(): number {
    let n = 0;
    for (const s of this.sources.values()) {
      n += 200;
      for (const h of s.hosts.values()) n += 64 + h.ports.bytes;
      for (const hs of s.ports.values()) n += 48 + hs.size * 32;
    }
    return n;
  }

  observe(flow: Flow, nowMs: number): Finding[] | undefined {
    const a = failedAttempt(flow);
    if (!a || !this.owned(flow, a.scanner)) return undefined;
    const o = this.o;
    const key = a.scanner === 'source' ? flow.IP!.source! : flow.IP!.destination!;
    const hostIp = a.scanner === 'source' ? flow.IP!.destination! : flow.IP!.source!;
    let s = this.sources.getOrCreate(key, () => newState(peerOf(flow, a.scanner), nowMs));
    if (nowMs - s.windowStart > o.windowMs) {
      this.held.forget(s);
      this.sources.delete(key);
      s = this.sources.getOrCreate(key, () => newState(peerOf(flow, a.scanner), nowMs));
    }
    s.failed++;
    let grew = false;
    if (a.port >= 0) {
      let h = s.hosts.get(hostIp);
      if (!h && s.hosts.size < o.maxHosts) {
        h = { ip: hostIp, peer: peerOf(flow, a.scanner === 'source' ? 'destination' : 'source'), ports: new PortSet() };
        s.hosts.set(hostIp, h);
      }
      if (!h) s.untracked++;
      else if (h.ports.add(a.port, () => s.bigHosts < BIG_HOSTS && ++s.bigHosts > 0)) {
        grew = true;
        s.distinctPorts++;
        if (!s.top || h.ports.count > s.top.ports.count) s.top = h;
        if (s.samplePorts.length < SAMPLE && !s.samplePorts.includes(a.port)) s.samplePorts.push(a.port);
      }
    }
    let hs = s.ports.get(a.port);
    if (!hs && s.ports.size < o.maxPorts) s.ports.set(a.port, (hs = new Set()));
    if (hs && hs.size < o.hosts * 4 && !hs.has(hostIp)) {
      hs.add(hostIp);
      grew = true;
      if (!s.wide || hs.size > s.wide.hosts) s.wide = { port: a.port, hosts: hs.size };
    }
    // The first finding as soon as a threshold is reached; updates at most every updateMs.
    if (!grew && s.reportedMs === -Infinity) return undefined;
    return this.held.due(s, nowMs) ? this.finding(s, nowMs) : undefined;
  }

  /**
   * Whether this node reports the attempt: the scanner's node, as a rule. A drop is seen only by
   * the node where it happens, so that node reports it whoever scanned: the scanner's node sees a
   * policy drop at the target's node not at all, and a UDP probe of a closed port as one ICMP
   * unreachable per host (the datapath tracks ICMP per address pair). A closed TCP port also
   * answers with a RST, which the scanner's node counts: its drop is left to that node.
   */
  private owned(flow: Flow, scanner: 'source' | 'destination'): boolean {
    if (ownedHere(flow, scanner, this.isLocalIp)) return true;
    return flow.verdict === Verdict.DROPPED && !(flow.l4?.TCP && flow.drop_reason_desc === DropReason.SOCKET_LOOKUP_FAILED);
  }

  tick(nowMs: number): Finding[] | undefined {
    return this.held.tick(nowMs, (s) => this.finding(s, nowMs));
  }

  private finding(s: SourceState, nowMs: number): Finding[] | undefined {
    const o = this.o;
    const top = s.top;
    const wide = s.wide;
    const vertical = !!top && top.ports.count >= o.ports;
    const horizontal = !!wide && wide.hosts >= o.hosts;
    if (!vertical && !horizontal) return undefined;
    s.reportedMs = nowMs;
    const secs = ((nowMs - s.firstFailMs) / 1000).toFixed(1);
    const who = describePeer(s.peer);
    const summary = vertical
      ? `${who} scanned ${top!.ports.count} ports of ${describePeer(top!.peer)} in ${secs}s (${s.failed} failed attempts)`
      : `${who} probed ${wide!.port >= 0 ? `port ${wide!.port}` : 'an unknown port'} on ${wide!.hosts} hosts in ${secs}s (${s.failed} failed attempts)`;
    const big = vertical ? top!.ports.count >= o.ports * 10 : wide!.hosts >= o.hosts * 10;
    const severity: Severity = big ? 'high' : 'medium';
    const f: Finding = {
      kind: 'port-scan',
      severity,
      source: s.peer,
      // One alert per scanner: the hosts and ports it tried are its evidence.
      target: 'scan',
      summary,
      evidence: {
        type: vertical && horizontal ? 'vertical+horizontal' : vertical ? 'vertical' : 'horizontal',
        failed_attempts: s.failed,
        hosts: s.hosts.size,
        distinct_ports: s.distinctPorts,
        top_host: top ? { ip: top.ip, ports: top.ports.count } : null,
        top_port: wide ? { port: wide.port, hosts: wide.hosts } : null,
        sample_ports: [...s.samplePorts],
        window_s: o.windowMs / 1000,
        first_failure: new Date(s.firstFailMs).toISOString(),
      },
    };
    if (vertical) f.destination = top!.peer;
    return [f];
  }
}

function newState(peer: AlertPeer, nowMs: number): SourceState {
  return { peer, windowStart: nowMs, firstFailMs: nowMs, failed: 0, hosts: new Map(), bigHosts: 0, distinctPorts: 0, top: undefined, wide: undefined, ports: new Map(), samplePorts: [], reportedMs: -Infinity, untracked: 0 };
}

/**
 * Which side of the flow made a failed attempt, and to which port (-1 when unknown: an ICMP
 * unreachable does not carry the port in Hubble's Flow).
 */
export function failedAttempt(f: Flow): { scanner: 'source' | 'destination'; port: number } | undefined {
  if (!f.IP?.source || !f.IP.destination) return undefined;
  const l4 = f.l4;
  if (!l4) return undefined;
  const tcp = l4.TCP;
  if (f.verdict === Verdict.DROPPED) {
    const r = f.drop_reason_desc;
    if (r !== DropReason.POLICY_DENIED && r !== DropReason.SOCKET_LOOKUP_FAILED) return undefined;
    if (f.is_reply) return undefined;
    if (tcp) return tcp.flags?.SYN && !tcp.flags.ACK ? { scanner: 'source', port: tcp.destination_port ?? 0 } : undefined;
    if (l4.UDP) return { scanner: 'source', port: l4.UDP.destination_port ?? 0 };
    return undefined;
  }
  if (f.Type !== FlowType.L3_L4) return undefined;
  // The answer to a SYN at a closed port: RST (with ACK) as the first packet of the reply.
  if (tcp) return tcp.flags?.RST && !tcp.flags.SYN && f.is_reply === true ? { scanner: 'destination', port: tcp.source_port ?? 0 } : undefined;
  const icmp4 = l4.ICMPv4;
  // Destination unreachable: port (3), or administratively prohibited (9, 10, 13).
  if (icmp4) return icmp4.type === 3 && (icmp4.code === 3 || icmp4.code === 9 || icmp4.code === 10 || icmp4.code === 13) ? { scanner: 'destination', port: -1 } : undefined;
  const icmp6 = l4.ICMPv6;
  // Destination unreachable: administratively prohibited (1) or port unreachable (4).
  if (icmp6) return icmp6.type === 1 && (icmp6.code === 1 || icmp6.code === 4) ? { scanner: 'destination', port: -1 } : undefined;
  return undefined;
}

export const portScan: DetectorSpec = {
  name: 'port-scan',
  help: 'failed connection attempts to many ports of one host, or to one port on many hosts (Zeek scan.zeek)',
  options: {
    window: { kind: 'duration', default: 5 * 60_000, help: 'failed attempts are counted over this window (Zeek: 5m)' },
    ports: { kind: 'count', default: 15, help: 'distinct failed ports on one host that make a vertical scan (Zeek: 15)' },
    hosts: { kind: 'count', default: 25, help: 'distinct hosts failing on one port that make a horizontal scan (Zeek: 25)' },
    'max-sources': { kind: 'count', default: 4096, help: 'sources tracked at once; the least recently active is forgotten first' },
    'max-hosts': { kind: 'count', default: 256, help: 'hosts tracked per source' },
    'max-ports': { kind: 'count', default: 256, help: 'ports tracked per source for horizontal scans' },
    'update-interval': { kind: 'duration', default: 1000, help: "least time between two updates of a scanner's alert" },
  },
  create: (c: SectionValues, ctx: DetectContext) =>
    new PortScanDetector({
      windowMs: c.window as number,
      ports: c.ports as number,
      hosts: c.hosts as number,
      maxSources: c['max-sources'] as number,
      maxHosts: c['max-hosts'] as number,
      maxPorts: c['max-ports'] as number,
      updateMs: c['update-interval'] as number,
    }, ctx.isLocalIp),
};
