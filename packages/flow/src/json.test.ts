import { describe, expect, it } from 'vitest';
import { FlowctlError } from './errors.js';

const malformed = expect.objectContaining({ name: 'FlowctlError', code: 'MALFORMED' });
import { DropReason, FlowType, LostEventSource, Verdict } from './gen/flow/flow.js';
import type { Flow } from './gen/flow/flow.js';
import { GetFlowsResponse } from './gen/observer/observer.js';
import { NodeState } from './gen/relay/relay.js';
import {
  decodeFlow,
  decodeFlowFilter,
  decodeMessage,
  decodeResponse,
  encodeFlow,
  encodeFlowFilter,
  encodeMessage,
  encodeResponse,
  JsonEncoder,
} from './json.js';
import { makeCorpus } from './testing/corpus.js';
import { formatRfc3339 } from './time.js';

const T = { seconds: 1234n, nanos: 567_800_000 }; // 1970-01-01T00:20:34.567800Z, Hubble's printer tests
const printerFlow: Flow = {
  time: T,
  verdict: Verdict.DROPPED,
  IP: { source: '1.1.1.1', destination: '2.2.2.2' },
  l4: { TCP: { source_port: 31793, destination_port: 8080 } },
  source: { identity: 4 },
  destination: { identity: 12345 },
  Type: FlowType.L3_L4,
  node_name: 'k8s1',
  event_type: { type: 1, sub_type: 133 },
  is_reply: false,
  Summary: 'TCP Flags: SYN',
};

// Lines copied from Hubble's printer tests (hubble-api.md §4.4).
const GOLDEN = {
  flow: '{"flow":{"time":"1970-01-01T00:20:34.567800Z","verdict":"DROPPED","IP":{"source":"1.1.1.1","destination":"2.2.2.2"},"l4":{"TCP":{"source_port":31793,"destination_port":8080}},"source":{"identity":4},"destination":{"identity":12345},"Type":"L3_L4","node_name":"k8s1","event_type":{"type":1,"sub_type":133},"is_reply":false,"Summary":"TCP Flags: SYN"}}',
  trace: '{"flow":{"time":"1970-01-01T00:20:34.567800Z","verdict":"DROPPED","IP":{"source":"1.1.1.1","destination":"2.2.2.2"},"l4":{"TCP":{"source_port":31793,"destination_port":8080}},"source":{"identity":4},"destination":{"identity":12345},"Type":"L3_L4","node_name":"k8s1","event_type":{"type":1,"sub_type":133},"ip_trace_id":{"trace_id":"1234","ip_option_type":136},"is_reply":false,"Summary":"TCP Flags: SYN"}}',
  lost: '{"lost_events":{"source":"HUBBLE_RING_BUFFER","num_events_lost":"1","cpu":5},"node_name":"node-name","time":"1970-01-01T00:20:34.567800Z"}',
  lostFirstLast: '{"lost_events":{"source":"HUBBLE_RING_BUFFER","num_events_lost":"1","cpu":5,"first":"1970-01-01T00:20:30.567800Z","last":"1970-01-01T00:20:38.567800Z"},"time":"1970-01-01T00:20:34.567800Z"}',
};

