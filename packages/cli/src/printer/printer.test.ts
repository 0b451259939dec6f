import { describe, expect, it } from 'vitest';
import { Chalk } from 'chalk';
import { Verdict, type Flow } from '@flowctl/flow/gen/flow/flow';
import type { GetFlowsResponse } from '@flowctl/flow/gen/observer/observer';
import { NodeState } from '@flowctl/flow/gen/relay/relay';
import { encodeResponse } from '@flowctl/flow/json';
import { Printer, tabwrite, type Output } from './printer.js';
import { StringSink } from './terminal.js';
import { formatTime } from './format.js';

process.env.TZ = 'UTC';

// The flow of hubble's printer_test.go (hubble-api.md §4.4/4.5).
const flow: Flow = {
  time: { seconds: 1234n, nanos: 567800000 },
  verdict: Verdict.DROPPED,
  IP: { source: '1.1.1.1', destination: '2.2.2.2' },
  l4: { TCP: { source_port: 31793, destination_port: 8080 } },
  source: { identity: 4 },
  destination: { identity: 12345 },
  Type: 1,
  node_name: 'k8s1',
  event_type: { type: 1, sub_type: 133 },
  is_reply: false,
  Summary: 'TCP Flags: SYN',
};

function print(output: Output, rs: GetFlowsResponse[], opts: { nodeName?: boolean; color?: boolean; debug?: boolean } = {}) {
  const out = new StringSink();
  const err = new StringSink();
  const p = new Printer({
    output, timeFormat: 'StampMilli', nodeName: !!opts.nodeName, ipTranslation: true, debug: !!opts.debug,
    color: new Chalk({ level: opts.color ? 1 : 0 }), out, err, encodeJson: encodeResponse,
  });
  for (const r of rs) p.write(r);
  p.close();
  return { out: out.text, err: err.text };
}

