import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import {
  KDROP_EVENT,
  SOCK_EVENT,
  TRACE_ABI_VERSION,
  TRACE_COUNTERS,
  decodeTraceEvent,
  hubbleDropReason,
  stableDropReasonCode,
  stableDropReasonName,
} from './abi-trace.js';
import { FCT_EV_KDROP_SUMMARY, formatIpv6 as ipv6 } from './abi.js';

const bpfDir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..', 'bpf');
const work = mkdtempSync(join(tmpdir(), 'fcdt-abi-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Compiles a host C program against bpf/trace.h and returns what it prints (JSON). */
function fromHeader(body: string): Record<string, number> {
  const src = join(work, 'layout.c');
  const exe = join(work, 'layout');
  writeFileSync(
    src,
    `#include <stdio.h>\n#include <stddef.h>\n#include "trace.h"\n#define F(s, f) printf("%s\\"" #f "\\": %zu", first ? "" : ",", offsetof(struct s, f)), first = 0\nint main(void) { int first = 1; (void)first; printf("{"); ${body} printf("}"); return 0; }\n`,
  );
  execFileSync('cc', ['-Wall', '-Werror', '-I', bpfDir, '-o', exe, src]);
  return JSON.parse(execFileSync(exe, { encoding: 'utf8' })) as Record<string, number>;
}

function cLayout(struct: string, fields: string[]): Record<string, number> {
  const body = fields.map((f) => `F(${struct}, ${f});`).join(' ');
  return {
    ...fromHeader(`${body} printf(",\\"size\\": %zu", sizeof(struct ${struct}));`),
  };
}

describe('trace ABI layout matches bpf/trace.h', () => {
  it('struct fct_sock_event', () => {
    const fields = Object.keys(SOCK_EVENT).filter((k) => k !== 'size');
    expect(cLayout('fct_sock_event', fields)).toEqual({ ...SOCK_EVENT });
  });
  it('struct fct_kdrop_event', () => {
    const fields = Object.keys(KDROP_EVENT).filter((k) => k !== 'size');
    expect(cLayout('fct_kdrop_event', fields)).toEqual({ ...KDROP_EVENT });
  });
  it('constants', () => {
    const c = fromHeader(
      'printf("\\"abi\\": %d, \\"sock\\": %d, \\"retx\\": %d, \\"kdrop\\": %d, \\"kdrop_summary\\": %d, \\"cnt\\": %d, \\"no_socket\\": %d, \\"blackhole\\": %d, \\"max\\": %d", FCT_ABI_VERSION, FCT_EV_SOCK_STATE, FCT_EV_RETRANSMIT, FCT_EV_KDROP, FCT_EV_KDROP_SUMMARY, FCT_CNT_MAX, FCT_DROP_NO_SOCKET, FCT_DROP_IP_INADDRERRORS, FCT_DROP_MAX);',
    );
    expect(c).toEqual({
      abi: TRACE_ABI_VERSION,
      sock: 0x10,
      retx: 0x11,
      kdrop: 0x12,
      kdrop_summary: FCT_EV_KDROP_SUMMARY,
      cnt: TRACE_COUNTERS.length,
      no_socket: stableDropReasonCode('NO_SOCKET'),
      blackhole: stableDropReasonCode('IP_INADDRERRORS'),
      max: 33,
    });
    expect(stableDropReasonName(c.max! - 1)).toBe('PKT_TOO_BIG');
    expect(stableDropReasonName(c.max!)).toBeUndefined();
  });
});

function sockRecord(type: number, v6 = false): Buffer {
  const b = Buffer.alloc(SOCK_EVENT.size);
  b[0] = type;
  b[1] = TRACE_ABI_VERSION;
  b[2] = v6 ? 6 : 4;
  b[SOCK_EVENT.old_state] = 1;
  b[SOCK_EVENT.new_state] = 4;
  b[SOCK_EVENT.opener] = 2;
  b[SOCK_EVENT.sk_err] = 104;
  b.writeBigUInt64LE(123n, SOCK_EVENT.ts_ns);
  b.writeBigUInt64LE(5_000_000n, SOCK_EVENT.duration_ns);
  b.writeBigUInt64LE(2n ** 40n, SOCK_EVENT.bytes_acked);
  b.writeBigUInt64LE(77n, SOCK_EVENT.bytes_received);
  b.writeUInt32LE(4026531840, SOCK_EVENT.netns_ino);
  b.writeUInt32LE(250, SOCK_EVENT.srtt_us);
  b.writeUInt32LE(3, SOCK_EVENT.total_retrans);
  b.writeUInt16LE(40000, SOCK_EVENT.sport);
  b.writeUInt16LE(80, SOCK_EVENT.dport);
  if (v6) {
    Buffer.from('fd000000000000000000000000000001', 'hex').copy(b, SOCK_EVENT.saddr);
    Buffer.from('00000000000000000000ffff0a000002', 'hex').copy(b, SOCK_EVENT.daddr);
  } else {
    Buffer.from([10, 202, 128, 1]).copy(b, SOCK_EVENT.saddr);
    Buffer.from([10, 202, 128, 2]).copy(b, SOCK_EVENT.daddr);
  }
  return b;
}

describe('decodeTraceEvent', () => {
  it('decodes a state transition', () => {
    const b = Buffer.concat([Buffer.alloc(8), sockRecord(0x10)]);
    expect(decodeTraceEvent(b, 8, SOCK_EVENT.size)).toEqual({
      kind: 'sock',
      what: 'state',
      tsNs: 123n,
      netnsIno: 4026531840,
      ipVersion: 4,
      srcIp: '10.202.128.1',
      dstIp: '10.202.128.2',
      srcPort: 40000,
      dstPort: 80,
      oldState: 1,
      newState: 4,
      opener: 2,
      skErr: 104,
      durationNs: 5_000_000n,
      bytesAcked: 2n ** 40n,
      bytesReceived: 77n,
      srttUs: 250,
      retransmits: 3,
    });
  });
  it('decodes a retransmit with IPv6 addresses', () => {
    const e = decodeTraceEvent(sockRecord(0x11, true), 0, SOCK_EVENT.size);
    expect(e).toMatchObject({ kind: 'sock', what: 'retransmit', ipVersion: 6, srcIp: 'fd00::1', dstIp: '::ffff:10.0.0.2' });
  });
  it('reports a v4-mapped pair as IPv4', () => {
    const b = sockRecord(0x10, true);
    Buffer.from('00000000000000000000ffff0a000001', 'hex').copy(b, SOCK_EVENT.saddr);
    expect(decodeTraceEvent(b, 0, b.length)).toMatchObject({ ipVersion: 4, srcIp: '10.0.0.1', dstIp: '10.0.0.2' });
  });
  it('decodes a kernel drop and maps the reason', () => {
    const b = Buffer.alloc(KDROP_EVENT.size);
    b[0] = 0x12;
    b[1] = TRACE_ABI_VERSION;
    b[2] = 4;
    b[KDROP_EVENT.proto] = 6;
    b[KDROP_EVENT.tcp_flags] = 0x02;
    b.writeBigUInt64LE(9n, KDROP_EVENT.ts_ns);
    b.writeUInt32LE(4026532000, KDROP_EVENT.netns_ino);
    b.writeUInt32LE(7, KDROP_EVENT.ifindex);
    b.writeUInt32LE(3, KDROP_EVENT.kernel_reason);
    b.writeUInt16LE(stableDropReasonCode('NO_SOCKET'), KDROP_EVENT.reason);
    b.writeUInt16LE(51000, KDROP_EVENT.sport);
    b.writeUInt16LE(9, KDROP_EVENT.dport);
    Buffer.from([10, 202, 128, 1]).copy(b, KDROP_EVENT.saddr);
    Buffer.from([10, 202, 128, 2]).copy(b, KDROP_EVENT.daddr);
    expect(decodeTraceEvent(b, 0, b.length)).toEqual({
      kind: 'kdrop',
      tsNs: 9n,
      netnsIno: 4026532000,
      ifindex: 7,
      kernelReason: 3,
      dropReason: 178,
      ipVersion: 4,
      srcIp: '10.202.128.1',
      dstIp: '10.202.128.2',
      proto: 6,
      srcPort: 51000,
      dstPort: 9,
      tcpFlags: 2,
      icmpType: 0,
      icmpCode: 0,
    });
  });
  it('rejects bad records with a one-line reason', () => {
    const b = sockRecord(0x10);
    expect(() => decodeTraceEvent(b, 0, 40)).toThrow(/trace event at offset 0: sock event of 40 bytes/);
    expect(() => decodeTraceEvent(b, 8, b.length)).toThrow(/does not fit/);
    b[1] = 9;
    expect(() => decodeTraceEvent(b, 0, b.length)).toThrow(/ABI version 9/);
    b[1] = TRACE_ABI_VERSION;
    b[0] = 0x01;
    expect(() => decodeTraceEvent(b, 0, b.length)).toThrow(/unknown event type 0x1/);
    b[0] = 0x10;
    b[2] = 5;
    expect(() => decodeTraceEvent(b, 0, b.length)).toThrow(/IP version 5/);
  });
  it('maps unknown and unmapped reasons to 0', () => {
    expect(hubbleDropReason(0)).toBe(0);
    expect(hubbleDropReason(stableDropReasonCode('TC_EGRESS'))).toBe(0);
    expect(hubbleDropReason(999)).toBe(0);
    expect(hubbleDropReason(stableDropReasonCode('IP_INADDRERRORS'))).toBe(151);
  });
});

describe('ipv6 text form (RFC 5952)', () => {
  const f = (hex: string) => ipv6(Buffer.from(hex, 'hex'), 0);
  it('compresses the longest zero run, first on a tie, never a single group', () => {
    expect(f('00000000000000000000000000000000')).toBe('::');
    expect(f('00000000000000000000000000000001')).toBe('::1');
    expect(f('20010db8000000010000000000000001')).toBe('2001:db8:0:1::1');
    expect(f('20010db8000000000001000000000001')).toBe('2001:db8::1:0:0:1');
    expect(f('20010db8000100010001000100010001')).toBe('2001:db8:1:1:1:1:1:1');
    expect(f('20010db8000000010001000100010000')).toBe('2001:db8:0:1:1:1:1:0');
    expect(f('fe800000000000000000000000000000')).toBe('fe80::');
  });
});