describe('encodeResponse: byte-identical to hubble observe -o json', () => {
  it('prints the printer-test flow', () => {
    expect(encodeResponse({ flow: printerFlow })).toBe(GOLDEN.flow);
    expect(encodeResponse({ flow: { ...printerFlow, ip_trace_id: { trace_id: 1234n, ip_option_type: 136 } } })).toBe(GOLDEN.trace);
  });

  it('prints lost events (wrapper cpu as a bare number, uint64 as a string)', () => {
    const lost = { source: LostEventSource.HUBBLE_RING_BUFFER, num_events_lost: 1n, cpu: 5 };
    expect(encodeResponse({ lost_events: lost, node_name: 'node-name', time: T })).toBe(GOLDEN.lost);
    expect(encodeResponse({
      lost_events: { ...lost, first: { seconds: 1230n, nanos: 567_800_000 }, last: { seconds: 1238n, nanos: 567_800_000 } }, time: T,
    })).toBe(GOLDEN.lostFirstLast);
  });

  it('omits zero values, empty lists and unset messages but keeps a present is_reply:false and empty messages', () => {
    const f: Flow = {
      uuid: '', verdict: Verdict.VERDICT_UNKNOWN, drop_reason: 0, source: { labels: [], identity: 0 }, socket_cookie: 0n,
      reply: false, is_reply: false, l4: { ICMPv4: { type: 0, code: 0 } }, event_type: { type: 4, sub_type: 0 },
    };
    expect(encodeFlow(f)).toBe('{"l4":{"ICMPv4":{}},"source":{},"event_type":{"type":4},"is_reply":false}');
    expect(encodeResponse({})).toBe('{}');
  });

  it('formats timestamps with 0, 3, 6 or 9 fraction digits', () => {
    const at = (seconds: bigint, nanos: number) => encodeResponse({ time: { seconds, nanos } });
    expect(at(0n, 0)).toBe('{"time":"1970-01-01T00:00:00Z"}');
    expect(at(1714564800n, 100_000_000)).toBe('{"time":"2024-05-01T12:00:00.100Z"}');
    expect(at(1714564800n, 123_456_000)).toBe('{"time":"2024-05-01T12:00:00.123456Z"}');
    expect(at(1714564800n, 1)).toBe('{"time":"2024-05-01T12:00:00.000000001Z"}');
    expect(at(-1n, 999_999_999)).toBe('{"time":"1969-12-31T23:59:59.999999999Z"}');
    expect(at(253402300799n, 0)).toBe('{"time":"9999-12-31T23:59:59Z"}');
    expect(() => at(253402300800n, 0)).toThrow(/out of range/);
    expect(() => at(0n, 1_000_000_000)).toThrow(malformed);
  });

  it('escapes like Go: <>& and U+2028/2029 as \\u, control characters, quotes, backslashes', () => {
    const s = (x: string) => encodeFlow({ Summary: x });
    expect(s('a<b>&c')).toBe('{"Summary":"a\\u003cb\\u003e\\u0026c"}');
    expect(s('\u2028\u2029')).toBe('{"Summary":"\\u2028\\u2029"}');
    expect(s('"\\\b\f\n\r\t\u0001\u001f')).toBe('{"Summary":"\\"\\\\\\b\\f\\n\\r\\t\\u0001\\u001f"}');
    expect(s('é 😀 \u007f')).toBe('{"Summary":"é 😀 \u007f"}');
    expect(s('x\ud800y')).toBe('{"Summary":"x\ufffdy"}');
  });

  it('writes lines larger than the shared buffer, and non-ASCII text anywhere in a line, exactly', () => {
    // Reference: the same escaping done by JSON.stringify plus Go's extra HTML-safe escapes.
    const go = (x: string) => JSON.stringify(x).replace(/[<>&]/g, (c) => `\\u00${c.charCodeAt(0).toString(16)}`);
    const big = 'x<'.repeat(100_000) + 'é';
    expect(encodeFlow({ uuid: 'a', Summary: big })).toBe(`{"uuid":"a","Summary":${go(big)}}`);
    expect(encodeFlow({ uuid: 'a', Summary: big })).toBe(`{"uuid":"a","Summary":${go(big)}}`); // after growing
    const huge = 'y'.repeat(5_000_000); // beyond the size the shared buffer keeps
    expect(encodeFlow({ Summary: huge })).toBe(`{"Summary":"${huge}"}`);
    expect(encodeFlow({ Summary: huge + '<' })).toBe(`{"Summary":"${huge}\\u003c"}`);
    const labels = ['k8s:app=café', 'k8s:a="b"', 'ü\n', 'plain'];
    expect(encodeFlow({ source: { labels, pod_name: '日本' }, node_name: 'n', Summary: '→ 1' }))
      .toBe(`{"source":{"labels":[${labels.map(go).join(',')}],"pod_name":"日本"},"node_name":"n","Summary":"→ 1"}`);
    expect(encodeFlow({ node_name: 'ascii again' })).toBe('{"node_name":"ascii again"}');
  });

  it('escapes a character needing it at any position of a string of any length', () => {
    const go = (x: string) => JSON.stringify(x).replace(/[<>&]/g, (c) => `\\u00${c.charCodeAt(0).toString(16)}`);
    for (const special of ['"', '\\', '<', '&', '\n', '\u0001', '\u007f', 'é', '\u2028']) {
      for (let len = 1; len <= 20; len++) {
        for (let at = 0; at < len; at++) {
          const x = 'abcdefghijklmnopqrstuvwxyz'.slice(0, len - 1);
          const v = x.slice(0, at) + special + x.slice(at);
          const want = special === '\u2028' ? go(v).replace('\u2028', '\\u2028') : go(v);
          expect(encodeFlow({ Summary: v })).toBe(`{"Summary":${want}}`);
        }
      }
    }
  });

  it('gives the same line as UTF-8 bytes without a string', () => {
    const enc = new JsonEncoder();
    const encodeResponseBytes = (r: GetFlowsResponse) => enc.responseBytes(r);
    for (const r of makeCorpus(300, 3)) expect(Buffer.from(encodeResponseBytes(r)).toString()).toBe(encodeResponse(r));
    const odd: GetFlowsResponse[] = [
      { node_name: 'nœud-1', flow: { Summary: 'é 😀 <' } },
      { node_name: 'n', flow: { Summary: 'z'.repeat(300_000) } }, // grows the shared buffer
      { node_name: 'n', flow: { Summary: 'q'.repeat(5_000_000) } }, // beyond what it keeps
      {},
    ];
    for (const r of odd) expect(Buffer.from(encodeResponseBytes(r)).toString()).toBe(encodeResponse(r));
    const first = encodeResponseBytes({ node_name: 'a' });
    expect(Buffer.from(first).toString()).toBe('{"node_name":"a"}');
    expect(() => encodeResponseBytes({ time: { seconds: 0n, nanos: -1 } })).toThrow(malformed);
    expect(enc.response({ node_name: 'b' })).toBe('{"node_name":"b"}');
  });

  it('keeps each encoder\'s buffer and times to itself', () => {
    const a = new JsonEncoder();
    const b = new JsonEncoder();
    const held = a.responseBytes({ node_name: 'held', time: { seconds: 86_400n, nanos: 0 } });
    for (const r of makeCorpus(50, 7)) b.response(r);
    expect(b.response({ flow: { Summary: 'é', extensions: { type_url: 'type.googleapis.com/flow.Workload', value: Buffer.from([10, 1, 119]) } } }))
      .toBe('{"flow":{"Summary":"é","extensions":{"@type":"type.googleapis.com/flow.Workload","name":"w"}}}');
    expect(held.toString()).toBe('{"node_name":"held","time":"1970-01-02T00:00:00Z"}');
    expect(a.response({ time: { seconds: 86_401n, nanos: 0 } })).toBe('{"time":"1970-01-02T00:00:01Z"}');
  });

  it('prints 32-bit numbers of every width and sign', () => {
    for (const n of [1, 9, 10, 99, 100, 65535, 999_999_999, 1_000_000_000, 4_294_967_295]) {
      expect(encodeFlow({ source: { ID: n } })).toBe(`{"source":{"ID":${n}}}`);
    }
    for (const n of [-1, -10, -2_147_483_648]) {
      expect(encodeFlow({ event_type: { type: n, sub_type: 2 } })).toBe(`{"event_type":{"type":${n},"sub_type":2}}`);
    }
    expect(encodeFlow({ file: { line: 1.5 } })).toBe('{"file":{"line":1.5}}');
    // Mistyped values print as String(value) did before, instead of throwing from the writer.
    expect(encodeFlow({ source: { ID: 7n as unknown as number }, cgroup_id: 12 as unknown as bigint })).toBe('{"source":{"ID":7},"cgroup_id":"12"}');
  });

  it('prints google.protobuf.Any inside a line that also holds non-ASCII text', () => {
    const ext = { type_url: 'type.googleapis.com/flow.Workload', value: Buffer.from([10, 2, 0x77, 0xc3, 18, 1, 0x4b]) };
    const line = encodeFlow({ node_name: 'ü', extensions: ext, Summary: 's' });
    expect(line).toBe('{"node_name":"ü","Summary":"s","extensions":{"@type":"type.googleapis.com/flow.Workload","name":"w\ufffd","kind":"K"}}');
  });

  it('prints enum numbers without a name as numbers, 64-bit values as strings', () => {
    expect(encodeFlow({ verdict: 42 as Verdict, drop_reason_desc: 159 as DropReason, cgroup_id: 2n ** 64n - 1n }))
      .toBe('{"verdict":42,"drop_reason_desc":159,"cgroup_id":"18446744073709551615"}');
  });

  it('keeps proto declaration order, not field-number order', () => {
    const line = encodeFlow({ Summary: 'x', is_reply: true, ip_trace_id: { trace_id: 1n }, uuid: 'u', time: T, node_name: 'n' });
    expect(Object.keys(JSON.parse(line))).toEqual(['time', 'uuid', 'node_name', 'ip_trace_id', 'is_reply', 'Summary']);
  });

  it('prints a flow the same whatever properties and key order its object has', () => {
    const golden = '{"time":"1970-01-01T00:20:34.567800Z","uuid":"u","verdict":"FORWARDED","node_name":"n","Summary":"s"}';
    const fields = { time: T, uuid: 'u', verdict: Verdict.FORWARDED, node_name: 'n', Summary: 's' };
    expect(encodeFlow(fields)).toBe(golden); // only the set fields, in declaration order
    expect(encodeFlow({ ...fields, extra: 1 } as Flow)).toBe(golden); // a key that is not a field
    const { Summary, ...others } = fields;
    expect(encodeFlow({ Summary, ...others })).toBe(golden); // keys out of order
    expect(encodeFlow({ ...fields, reply: false, aggregate: undefined, policy_log: [] })).toBe(golden); // every-field shape
    const inherited = Object.assign(Object.create({ uuid: 'u' }) as Flow, { time: T, verdict: Verdict.FORWARDED, node_name: 'n', Summary: 's' });
    expect(encodeFlow(inherited)).toBe(golden);
  });

  it('encodes the other messages the CLI prints', () => {
    expect(encodeMessage('observer.ServerStatusResponse', {
      num_flows: 2771n, max_flows: 8190n, seen_flows: 2771n, uptime_ns: 301515181665n, num_connected_nodes: 2,
      num_unavailable_nodes: 0, version: 'hubble-relay v1.15.0+g4145278', flows_rate: 23.456,
    })).toBe('{"num_flows":"2771","max_flows":"8190","seen_flows":"2771","uptime_ns":"301515181665","num_connected_nodes":2,"num_unavailable_nodes":0,"version":"hubble-relay v1.15.0+g4145278","flows_rate":23.456}');
    expect(encodeMessage('observer.Node', { name: 'default/node-1', state: NodeState.NODE_CONNECTED, tls: { enabled: false }, num_flows: 3n }))
      .toBe('{"name":"default/node-1","state":"NODE_CONNECTED","tls":{},"num_flows":"3"}');
    expect(encodeFlowFilter({ source_ip: ['1.2.3.4/16'], event_type: [{ type: 129 }], tcp_flags: [{ SYN: true }], ip_trace_id: [7n] }))
      .toBe('{"source_ip":["1.2.3.4/16"],"event_type":[{"type":129}],"tcp_flags":[{"SYN":true}],"ip_trace_id":["7"]}');
    expect(encodeMessage('relay.NodeStatusEvent', { state_change: NodeState.NODE_UNAVAILABLE, node_names: ['n2'] }))
      .toBe('{"state_change":"NODE_UNAVAILABLE","node_names":["n2"]}');
    expect(encodeMessage('observer.GetFlowsRequest', { number: 2n ** 64n - 1n, field_mask: ['source.pod_name', 'node_name'] }))
      .toBe('{"number":"18446744073709551615","field_mask":"source.podName,nodeName"}');
    expect(encodeMessage('observer.ServerStatusResponse', { flows_rate: NaN })).toBe('{"flows_rate":"NaN"}');
  });
});

