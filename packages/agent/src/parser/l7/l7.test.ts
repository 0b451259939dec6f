import { describe, expect, it } from 'vitest';
import { FlowType, L7FlowType, connNumbers, type Flow } from '@flowctl/flow';
import { FlowReason, L7Proto, ObsPoint, type FlowEvent, type SockEvent } from '../../datapath/events.js';
import type { ParserContext } from '../context.js';
import { parseDns } from './dns.js';
import { parseHttp } from './http.js';
import { l7Flows } from './index.js';
import { sockFlow } from '../sock.js';
import { dnsMessage, dnsName } from '../fixtures.js';

function ctx(): ParserContext & { learned: [string, string[], number][] } {
  let n = 0;
  const learned: [string, string[], number][] = [];
  return {
    learned,
    nodeName: 'node-1',
    toWallTime: (ns) => ({ seconds: ns / 1_000_000_000n, nanos: Number(ns % 1_000_000_000n) }),
    endpointForIp: (ip) => (ip.startsWith('10.') ? { identity: 300, namespace: 'shop', pod_name: `pod-${ip}` } : { identity: 2, labels: ['reserved:world'] }),
    endpointForNetns: (ino) => (ino === 42 ? { identity: 300, namespace: 'shop', pod_name: 'client' } : undefined),
    isLocalEndpointIp: (ip) => ip.startsWith('10.'),
    policyForRef: () => undefined,
    ifName: () => 'lxc-x',
    nodeNetnsIno: 1,
    namesForIp: () => [],
    learnNames: (name, ips, ttl) => { learned.push([name, ips, ttl]); },
    newUuid: () => `uuid-${++n}`,
    counters: { malformedEvents: 0, malformedL7: 0, l7StreamLost: 0, l7LostHttpRequests: 0, l7LostHttpResponses: 0, l7LostDns: 0 },
  };
}

function event(over: Partial<FlowEvent>): FlowEvent {
  return {
    kind: 'flow', tsNs: 1_000_000_000n, ifindex: 3, obsPoint: ObsPoint.FromEndpoint, reason: FlowReason.L7,
    verdict: 1, dropReason: 0, ipVersion: 4, srcIp: '10.0.0.1', dstIp: '10.0.0.53', proto: 17,
    srcPort: 40000, dstPort: 53, tcpFlags: 0, tcpFlagsSeen: 0, icmpType: 0, icmpCode: 0, isReply: false,
    srcIdentity: 0, dstIdentity: 0, policyRef: 0, policyDirection: 0, ethSrc: '', ethDst: '',
    packets: 1n, bytes: 0n, replyPackets: 0n, replyBytes: 0n, firstSeenNs: 0n, lastSeenNs: 0n,
    l7: L7Proto.Dns, payload: Buffer.alloc(0), payloadLen: 0, tcpSeq: 0, tcpAck: 0, ...over,
  };
}

const baseFlow: Flow = { Type: FlowType.L3_L4, l4: { UDP: { source_port: 40000, destination_port: 53 } }, trace_observation_point: 5, Summary: 'UDP' };
const base = () => baseFlow;

describe('DNS decoding', () => {
  it('reads a query and an answer with compression, A and CNAME records', () => {
    const q = parseDns(dnsMessage({ id: 7, response: false, name: 'Order.Shop.svc.cluster.local' }), false);
    expect(q).toMatchObject({ id: 7, isResponse: false, query: 'order.shop.svc.cluster.local.', qtypes: ['A'] });
    const cname = Buffer.concat([dnsName('real.example'),]);
    const r = parseDns(dnsMessage({ id: 7, response: true, name: 'www.example', answers: [
      { type: 5, ttl: 300, data: cname }, { type: 1, ttl: 60, data: Buffer.from([10, 1, 2, 3]) },
      { type: 28, ttl: 30, data: Buffer.from('20010db8000000000000000000000001', 'hex') },
    ] }), false);
    expect(r).toMatchObject({ isResponse: true, rcode: 0, ips: ['10.1.2.3', '2001:db8::1'], cnames: ['real.example.'], rrtypes: ['CNAME', 'A', 'AAAA'], ttl: 30 });
  });
  it('reads DNS over TCP (length prefix) and NXDOMAIN', () => {
    const m = dnsMessage({ id: 9, response: true, rcode: 3, name: 'nope.invalid' });
    const len = Buffer.alloc(2); len.writeUInt16BE(m.length);
    expect(parseDns(Buffer.concat([len, m]), true)).toMatchObject({ rcode: 3, query: 'nope.invalid.', ips: [] });
  });
  it('keeps answers read before the snippet was cut', () => {
    const full = dnsMessage({ id: 1, response: true, name: 'a.b', answers: [
      { type: 1, ttl: 5, data: Buffer.from([1, 1, 1, 1]) }, { type: 1, ttl: 5, data: Buffer.from([2, 2, 2, 2]) },
    ] });
    expect(parseDns(full.subarray(0, full.length - 3), false).ips).toEqual(['1.1.1.1']);
  });
  it('rejects garbage, pointer loops and short headers', () => {
    expect(() => parseDns(Buffer.from('hello'), false)).toThrow(/shorter than a DNS header/);
    const loop = Buffer.concat([Buffer.from([0, 1, 0x01, 0, 0, 1, 0, 0, 0, 0, 0, 0]), Buffer.from([0xc0, 12])]);
    expect(() => parseDns(loop, false)).toThrow(/loop/);
    expect(() => parseDns(Buffer.alloc(40, 0xff), false)).toThrow();
  });
});

