// L7 flows from the payload snippets the kernel copies for DNS and HTTP/1.x packets, as Hubble
// shows them from its proxy: REQUEST and RESPONSE flows (Type L7, event_type 129), responses
// paired with their request for latency, DNS answers fed to the DNS cache for FQDN names.
import { FlowType, L7FlowType, attachConnNumbers, type Flow, type Layer7 } from '@flowctl/flow';
import { L7Proto, type FlowEvent } from '../../datapath/events.js';
import type { ParserContext } from '../context.js';
import { DnsParseError, dnsRcodeName, parseDns } from './dns.js';
import { DnsTcpDir, type DnsTcpNews } from './dns-stream.js';
import { HttpConn, startKind, type HttpNews, type MessageKind } from './http-stream.js';
import { BoundedMap } from './stream.js';

const L7_EVENT_TYPE = 129;
const PAIR_TTL_NS = 30_000_000_000n;
const MAX_PENDING = 8192;
/** TCP connections (and directions) whose L7 state is kept; the oldest is forgotten first. */
const MAX_STREAMS = 16384;
/** A UDP DNS message is seen at both veths when client and server share a node: report it once. */
const DEDUP_WINDOW_NS = 200_000_000n;
const IPPROTO_TCP = 6;
const TCP_SYN = 0x02;
const TCP_FIN_RST = 0x05;

interface Pending {
  tsNs: bigint;
}

/** Per-parser L7 state: where each TCP direction starts, the message streams of HTTP and DNS
 * over TCP connections, DNS queries waiting for their answer, recent UDP DNS messages. */
class L7State {
  readonly pending = new Map<string, Pending[]>();
  readonly recent = new Map<string, bigint>();
  /** Direction key -> sequence number of its first payload byte (from the SYN). */
  readonly starts = new BoundedMap<number>(MAX_STREAMS * 4);
  readonly http = new BoundedMap<HttpConn>(MAX_STREAMS);
  readonly dnsTcp = new BoundedMap<DnsTcpDir>(MAX_STREAMS);

  remember<V>(map: Map<string, V>, key: string, value: V): void {
    map.delete(key);
    map.set(key, value);
    if (map.size > MAX_PENDING) map.delete(map.keys().next().value as string);
  }

  isDuplicate(key: string, tsNs: bigint): boolean {
    const seen = this.recent.get(key);
    if (seen !== undefined && tsNs - seen >= 0n && tsNs - seen < DEDUP_WINDOW_NS) return true;
    this.remember(this.recent, key, tsNs);
    return false;
  }

  pushRequest(key: string, p: Pending): void {
    const q = this.pending.get(key) ?? [];
    q.push(p);
    if (q.length > 64) q.shift();
    this.remember(this.pending, key, q);
  }

  popRequest(key: string, nowNs: bigint): Pending | undefined {
    const q = this.pending.get(key);
    if (!q) return undefined;
    let p = q.shift();
    while (p && nowNs - p.tsNs > PAIR_TTL_NS) p = q.shift();
    if (q.length === 0) this.pending.delete(key);
    return p;
  }

  constructor(private readonly ctx: ParserContext) {}

  /** Counts a message that will never be reported. */
  readonly lost = (kind: MessageKind | 'dns'): void => {
    const c = this.ctx.counters;
    if (kind === 'request') c.l7LostHttpRequests++;
    else if (kind === 'response') c.l7LostHttpResponses++;
    else c.l7LostDns++;
  };

  /** A SYN: where the direction's bytes start. A new start forgets the old connection's state. */
  syn(dir: string, conn: string, seq: number): void {
    const first = (seq + 1) >>> 0;
    if (this.starts.get(dir) === first) return; // the same SYN at a second observation point
    this.starts.set(dir, first);
    this.http.delete(conn);
    this.dnsTcp.delete(dir);
  }
}

