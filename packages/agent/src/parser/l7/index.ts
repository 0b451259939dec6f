// L7 flows from the payload snippets the kernel copies for DNS and HTTP/1.x packets, as Hubble
// shows them from its proxy: REQUEST and RESPONSE flows (Type L7, event_type 129), responses
// paired with their request for latency, DNS answers fed to the DNS cache for FQDN names.
import { FlowType, L7FlowType, type Flow, type Layer7 } from '@flowctl/flow';
import { L7Proto, type FlowEvent } from '../../datapath/events.js';
import type { ParserContext } from '../context.js';
import { DnsParseError, dnsRcodeName, parseDns } from './dns.js';
import { HttpParseError, parseHttp, requestUrl } from './http.js';

const L7_EVENT_TYPE = 129;
const PAIR_TTL_NS = 30_000_000_000n;
const MAX_PENDING = 8192;
/** The same packet is seen at both veths when client and server share a node: report it once. */
const DEDUP_WINDOW_NS = 200_000_000n;
const IPPROTO_TCP = 6;

interface Pending {
  tsNs: bigint;
  method?: string;
  url?: string;
}

/** Per-parser L7 state: requests waiting for their response, recently reported messages. */
class L7State {
  readonly pending = new Map<string, Pending[]>();
  readonly recent = new Map<string, bigint>();

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
}

const states = new WeakMap<ParserContext, L7State>();
function stateFor(ctx: ParserContext): L7State {
  let s = states.get(ctx);
  if (!s) {
    s = new L7State();
    states.set(ctx, s);
  }
  return s;
}

function l7Base(base: Flow, ctx: ParserContext, isReply: boolean, l7: Layer7, summary: string): Flow {
  const l4 = base.l4?.TCP
    ? { TCP: { source_port: base.l4.TCP.source_port, destination_port: base.l4.TCP.destination_port } }
    : base.l4;
  const flow: Flow = {
    ...base,
    uuid: ctx.newUuid(),
    l4,
    Type: FlowType.L7,
    l7,
    event_type: { type: L7_EVENT_TYPE },
    is_reply: isReply,
    Summary: summary,
  };
  delete flow.trace_observation_point;
  return flow;
}

function dnsFlows(ev: FlowEvent, base: Flow, ctx: ParserContext, st: L7State): Flow[] {
  const msg = parseDns(ev.payload, ev.proto === IPPROTO_TCP);
  const client = msg.isResponse ? `${ev.dstIp}|${ev.dstPort}` : `${ev.srcIp}|${ev.srcPort}`;
  const server = msg.isResponse ? `${ev.srcIp}|${ev.srcPort}` : `${ev.dstIp}|${ev.dstPort}`;
  const key = `dns|${client}|${server}|${msg.id}`;
  if (st.isDuplicate(`${key}|${msg.isResponse ? 'r' : 'q'}`, ev.tsNs)) return [];
  const qtype = msg.qtypes[0] ?? '';
  if (!msg.isResponse) {
    st.pushRequest(key, { tsNs: ev.tsNs });
    const dns = { query: msg.query, qtypes: msg.qtypes };
    return [l7Base(base, ctx, false, { type: L7FlowType.REQUEST, dns }, `DNS Query ${msg.query} ${qtype}`)];
  }
  const req = st.popRequest(key, ev.tsNs);
  if (msg.ips.length > 0 && msg.query) ctx.learnNames(msg.query.replace(/\.$/, ''), msg.ips, msg.ttl);
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
  if (req) l7.latency_ns = ev.tsNs - req.tsNs;
  const answer = msg.rcode !== 0
    ? `RCode: ${dnsRcodeName(msg.rcode)}`
    : `"${msg.ips.join(',')}"`;
  return [l7Base(base, ctx, true, l7, `DNS Answer ${answer} TTL: ${msg.ttl} (${msg.query} ${qtype})`)];
}

function httpFlows(ev: FlowEvent, base: Flow, ctx: ParserContext, st: L7State): Flow[] {
  const msg = parseHttp(ev.payload);
  const isResponse = msg.kind === 'response';
  const client = isResponse ? `${ev.dstIp}|${ev.dstPort}` : `${ev.srcIp}|${ev.srcPort}`;
  const server = isResponse ? `${ev.srcIp}|${ev.srcPort}` : `${ev.dstIp}|${ev.dstPort}`;
  const key = `http|${client}|${server}`;
  const head = ev.payload.subarray(0, 48).toString('latin1');
  if (st.isDuplicate(`${key}|${head}`, ev.tsNs)) return [];
  if (msg.kind === 'request') {
    const url = requestUrl(msg, ev.dstIp, ev.dstPort);
    st.pushRequest(key, { tsNs: ev.tsNs, method: msg.method, url });
    const http = { method: msg.method, url, protocol: msg.protocol, headers: msg.headers };
    return [l7Base(base, ctx, false, { type: L7FlowType.REQUEST, http }, `${msg.protocol} ${msg.method} ${url}`)];
  }
  const req = st.popRequest(key, ev.tsNs);
  const http = { code: msg.code, method: req?.method, url: req?.url, protocol: msg.protocol, headers: msg.headers };
  const l7: Layer7 = { type: L7FlowType.RESPONSE, http };
  let summary = `${msg.protocol} ${msg.code}`;
  if (req) {
    l7.latency_ns = ev.tsNs - req.tsNs;
    summary += ` ${Math.round(Number(l7.latency_ns) / 1e6)}ms (${req.method} ${req.url})`;
  }
  return [l7Base(base, ctx, true, l7, summary)];
}

/** L7 flows (Type L7, event_type 129) derived from the event's payload; [] when there are none. */
export function l7Flows(ev: FlowEvent, base: Flow, ctx: ParserContext): Flow[] {
  if (ev.payload.length === 0) return [];
  const st = stateFor(ctx);
  try {
    if (ev.l7 === L7Proto.Dns) return dnsFlows(ev, base, ctx, st);
    if (ev.l7 === L7Proto.Http) return httpFlows(ev, base, ctx, st);
    return [];
  } catch (err) {
    if (err instanceof DnsParseError || err instanceof HttpParseError || err instanceof RangeError) {
      ctx.counters.malformedL7++;
      return [];
    }
    throw err;
  }
}