describe('HTTP decoding', () => {
  it('reads a request with Host and redacts credentials', () => {
    const r = parseHttp(Buffer.from('GET /orders?id=1 HTTP/1.1\r\nHost: order-service:8080\r\nAuthorization: Bearer x\r\nUser-Agent: t\r\n\r\n'));
    expect(r).toMatchObject({ kind: 'request', method: 'GET', target: '/orders?id=1', protocol: 'HTTP/1.1', host: 'order-service:8080' });
    expect(r.headers.map((h) => h.key)).toEqual(['Host', 'User-Agent']);
  });
  it('reads a status line and tolerates a head cut mid-header', () => {
    const r = parseHttp(Buffer.from('HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nX-Cut-He'));
    expect(r).toMatchObject({ kind: 'response', code: 503, protocol: 'HTTP/1.1', headers: [{ key: 'Content-Type', value: 'text/plain' }] });
  });
  it('rejects what is not HTTP', () => {
    expect(() => parseHttp(Buffer.from('SSH-2.0-OpenSSH\r\n'))).toThrow(/request line/);
    expect(() => parseHttp(Buffer.from('HTTP/1.1 999 Nope\r\n'))).toThrow(/out of range/);
    expect(() => parseHttp(Buffer.from('GET / HTTP/1.1'))).toThrow(/start line/);
  });
});

