// Kernel events → flow.Flow, shaped like Hubble's threefour parser (cilium pkg/hubble/parser/threefour).
// L7 payloads and TCP lifecycle events go to their own modules (l7/, sock.ts).
import {
  DropReason,
  FlowType,
  IPVersion,
  TraceObservationPoint,
  TraceReason,
  TrafficDirection,
  Verdict,
  type CiliumEventType,
  type Flow,
  type Layer4,
  type NetworkInterface,
  type Policy,
  attachConnNumbers,
  attachSuppressed,
} from '@flowctl/flow';
import { DROP_REASON_POLICY_DENY, attachBlockInfo } from '@flowctl/flow/block';
import type { DatapathEvent, FlowEvent, KernelDropEvent, SuppressedEvent, XdpDropEvent } from '../datapath/events.js';
import type { ParserContext } from './context.js';
import { l7Dropped, l7Flows } from './l7/index.js';
import { sockFlow } from './sock.js';
import { Interner } from './strings.js';
import { icmpv4Summary, icmpv6Summary, tcpFlagsFromBits, tcpSummary } from './summary.js';

// Datapath ObsPoint values (events.ts); spelled out because const enums do not survive isolated transpilation.
const OBS_FROM_ENDPOINT = 1;
const OBS_TO_ENDPOINT = 2;
const REASON_NEW = 1;
const REASON_POLICY = 6;
const REASON_L7 = 7;
const L7_NONE = 0;
const TCP_FIN = 0x01;
const TCP_SYN = 0x02;
const TCP_RST = 0x04;

// pkg/monitor/api/types.go
export const MSG_DROP = 1;
export const MSG_TRACE = 4;
export const MSG_POLICY_VERDICT = 5;
// The datapath's trace sub-types: to-endpoint is 0, from-endpoint 5 (hubble-api.md §2.5).
const TRACE_TO_LXC = 0;
const TRACE_FROM_LXC = 5;

const IPPROTO_ICMP = 1, IPPROTO_TCP = 6, IPPROTO_UDP = 17, IPPROTO_ICMPV6 = 58, IPPROTO_SCTP = 132;

export class Parser {
  // Shared, frozen sub-messages: most flows repeat the same few, and a full ring holds 65k flows.
  private readonly eventTypes = new Map<number, CiliumEventType>();
  private readonly interfaces = new Map<number, NetworkInterface>();
  private readonly strings = new Interner();

  constructor(private readonly ctx: ParserContext) {}

  private eventType(type: number, sub: number): CiliumEventType {
    const key = type * 65536 + sub;
    let e = this.eventTypes.get(key);
    if (!e) this.eventTypes.set(key, (e = Object.freeze({ type, sub_type: sub })));
    return e;
  }

  private iface(ifindex: number): NetworkInterface {
    const name = this.ctx.ifName(ifindex);
    let i = this.interfaces.get(ifindex);
    if (!i || i.name !== name) this.interfaces.set(ifindex, (i = Object.freeze({ index: ifindex, name })));
    return i;
  }

  /** An event dropped before decoding: the L7 messages it carried are counted lost. */
  dropped(ev: DatapathEvent): void {
    if (ev.kind === 'flow') l7Dropped(ev, this.ctx);
  }

  /** Never throws: an event that cannot be decoded is counted and yields no flow. */
  decode(ev: DatapathEvent): Flow[] {
    try {
      switch (ev?.kind) {
        case 'flow':
          return this.decodeFlowEvent(ev);
        case 'kdrop': {
          const f = this.decodeKernelDrop(ev);
          return f ? [f] : [];
        }
        case 'sock': {
          const f = sockFlow(ev, this.ctx);
          return f ? [f] : [];
        }
        case 'xdrop': {
          const f = this.decodeXdpDrop(ev);
          return f ? [f] : [];
        }
        case 'suppressed': {
          const f = this.decodeSuppressed(ev);
          return f ? [f] : [];
        }
        default:
          this.ctx.counters.malformedEvents++;
          return [];
      }
    } catch {
      this.ctx.counters.malformedEvents++;
      return [];
    }
  }

