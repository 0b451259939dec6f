import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { parsePrefix } from '@flowctl/flow/ip';
import { BITS4_WORDS, BITS6_WORDS, COUNT, DROP_EVENT, ENTRY, FCX_EV_DROP, FCX_EV_SUPPRESSED, KEY4, KEY6, XDP_ABI_VERSION, XDP_COUNTERS, decodeXdpDropEvent, encodeDropEntry, encodeDropKey, hash32, hash64, slash24Range } from './abi-xdp.js';

const bpfDir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..', 'bpf');
const work = mkdtempSync(join(tmpdir(), 'fcb-abi-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Compiles a host C program against bpf/xdp.h and returns what it prints (JSON). */
function fromHeader(body: string): Record<string, number> {
  const src = join(work, 'layout.c');
  const exe = join(work, 'layout');
  writeFileSync(
    src,
    `#include <stdio.h>\n#include <stddef.h>\n#include "xdp.h"\n#define F(s, f) printf("%s\\"" #f "\\": %zu", first ? "" : ",", offsetof(struct s, f)), first = 0\nint main(void) { int first = 1; (void)first; printf("{"); ${body} printf("}"); return 0; }\n`,
  );
  execFileSync('cc', ['-Wall', '-Werror', '-I', bpfDir, '-o', exe, src]);
  return JSON.parse(execFileSync(exe, { encoding: 'utf8' })) as Record<string, number>;
}

function cLayout(struct: string, layout: Record<string, number>): Record<string, number> {
  const body = Object.keys(layout).filter((k) => k !== 'size').map((f) => `F(${struct}, ${f});`).join(' ');
  return fromHeader(`${body} printf("%s\\"size\\": %zu", first ? "" : ",", sizeof(struct ${struct}));`);
}

describe('XDP ABI layout matches bpf/xdp.h', () => {
  it.each([
    ['fcx_drop_event', DROP_EVENT],
    ['fcx_entry', ENTRY],
    ['fcx_count', COUNT],
    ['fcx_key4', KEY4],
    ['fcx_key6', KEY6],
  ] as const)('struct %s', (name, layout) => {
    expect(cLayout(name, layout)).toEqual({ ...layout });
  });

  it('constants', () => {
    expect(fromHeader('printf("\\"abi\\": %d, \\"drop\\": %d, \\"counters\\": %d, \\"words\\": %d", FCX_ABI_VERSION, FCX_EV_DROP, FCX_CNT_MAX, FCX_BITS4_WORDS);')).toEqual({
      abi: XDP_ABI_VERSION,
      drop: FCX_EV_DROP,
      counters: XDP_COUNTERS.length,
      words: BITS4_WORDS,
    });
    expect(fromHeader('printf("\\"words6\\": %d", FCX_BITS6_WORDS);')).toEqual({ words6: BITS6_WORDS });
    expect(fromHeader('printf("\\"suppressed\\": %d", FCX_EV_SUPPRESSED);')).toEqual({ suppressed: FCX_EV_SUPPRESSED });
  });

  it('hashes IPv6 /64s and /32s to the bits the kernel reads', () => {
    const words: [number, number][] = [[0x20010db8, 0x00770000], [0x20010db8, 0], [0xfd000000, 0xffffffff], [0xffffffff, 0x12345678], [0, 1]];
    const body = words.map(([w0, w1], i) => `printf("%s\\"a${i}\\": %u, \\"b${i}\\": %u", ${i} ? ", " : "", fcx_hash64(${w0}u, ${w1}u), fcx_hash32(${w0}u));`).join(' ');
    const want: Record<string, number> = {};
    words.forEach(([w0, w1], i) => {
      want[`a${i}`] = hash64(w0, w1);
      want[`b${i}`] = hash32(w0);
      expect(hash64(w0, w1)).toBeLessThan(BITS6_WORDS * 64);
    });
    expect(fromHeader(body)).toEqual(want);
  });
});

describe('XDP keys, values and events', () => {
  it('encodes trie keys with the prefix length and the network-order address', () => {
    expect(encodeDropKey(parsePrefix('192.0.2.0/24')!).toString('hex')).toBe('18000000c0000200');
    expect(encodeDropKey(parsePrefix('2001:db8::/32')!).toString('hex')).toBe(`20000000${'20010db8'.padEnd(32, '0')}`);
    const v = encodeDropEntry(7, 0x1122334455667788n);
    expect(v.readBigUInt64LE(ENTRY.expires_ns)).toBe(0x1122334455667788n);
    expect(v.readUInt32LE(ENTRY.id)).toBe(7);
  });

  it('maps a prefix to the /24 bits it covers', () => {
    expect(slash24Range(parsePrefix('192.0.2.77')!)).toEqual([0xc00002, 0xc00002]);
    expect(slash24Range(parsePrefix('192.0.0.0/16')!)).toEqual([0xc00000, 0xc000ff]);
    expect(slash24Range(parsePrefix('0.0.0.0/0')!)).toEqual([0, 2 ** 24 - 1]);
    expect(() => slash24Range(parsePrefix('fd00::/8')!)).toThrow(/IPv6/);
  });

  it('decodes a drop event at an offset in a batch, and refuses a foreign record', () => {
    const b = Buffer.alloc(8 + DROP_EVENT.size);
    const o = 8;
    b[o + DROP_EVENT.type] = FCX_EV_DROP;
    b[o + DROP_EVENT.abi_version] = XDP_ABI_VERSION;
    b[o + DROP_EVENT.ip_version] = 4;
    b[o + DROP_EVENT.proto] = 6;
    b[o + DROP_EVENT.tcp_flags] = 0x02;
    b[o + DROP_EVENT.match] = 2;
    b.writeBigUInt64LE(123n, o + DROP_EVENT.ts_ns);
    b.writeBigUInt64LE(5n, o + DROP_EVENT.packets);
    b.writeBigUInt64LE(300n, o + DROP_EVENT.bytes);
    b.writeUInt32LE(9, o + DROP_EVENT.entry_id);
    b.writeUInt32LE(3, o + DROP_EVENT.ifindex);
    b.writeUInt16LE(40000, o + DROP_EVENT.sport);
    b.writeUInt16LE(80, o + DROP_EVENT.dport);
    Buffer.from([192, 0, 2, 5]).copy(b, o + DROP_EVENT.saddr);
    Buffer.from([10, 0, 0, 1]).copy(b, o + DROP_EVENT.daddr);
    expect(decodeXdpDropEvent(b, o, DROP_EVENT.size)).toEqual({
      kind: 'xdrop', tsNs: 123n, ifindex: 3, entryId: 9, matched: 'destination', packets: 5n, bytes: 300n, ipVersion: 4,
      srcIp: '192.0.2.5', dstIp: '10.0.0.1', proto: 6, srcPort: 40000, dstPort: 80, tcpFlags: 2, icmpType: 0, icmpCode: 0,
    });
    b[o] = 0x12;
    expect(() => decodeXdpDropEvent(b, o, DROP_EVENT.size)).toThrow(/type 0x12/);
    expect(() => decodeXdpDropEvent(b, o, 40)).toThrow(/40 bytes/);
  });
});