describe('l7Flows', () => {
  it('turns a DNS query and its answer into REQUEST/RESPONSE flows with latency and learns names', () => {
    const c = ctx();
    const q = l7Flows(event({ payload: dnsMessage({ id: 5, response: false, name: 'payment.shop' }), payloadLen: 30 }), base, c);
    expect(q).toHaveLength(1);
    expect(q[0]).toMatchObject({ Type: FlowType.L7, event_type: { type: 129 }, is_reply: false, l7: { type: L7FlowType.REQUEST, dns: { query: 'payment.shop.', qtypes: ['A'] } }, Summary: 'DNS Query payment.shop. A' });
    expect(q[0]!.trace_observation_point).toBeUndefined();
    const resp = event({ tsNs: 1_003_000_000n, srcIp: '10.0.0.53', dstIp: '10.0.0.1', srcPort: 53, dstPort: 40000, isReply: true, payloadLen: 46,
      payload: dnsMessage({ id: 5, response: true, name: 'payment.shop', answers: [{ type: 1, ttl: 10, data: Buffer.from([10, 2, 0, 9]) }] }) });
    const r = l7Flows(resp, base, c);
    expect(r[0]).toMatchObject({ is_reply: true, l7: { type: L7FlowType.RESPONSE, latency_ns: 3_000_000n, dns: { ips: ['10.2.0.9'], rcode: 0, ttl: 10 } } });
    expect(c.learned).toEqual([['payment.shop', ['10.2.0.9'], 10]]);
    // The same answer seen again at the other veth of the node is reported once.
    expect(l7Flows({ ...resp, tsNs: resp.tsNs + 50_000n, obsPoint: ObsPoint.ToEndpoint }, base, c)).toEqual([]);
  });
  it('pairs an HTTP response with its request: method, URL, code and latency', () => {
    const c = ctx();
    const http = { proto: 6, l7: L7Proto.Http, dstPort: 8080 };
    l7Flows(event({ proto: 6, dstPort: 8080, l7: L7Proto.None, tcpFlags: 0x02, tcpSeq: 99 }), base, c);
    l7Flows(event({ proto: 6, srcIp: '10.0.0.53', dstIp: '10.0.0.1', srcPort: 8080, dstPort: 40000, l7: L7Proto.None, tcpFlags: 0x12, tcpSeq: 4999 }), base, c);
    const req = l7Flows(event({ ...http, tcpSeq: 100, payloadLen: 39, payload: Buffer.from('GET /fail HTTP/1.1\r\nHost: order:8080\r\n\r\n') }), base, c);
    expect(req[0]).toMatchObject({ l7: { type: L7FlowType.REQUEST, http: { method: 'GET', url: 'http://order:8080/fail', protocol: 'HTTP/1.1' } }, Summary: 'HTTP/1.1 GET http://order:8080/fail' });
    const resp = l7Flows(event({ ...http, tsNs: 1_012_000_000n, srcIp: '10.0.0.53', dstIp: '10.0.0.1', srcPort: 8080, dstPort: 40000,
      tcpSeq: 5000, payloadLen: 38, payload: Buffer.from('HTTP/1.1 500 Internal Server Error\r\n\r\n') }), base, c);
    expect(resp[0]).toMatchObject({ is_reply: true, l7: { type: L7FlowType.RESPONSE, latency_ns: 12_000_000n, http: { code: 500, method: 'GET', url: 'http://order:8080/fail' } }, Summary: 'HTTP/1.1 500 12ms (GET http://order:8080/fail)' });
  });
  it('gives a DNS message its size from the packet, not from the snippet that cut it', () => {
    const c = ctx();
    const txt = Buffer.alloc(1100, 0x61);
    txt[0] = 255;
    const full = dnsMessage({ id: 6, response: true, name: 'big.example', qtype: 16, answers: [{ type: 16, ttl: 5, data: txt }] });
    const r = l7Flows(event({ srcIp: '10.0.0.53', dstIp: '10.0.0.1', srcPort: 53, dstPort: 40000, isReply: true,
      payloadLen: full.length, payload: full.subarray(0, 512) }), base, c);
    expect(r[0]).toMatchObject({ l7: { dns: { query: 'big.example.', rrtypes: [] } } });
    expect(connNumbers(r[0]!)?.message_bytes).toBe(full.length);
  });
  it('counts malformed payloads and keeps going', () => {
    const c = ctx();
    expect(l7Flows(event({ payload: Buffer.from([1, 2, 3]), payloadLen: 3 }), base, c)).toEqual([]);
    expect(c.counters.malformedL7).toBe(1);
  });
});

describe('sockFlow', () => {
  const sock = (over: Partial<SockEvent>): SockEvent => ({
    kind: 'sock', tsNs: 5_000_000_000n, what: 'state', netnsIno: 42, ipVersion: 4, srcIp: '10.0.0.1', dstIp: '10.0.0.2',
    srcPort: 40000, dstPort: 8080, oldState: 2, newState: 1, durationNs: 0n, bytesAcked: 0n, bytesReceived: 0n, srttUs: 0, retransmits: 0, ...over,
  });
  it('reports establishment with the direction and close with the connection record', () => {
    const c = ctx();
    expect(sockFlow(sock({}), c)).toMatchObject({ Type: FlowType.SOCK, Summary: 'TCP ESTABLISHED', traffic_direction: 2, source: { pod_name: 'client' }, l4: { TCP: { destination_port: 8080 } } });
    const closed = sockFlow(sock({ oldState: 9, newState: 7, durationNs: 1_234_567_000n, bytesAcked: 1024n, bytesReceived: 4096n, srttUs: 87, retransmits: 2 }), c);
    expect(closed?.Summary).toBe('TCP CLOSED duration_ms=1234.567 bytes_acked=1024 bytes_received=4096 srtt_us=87 retransmits=2');
    expect(sockFlow(sock({ what: 'retransmit', newState: 1, retransmits: 3, srttUs: 90 }), c)?.Summary).toBe('TCP RETRANSMIT state=ESTABLISHED srtt_us=90 retransmits=3');
  });
  it('skips intermediate states and sockets of namespaces we do not watch', () => {
    const c = ctx();
    expect(sockFlow(sock({ newState: 4 }), c)).toBeUndefined();
    expect(sockFlow(sock({ netnsIno: 7 }), c)).toBeUndefined();
    // A listening socket closing (iperf3 -s -1 exiting) was never a connection.
    expect(sockFlow(sock({ oldState: 10, newState: 7, srcIp: '::', dstIp: '::', ipVersion: 6, srcPort: 5201, dstPort: 0 }), c)).toBeUndefined();
    // Not parse errors: sockets of other namespaces are not ours to decode.
    expect(c.counters.malformedEvents).toBe(0);
  });
});