  private decodeFlowEvent(ev: FlowEvent): Flow[] {
    if (!validL3(ev)) {
      this.ctx.counters.malformedEvents++;
      return [];
    }
    // The kernel sent it for its payload alone (no new flag, not due for a record): L7 flows only,
    // and the L3/L4 flow they copy is built only when there is one (most segments are bodies or
    // copies from a second observation point).
    if (ev.reason === REASON_L7) {
      let base: Flow | undefined;
      return this.l7(ev, () => (base ??= this.l3l4Flow(ev, false)));
    }
    const flow = this.l3l4Flow(ev, true);
    // SYNs, FINs and RSTs too: the L7 message streams of TCP start and end there.
    if ((ev.l7 === L7_NONE || ev.l7 === undefined) && !(ev.proto === IPPROTO_TCP && ev.tcpFlags & (TCP_SYN | TCP_FIN | TCP_RST))) return [flow];
    const l7 = this.l7(ev, () => flow);
    return l7.length ? [flow, ...l7] : [flow];
  }

  private l7(ev: FlowEvent, base: () => Flow): Flow[] {
    try {
      return l7Flows(ev, base, this.ctx);
    } catch {
      this.ctx.counters.malformedL7++;
      return [];
    }
  }

  /** The event's L3/L4 flow; with `numbers`, the connection's running totals in its extensions. */
  private l3l4Flow(ev: FlowEvent, numbers: boolean): Flow {
    const ctx = this.ctx;
    const str = this.strings;
    const dropped = ev.verdict === Verdict.DROPPED;
    const fromEp = ev.obsPoint === OBS_FROM_ENDPOINT;
    const reply = ev.isReply === true;
    const srcNames = ctx.namesForIp(ev.srcIp);
    const dstNames = ctx.namesForIp(ev.dstIp);

    let direction: TrafficDirection;
    if (ev.policyDirection === 1 || ev.policyDirection === 2) direction = ev.policyDirection;
    else direction = (fromEp !== reply) ? TrafficDirection.EGRESS : TrafficDirection.INGRESS;

    let eventType: CiliumEventType;
    let obsPoint: TraceObservationPoint | undefined;
    let traceReason: TraceReason | undefined;
    if (dropped) {
      eventType = this.eventType(MSG_DROP, ev.dropReason);
    } else if (ev.reason === REASON_POLICY) {
      // A policy verdict that let the packet through (allowed or audited), as Hubble's policy-verdict events.
      eventType = this.eventType(MSG_POLICY_VERDICT, direction);
    } else {
      eventType = this.eventType(MSG_TRACE, fromEp ? TRACE_FROM_LXC : TRACE_TO_LXC);
      obsPoint = fromEp ? TraceObservationPoint.FROM_ENDPOINT : TraceObservationPoint.TO_ENDPOINT;
      traceReason = ev.isReply === undefined
        ? TraceReason.TRACE_REASON_UNKNOWN
        : reply ? TraceReason.REPLY : ev.reason === REASON_NEW ? TraceReason.NEW : TraceReason.ESTABLISHED;
    }

    // One literal with every field a flow usually has, in declaration order: V8 then keeps them
    // in-object (no separate property store), which matters with 65k flows in the ring.
    const flow: Flow = {
      time: ctx.toWallTime(ev.tsNs),
      uuid: ctx.newUuid(),
      verdict: ev.verdict,
      drop_reason: dropped ? ev.dropReason : undefined,
      ethernet: ev.ethSrc || ev.ethDst ? { source: str.get(ev.ethSrc), destination: str.get(ev.ethDst) } : undefined,
      IP: { source: str.get(ev.srcIp), destination: str.get(ev.dstIp), ipVersion: ev.ipVersion === 6 ? IPVersion.IPv6 : IPVersion.IPv4 },
      l4: layer4(ev.proto, ev.srcPort, ev.dstPort, ev.tcpFlags, ev.icmpType, ev.icmpCode, ev.ipVersion),
      source: ctx.endpointForIp(ev.srcIp),
      destination: ctx.endpointForIp(ev.dstIp),
      Type: FlowType.L3_L4,
      node_name: ctx.nodeName,
      source_names: srcNames.length ? srcNames : undefined,
      destination_names: dstNames.length ? dstNames : undefined,
      reply: reply ? true : undefined,
      event_type: eventType,
      traffic_direction: direction,
      trace_observation_point: obsPoint,
      trace_reason: traceReason,
      drop_reason_desc: dropped ? dropReasonEnum(ev.dropReason) : undefined,
      is_reply: ev.isReply,
      interface: ev.ifindex > 0 ? this.iface(ev.ifindex) : undefined,
      Summary: summary(ev.proto, ev.tcpFlags, ev.icmpType, ev.icmpCode, ev.ipVersion),
    };

    if (numbers && !dropped && (ev.packets > 0n || ev.replyPackets > 0n)) attachConnNumbers(flow, l4Numbers(ev));

    if (dropped && ev.dropReason === DROP_REASON_POLICY_DENY) {
      // An isolated pod (respond: isolate): policyRef holds the drop-list entry's id.
      const entry = ctx.blockEntry?.(ev.policyRef);
      attachBlockInfo(flow, {
        cidr: entry?.cidr ?? '',
        reason: entry?.isolate ? `isolated ${entry.isolate}: ${entry.reason}` : (entry?.reason ?? ''),
        packets: Number(ev.packets),
        bytes: Number(ev.bytes),
        matched: 'source',
      });
    } else if (ev.policyRef > 0) {
      const pol = ctx.policyForRef(ev.policyRef);
      if (pol) attachPolicy(flow, pol, direction, dropped);
    }

    return flow;
  }