const states = new WeakMap<ParserContext, L7State>();
function stateFor(ctx: ParserContext): L7State {
  let s = states.get(ctx);
  if (!s) {
    s = new L7State(ctx);
    states.set(ctx, s);
  }
  return s;
}

function dirKey(ev: FlowEvent): string {
  return `${ev.srcIp}|${ev.srcPort}>${ev.dstIp}|${ev.dstPort}`;
}

function connKey(ev: FlowEvent): string {
  const a = `${ev.srcIp}|${ev.srcPort}`;
  const b = `${ev.dstIp}|${ev.dstPort}`;
  return a < b ? `${a}>${b}` : `${b}>${a}`;
}

/** The L3/L4 flow of the event, built on first use. */
type Base = () => Flow;

const L7_EVENT = Object.freeze({ type: L7_EVENT_TYPE });

/** The L7 flow: the L3/L4 flow's fields copied one by one in one literal, not spread: a spread of
 * a flow this wide was the parser's most expensive line (docs/benchmarks.md, HTTP keep-alive). */
function l7Base(lazy: Base, ctx: ParserContext, isReply: boolean, l7: Layer7, summary: string): Flow {
  const b = lazy();
  const tcp = b.l4?.TCP;
  return {
    time: b.time,
    uuid: ctx.newUuid(),
    verdict: b.verdict,
    drop_reason: b.drop_reason,
    ethernet: b.ethernet,
    IP: b.IP,
    l4: tcp ? { TCP: { source_port: tcp.source_port, destination_port: tcp.destination_port } } : b.l4,
    source: b.source,
    destination: b.destination,
    Type: FlowType.L7,
    node_name: b.node_name,
    source_names: b.source_names,
    destination_names: b.destination_names,
    l7,
    reply: b.reply,
    event_type: L7_EVENT,
    traffic_direction: b.traffic_direction,
    trace_reason: b.trace_reason,
    drop_reason_desc: b.drop_reason_desc,
    is_reply: isReply,
    interface: b.interface,
    Summary: summary,
    // No extensions: the connection's totals belong to its L3/L4 records.
    egress_allowed_by: b.egress_allowed_by,
    ingress_allowed_by: b.ingress_allowed_by,
    egress_denied_by: b.egress_denied_by,
    ingress_denied_by: b.ingress_denied_by,
  };
}

/** The DNS message's own size, from the packet (or the TCP length prefix), not from the snippet. */
function withMessageBytes(flow: Flow, bytes: number): Flow {
  attachConnNumbers(flow, { message_bytes: bytes });
  return flow;
}

function dnsFlow(payload: Buffer, msgBytes: number, tsNs: bigint, ev: FlowEvent, base: Base, ctx: ParserContext, st: L7State): Flow[] {
  const msg = parseDns(payload, false);
  const client = msg.isResponse ? `${ev.dstIp}|${ev.dstPort}` : `${ev.srcIp}|${ev.srcPort}`;
  const server = msg.isResponse ? `${ev.srcIp}|${ev.srcPort}` : `${ev.dstIp}|${ev.dstPort}`;
  const key = `dns|${client}|${server}|${msg.id}`;
  // TCP streams drop copies by sequence number; a UDP datagram has nothing but its content.
  if (ev.proto !== IPPROTO_TCP && st.isDuplicate(`${key}|${msg.isResponse ? 'r' : 'q'}`, tsNs)) return [];
  const qtype = msg.qtypes[0] ?? '';
  if (!msg.isResponse) {
    st.pushRequest(key, { tsNs });
    const dns = { query: msg.query, qtypes: msg.qtypes };
    return [withMessageBytes(l7Base(base, ctx, false, { type: L7FlowType.REQUEST, dns }, `DNS Query ${msg.query} ${qtype}`), msgBytes)];
  }
  const req = st.popRequest(key, tsNs);
  if (msg.ips.length > 0 && msg.query) ctx.learnNames(msg.query.replace(/\.$/, ''), msg.ips, msg.ttl, ev.dstIp, ev.proto === IPPROTO_TCP);
  const dns = {
    query: msg.query,
    ips: msg.ips,
    ttl: msg.ttl,
    cnames: msg.cnames,
    rcode: msg.rcode,
    qtypes: msg.qtypes,
    rrtypes: msg.rrtypes,
  };
  const l7: Layer7 = { type: L7FlowType.RESPONSE, dns };
  if (req) l7.latency_ns = tsNs - req.tsNs;
  const answer = msg.rcode !== 0
    ? `RCode: ${dnsRcodeName(msg.rcode)}`
    : `"${msg.ips.join(',')}"`;
  return [withMessageBytes(l7Base(base, ctx, true, l7, `DNS Answer ${answer} TTL: ${msg.ttl} (${msg.query} ${qtype})`), msgBytes)];
}