/** One TCP connection between a client (10.0.0.1:40000) and a server (10.0.0.80:80), both SYNs
 * seen; each call sends one segment and returns the L7 flows it gave. */
class Conversation {
  readonly c = ctx();
  private seq = { client: 1000, server: 700_000 };
  private t = 1_000_000_000n;
  constructor(readonly proto: L7Proto = L7Proto.Http, readonly capture = 512) {
    this.control('client', 0x02);
    this.control('server', 0x12);
  }
  private ev(from: 'client' | 'server', over: Partial<FlowEvent>): FlowEvent {
    const c = from === 'client';
    const port = this.proto === L7Proto.Dns ? 53 : 80;
    return event({
      proto: 6, l7: this.proto, tsNs: (this.t += 1_000_000n), srcIp: c ? '10.0.0.1' : '10.0.0.80', dstIp: c ? '10.0.0.80' : '10.0.0.1',
      srcPort: c ? 40000 : port, dstPort: c ? port : 40000, isReply: !c, tcpSeq: this.seq[from], ...over,
    });
  }
  private control(from: 'client' | 'server', flags: number): void {
    l7Flows(this.ev(from, { l7: L7Proto.None, tcpFlags: flags, tcpSeq: this.seq[from]++ }), base, this.c);
  }
  /** A segment at the stream's next byte (or `at` bytes further: a gap), as seen at `copies` veths. */
  send(from: 'client' | 'server', data: string | Buffer, o: { skip?: number; copies?: number } = {}): Flow[] {
    const b = typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
    const ev = this.ev(from, { tcpSeq: (this.seq[from] + (o.skip ?? 0)) >>> 0, payloadLen: b.length, payload: b.subarray(0, this.capture) });
    this.seq[from] = (this.seq[from] + (o.skip ?? 0) + b.length) >>> 0;
    const out: Flow[] = [];
    for (let i = 0; i < (o.copies ?? 1); i++) out.push(...l7Flows({ ...ev, obsPoint: i ? ObsPoint.ToEndpoint : ObsPoint.FromEndpoint }, base, this.c));
    return out;
  }
  /** Consecutive segments sent in the order given (indexes into `parts`; one left out is never seen). */
  sendOrdered(from: 'client' | 'server', parts: Buffer[], order: number[]): Flow[] {
    const starts = parts.map((_, i) => (this.seq[from] + parts.slice(0, i).reduce((n, b) => n + b.length, 0)) >>> 0);
    this.seq[from] = (this.seq[from] + parts.reduce((n, b) => n + b.length, 0)) >>> 0;
    return order.flatMap((i) => l7Flows(this.ev(from, { tcpSeq: starts[i]!, payloadLen: parts[i]!.length, payload: parts[i]!.subarray(0, this.capture) }), base, this.c));
  }
  /** A segment as the kernel sends it when it follows the direction's messages (bpf/l7.bpf.h):
   * one window (event) per entry of `windows`, each at payload offset `off`, naming the first
   * message start in it (`start`, `msg`); those in `drop` never arrive (lost in the ring); `skip`
   * leaves a gap before the segment. */
  kernel(from: 'client' | 'server', data: string, windows: { off: number; start?: number; msg: number; starts?: number }[], o: { skip?: number; drop?: number[] } = {}): Flow[] {
    const b = Buffer.from(data, 'latin1');
    const seq = (this.seq[from] + (o.skip ?? 0)) >>> 0;
    this.seq[from] = (seq + b.length) >>> 0;
    return windows.flatMap((w, i) => o.drop?.includes(i) ? [] : l7Flows(this.ev(from, {
      tcpSeq: seq, payloadLen: b.length, payload: b.subarray(w.off, w.off + this.capture), capturedOff: w.off, l7Followed: true,
      l7Start: w.start, l7Msg: w.msg, l7Starts: w.starts ?? (w.start === undefined ? 0 : 1), l7More: windows[i + 1]?.off ?? 0,
    }), base, this.c));
  }
  /** A FIN from `from`: the connection ends. */
  end(from: 'client' | 'server'): Flow[] {
    return l7Flows(this.ev(from, { l7: L7Proto.None, tcpFlags: 0x11 }), base, this.c);
  }
  client(...segs: (string | Buffer)[]): Flow[] {
    return segs.flatMap((s) => this.send('client', s));
  }
  server(...segs: (string | Buffer)[]): Flow[] {
    return segs.flatMap((s) => this.send('server', s));
  }
}