describe('decodeResponse', () => {
  it('reads the golden lines back to the same objects', () => {
    expect(decodeResponse(GOLDEN.flow)).toEqual({ flow: printerFlow });
    for (const line of Object.values(GOLDEN)) expect(encodeResponse(decodeResponse(line))).toBe(line);
  });

  it('round-trips a corpus through encode → decode unchanged (and through the wire format)', () => {
    for (const r of makeCorpus(2000, 11)) {
      const back = decodeResponse(encodeResponse(r));
      expect(back).toEqual(r);
      expect(Buffer.from(GetFlowsResponse.encode(back).finish())).toEqual(Buffer.from(GetFlowsResponse.encode(r).finish()));
    }
  });

  it('accepts lowerCamel json names, enum numbers, int64 as numbers and 32-bit ints as strings', () => {
    const r = decodeResponse('{"flow":{"nodeName":"n","verdict":2,"dropReasonDesc":"POLICY_DENIED","socketCookie":42,"isReply":true,'
      + '"l4":{"TCP":{"sourcePort":"80"}},"IP":{"ipVersion":2}},"nodeName":"n","time":"2024-05-01T12:00:00+02:00"}');
    expect(r).toEqual({
      flow: { node_name: 'n', verdict: Verdict.DROPPED, drop_reason_desc: DropReason.POLICY_DENIED, socket_cookie: 42n, is_reply: true,
        l4: { TCP: { source_port: 80 } }, IP: { ipVersion: 2 } },
      node_name: 'n', time: { seconds: 1714557600n, nanos: 0 },
    });
  });

  it('skips unknown fields (a newer Hubble) and null values', () => {
    const r = decodeResponse('{"flow":{"verdict":"FORWARDED","future_field":{"x":[1,2]},"source":null},"brand_new":1,"node_name":"n"}');
    expect(r).toEqual({ flow: { verdict: Verdict.FORWARDED }, node_name: 'n' });
  });

  it('keeps 2^64-1 exact from a string', () => {
    expect(decodeFlow('{"cgroup_id":"18446744073709551615"}').cgroup_id).toBe(2n ** 64n - 1n);
  });

  it.each([
    ['{"flow":', /^flows\.json:12: invalid JSON/],
    ['{"flow":{"verdict":"BOGUS"}}', /^flows\.json:12: field "verdict": unknown enum value "BOGUS" for flow\.Verdict \(at flow\.verdict\)$/],
    ['{"flow":{"l4":{"TCP":{"source_port":"x"}}}}', /field "source_port": invalid value for uint32: "x" \(at flow\.l4\.TCP\.source_port\)/],
    ['{"flow":{"l4":{"TCP":{"source_port":70000.5}}}}', /invalid value for uint32/],
    ['{"flow":{"source":{"identity":-1}}}', /out of range \(at flow\.source\.identity\)/],
    ['{"flow":{"source":{"labels":["a",3]}}}', /field "labels\[1\]": expected a string, got 3/],
    ['{"time":"yesterday"}', /field "time": invalid RFC 3339 timestamp "yesterday"/],
    ['{"time":"2024-02-30T00:00:00Z"}', /invalid RFC 3339/],
    ['{"flow":{"is_reply":"yes"}}', /field "is_reply": expected true or false/],
    ['{"flow":{"cgroup_id":"-1"}}', /uint64.*out of range/],
    ['[1]', /^flows\.json:12: expected an object, got array$/],
    ['{"flow":[]}', /field "flow": expected an object, got array/],
  ])('rejects %s with a one-line error naming where', (line, re) => {
    let err: unknown;
    try {
      decodeResponse(line, 'flows.json:12');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(FlowctlError);
    expect(err).toEqual(malformed);
    expect((err as Error).message).toMatch(re);
    expect((err as Error).message).not.toContain('\n');
  });

  it('decodes FlowFilters as --allowlist gives them (both name styles)', () => {
    expect(decodeFlowFilter('{"sourcePod":["shop/"],"verdict":["DROPPED"],"event_type":[{"type":1,"matchSubType":true,"sub_type":133}],"experimental":{"celExpression":["x"]}}'))
      .toEqual({ source_pod: ['shop/'], verdict: [Verdict.DROPPED], event_type: [{ type: 1, match_sub_type: true, sub_type: 133 }], experimental: { cel_expression: ['x'] } });
    expect(() => decodeFlowFilter('{"verdict":"DROPPED"}', '--allowlist')).toThrow(/^--allowlist: field "verdict": expected a list/);
  });

  it('round-trips google.protobuf.Any of a known type and rejects unknown types', () => {
    const line = '{"extensions":{"@type":"type.googleapis.com/flow.Workload","name":"w","kind":"K"}}';
    expect(encodeFlow(decodeFlow(line))).toBe(line);
    expect(() => decodeFlow('{"extensions":{"@type":"type.googleapis.com/x.Nope"}}')).toThrow(/unknown type "type.googleapis.com\/x.Nope"/);
    expect(decodeMessage('observer.GetFlowsRequest', '{"fieldMask":"source.podName"}').field_mask).toEqual(['source.pod_name']);
  });
});

describe('timestamp cache', () => {
  it('formats every time of day and date like toISOString, across day boundaries and the whole range', () => {
    const iso = (sec: number) => new Date(sec * 1000).toISOString().slice(0, 19) + 'Z';
    const secs = [-62135596800, -86401, -86400, -1, 0, 1, 59, 60, 3599, 3600, 86399, 86400, 951782399, 951782400, 253402300799];
    for (let x = 1714564800 - 90000; x < 1714564800 + 90000; x += 997) secs.push(x);
    for (const sec of secs) {
      expect(encodeResponse({ time: { seconds: BigInt(sec), nanos: 0 } })).toBe(`{"time":"${iso(sec)}"}`);
      expect(formatRfc3339({ seconds: BigInt(sec), nanos: 1_000 })).toBe(iso(sec).replace('Z', '.000001Z'));
    }
    expect(() => encodeResponse({ time: { seconds: 1.5 as unknown as bigint, nanos: 0 } })).toThrow(/timestamp seconds 1.5 is not an integer/);
    expect(() => encodeResponse({ time: { seconds: -62135596801n, nanos: 0 } })).toThrow(/out of range/);
  });

  it('keeps the string formatter and the buffer writer consistent when they interleave', () => {
    expect(formatRfc3339({ seconds: 1n, nanos: 5 })).toBe('1970-01-01T00:00:01.000000005Z');
    expect(encodeResponse({ time: { seconds: 2n, nanos: 5 } })).toBe('{"time":"1970-01-01T00:00:02.000000005Z"}');
    expect(formatRfc3339({ seconds: 2n, nanos: 5 })).toBe('1970-01-01T00:00:02.000000005Z');
    expect(encodeResponse({ time: { seconds: 2n, nanos: 120_000_000 } })).toBe('{"time":"1970-01-01T00:00:02.120Z"}');
    expect(formatRfc3339({ seconds: 1n, nanos: 5 })).toBe('1970-01-01T00:00:01.000000005Z');
  });

  it('decodes timestamps sharing a date-time with the previous one exactly, and still rejects bad ones', () => {
    const t = (s: string) => decodeResponse(`{"time":"${s}"}`).time;
    expect(t('2024-05-01T12:00:00.5Z')).toEqual({ seconds: 1714564800n, nanos: 500_000_000 });
    expect(t('2024-05-01T12:00:00.123456789Z')).toEqual({ seconds: 1714564800n, nanos: 123_456_789 });
    expect(t('2024-05-01T12:00:00Z')).toEqual({ seconds: 1714564800n, nanos: 0 });
    expect(t('2024-05-01T12:00:00.000001Z')).toEqual({ seconds: 1714564800n, nanos: 1000 });
    expect(t('2024-05-01T12:00:00+01:00')).toEqual({ seconds: 1714561200n, nanos: 0 });
    expect(t('2024-05-01T12:00:00.7Z')).toEqual({ seconds: 1714564800n, nanos: 700_000_000 });
    expect(t('2024-05-01T12:00:01.7Z')).toEqual({ seconds: 1714564801n, nanos: 700_000_000 });
    for (const bad of ['2024-05-01T12:00:01.Z', '2024-05-01T12:00:01.1234567890Z', '2024-05-01T12:00:01.12a4Z', '2024-05-01T12:00:01.1z1Z', '2024-05-01T12:00:01ZZ']) {
      expect(() => t(bad), bad).toThrow(/invalid RFC 3339 timestamp/);
    }
  });

  it('never returns a stale value after an out-of-range timestamp', () => {
    const at = (seconds: bigint, nanos: number) => encodeResponse({ time: { seconds, nanos } });
    expect(at(0n, 5)).toBe('{"time":"1970-01-01T00:00:00.000000005Z"}');
    expect(() => at(1n, 2e9)).toThrow(malformed);
    expect(at(1n, 5)).toBe('{"time":"1970-01-01T00:00:01.000000005Z"}');
    expect(at(1n, 5)).toBe('{"time":"1970-01-01T00:00:01.000000005Z"}');
    expect(at(0n, 5)).toBe('{"time":"1970-01-01T00:00:00.000000005Z"}');
    for (const sec of [86400n, 0n, 86400n, 172800n, 0n, 172800n, 86400n]) {
      expect(at(sec, 0)).toBe(`{"time":"${new Date(Number(sec) * 1000).toISOString().slice(0, 19)}Z"}`);
    }
  });
});