/** The one flow that says a TCP connection's messages can no longer be followed. */
function lostFlow(proto: string, why: string, ev: FlowEvent, base: Base, ctx: ParserContext): Flow {
  ctx.counters.l7StreamLost++;
  return l7Base(base, ctx, ev.isReply === true, { type: L7FlowType.UNKNOWN_L7_TYPE }, `${proto} unparsed: ${why}`);
}

function dnsTcpFlows(ev: FlowEvent, base: Base, ctx: ParserContext, st: L7State): Flow[] {
  const dk = dirKey(ev);
  let dir = st.dnsTcp.get(dk);
  if (!dir) {
    const first = st.starts.get(dk);
    dir = new DnsTcpDir(first ?? ev.tcpSeq, () => st.lost('dns'));
    st.dnsTcp.set(dk, dir);
    if (first === undefined) return dnsTcpNews(dir.giveUp('the stream started before it was seen'), ev, base, ctx, st);
  }
  return dnsTcpNews(dir.feed(ev.tcpSeq, ev.payloadLen, ev.payload, ev.tsNs), ev, base, ctx, st);
}

function dnsTcpNews(news: DnsTcpNews[], ev: FlowEvent, base: Base, ctx: ParserContext, st: L7State): Flow[] {
  const out: Flow[] = [];
  for (const n of news) {
    if (n.kind === 'lost') out.push(lostFlow('DNS', n.why, ev, base, ctx));
    else out.push(...guarded(ctx, () => dnsFlow(n.bytes, n.len, n.tsNs, ev, base, ctx, st)));
  }
  return out;
}

function httpFlow(n: HttpNews, ev: FlowEvent, base: Base, ctx: ParserContext): Flow {
  if (n.kind === 'lost') return lostFlow('HTTP', n.why, ev, base, ctx);
  if (n.kind === 'request') {
    const m = n.msg;
    const http = { method: m.method, url: n.url, protocol: m.protocol, headers: m.headers };
    return l7Base(base, ctx, false, { type: L7FlowType.REQUEST, http }, `${m.protocol} ${m.method} ${n.url}`);
  }
  const { msg, req } = n;
  if (!req) {
    // Its request was in bytes that could not be followed (and is counted lost).
    const l7: Layer7 = { type: L7FlowType.RESPONSE, http: { code: msg.code, protocol: msg.protocol, headers: msg.headers } };
    return l7Base(base, ctx, true, l7, `${msg.protocol} ${msg.code} (request unknown)`);
  }
  const http = { code: msg.code, method: req.method, url: req.url, protocol: msg.protocol, headers: msg.headers };
  const latency = n.tsNs - req.tsNs;
  const l7: Layer7 = { type: L7FlowType.RESPONSE, latency_ns: latency, http };
  const summary = `${msg.protocol} ${msg.code} ${Math.round(Number(latency) / 1e6)}ms (${req.method} ${req.url})`;
  return l7Base(base, ctx, true, l7, summary);
}

