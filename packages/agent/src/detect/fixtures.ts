// Flows for detector tests, made the way the agent makes them: kernel events (payload snippets cut
// at 512 bytes, the packet's own payload length beside them) through the real parser, with pods
// from an endpoints file.
import type { Flow } from '@flowctl/flow';
import { parseEndpoints } from '@flowctl/policy';
import { EndpointDirectory } from '../endpoints/directory.js';
import { dnsMessage, flowEvent } from '../parser/fixtures.js';
import { LiveContext } from '../parser/live-context.js';
import { Parser } from '../parser/parser.js';

const ENDPOINTS = `endpoints:
  - name: client-7d9f8b6c5-bcdfg
    namespace: shop
    node: node-a
    labels: { app: client }
    ips: [10.231.1.10, fd00:231::10]
  - name: web-0
    namespace: shop
    node: node-a
    labels: { app: web }
    ips: [10.231.1.20]
  - name: coredns-0
    namespace: kube-system
    node: node-a
    labels: { app: dns }
    ips: [10.231.1.53]
`;

export const CLIENT = '10.231.1.10';
export const WEB = '10.231.1.20';
export const RESOLVER = '10.231.1.53';
const SNIPPET = 512;

export interface Answer {
  type: number;
  data: Buffer;
}

/** DNS and connections between the pods above, as parsed flows. */
export class Traffic {
  private readonly parser: Parser;
  private tsNs = 1_000_000_000n;
  private id = 0;
  private port = 30000;

  constructor() {
    const dir = new EndpointDirectory('node-a');
    dir.setEndpoints(parseEndpoints(ENDPOINTS, 'endpoints.yaml'));
    this.parser = new Parser(new LiveContext(dir));
  }

  /** The request and response L7 flows of one lookup (answers empty: NXDOMAIN). */
  lookup(name: string, o: { client?: string; qtype?: number; answers?: Answer[] } = {}): { query: Flow; answer: Flow } {
    const client = o.client ?? CLIENT;
    const id = ++this.id & 0xffff;
    const sport = 30000 + (++this.port % 30000);
    const q = dnsMessage({ id, response: false, name, qtype: o.qtype ?? 1 });
    const a = dnsMessage({ id, response: true, name, qtype: o.qtype ?? 1, rcode: o.answers?.length ? 0 : 3, answers: (o.answers ?? []).map((x) => ({ ...x, ttl: 30 })) });
    const query = this.l7(this.event(client, RESOLVER, sport, 53, q, false));
    const answer = this.l7(this.event(RESOLVER, client, 53, sport, a, true));
    return { query, answer };
  }

  /** The first L3/L4 flow of a TCP connection (its SYN). */
  connect(src: string, dst: string, dport: number): Flow {
    this.tsNs += 1_000_000n;
    const flows = this.parser.decode(flowEvent({ tsNs: this.tsNs, srcIp: src, dstIp: dst, dstPort: dport, srcPort: 40000 + (++this.port % 20000), ipVersion: src.includes(':') ? 6 : 4 }));
    return flows[0]!;
  }

  private event(src: string, dst: string, sport: number, dport: number, msg: Buffer, reply: boolean) {
    this.tsNs += 1_000_000n;
    return flowEvent({
      tsNs: this.tsNs, srcIp: src, dstIp: dst, proto: 17, srcPort: sport, dstPort: dport, tcpFlags: 0, tcpFlagsSeen: 0,
      isReply: reply, obsPoint: reply ? 2 : 1, reason: 7, l7: 1, payload: msg.subarray(0, SNIPPET), payloadLen: msg.length,
    });
  }

  private l7(ev: ReturnType<typeof flowEvent>): Flow {
    const flows = this.parser.decode(ev);
    const l7 = flows.find((f) => f.l7);
    if (!l7) throw new Error(`no L7 flow from ${ev.srcIp} -> ${ev.dstIp}`);
    return l7;
  }
}

/** An A record. */
export function a(ip: string): Answer {
  return { type: 1, data: Buffer.from(ip.split('.').map(Number)) };
}

/** A record of `bytes` opaque bytes (NULL, TXT...). */
export function blob(type: number, bytes: number, seed = 1): Answer {
  const b = Buffer.alloc(bytes);
  let x = seed;
  for (let i = 0; i < bytes; i++) b[i] = (x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 24;
  return { type, data: b };
}

/** `n` pseudo-random characters of `alphabet`, the same for the same seed. */
export function randomChars(n: number, seed: number, alphabet = 'abcdefghijklmnopqrstuvwxyz234567'): string {
  let x = seed >>> 0 || 1;
  let s = '';
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    s += alphabet[(x >>> 16) % alphabet.length];
  }
  return s;
}