describe('printer golden output (hubble printer_test.go)', () => {
  it('compact', () => {
    expect(print('compact', [{ flow }]).out).toBe(
      'Jan  1 00:20:34.567: 1.1.1.1:31793 (health) -> 2.2.2.2:8080 (ID:12345) Policy denied DROPPED (TCP Flags: SYN)\n',
    );
  });
  it('compact reply swaps sides; unknown direction is <>', () => {
    expect(print('compact', [{ flow: { ...flow, is_reply: true } }], { nodeName: true }).out).toBe(
      'Jan  1 00:20:34.567 [k8s1]: 2.2.2.2:8080 (ID:12345) <- 1.1.1.1:31793 (health) Policy denied DROPPED (TCP Flags: SYN)\n',
    );
    const pv = { ...flow, is_reply: undefined, event_type: { type: 5 }, traffic_direction: 2 };
    expect(print('compact', [{ flow: pv }], { nodeName: true }).out).toBe(
      'Jan  1 00:20:34.567 [k8s1]: 1.1.1.1:31793 (health) <> 2.2.2.2:8080 (ID:12345) policy-verdict:none EGRESS DENIED (TCP Flags: SYN)\n',
    );
  });
  it('compact with pod names, FQDNs, IPv6 and colours', () => {
    const f: Flow = {
      ...flow, IP: { source: 'fd00::1', destination: '10.0.0.2' }, l4: { UDP: { source_port: 53, destination_port: 0 } },
      source: { identity: 2, namespace: 'kube-system', pod_name: 'coredns-1' }, destination: { identity: 300 },
      destination_names: ['a.com', 'b.com'], event_type: { type: 4, sub_type: 0 }, verdict: Verdict.FORWARDED,
    };
    expect(print('compact', [{ flow: f }]).out).toBe(
      'Jan  1 00:20:34.567: kube-system/coredns-1:53 (world) -> a.com,b.com (ID:300) to-endpoint FORWARDED (TCP Flags: SYN)\n',
    );
    const colored = print('compact', [{ flow: f }], { color: true }).out;
    expect(colored).toContain('\u001b[32mFORWARDED');
    expect(colored).toContain('\u001b[35m(world)');
  });
  it('table', () => {
    expect(print('table', [{ flow }]).out).toBe(
      'TIMESTAMP             SOURCE          DESTINATION    TYPE            VERDICT   SUMMARY\n' +
        'Jan  1 00:20:34.567   1.1.1.1:31793   2.2.2.2:8080   Policy denied   DROPPED   TCP Flags: SYN\n',
    );
  });
  it('dict', () => {
    expect(print('dict', [{ flow }, { flow }], { nodeName: true }).out).toBe(
      '  TIMESTAMP: Jan  1 00:20:34.567\n       NODE: k8s1\n     SOURCE: 1.1.1.1:31793\nDESTINATION: 2.2.2.2:8080\n' +
        '       TYPE: Policy denied\n    VERDICT: DROPPED\n    SUMMARY: TCP Flags: SYN\n------------\n' +
        '  TIMESTAMP: Jan  1 00:20:34.567\n       NODE: k8s1\n     SOURCE: 1.1.1.1:31793\nDESTINATION: 2.2.2.2:8080\n' +
        '       TYPE: Policy denied\n    VERDICT: DROPPED\n    SUMMARY: TCP Flags: SYN\n',
    );
  });
  it('json is one GetFlowsResponse per line', () => {
    expect(print('json', [{ flow }]).out).toBe(
      '{"flow":{"time":"1970-01-01T00:20:34.567800Z","verdict":"DROPPED","IP":{"source":"1.1.1.1","destination":"2.2.2.2"},"l4":{"TCP":{"source_port":31793,"destination_port":8080}},"source":{"identity":4},"destination":{"identity":12345},"Type":"L3_L4","node_name":"k8s1","event_type":{"type":1,"sub_type":133},"is_reply":false,"Summary":"TCP Flags: SYN"}}\n',
    );
  });
  it('lost events', () => {
    const lost: GetFlowsResponse = {
      lost_events: { source: 3, num_events_lost: 1n, cpu: 5 }, node_name: 'node-name', time: { seconds: 1234n, nanos: 567800000 },
    };
    expect(print('compact', [lost]).out).toBe('Jan  1 00:20:34.567 EVENTS LOST: HUBBLE_RING_BUFFER CPU(5) 1\n');
    expect(print('json', [lost]).out).toBe(
      '{"lost_events":{"source":"HUBBLE_RING_BUFFER","num_events_lost":"1","cpu":5},"node_name":"node-name","time":"1970-01-01T00:20:34.567800Z"}\n',
    );
  });
  it('node_status goes to stderr, CONNECTED only with --debug', () => {
    const time = { seconds: 1234n, nanos: 567800000 };
    const un: GetFlowsResponse = { node_status: { state_change: NodeState.NODE_UNAVAILABLE, node_names: ['a', 'b'] }, node_name: 'relay', time };
    const ok: GetFlowsResponse = { node_status: { state_change: NodeState.NODE_CONNECTED, node_names: ['c'] }, node_name: 'relay', time };
    const r = print('compact', [ok, un]);
    expect(r.out).toBe('');
    expect(r.err).toBe('Jan  1 00:20:34.567 [relay]: 2 nodes are unavailable: a, b\n');
    expect(print('compact', [ok], { debug: true }).err).toBe('Jan  1 00:20:34.567 [relay]: Receiving flows from 1 nodes: c\n');
    expect(print('json', [un]).err).toBe(
      '{"node_status":{"state_change":"NODE_UNAVAILABLE","node_names":["a","b"]},"node_name":"relay","time":"1970-01-01T00:20:34.567800Z"}\n',
    );
  });
  it('untrusted strings cannot inject terminal escapes', () => {
    const f = { ...flow, Summary: 'x\u001b[2Jy' };
    expect(print('compact', [{ flow: f }]).out).toContain('(x\\x1b[2Jy)');
  });
  it('every byte outside printable ASCII in a DNS name or URL is escaped: one flow, one line', () => {
    const evil = 'a\nb\tc\u001bd\u0000e\u00e9';
    const esc = 'a\\x0ab\\x09c\\x1bd\\x00e\\xc3\\xa9';
    const dns: Flow = { ...flow, destination_names: [`${evil}.com`], Summary: `DNS Query ${evil}.com. A` };
    const http: Flow = { ...flow, Summary: `HTTP/1.1 GET http://h/${evil}` };
    const compact = print('compact', [{ flow: dns }, { flow: http }]).out;
    expect(compact.split('\n')).toHaveLength(3);
    expect(compact).toContain(`-> ${esc}.com:8080 (ID:12345)`);
    expect(compact).toContain(`(DNS Query ${esc}.com. A)`);
    expect(compact).toContain(`(HTTP/1.1 GET http://h/${esc})`);
    const table = print('table', [{ flow: dns }, { flow: http }]).out;
    expect(table.split('\n')).toHaveLength(4); // header, two flows, final newline
    expect(table).toContain(`DNS Query ${esc}.com. A`);
    const dict = print('dict', [{ flow: dns }, { flow: http }]).out;
    expect(dict.split('\n')).toHaveLength(6 * 2 + 1 + 1);
    expect(dict).toContain(`    SUMMARY: HTTP/1.1 GET http://h/${esc}\n`);
    for (const out of [compact, table, dict]) expect(out).not.toMatch(/[^\x20-\x7e\n]/);
  });
});

describe('time formats', () => {
  const ts = { seconds: 1714564800n, nanos: 123450000 };
  it.each([
    ['StampMilli', 'May  1 12:00:00.123'],
    ['YearMonthDay', '2024-05-01'],
    ['YearMonthDayHour', '2024-05-01T12Z'],
    ['YearMonthDayHourMinute', '2024-05-01T12:00Z'],
    ['RFC3339', '2024-05-01T12:00:00Z'],
    ['RFC3339Milli', '2024-05-01T12:00:00.123Z'],
    ['RFC3339Micro', '2024-05-01T12:00:00.12345Z'],
    ['RFC3339Nano', '2024-05-01T12:00:00.12345Z'],
    ['RFC1123Z', 'Wed, 01 May 2024 12:00:00 +0000'],
  ] as const)('%s', (layout, want) => {
    expect(formatTime(ts, layout)).toBe(want);
  });
});

it('tabwrite pads every cell but the last by 3', () => {
  expect(tabwrite([['a', 'bb', 'c'], ['ccc', '', '']])).toBe('a     bb   c\nccc        \n');
});

describe('flowctl connection records', () => {
  it('print "socket" in the TYPE column instead of an unknown translation point', async () => {
    const { flowTypeText: typeColumn } = await import('./format.js');
    expect(typeColumn({ Type: 3, event_type: { type: 7 }, Summary: 'TCP ESTABLISHED' })).toBe('socket');
    expect(typeColumn({ Type: 3, event_type: { type: 7 }, sock_xlate_point: 1 })).toBe('pre-xlate-fwd');
  });
});