function httpFlows(ev: FlowEvent, base: Base, ctx: ParserContext, st: L7State): Flow[] {
  const ck = connKey(ev);
  let conn = st.http.get(ck);
  if (!conn) {
    conn = new HttpConn(st.lost);
    st.http.set(ck, conn);
  }
  const dk = dirKey(ev);
  const seg = {
    dir: dk, seq: ev.tcpSeq, len: ev.payloadLen, bytes: ev.payload, off: ev.capturedOff, followed: ev.l7Followed, start: ev.l7Start,
    msg: ev.l7Msg, starts: ev.l7Starts, more: ev.l7More, tsNs: ev.tsNs, dstIp: ev.dstIp, dstPort: ev.dstPort,
  };
  return conn.feed(seg, st.starts.get(dk)).map((n) => httpFlow(n, ev, base, ctx));
}

function guarded(ctx: ParserContext, f: () => Flow[]): Flow[] {
  try {
    return f();
  } catch (err) {
    if (err instanceof DnsParseError || err instanceof RangeError) {
      ctx.counters.malformedL7++;
      return [];
    }
    throw err;
  }
}

/** A FIN or RST: segments held for bytes that never came are placed after their gaps. */
function endFlows(ev: FlowEvent, base: Base, ctx: ParserContext, st: L7State): Flow[] {
  const out = (st.http.get(connKey(ev))?.flush() ?? []).map((n) => httpFlow(n, ev, base, ctx));
  for (const dk of [dirKey(ev), `${ev.dstIp}|${ev.dstPort}>${ev.srcIp}|${ev.srcPort}`]) {
    const dir = st.dnsTcp.get(dk);
    if (dir) out.push(...dnsTcpNews(dir.flush(), ev, base, ctx, st));
  }
  return out;
}

/** Counts the messages of an L7 event the agent dropped before parsing it (its queue was full), as
 * the kernel counts those of events it could not send (bpf/flowctl.bpf.c l7_lost). */
export function l7Dropped(ev: FlowEvent, ctx: ParserContext): void {
  if (ev.l7 === L7Proto.Dns) stateFor(ctx).lost('dns');
  else if (ev.l7 === L7Proto.Http && ev.l7Followed) {
    // The kernel's count of the messages starting in the window, all of the first one's kind.
    const kind = ev.l7Start === undefined ? undefined : startKind(ev.payload.subarray(ev.l7Start - (ev.capturedOff ?? 0)));
    for (let i = 0; kind && i < (ev.l7Starts ?? 0); i++) stateFor(ctx).lost(kind);
  } else if (ev.l7 === L7Proto.Http && !ev.capturedOff) {
    const kind = startKind(ev.payload);
    if (kind) stateFor(ctx).lost(kind);
  }
}

/** L7 flows (Type L7, event_type 129) derived from the event's payload; [] when there are none.
 * Takes every TCP event with SYN, FIN or RST: the message streams start and end there. */
export function l7Flows(ev: FlowEvent, base: Base, ctx: ParserContext): Flow[] {
  const st = stateFor(ctx);
  const tcp = ev.proto === IPPROTO_TCP;
  if (tcp && ev.tcpFlags & TCP_SYN) st.syn(dirKey(ev), connKey(ev), ev.tcpSeq);
  const flows = payloadFlows(ev, base, ctx, st, tcp);
  return tcp && ev.tcpFlags & TCP_FIN_RST ? [...flows, ...endFlows(ev, base, ctx, st)] : flows;
}

function payloadFlows(ev: FlowEvent, base: Base, ctx: ParserContext, st: L7State, tcp: boolean): Flow[] {
  if (ev.payloadLen === 0 || ev.l7 === L7Proto.None) return [];
  if (ev.l7 === L7Proto.Dns) return tcp ? dnsTcpFlows(ev, base, ctx, st) : guarded(ctx, () => dnsFlow(ev.payload, ev.payloadLen, ev.tsNs, ev, base, ctx, st));
  if (ev.l7 === L7Proto.Http && tcp) return httpFlows(ev, base, ctx, st);
  return [];
}