  /**
   * A drop of the XDP drop list: a DROPPED flow of the sample packet with Hubble's POLICY_DENY and
   * the entry (CIDR, reason) and how much that source lost to it since the previous such flow in
   * Flow.extensions. XDP runs on node interfaces before any endpoint: the traffic comes in.
   */
  private decodeXdpDrop(ev: XdpDropEvent): Flow | undefined {
    const ctx = this.ctx;
    if (!validL3(ev)) {
      ctx.counters.malformedEvents++;
      return undefined;
    }
    const entry = ctx.blockEntry?.(ev.entryId);
    const l4 = layer4(ev.proto, ev.srcPort, ev.dstPort, ev.tcpFlags, ev.icmpType, ev.icmpCode, ev.ipVersion);
    const flow: Flow = {
      time: ctx.toWallTime(ev.tsNs),
      uuid: ctx.newUuid(),
      verdict: Verdict.DROPPED,
      drop_reason: DROP_REASON_POLICY_DENY,
      IP: { source: this.strings.get(ev.srcIp), destination: this.strings.get(ev.dstIp), ipVersion: ev.ipVersion === 6 ? IPVersion.IPv6 : IPVersion.IPv4 },
    };
    if (l4) flow.l4 = l4;
    flow.source = ctx.endpointForIp(ev.srcIp);
    flow.destination = ctx.endpointForIp(ev.dstIp);
    flow.Type = FlowType.L3_L4;
    flow.node_name = ctx.nodeName;
    flow.event_type = this.eventType(MSG_DROP, DROP_REASON_POLICY_DENY);
    flow.traffic_direction = TrafficDirection.INGRESS;
    flow.drop_reason_desc = DropReason.POLICY_DENY;
    if (ev.ifindex > 0) flow.interface = this.iface(ev.ifindex);
    flow.Summary = summary(ev.proto, ev.tcpFlags, ev.icmpType, ev.icmpCode, ev.ipVersion);
    attachBlockInfo(flow, {
      cidr: entry?.cidr ?? '',
      reason: entry?.reason ?? '',
      packets: Number(ev.packets),
      bytes: Number(ev.bytes),
      matched: ev.matched,
    });
    return flow;
  }

  private decodeKernelDrop(ev: KernelDropEvent): Flow | undefined {
    if (!validL3(ev)) {
      this.ctx.counters.malformedEvents++;
      return undefined;
    }
    const ctx = this.ctx;
    const l4 = layer4(ev.proto, ev.srcPort, ev.dstPort, ev.tcpFlags, ev.icmpType, ev.icmpCode, ev.ipVersion);
    const flow: Flow = {
      time: ctx.toWallTime(ev.tsNs),
      uuid: ctx.newUuid(),
      verdict: Verdict.DROPPED,
      drop_reason: ev.dropReason,
      IP: { source: this.strings.get(ev.srcIp), destination: this.strings.get(ev.dstIp), ipVersion: ev.ipVersion === 6 ? IPVersion.IPv6 : IPVersion.IPv4 },
    };
    if (l4) flow.l4 = l4;
    flow.source = ctx.endpointForIp(ev.srcIp);
    flow.destination = ctx.endpointForIp(ev.dstIp);
    flow.Type = FlowType.L3_L4;
    flow.node_name = ctx.nodeName;
    flow.event_type = this.eventType(MSG_DROP, ev.dropReason);
    // Hubble derives a drop's direction from which side is the local endpoint.
    flow.traffic_direction = ctx.isLocalEndpointIp(ev.srcIp)
      ? TrafficDirection.EGRESS
      : ctx.isLocalEndpointIp(ev.dstIp) ? TrafficDirection.INGRESS : TrafficDirection.TRAFFIC_DIRECTION_UNKNOWN;
    flow.drop_reason_desc = dropReasonEnum(ev.dropReason);
    // The ifindex is the dropping device's in its own namespace: a pod's eth0 is no interface of this node.
    if (ev.ifindex > 0 && ev.netnsIno === ctx.nodeNetnsIno && ctx.nodeNetnsIno !== 0) flow.interface = this.iface(ev.ifindex);
    flow.Summary = summary(ev.proto, ev.tcpFlags, ev.icmpType, ev.icmpCode, ev.ipVersion);
    return flow;
  }

