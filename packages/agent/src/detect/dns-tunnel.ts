// DNS tunnels and exfiltration: per client and registered domain, over a sliding window, what the
// client says in the names it asks for and hears in the answers. A tunnel needs many distinct
// names (each carries new data, and caches must not answer it), and carries its data either in
// long random-looking names, in big answers, or in record types made for text (TXT, NULL). All
// three must hold over the window: volume (distinct names), bytes carried, and a tunnel's shape.
// Ordinary clients ask a few names per domain again and again; CDN and service names are short.
// Sizes come from the packet (connection.message_bytes), not from the 512-byte payload snippet.
import { connNumbers, FlowType, L7FlowType, type Flow } from '@flowctl/flow';
import { getDomain } from 'tldts';
import type { AlertPeer, DetectorSpec, Detector, Finding } from './detector.js';
import { LruMap } from './lru.js';
import { describePeer, peerOf } from './peer.js';
import { ownedHere } from './syn.js';

export interface DnsTunnelOptions {
  /** Sliding window over which a client's queries to one domain are added up. */
  windowMs: number;
  /** Distinct names asked under one registered domain within the window (Zeek: 8 an hour, RITA: 100). */
  minNames: number;
  /** Bytes carried: subdomain characters of those distinct names plus their answers' bytes past the question. */
  minBytes: number;
  /** Mean subdomain length (characters) of names that carry data... */
  longNames: number;
  /** ...with at least this character entropy (bits per character, length-weighted mean). */
  minEntropy: number;
  /** Mean answer bytes (past the question) per distinct name that say the answers carry data. */
  bigAnswers: number;
  /** Share of queries for TXT, NULL, CNAME, MX, ANY or private types that says the same. */
  tunnelTypesShare: number;
  /** Registered domains never reported (antivirus and reputation lookups that look like tunnels). */
  ignoreDomains: string[];
  /** (client, domain) pairs tracked; the least recently active is forgotten first. */
  maxClients: number;
  /** Distinct names remembered per pair (a tunnel is clear long before). */
  maxNames: number;
  /** Least time between two findings for one pair. */
  updateMs: number;
}

export const DNS_TUNNEL_DEFAULTS: Readonly<DnsTunnelOptions> = Object.freeze({
  windowMs: 60_000,
  minNames: 20,
  minBytes: 8192,
  longNames: 48,
  minEntropy: 3.5,
  bigAnswers: 256,
  tunnelTypesShare: 0.5,
  ignoreDomains: [],
  maxClients: 4096,
  maxNames: 256,
  updateMs: 5000,
});

const BUCKETS = 6;
const SAMPLES = 3;
const TUNNEL_TYPES = new Set(['TXT', 'NULL', 'CNAME', 'MX', 'ANY']);
const isTunnelType = (t: string) => TUNNEL_TYPES.has(t) || (t.startsWith('TYPE') && Number(t.slice(4)) >= 65280);
const TLD_OPTS = { extractHostname: false, validateHosts: false } as const;

/** One slice of the window. */
class Bucket {
  start = -Infinity;
  queries = 0;
  tunnelTypes = 0;
  names = 0;
  nameChars = 0;
  /** Σ length × entropy of the distinct subdomains, for the length-weighted mean. */
  entropyChars = 0;
  answered = 0;
  answerBytes = 0;
  queryMsgBytes = 0;
  answerMsgBytes = 0;
  types = new Map<string, number>();

  reset(start: number): void {
    this.start = start;
    this.queries = this.tunnelTypes = this.names = this.nameChars = this.entropyChars = 0;
    this.answered = this.answerBytes = this.queryMsgBytes = this.answerMsgBytes = 0;
    this.types.clear();
  }
}

interface PairState {
  client: AlertPeer;
  buckets: Bucket[];
  /** Name hash -> first seen (ms) × 2 + 1 once its answer was counted; oldest first. */
  seen: Map<number, number>;
  samples: string[];
  reportedMs: number;
  reportedBytes: number;
}

/** Totals of the window. */
interface Window {
  queries: number;
  tunnelTypes: number;
  names: number;
  nameChars: number;
  entropyChars: number;
  answered: number;
  answerBytes: number;
  queryMsgBytes: number;
  answerMsgBytes: number;
  types: Map<string, number>;
}

export class DnsTunnelDetector implements Detector {
  readonly name = 'dns-tunnel';
  private readonly o: DnsTunnelOptions;
  private readonly pairs: LruMap<string, PairState>;
  private readonly ignore: Set<string>;
  private readonly bucketMs: number;

  /** `isLocalIp`: addresses of this node's pods (a pod's queries are counted by its own node only). */
  constructor(opts: Partial<DnsTunnelOptions> = {}, private readonly isLocalIp: (ip: string) => boolean = () => true) {
    this.o = { ...DNS_TUNNEL_DEFAULTS, ...opts };
    this.pairs = new LruMap(this.o.maxClients);
    this.ignore = new Set(this.o.ignoreDomains.map((d) => d.toLowerCase().replace(/\.$/, '')));
    this.bucketMs = this.o.windowMs / BUCKETS;
  }

