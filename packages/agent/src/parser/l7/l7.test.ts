import { describe, expect, it } from 'vitest';
import { FlowType, L7FlowType, type Flow } from '@flowctl/flow';
import { FlowReason, L7Proto, ObsPoint, type FlowEvent, type SockEvent } from '../../datapath/events.js';
import type { ParserContext } from '../context.js';
import { parseDns } from './dns.js';
import { parseHttp } from './http.js';
import { l7Flows } from './index.js';
import { sockFlow } from '../sock.js';

function dnsName(name: string): Buffer {
  const parts = name.replace(/\.$/, '').split('.');
  return Buffer.concat([...parts.map((p) => Buffer.concat([Buffer.from([p.length]), Buffer.from(p)])), Buffer.from([0])]);
}

function dnsMessage(opts: { id: number; response: boolean; rcode?: number; name: string; qtype?: number; answers?: { type: number; ttl: number; data: Buffer }[] }): Buffer {
  const h = Buffer.alloc(12);
  h.writeUInt16BE(opts.id, 0);
  h.writeUInt16BE((opts.response ? 0x8180 : 0x0100) | (opts.rcode ?? 0), 2);
  h.writeUInt16BE(1, 4);
  h.writeUInt16BE(opts.answers?.length ?? 0, 6);
  const q = Buffer.concat([dnsName(opts.name), Buffer.from([0, opts.qtype ?? 1, 0, 1])]);
  const ans = (opts.answers ?? []).map((a) => {
    const rr = Buffer.alloc(12);
    rr.writeUInt16BE(0xc00c, 0); // pointer to the question name
    rr.writeUInt16BE(a.type, 2);
    rr.writeUInt16BE(1, 4);
    rr.writeUInt32BE(a.ttl, 6);
    rr.writeUInt16BE(a.data.length, 10);
    return Buffer.concat([rr, a.data]);
  });
  return Buffer.concat([h, q, ...ans]);
}

function ctx(): ParserContext & { learned: [string, string[], number][] } {
  let n = 0;
  const learned: [string, string[], number][] = [];
  return {
    learned,
    nodeName: 'node-1',
    toWallTime: (ns) => ({ seconds: ns / 1_000_000_000n, nanos: Number(ns % 1_000_000_000n) }),
    endpointForIp: (ip) => (ip.startsWith('10.') ? { identity: 300, namespace: 'shop', pod_name: `pod-${ip}` } : { identity: 2, labels: ['reserved:world'] }),
    endpointForNetns: (ino) => (ino === 42 ? { identity: 300, namespace: 'shop', pod_name: 'client' } : undefined),
    ifName: () => 'lxc-x',
    namesForIp: () => [],
    learnNames: (name, ips, ttl) => { learned.push([name, ips, ttl]); },
    newUuid: () => `uuid-${++n}`,
    counters: { malformedEvents: 0, malformedL7: 0, malformedSock: 0 },
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

const base: Flow = { Type: FlowType.L3_L4, l4: { UDP: { source_port: 40000, destination_port: 53 } }, trace_observation_point: 5, Summary: 'UDP' };

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
    const q = l7Flows(event({ payload: dnsMessage({ id: 5, response: false, name: 'payment.shop' }) }), base, c);
    expect(q).toHaveLength(1);
    expect(q[0]).toMatchObject({ Type: FlowType.L7, event_type: { type: 129 }, is_reply: false, l7: { type: L7FlowType.REQUEST, dns: { query: 'payment.shop.', qtypes: ['A'] } }, Summary: 'DNS Query payment.shop. A' });
    expect(q[0]!.trace_observation_point).toBeUndefined();
    const resp = event({ tsNs: 1_003_000_000n, srcIp: '10.0.0.53', dstIp: '10.0.0.1', srcPort: 53, dstPort: 40000, isReply: true,
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
    const req = l7Flows(event({ ...http, payload: Buffer.from('GET /fail HTTP/1.1\r\nHost: order:8080\r\n\r\n') }), base, c);
    expect(req[0]).toMatchObject({ l7: { type: L7FlowType.REQUEST, http: { method: 'GET', url: 'http://order:8080/fail', protocol: 'HTTP/1.1' } }, Summary: 'HTTP/1.1 GET http://order:8080/fail' });
    const resp = l7Flows(event({ ...http, tsNs: 1_012_000_000n, srcIp: '10.0.0.53', dstIp: '10.0.0.1', srcPort: 8080, dstPort: 40000,
      payload: Buffer.from('HTTP/1.1 500 Internal Server Error\r\n\r\n') }), base, c);
    expect(resp[0]).toMatchObject({ is_reply: true, l7: { type: L7FlowType.RESPONSE, latency_ns: 12_000_000n, http: { code: 500, method: 'GET', url: 'http://order:8080/fail' } }, Summary: 'HTTP/1.1 500 12ms (GET http://order:8080/fail)' });
  });
  it('counts malformed payloads and keeps going', () => {
    const c = ctx();
    expect(l7Flows(event({ payload: Buffer.from([1, 2, 3]) }), base, c)).toEqual([]);
    expect(l7Flows(event({ proto: 6, l7: L7Proto.Http, payload: Buffer.from('\x16\x03\x01garbage\r\n') }), base, c)).toEqual([]);
    expect(c.counters.malformedL7).toBe(2);
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
    // Not a parse error: parse_errors_total{kind="sock"} stays 0 for sockets of other namespaces.
    expect(c.counters.malformedSock).toBe(0);
  });
});