  /** One flow for a window of suppressed new-connection packets of one source (or of many). */
  private decodeSuppressed(ev: SuppressedEvent): Flow | undefined {
    if (!validL3({ ...ev, proto: 6 }) || ev.packets <= 0n) {
      this.ctx.counters.malformedEvents++;
      return undefined;
    }
    const ctx = this.ctx;
    const dropped = ev.dropped > 0n;
    const fromEp = ev.obsPoint === OBS_FROM_ENDPOINT;
    const windowMs = ev.firstNs > 0n && ev.tsNs >= ev.firstNs ? Number(ev.tsNs - ev.firstNs) / 1e6 : 0;
    const from = ev.manySources ? `many sources (last ${ev.srcIp})` : ev.srcIp;
    const others = ev.packets - ev.syns;
    const tcp = ev.proto === IPPROTO_TCP;
    const icmp = ev.proto === IPPROTO_ICMP || ev.proto === IPPROTO_ICMPV6;
    // What the packets were, and to where: the ICMP type travels in dstPort.
    const what = tcp ? 'connection attempts' : `${summary(ev.proto, 0, icmp ? ev.dstPort : 0, 0, ev.ipVersion)} packets`;
    const to = icmp ? ev.dstIp : `${ev.dstIp}:${ev.dstPort}`;
    const last = `in the last ${(windowMs / 1000).toFixed(1)}s`;
    const flow: Flow = {
      time: ctx.toWallTime(ev.tsNs),
      uuid: ctx.newUuid(),
      verdict: dropped ? Verdict.DROPPED : ev.verdict,
      drop_reason: dropped ? ev.dropReason : undefined,
      IP: { source: this.strings.get(ev.srcIp), destination: this.strings.get(ev.dstIp), ipVersion: ev.ipVersion === 6 ? IPVersion.IPv6 : IPVersion.IPv4 },
      l4: tcp ? { TCP: { source_port: 0, destination_port: ev.dstPort, flags: tcpFlagsFromBits(ev.tcpFlags) } } : layer4(ev.proto, 0, ev.dstPort, 0, ev.dstPort, 0, ev.ipVersion),
      source: ctx.endpointForIp(ev.srcIp),
      destination: ctx.endpointForIp(ev.dstIp),
      Type: FlowType.L3_L4,
      node_name: ctx.nodeName,
      event_type: dropped ? this.eventType(MSG_DROP, ev.dropReason) : this.eventType(MSG_TRACE, fromEp ? TRACE_FROM_LXC : TRACE_TO_LXC),
      traffic_direction: ctx.isLocalEndpointIp(ev.dstIp)
        ? TrafficDirection.INGRESS
        : ctx.isLocalEndpointIp(ev.srcIp) ? TrafficDirection.EGRESS : TrafficDirection.TRAFFIC_DIRECTION_UNKNOWN,
      drop_reason_desc: dropped ? dropReasonEnum(ev.dropReason) : undefined,
      // A kernel drop's ifindex is in the pod's namespace: not a name on this node.
      interface: ev.origin !== 'kdrop' && ev.ifindex > 0 ? this.iface(ev.ifindex) : undefined,
      Summary: ev.origin === 'xdp'
        ? `${ev.syns} SYNs from ${from} to ${to} ${last}: dropped at XDP by --syn-flood-protect, over the source's new-connection budget`
        : ev.origin === 'kdrop'
        ? `${ev.packets} kernel drops${ev.kernelReason ? ` (${ev.kernelReason})` : ''} of ${what} of ${from} to ${to} ` +
          `${last}${tcp ? ` (${ev.syns} SYNs)` : ''}: events suppressed, over the source's budget`
        : tcp
          ? `${ev.syns} SYNs from ${from} to ${to} ${last}: events suppressed, over the source's new-connection budget ` +
            `(${ev.packets} packets${others > 0n ? `, ${others} SYN-ACK/RST` : ''}${dropped ? `, ${ev.dropped} dropped` : ''})`
          : `${ev.packets} ${what} from ${from} to ${to} ${last}: events suppressed, over the source's new-flow budget` +
            `${dropped ? ` (${ev.dropped} dropped)` : ''}`,
    };
    if (!dropped && ev.origin === 'tc') flow.trace_observation_point = fromEp ? TraceObservationPoint.FROM_ENDPOINT : TraceObservationPoint.TO_ENDPOINT;
    attachSuppressed(flow, {
      events: ev.origin === 'kdrop' ? 'kernel-drop' : 'new-connection',
      packets: Number(ev.packets), syns: Number(ev.syns), dropped: Number(ev.dropped), window_ms: windowMs, sources: ev.manySources ? 'many' : 'one',
    });
    return flow;
  }
}