  stateSize(): number {
    return this.pairs.size;
  }

  stateEvicted(): number {
    return this.pairs.evicted;
  }

  observe(flow: Flow, nowMs: number): Finding[] | undefined {
    if (flow.Type !== FlowType.L7) return undefined;
    const l7 = flow.l7;
    const dns = l7?.dns;
    if (!dns?.query) return undefined;
    const request = l7!.type === L7FlowType.REQUEST;
    if (!request && l7!.type !== L7FlowType.RESPONSE) return undefined;
    const side = request ? 'source' : 'destination';
    if (!ownedHere(flow, side, this.isLocalIp)) return undefined;
    const ip = flow.IP![side]!;
    const name = dns.query.endsWith('.') ? dns.query.slice(0, -1) : dns.query;
    const domain = getDomain(name, TLD_OPTS);
    if (!domain || this.ignore.has(domain)) return undefined;
    const sub = name.length > domain.length ? name.slice(0, name.length - domain.length - 1) : '';
    const msgBytes = connNumbers(flow)?.message_bytes;

    const key = `${ip}|${domain}`;
    const st = this.pairs.getOrCreate(key, () => ({
      client: peerOf(flow, side),
      buckets: Array.from({ length: BUCKETS }, () => new Bucket()),
      seen: new Map(),
      samples: [],
      reportedMs: -Infinity,
      reportedBytes: 0,
    }));
    const b = this.bucket(st, nowMs);
    const h = fnv1a(name);
    const seen = st.seen.get(h);
    const fresh = seen === undefined || nowMs - Math.floor(seen / 2) > this.o.windowMs;
    if (request) {
      b.queries++;
      b.queryMsgBytes += msgBytes ?? 0;
      const qtype = dns.qtypes?.[0] ?? '';
      b.types.set(qtype, (b.types.get(qtype) ?? 0) + 1);
      if (isTunnelType(qtype)) b.tunnelTypes++;
      if (fresh) {
        this.remember(st, h, nowMs * 2, nowMs);
        b.names++;
        b.nameChars += sub.length;
        b.entropyChars += sub.length * entropy(sub);
        if (st.samples.length < SAMPLES && sub.length >= this.o.longNames) st.samples.push(shorten(name));
      }
    } else {
      b.answerMsgBytes += msgBytes ?? 0;
      // An answer counts once per distinct name: repeated lookups of one name carry nothing new.
      if (msgBytes !== undefined && seen !== undefined && !fresh && seen % 2 === 0) {
        st.seen.set(h, seen + 1);
        b.answered++;
        // Header (12), question (name in wire form: its length + 2, type and class: 4).
        b.answerBytes += Math.max(0, msgBytes - 12 - (name.length + 2) - 4);
      }
    }
    return this.judge(st, domain, nowMs);
  }

  private bucket(st: PairState, nowMs: number): Bucket {
    const start = Math.floor(nowMs / this.bucketMs) * this.bucketMs;
    const b = st.buckets[Math.floor(nowMs / this.bucketMs) % BUCKETS]!;
    if (b.start !== start) b.reset(start);
    return b;
  }

  private remember(st: PairState, h: number, v: number, nowMs: number): void {
    st.seen.delete(h);
    // Oldest first: forget names gone out of the window, then the oldest while still full.
    for (const [k, s] of st.seen) {
      if (st.seen.size < this.o.maxNames && nowMs - Math.floor(s / 2) <= this.o.windowMs) break;
      st.seen.delete(k);
    }
    st.seen.set(h, v);
  }

  private window(st: PairState, nowMs: number): Window {
    const w: Window = { queries: 0, tunnelTypes: 0, names: 0, nameChars: 0, entropyChars: 0, answered: 0, answerBytes: 0, queryMsgBytes: 0, answerMsgBytes: 0, types: new Map() };
    for (const b of st.buckets) {
      if (nowMs - b.start >= this.o.windowMs) continue;
      w.queries += b.queries;
      w.tunnelTypes += b.tunnelTypes;
      w.names += b.names;
      w.nameChars += b.nameChars;
      w.entropyChars += b.entropyChars;
      w.answered += b.answered;
      w.answerBytes += b.answerBytes;
      w.queryMsgBytes += b.queryMsgBytes;
      w.answerMsgBytes += b.answerMsgBytes;
      for (const [t, n] of b.types) w.types.set(t, (w.types.get(t) ?? 0) + n);
    }
    return w;
  }

