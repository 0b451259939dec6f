import { beforeAll, describe, expect, it } from 'vitest';
import { cLayout } from '../../../../bpf/test/layout.js';
import {
  CONFIG_VALUE,
  COUNTER_NAMES,
  FLOW_EVENT,
  FLOWCTL_ABI_VERSION,
  FLOWCTL_EV_FLOW,
  FLOWCTL_EV_SUPPRESSED,
  FLOWCTL_MAX_PAYLOAD,
  IPCACHE_KEY,
  FQDN_IP_KEY,
  FQDN_PEER_KEY,
  FQDN_IP_VALUE,
  FQDN_NAME_KEY,
  FQDN_GLOB,
  IPCACHE_VALUE,
  ISOLATE_COUNT,
  POLICY_KEY,
  POLICY_VALUE,
  SUPPRESSED_EVENT,
  decodeEvent,
  decodeFlowEvent,
  formatIpv6,
  readCounters,
} from './abi.js';

let layout: Record<string, Record<string, number>> & { constants: Record<string, number> };
let sample: Buffer;

beforeAll(() => {
  const c = cLayout();
  layout = c.layout as typeof layout;
  sample = c.sample;
});

describe('ABI layout matches bpf/flowctl.h', () => {
  it.each([
    ['flow_event', FLOW_EVENT],
    ['suppressed_event', SUPPRESSED_EVENT],
    ['ipcache_key', IPCACHE_KEY],
    ['ipcache_value', IPCACHE_VALUE],
    ['policy_key', POLICY_KEY],
    ['policy_value', POLICY_VALUE],
    ['config_value', CONFIG_VALUE],
    ['fqdn_name_key', FQDN_NAME_KEY],
    ['fqdn_glob', FQDN_GLOB],
    ['fqdn_ip_key', FQDN_IP_KEY],
    ['fqdn_peer_key', FQDN_PEER_KEY],
    ['fqdn_ip_value', FQDN_IP_VALUE],
    ['isolate_count', ISOLATE_COUNT],
  ] as const)('%s: sizeof and every offsetof', (name, ts) => {
    expect({ ...ts }).toEqual(layout[name]);
  });

  it('constants', () => {
    expect(layout.constants).toEqual({
      abi_version: FLOWCTL_ABI_VERSION,
      max_payload: FLOWCTL_MAX_PAYLOAD,
      hdr_len: FLOW_EVENT.size,
      ev_flow: FLOWCTL_EV_FLOW,
      ev_suppressed: FLOWCTL_EV_SUPPRESSED,
      counters: COUNTER_NAMES.length,
      drop_policy_denied: 133,
      drop_rate_limited: 198,
    });
  });
});

describe('decodeEvent: a summary of suppressed new-connection packets', () => {
  const S = SUPPRESSED_EVENT;
  const record = () => {
    const b = Buffer.alloc(S.size);
    b.writeUInt8(FLOWCTL_EV_SUPPRESSED, S.type);
    b.writeUInt8(FLOWCTL_ABI_VERSION, S.abi_version);
    b.writeUInt8(4, S.ip_version);
    b.writeUInt8(2, S.obs_point);
    b.writeUInt8(2, S.verdict);
    b.writeUInt8(1, S.many_sources);
    b.writeUInt16LE(0x16, S.tcp_flags);
    b.writeUInt16LE(198, S.drop_reason);
    b.writeUInt16LE(80, S.dst_port);
    b.writeUInt32LE(7, S.ifindex);
    b.writeUInt32LE(7, S.scope);
    b.writeUInt8(6, S.proto);
    b.writeBigUInt64LE(3_000_000_000n, S.ts_ns);
    b.writeBigUInt64LE(1_000_000_000n, S.first_ns);
    b.writeBigUInt64LE(1_900_000_000n, S.last_ns);
    b.writeBigUInt64LE(30_000n, S.packets);
    b.writeBigUInt64LE(20_000n, S.syns);
    b.writeBigUInt64LE(19_000n, S.dropped);
    Buffer.from([10, 0, 0, 9]).copy(b, S.src_ip);
    Buffer.from([10, 0, 0, 2]).copy(b, S.dst_ip);
    return b;
  };

  it('decodes every field at the offsets the C compiler lays out', () => {
    expect(decodeEvent(record(), 0, S.size)).toEqual({
      kind: 'suppressed', origin: 'tc', tsNs: 3_000_000_000n, ifindex: 7, scope: 7, proto: 6, obsPoint: 2, verdict: 2, dropReason: 198, manySources: true,
      ipVersion: 4, srcIp: '10.0.0.9', dstIp: '10.0.0.2', dstPort: 80, tcpFlags: 0x16,
      firstNs: 1_000_000_000n, lastNs: 1_900_000_000n, packets: 30_000n, syns: 20_000n, dropped: 19_000n,
    });
  });

  it('refuses a short record or another ABI with one line naming the offset', () => {
    expect(() => decodeEvent(record(), 0, 40)).toThrow(/offset 0: summary record of 40 bytes, need 104/);
    const other = record();
    other.writeUInt8(FLOWCTL_ABI_VERSION + 1, S.abi_version);
    expect(() => decodeEvent(other, 0, S.size)).toThrow(`ABI version ${FLOWCTL_ABI_VERSION + 1}`);
  });
});