const get = (path: string, method = 'GET') => `${method} ${path} HTTP/1.1\r\nHost: web\r\nUser-Agent: curl\r\n\r\n`;
const ok = (body: string, code = 200) => `HTTP/1.1 ${code} X\r\nServer: nginx\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
const said = (fs: Flow[]) => fs.map((f) => f.Summary!.replace(/ \d+ms /, ' '));

describe('HTTP/1.x as a message stream per connection (issue 22)', () => {
  it('reports identical requests and responses on one connection each time (item 1)', () => {
    const k = new Conversation();
    const out: Flow[] = [];
    for (let i = 0; i < 3; i++) out.push(...k.client(get('/a')), ...k.server(ok('hello\n')));
    expect(said(out)).toEqual(Array(3).fill(['HTTP/1.1 GET http://web/a', 'HTTP/1.1 200 (GET http://web/a)']).flat());
  });

  it('pairs keep-alive responses with their own requests, with the latency of each (item 2)', () => {
    const k = new Conversation();
    const out: Flow[] = [];
    for (const [p, code] of [['/a', 200], ['/b', 200], ['/c', 500], ['/nope', 404]] as const) {
      out.push(...k.client(get(p)), ...k.server(ok('x'.repeat(700), code)));
    }
    const resp = out.filter((f) => f.is_reply);
    expect(resp.map((f) => [f.l7?.http?.code, f.l7?.http?.url])).toEqual([
      [200, 'http://web/a'], [200, 'http://web/b'], [500, 'http://web/c'], [404, 'http://web/nope'],
    ]);
    for (const f of resp) expect(f.l7?.latency_ns).toBe(1_000_000n);
  });

  it('reads bodies as bodies: a request line in a POST body, a status line in a response body (item 3)', () => {
    const k = new Conversation();
    const evil = 'GET /admin/delete-all HTTP/1.1\r\nHost: evil.example\r\n\r\n';
    const out = [
      ...k.client(`POST /upload HTTP/1.1\r\nHost: web\r\nContent-Length: ${evil.length}\r\n\r\n`, evil),
      ...k.server('HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n', 'HTTP/1.1 500 Internal Server Error\r\n\r\n\r\n'),
      ...k.client(get('/next')),
      ...k.server(ok('')),
    ];
    expect(said(out)).toEqual([
      'HTTP/1.1 POST http://web/upload', 'HTTP/1.1 200 (POST http://web/upload)',
      'HTTP/1.1 GET http://web/next', 'HTTP/1.1 200 (GET http://web/next)',
    ]);
  });

  it('reads pipelined requests and responses that share segments (item 4)', () => {
    const k = new Conversation();
    const req = k.client(get('/1') + get('/2') + get('/3', 'HEAD'));
    expect(said(req)).toEqual(['HTTP/1.1 GET http://web/1', 'HTTP/1.1 GET http://web/2', 'HTTP/1.1 HEAD http://web/3']);
    // The HEAD response announces a length but has no body; the chunked one ends in the middle of a segment.
    const chunked = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n';
    const resp = k.server(ok('one') + chunked.slice(0, 50), chunked.slice(50) + '0\r\nX-T: 1\r\n\r\n' + 'HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n');
    expect(said(resp)).toEqual(['HTTP/1.1 200 (GET http://web/1)', 'HTTP/1.1 200 (GET http://web/2)', 'HTTP/1.1 200 (HEAD http://web/3)']);
    expect(said([...k.client(get('/4')), ...k.server('HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n')]))
      .toEqual(['HTTP/1.1 GET http://web/4', 'HTTP/1.1 304 (GET http://web/4)']);
    expect(said([...k.client(get('/5')), ...k.server('HTTP/1.1 100 Continue\r\n\r\n', ok('!'))]))
      .toEqual(['HTTP/1.1 GET http://web/5', 'HTTP/1.1 200 (GET http://web/5)']);
  });

  it('reports a packet seen at two veths once, by sequence number, not by content', () => {
    const k = new Conversation();
    const out = [...k.send('client', get('/a'), { copies: 2 }), ...k.send('client', get('/a'), { copies: 2 })];
    expect(said(out)).toEqual(['HTTP/1.1 GET http://web/a', 'HTTP/1.1 GET http://web/a']);
  });

  it('waits for a segment dropped upstream and retransmitted, then reads on', () => {
    const k = new Conversation();
    k.client(get('/a'), get('/a2'));
    const resp = Buffer.from(ok('x'.repeat(1000)) + ok('y'), 'latin1');
    expect(said(k.sendOrdered('server', [resp.subarray(0, 600), resp.subarray(600)], [1, 0])))
      .toEqual(['HTTP/1.1 200 (GET http://web/a)', 'HTTP/1.1 200 (GET http://web/a2)']);
    expect(said([...k.client(get('/b')), ...k.server(ok('z'))])).toEqual(['HTTP/1.1 GET http://web/b', 'HTTP/1.1 200 (GET http://web/b)']);
    expect(lostCounts(k)).toEqual([0, 0, 0]);
  });

  it('a gap inside a body of known length loses nothing', () => {
    const k = new Conversation();
    k.client(get('/big'));
    const resp = Buffer.from(ok('x'.repeat(3000)), 'latin1');
    const parts = [resp.subarray(0, 1000), resp.subarray(1000, 2000), resp.subarray(2000)];
    expect(said(k.sendOrdered('server', parts, [0, 2]))).toEqual(['HTTP/1.1 200 (GET http://web/big)']);
    expect(said([...k.end('server'), ...k.client(get('/next')), ...k.server(ok('!'))]))
      .toEqual(['HTTP/1.1 GET http://web/next', 'HTTP/1.1 200 (GET http://web/next)']);
    expect(lostCounts(k)).toEqual([0, 0, 0]);
  });

  it('on missed bytes gives the direction up, says so once, counts each message it cannot report', () => {
    const k = new Conversation();
    k.client(get('/a'), get('/b'));
    k.server(ok('x'));
    // The response to /b was in bytes never seen; the next one waits for them until the connection ends.
    expect(k.send('server', ok('x'.repeat(100)), { skip: 300 })).toEqual([]);
    expect(said(k.client(get('/c')))).toEqual(['HTTP/1.1 GET http://web/c']);
    expect(said(k.end('server'))).toEqual(['HTTP unparsed: 300 bytes were not seen']);
    expect(c(k).l7StreamLost).toBe(1);
    expect(lostCounts(k)).toEqual([0, 1, 0]);
    // Requests go on being reported, never paired; each response start is counted.
    expect(said([...k.client(get('/d')), ...k.server(ok('y'), 'HTTP/1.1 200 OK\r\n', 'GET /forged HTTP/1.1\r\n\r\n')])).toEqual(['HTTP/1.1 GET http://web/d']);
    expect(lostCounts(k)).toEqual([0, 3, 0]);
    expect(c(k).l7StreamLost).toBe(1);
  });

  it('after the client side is given up, responses pair with the requests seen, then come without one', () => {
    const k = new Conversation();
    k.client(get('/a'));
    k.send('client', get('/lost'), { skip: 50 });
    expect(said(k.end('client'))).toEqual(['HTTP unparsed: 50 bytes were not seen']);
    expect(lostCounts(k)).toEqual([1, 0, 0]);
    expect(said(k.server(ok('a'), ok('?'), ok('??', 404)))).toEqual(['HTTP/1.1 200 (GET http://web/a)', 'HTTP/1.1 200 (request unknown)', 'HTTP/1.1 404 (request unknown)']);
    expect(said(k.client(get('/more')))).toEqual([]);
    expect(lostCounts(k)).toEqual([2, 0, 0]);
  });

  it('gives up a message boundary the kernel did not copy, and a connection whose start it missed', () => {
    const k = new Conversation(L7Proto.Http, 64);
    k.client(get('/a'));
    expect(said(k.server(ok('x'.repeat(200)) + ok('')))).toEqual([
      'HTTP/1.1 200 (GET http://web/a)', 'HTTP unparsed: a message boundary at byte 254 of a 306-byte segment was not copied',
    ]);
    expect(c(k).l7StreamLost).toBe(1);
    expect(lostCounts(k)).toEqual([0, 1, 0]);
    const late = new Conversation();
    late.c.counters.l7StreamLost = 0;
    const ev = event({ proto: 6, l7: L7Proto.Http, tcpSeq: 5, srcPort: 40001, dstPort: 80, payloadLen: 30, payload: Buffer.from(get('/x')) });
    expect(said(l7Flows(ev, base, late.c))).toEqual(['HTTP unparsed: the stream started before it was seen']);
  });
});

describe('HTTP/1.x with the kernel following the messages (bpf/l7.bpf.h)', () => {
  const big = ok('x'.repeat(20_000));
  it('reads a message starting past the copied bytes from the window the kernel sent there', () => {
    const k = new Conversation();
    k.kernel('client', get('/big') + get('/next'), [{ off: 0, start: 0, msg: 0, starts: 2 }]);
    const out = k.kernel('server', big + ok('!'), [{ off: 0, start: 0, msg: 0 }, { off: big.length, start: big.length, msg: 1 }]);
    expect(said(out)).toEqual(['HTTP/1.1 200 (GET http://web/big)', 'HTTP/1.1 200 (GET http://web/next)']);
    expect(lostCounts(k)).toEqual([0, 0, 0]);
    // A head that runs past a window goes on in the next one, at its end.
    const head = `HTTP/1.1 200 OK\r\nX-Long: ${'h'.repeat(600)}\r\nContent-Length: 1\r\n\r\n!`;
    k.kernel('client', get('/long'), [{ off: 0, start: 0, msg: 2 }]);
    expect(said(k.kernel('server', head, [{ off: 0, start: 0, msg: 2 }, { off: 512, msg: 3 }]))).toEqual(['HTTP/1.1 200 (GET http://web/long)']);
  });

  it('finds its place again at the next start the kernel names after bytes it never got, pairing by index', () => {
    const k = new Conversation();
    for (const [i, p] of ['/a', '/b', '/c', '/d'].entries()) k.kernel('client', get(p), [{ off: 0, start: 0, msg: i }]);
    expect(said(k.kernel('server', ok('a'), [{ off: 0, start: 0, msg: 0 }]))).toEqual(['HTTP/1.1 200 (GET http://web/a)']);
    // /b's response is lost in the kernel's ring (the kernel counts it); /c's waits for it, then
    // the connection ends: the gap, then /c read where the kernel says it starts.
    expect(k.kernel('server', ok('c'), [{ off: 0, start: 0, msg: 2 }], { skip: ok('b').length })).toEqual([]);
    expect(said(k.end('client'))).toEqual(['HTTP unparsed: ' + ok('b').length + ' bytes were not seen', 'HTTP/1.1 200 (GET http://web/c)']);
    expect(said(k.kernel('server', ok('d'), [{ off: 0, start: 0, msg: 3 }]))).toEqual(['HTTP/1.1 200 (GET http://web/d)']);
    expect(lostCounts(k)).toEqual([0, 0, 0]);
  });

  it('a window lost in the ring: its message counted there, the next start read', () => {
    const k = new Conversation();
    k.kernel('client', get('/1') + get('/2') + get('/3'), [{ off: 0, start: 0, msg: 0, starts: 3 }]);
    const one = ok('1'.repeat(5000));
    const out = k.kernel('server', one + ok('2'.repeat(5000)), [{ off: 0, start: 0, msg: 0 }, { off: one.length, start: one.length, msg: 1 }], { drop: [1] });
    expect(said([...out, ...k.kernel('server', ok('3'), [{ off: 0, start: 0, msg: 2 }])])).toEqual([
      'HTTP/1.1 200 (GET http://web/1)', 'HTTP unparsed: a window of a segment was lost', 'HTTP/1.1 200 (GET http://web/3)',
    ]);
    expect(lostCounts(k)).toEqual([0, 0, 0]);
  });

  it('a response whose request was lost before its gap shows is reported without it; both sides read on', () => {
    const k = new Conversation();
    k.kernel('client', get('/a'), [{ off: 0, start: 0, msg: 0 }]);
    k.kernel('server', ok('a'), [{ off: 0, start: 0, msg: 0 }]);
    // /b's request is lost in the ring (the kernel counts it): nothing shows the gap until the
    // client's next request, which waits for this answer.
    k.kernel('client', get('/b'), [{ off: 0, start: 0, msg: 1 }], { drop: [0] });
    expect(said(k.kernel('server', ok('b'), [{ off: 0, start: 0, msg: 1 }]))).toEqual(['HTTP/1.1 200 (request unknown)']);
    k.kernel('client', get('/c'), [{ off: 0, start: 0, msg: 2 }]);
    expect(said(k.end('client'))).toEqual(['HTTP unparsed: ' + get('/b').length + ' bytes were not seen', 'HTTP/1.1 GET http://web/c']);
    expect(said(k.kernel('server', ok('c'), [{ off: 0, start: 0, msg: 2 }]))).toEqual(['HTTP/1.1 200 (GET http://web/c)']);
    expect(lostCounts(k)).toEqual([0, 0, 0]);
  });

  it('never trusts the kernel again once its starts disagreed: the direction stays given up, its starts counted', () => {
    const k = new Conversation();
    k.kernel('client', get('/a') + get('/b') + get('/c'), [{ off: 0, start: 0, msg: 0, starts: 3 }]);
    // The kernel numbers this response 5: its count is not ours.
    expect(said(k.kernel('server', ok('a'), [{ off: 0, start: 0, msg: 5 }]))).toEqual(['HTTP/1.1 200 (GET http://web/a)']);
    k.kernel('server', ok('c'), [{ off: 0, start: 0, msg: 2 }], { skip: ok('b').length });
    expect(said(k.end('client'))).toEqual(['HTTP unparsed: ' + ok('b').length + ' bytes were not seen']);
    expect(lostCounts(k)).toEqual([0, 1, 0]);
  });
});

const c = (k: Conversation) => k.c.counters;
const lostCounts = (k: Conversation) => [c(k).l7LostHttpRequests, c(k).l7LostHttpResponses, c(k).l7LostDns];

describe('DNS over TCP: 2-byte length framing across and within segments (item 5)', () => {
  const framed = (m: Buffer) => Buffer.concat([Buffer.from([m.length >> 8, m.length & 0xff]), m]);
  it('bytes missed inside a message lose that message only (counted); a missed prefix gives the direction up', () => {
    const k = new Conversation(L7Proto.Dns);
    const q = (id: number, name: string) => framed(dnsMessage({ id, response: false, name }));
    const [q1, q2, q3, q4] = [q(1, 'one.example'), q(2, 'two.example'), q(3, 'three.example'), q(4, 'four.example')];
    // q1's middle never arrives: q1 is counted lost, q2 after it is read.
    const out = k.sendOrdered('client', [q1.subarray(0, 6), q1.subarray(6, 12), Buffer.concat([q1.subarray(12), q2])], [0, 2]);
    expect(said([...out, ...k.end('server')])).toEqual(['DNS Query two.example. A']);
    expect(lostCounts(k)).toEqual([0, 0, 1]);
    // A gap over q3's length prefix: the direction is given up, q4's segment is counted too.
    expect(said([...k.send('client', q4, { skip: q3.length }), ...k.end('client')])).toEqual(['DNS unparsed: ' + q3.length + ' bytes were not seen']);
    expect(lostCounts(k)).toEqual([0, 0, 2]);
  });

  it('reads a query whose length prefix came in its own segment, and two queries in one segment', () => {
    const k = new Conversation(L7Proto.Dns);
    const q1 = framed(dnsMessage({ id: 1, response: false, name: 'one.example' }));
    const q2 = framed(dnsMessage({ id: 2, response: false, name: 'two.example' }));
    const q3 = framed(dnsMessage({ id: 3, response: false, name: 'three.example' }));
    const out = [...k.client(q1.subarray(0, 2), q1.subarray(2)), ...k.client(Buffer.concat([q2, q3.subarray(0, 1)]), q3.subarray(1, 9), q3.subarray(9))];
    expect(said(out)).toEqual(['DNS Query one.example. A', 'DNS Query two.example. A', 'DNS Query three.example. A']);
    const a1 = framed(dnsMessage({ id: 1, response: true, name: 'one.example', answers: [{ type: 1, ttl: 9, data: Buffer.from([10, 9, 9, 1]) }] }));
    const a2 = framed(dnsMessage({ id: 2, response: true, name: 'two.example', rcode: 3 }));
    const answers = k.server(Buffer.concat([a1, a2]));
    expect(said(answers)).toEqual(['DNS Answer "10.9.9.1" TTL: 9 (one.example. A)', 'DNS Answer RCode: Non-Existent Domain TTL: 0 (two.example. A)']);
    expect(answers.map((f) => connNumbers(f)?.message_bytes)).toEqual([a1.length - 2, a2.length - 2]);
  });
});
