// TCP lifecycle events as SOCK flows: what Hubble lacks, connection records with duration,
// bytes, RTT and retransmits. The numbers travel as data in Flow.extensions (conn-numbers.ts) and,
// for compact output, in the Summary in a fixed key=value form (docs/flows.md):
//   "TCP ESTABLISHED"
//   "TCP CLOSED duration_ms=1234.567 bytes_acked=1024 bytes_received=4096 srtt_us=87 retransmits=0"
//   "TCP RETRANSMIT state=ESTABLISHED srtt_us=87 retransmits=3"
import { FlowType, IPVersion, TrafficDirection, Verdict, attachConnNumbers, type ConnNumbers, type Flow } from '@flowctl/flow';
import type { SockEvent } from '../datapath/events.js';
import type { ParserContext } from './context.js';

/** Hubble's monitor type for socket-level trace events (`--type trace-sock`). */
const TRACE_SOCK_EVENT_TYPE = 7;

const TCP_STATES = [
  '', 'ESTABLISHED', 'SYN_SENT', 'SYN_RECV', 'FIN_WAIT1', 'FIN_WAIT2', 'TIME_WAIT', 'CLOSE',
  'CLOSE_WAIT', 'LAST_ACK', 'LISTEN', 'CLOSING', 'NEW_SYN_RECV',
];
const TCP_ESTABLISHED = 1;
const TCP_CLOSE = 7;
const TCP_SYN_SENT = 2;
const TCP_SYN_RECV = 3;
const TCP_LISTEN = 10;

const OPENER_PEER = 1;
const OPENER_SELF = 2;
// errno values of sk_err (asm-generic/errno.h)
const ECONNRESET = 104;
const ETIMEDOUT = 110;
const ECONNREFUSED = 111;

/** Why a connection ended, from the socket's error at its close (undefined: a normal close). */
export function closeReason(ev: SockEvent): string | undefined {
  if (ev.newState !== TCP_CLOSE || ev.what !== 'state') return undefined;
  switch (ev.skErr) {
    case ECONNREFUSED: return 'refused';
    case ECONNRESET: return 'reset';
    case ETIMEDOUT: return 'timed out';
    default:
      // A connect the application gave up on before any answer (e.g. a connect timeout).
      if (ev.oldState === TCP_SYN_SENT) return 'timed out';
      // A reset while established closes without passing FIN_WAIT or CLOSE_WAIT.
      return ev.oldState === TCP_ESTABLISHED && ev.skErr ? 'reset' : undefined;
  }
}

function sockNumbers(ev: SockEvent): ConnNumbers {
  const n: ConnNumbers = {
    state: ev.what === 'retransmit' ? tcpStateName(ev.newState) : ev.newState === TCP_CLOSE ? 'CLOSED' : tcpStateName(ev.newState),
    duration_ms: Number(ev.durationNs) / 1e6,
    bytes_sent: Number(ev.bytesAcked),
    bytes_received: Number(ev.bytesReceived),
    srtt_us: ev.srttUs,
    retransmits: ev.retransmits,
  };
  const why = closeReason(ev);
  if (why) n.close_reason = why;
  return n;
}

export function tcpStateName(s: number): string {
  return TCP_STATES[s] || `STATE${s}`;
}

function summaryFor(ev: SockEvent): string | undefined {
  if (ev.what === 'retransmit') {
    return `TCP RETRANSMIT state=${tcpStateName(ev.newState)} srtt_us=${ev.srttUs} retransmits=${ev.retransmits}`;
  }
  if (ev.newState === TCP_ESTABLISHED) return 'TCP ESTABLISHED';
  if (ev.newState === TCP_CLOSE) {
    // A listening socket that closes was never a connection: nothing to report.
    if (ev.oldState === TCP_LISTEN) return undefined;
    const ms = (Number(ev.durationNs) / 1e6).toFixed(3);
    return `TCP CLOSED duration_ms=${ms} bytes_acked=${ev.bytesAcked} bytes_received=${ev.bytesReceived} srtt_us=${ev.srttUs} retransmits=${ev.retransmits}`;
  }
  // Intermediate transitions (SYN_SENT, FIN_WAIT…) would triple the flow count for nothing.
  return undefined;
}

/** A SOCK flow for a TCP lifecycle event, or undefined when it is not worth a flow. */
export function sockFlow(ev: SockEvent, ctx: ParserContext): Flow | undefined {
  const summary = summaryFor(ev);
  if (summary === undefined) return undefined;
  const owner = ctx.endpointForNetns(ev.netnsIno);
  // A socket in a namespace we do not watch is not ours to report, and not an error either: the
  // tracepoints see every socket of the host.
  if (!owner && ev.netnsIno !== 0) return undefined;
  const source = owner ?? ctx.endpointForIp(ev.srcIp);
  const destination = ctx.endpointForIp(ev.dstIp);
  const flow: Flow = {
    time: ctx.toWallTime(ev.tsNs),
    uuid: ctx.newUuid(),
    verdict: Verdict.FORWARDED,
    IP: { source: ev.srcIp, destination: ev.dstIp, ipVersion: ev.ipVersion === 6 ? IPVersion.IPv6 : IPVersion.IPv4 },
    l4: { TCP: { source_port: ev.srcPort, destination_port: ev.dstPort } },
    source,
    destination,
    Type: FlowType.SOCK,
    node_name: ctx.nodeName,
    event_type: { type: TRACE_SOCK_EVENT_TYPE },
    Summary: summary,
  };
  // The kernel remembers the handshake's transition for the socket's later records (opener);
  // recordings from before it carry only the transition itself.
  if (ev.opener === OPENER_SELF || ev.oldState === TCP_SYN_SENT) flow.traffic_direction = TrafficDirection.EGRESS;
  else if (ev.opener === OPENER_PEER || ev.oldState === TCP_SYN_RECV) flow.traffic_direction = TrafficDirection.INGRESS;
  attachConnNumbers(flow, sockNumbers(ev));
  const srcNames = ctx.namesForIp(ev.srcIp);
  const dstNames = ctx.namesForIp(ev.dstIp);
  if (srcNames.length) flow.source_names = srcNames;
  if (dstNames.length) flow.destination_names = dstNames;
  return flow;
}