/** The connection's totals in each direction since it started (this event's direction = sent). The
 * kernel counts L4 payload bytes. */
function l4Numbers(ev: FlowEvent) {
  const n: { bytes_sent: number; bytes_received: number; packets_sent: number; packets_received: number; duration_ms?: number } = {
    bytes_sent: Number(ev.bytes),
    bytes_received: Number(ev.replyBytes),
    packets_sent: Number(ev.packets),
    packets_received: Number(ev.replyPackets),
  };
  if (ev.firstSeenNs > 0n && ev.lastSeenNs >= ev.firstSeenNs) n.duration_ms = Number(ev.lastSeenNs - ev.firstSeenNs) / 1e6;
  return n;
}

function validL3(ev: { ipVersion: unknown; srcIp: unknown; dstIp: unknown; tsNs: unknown; proto: unknown }): boolean {
  return (ev.ipVersion === 4 || ev.ipVersion === 6) &&
    typeof ev.srcIp === 'string' && ev.srcIp.length > 0 &&
    typeof ev.dstIp === 'string' && ev.dstIp.length > 0 &&
    typeof ev.tsNs === 'bigint' && typeof ev.proto === 'number';
}

function layer4(proto: number, sport: number, dport: number, flags: number, icmpType: number, icmpCode: number, ipv: number): Layer4 | undefined {
  switch (proto) {
    case IPPROTO_TCP:
      return { TCP: { source_port: sport, destination_port: dport, flags: tcpFlagsFromBits(flags) } };
    case IPPROTO_UDP:
      return { UDP: { source_port: sport, destination_port: dport } };
    case IPPROTO_SCTP:
      return { SCTP: { source_port: sport, destination_port: dport } };
    case IPPROTO_ICMP:
      return ipv === 4 ? { ICMPv4: { type: icmpType, code: icmpCode } } : undefined;
    case IPPROTO_ICMPV6:
      return ipv === 6 ? { ICMPv6: { type: icmpType, code: icmpCode } } : undefined;
    default:
      return undefined;
  }
}

function summary(proto: number, flags: number, icmpType: number, icmpCode: number, ipv: number): string {
  switch (proto) {
    case IPPROTO_TCP: return tcpSummary(flags);
    case IPPROTO_UDP: return 'UDP';
    case IPPROTO_SCTP: return 'SCTP';
    case IPPROTO_ICMP: return icmpv4Summary(icmpType, icmpCode);
    case IPPROTO_ICMPV6: return icmpv6Summary(icmpType, icmpCode);
    default: return ipv === 6 ? 'IPv6' : 'IPv4';
  }
}

const knownDropReasons = new Set(Object.values(DropReason).filter((v): v is number => typeof v === 'number' && v >= 0));

function dropReasonEnum(n: number): DropReason {
  return knownDropReasons.has(n) ? (n as DropReason) : DropReason.DROP_REASON_UNKNOWN;
}

function attachPolicy(flow: Flow, pol: Policy, direction: TrafficDirection, dropped: boolean): void {
  const ingress = direction === TrafficDirection.INGRESS;
  if (dropped) {
    if (ingress) flow.ingress_denied_by = [pol];
    else flow.egress_denied_by = [pol];
  } else if (ingress) flow.ingress_allowed_by = [pol];
  else flow.egress_allowed_by = [pol];
}
