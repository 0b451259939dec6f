import { describe, expect, it } from 'vitest';
import { blockEntryJson, blockListTable, parseTtl } from './block.js';

describe('flowctl block: flags and output', () => {
  it('parses --ttl as a Go duration between 1s and a year', () => {
    expect(parseTtl('10m')).toBe(600_000_000_000n);
    expect(parseTtl('1h30m')).toBe(5_400_000_000_000n);
    expect(() => parseTtl('10')).toThrow('invalid argument "10" for "--ttl" flag: want a duration like 90s, 10m or 1h30m');
    expect(() => parseTtl('500ms')).toThrow('invalid argument "500ms" for "--ttl" flag: want at least 1s and at most a year (8760h)');
    expect(() => parseTtl('-5m')).toThrow(/at least 1s/);
    expect(() => parseTtl('9000h')).toThrow(/at most a year/);
  });

  it('prints the list as a table and as JSON lines', () => {
    const e = {
      cidr: '203.0.113.0/24', reason: 'port scan', origin: 'alert:port-scan', created: { seconds: 1000n, nanos: 0 }, expires: { seconds: 1600n, nanos: 0 },
      dropped_packets: 12345n, dropped_bytes: 740700n, nodes: ['node-a', 'node-b'],
    };
    const pod = { cidr: '10.0.0.9/32', reason: 'scan', origin: 'alert:port-scan', nodes: ['node-a'], isolated_pod: 'shop/scanner-1', isolated_addresses: ['10.0.0.9', 'fd00::9'], dropped_packets: 3n };
    const gone = { cidr: '10.0.0.7/32', reason: 'scan', origin: 'alert:port-scan', nodes: ['node-a'], isolated_pod: 'shop/old-1', isolated_addresses: [] };
    expect(blockListTable([e, { cidr: '2001:db8::/32', nodes: ['node-a'] }, pod, gone], 1_000_000)).toBe(
      'CIDR             ACTION                          EXPIRES    DROPPED PACKETS   DROPPED BYTES   ORIGIN            NODES           REASON\n' +
      '203.0.113.0/24   drop                            in 10m0s   12,345            740,700         alert:port-scan   node-a,node-b   port scan\n' +
      '2001:db8::/32    drop                            never      0                 0                                 node-a\n' +
      '10.0.0.9/32      isolate shop/scanner-1          never      3                 0               alert:port-scan   node-a          scan\n' +
      '10.0.0.7/32      isolate shop/old-1 (pod gone)   never      0                 0               alert:port-scan   node-a          scan\n',
    );
    expect(blockEntryJson(pod)).toMatchObject({ cidr: '10.0.0.9/32', isolated_pod: 'shop/scanner-1', isolated_addresses: ['10.0.0.9', 'fd00::9'], dropped_packets: 3 });
    expect(blockListTable([])).toBe('No entries in the drop list.\n');
    expect(blockEntryJson(e)).toEqual({
      cidr: '203.0.113.0/24', reason: 'port scan', origin: 'alert:port-scan', created: '1970-01-01T00:16:40.000Z', expires: '1970-01-01T00:26:40.000Z',
      dropped_packets: 12345, dropped_bytes: 740700, nodes: ['node-a', 'node-b'],
    });
  });
});