  private judge(st: PairState, domain: string, nowMs: number): Finding[] | undefined {
    const o = this.o;
    if (nowMs - st.reportedMs < o.updateMs) return undefined;
    const w = this.window(st, nowMs);
    const carried = w.nameChars + w.answerBytes;
    if (w.names < o.minNames || carried < o.minBytes) return undefined;
    const meanName = w.nameChars / w.names;
    const bits = w.nameChars > 0 ? w.entropyChars / w.nameChars : 0;
    const meanAnswer = w.answered > 0 ? w.answerBytes / w.answered : 0;
    const shape: string[] = [];
    if (meanName >= o.longNames && bits >= o.minEntropy) shape.push('long random names');
    if (meanAnswer >= o.bigAnswers) shape.push('big answers');
    if (w.queries > 0 && w.tunnelTypes / w.queries >= o.tunnelTypesShare) shape.push('text record types');
    if (shape.length === 0) return undefined;
    if (carried <= st.reportedBytes && st.reportedMs > -Infinity) return undefined;
    st.reportedMs = nowMs;
    st.reportedBytes = carried;
    const types = [...w.types].sort((a, b) => b[1] - a[1]).map(([t, n]) => `${t}:${n}`);
    const winS = o.windowMs / 1000;
    return [{
      kind: 'dns-tunnel',
      severity: 'high',
      source: st.client,
      target: domain,
      summary: `possible DNS tunnel: ${describePeer(st.client)} asked ${w.names} distinct names under ${domain} in ${winS}s ` +
        `(mean ${Math.round(meanName)} chars, ${bits.toFixed(1)} bits/char), ${kb(carried)} carried; ${shape.join(', ')}`,
      evidence: {
        domain,
        window_s: winS,
        queries: w.queries,
        distinct_names: w.names,
        mean_subdomain_chars: Math.round(meanName),
        entropy_bits_per_char: Number(bits.toFixed(2)),
        bytes_carried: carried,
        name_bytes: w.nameChars,
        answer_bytes: w.answerBytes,
        query_message_bytes: w.queryMsgBytes,
        answer_message_bytes: w.answerMsgBytes,
        record_types: types,
        shape,
        sample_names: st.samples,
      },
    }];
  }
}

/** A sample name short enough for an alert: its start and its end (where the domain is). */
function shorten(name: string): string {
  return name.length <= 80 ? name : `${name.slice(0, 48)}…${name.slice(-31)}`;
}

function kb(n: number): string {
  return n >= 10_240 ? `${Math.round(n / 1024)} KB` : `${n} bytes`;
}

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

const counts = new Int32Array(256);
/** Shannon entropy of the characters of `s`, bits per character (labels' dots included). */
export function entropy(s: string): number {
  if (s.length < 2) return 0;
  counts.fill(0);
  for (let i = 0; i < s.length; i++) counts[s.charCodeAt(i) & 0xff]!++;
  let h = 0;
  for (let i = 0; i < 256; i++) {
    const c = counts[i]!;
    if (c) {
      const p = c / s.length;
      h -= p * Math.log2(p);
    }
  }
  return h;
}

const D = DNS_TUNNEL_DEFAULTS;
export const dnsTunnel: DetectorSpec = {
  name: 'dns-tunnel',
  help: 'DNS tunnels and exfiltration: many distinct names under one domain carrying data in long names, big answers or text records',
  options: {
    window: { kind: 'duration', default: D.windowMs, help: "a client's queries to one registered domain are added up over this sliding window" },
    names: { kind: 'count', default: D.minNames, help: 'distinct names under one registered domain within the window (Zeek: 8 an hour; RITA: 100)' },
    bytes: { kind: 'count', default: D.minBytes, help: 'bytes carried within the window: subdomain characters of those names plus their answers past the question' },
    'long-names': { kind: 'count', default: D.longNames, help: 'mean subdomain length (characters) of names that carry data...' },
    entropy: { kind: 'number', default: D.minEntropy, help: '...with at least this character entropy (bits per character)' },
    'big-answers': { kind: 'count', default: D.bigAnswers, help: 'mean answer bytes past the question per distinct name that say the answers carry data' },
    'text-types': { kind: 'number', default: D.tunnelTypesShare, help: 'share of queries for TXT, NULL, CNAME, MX, ANY or private types that says the same' },
    'ignore-domains': { kind: 'strings', default: D.ignoreDomains, help: 'registered domains never reported (antivirus and reputation lookups look like tunnels)' },
    'max-clients': { kind: 'count', default: D.maxClients, help: '(client, domain) pairs tracked; the least recently active is forgotten first' },
    'max-names': { kind: 'count', default: D.maxNames, help: 'distinct names remembered per pair' },
    'update-interval': { kind: 'duration', default: D.updateMs, help: "least time between two updates of a pair's alert" },
  },
  create: (c, ctx) => new DnsTunnelDetector({
    windowMs: c.window as number,
    minNames: c.names as number,
    minBytes: c.bytes as number,
    longNames: c['long-names'] as number,
    minEntropy: c.entropy as number,
    bigAnswers: c['big-answers'] as number,
    tunnelTypesShare: c['text-types'] as number,
    ignoreDomains: c['ignore-domains'] as string[],
    maxClients: c['max-clients'] as number,
    maxNames: c['max-names'] as number,
    updateMs: c['update-interval'] as number,
  }, ctx.isLocalIp),
};