describe('decodeFlowEvent', () => {
  it('decodes the event the C compiler laid out, at an offset inside a batch', () => {
    const batch = Buffer.concat([Buffer.alloc(8, 0xee), sample, Buffer.alloc(8, 0xee)]);
    const ev = decodeFlowEvent(batch, 8, sample.length);
    expect(ev).toEqual({
      kind: 'flow',
      tsNs: 0x1122334455667788n,
      ifindex: 42,
      obsPoint: 2,
      reason: 7,
      verdict: 4,
      dropReason: 0,
      ipVersion: 6,
      srcIp: '2001:db8::1',
      dstIp: 'fd00::a:0:0:beef',
      proto: 6,
      srcPort: 40000,
      dstPort: 8080,
      tcpFlags: 0x118,
      tcpFlagsSeen: 0x11a,
      icmpType: 11,
      icmpCode: 12,
      isReply: false,
      srcIdentity: 256,
      dstIdentity: 70000,
      policyRef: 9,
      policyDirection: 1,
      ethSrc: '02:00:00:aa:bb:cc',
      ethDst: '0a:0b:0c:0d:0e:0f',
      packets: 3n,
      bytes: 4000n,
      replyPackets: 5n,
      replyBytes: 6000n,
      firstSeenNs: 7000000000n,
      lastSeenNs: 8000000000n,
      l7: 2,
      payload: Buffer.from('GET / HTTP/1.1\r\n\r\n'),
      payloadLen: 100000,
      tcpSeq: 0xfedcba98,
      tcpAck: 0x01234567,
      capturedOff: 20000,
      l7Followed: true,
      l7Start: 20004,
      l7Msg: 77,
      l7Starts: 3,
      l7More: 30000,
    });
  });

  it('copies the payload out of the ring memory', () => {
    const buf = Buffer.from(sample);
    const ev = decodeFlowEvent(buf, 0, buf.length);
    buf.fill(0);
    expect(ev.payload.toString()).toBe('GET / HTTP/1.1\r\n\r\n');
  });

  it('decodes IPv4 addresses and an unknown is_reply', () => {
    const buf = Buffer.from(sample);
    buf[FLOW_EVENT.ip_version] = 4;
    Buffer.from([10, 202, 0, 1]).copy(buf, FLOW_EVENT.src_ip);
    Buffer.from([192, 168, 255, 254]).copy(buf, FLOW_EVENT.dst_ip);
    buf[FLOW_EVENT.is_reply] = 2;
    const ev = decodeFlowEvent(buf, 0, buf.length);
    expect([ev.srcIp, ev.dstIp, ev.isReply]).toEqual(['10.202.0.1', '192.168.255.254', undefined]);
  });

  it('rejects foreign, short, newer-ABI and overrunning records with the offset', () => {
    const foreign = Buffer.from(sample);
    foreign[0] = 0x10;
    expect(() => decodeFlowEvent(foreign, 0, foreign.length)).toThrow(/offset 0: event type 16 is not a flow event/);
    expect(() => decodeFlowEvent(sample, 0, 100)).toThrow(/record of 100 bytes, need 176/);
    const newer = Buffer.from(sample);
    newer[1] = FLOWCTL_ABI_VERSION + 1;
    expect(() => decodeFlowEvent(newer, 0, newer.length)).toThrow(`ABI version ${FLOWCTL_ABI_VERSION + 1}, decoder speaks ${FLOWCTL_ABI_VERSION}`);
    expect(() => decodeFlowEvent(sample, 0, FLOW_EVENT.size + 4)).toThrow(/payload of 18 bytes overruns/);
    expect(() => decodeFlowEvent(sample, 10, sample.length)).toThrow(/offset 10/);
  });
});

describe('helpers', () => {
  it.each([
    ['::', '0000:0000:0000:0000:0000:0000:0000:0000'],
    ['::1', '0000:0000:0000:0000:0000:0000:0000:0001'],
    ['2001:db8:0:1:1:1:1:1', '2001:0db8:0000:0001:0001:0001:0001:0001'],
    ['2001:db8::1:0:0:1', '2001:0db8:0000:0000:0001:0000:0000:0001'],
    ['fe80::', 'fe80:0000:0000:0000:0000:0000:0000:0000'],
    ['::ffff:10.0.0.1', '0000:0000:0000:0000:0000:ffff:0a00:0001'],
  ])('formatIpv6 %s', (want, full) => {
    expect(formatIpv6(Buffer.from(full.replaceAll(':', ''), 'hex'), 0)).toBe(want);
  });

  it('readCounters sums per-CPU slots in enum order', () => {
    const values = new Map<number, Buffer>();
    const two = Buffer.alloc(16);
    two.writeBigUInt64LE(5n, 0);
    two.writeBigUInt64LE(7n, 8);
    values.set(2, two);
    const c = readCounters((k) => values.get(k.readUInt32LE(0)));
    expect(c.malformed).toBe(12n);
    expect(c.ringbufFull).toBe(0n);
    expect(Object.keys(c)).toEqual([...COUNTER_NAMES]);
  });
});
