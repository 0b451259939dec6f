import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { parsePeersFile, watchPeersFile } from './peers-file.js';
import type { PeerSpec } from './manager.js';

const dir = mkdtempSync(join(tmpdir(), 'fcr-peers-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('parsePeersFile', () => {
  it('reads one address per line, with comments and blank lines', () => {
    expect(parsePeersFile('# agents\n10.0.0.1:4244\n\nunix:///run/a.sock  # node a\nnode-3\n', 'p.txt')).toEqual([
      { address: '10.0.0.1:4244' },
      { address: 'unix:///run/a.sock' },
      { address: 'node-3' },
    ]);
  });

  it('reads a YAML list of addresses or {name, address}, optionally under peers:', () => {
    expect(parsePeersFile('- 10.0.0.1\n- name: node-2\n  address: 10.0.0.2:4244\n', 'p.yaml')).toEqual([
      { address: '10.0.0.1' },
      { name: 'node-2', address: '10.0.0.2:4244' },
    ]);
    expect(parsePeersFile('peers:\n  - {name: n1, address: "[fd00::1]:4244"}\n', 'p.yaml')).toEqual([{ name: 'n1', address: '[fd00::1]:4244' }]);
    expect(parsePeersFile('peers:\n', 'p.yaml')).toEqual([]);
  });

  it('takes an optional tls-server-name per entry', () => {
    expect(parsePeersFile('- {name: n1, address: 10.0.0.1:4244, tls-server-name: n1.prod.hubble-grpc.cilium.io}\n', 'p.yaml')).toEqual([
      { name: 'n1', address: '10.0.0.1:4244', tlsServerName: 'n1.prod.hubble-grpc.cilium.io' },
    ]);
    expect(() => parsePeersFile('- {address: 10.0.0.1, tls-server-name: 3}\n', 'p.yaml')).toThrow('p.yaml: peer 1: tls-server-name must be a string');
  });

  it('names the file and the entry when the content is wrong', () => {
    expect(() => parsePeersFile('peers: 3\n', 'p.yaml')).toThrow('p.yaml: want a list of peers');
    expect(() => parsePeersFile('- 10.0.0.1\n- {name: x}\n', 'p.yaml')).toThrow('p.yaml: peer 2: want an address string or {name, address, tls-server-name?}');
    expect(() => parsePeersFile('- [unclosed\n', 'p.yaml')).toThrow(/^p\.yaml: /);
  });
});

describe('watchPeersFile', () => {
  it('applies the file now and again on every change, keeping the last good list when it breaks', async () => {
    const file = join(dir, 'peers.yaml');
    writeFileSync(file, '- 10.0.0.1:4244\n');
    const applied: PeerSpec[][] = [];
    const logged: string[] = [];
    const log = pino({ level: 'info' }, { write: (s: string) => void logged.push(s) });
    const stop = watchPeersFile(file, log, (s) => applied.push(s), 20);
    try {
      expect(applied).toEqual([[{ address: '10.0.0.1:4244' }]]);
      // Polling compares mtime and size; a longer content guarantees the change is seen.
      writeFileSync(file, '- 10.0.0.1:4244\n- name: node-2\n  address: 10.0.0.2:4244\n');
      await expect.poll(() => applied.length, { timeout: 5000 }).toBe(2);
      expect(applied[1]).toEqual([{ address: '10.0.0.1:4244' }, { name: 'node-2', address: '10.0.0.2:4244' }]);
      writeFileSync(file, 'peers: [unclosed, list, that is broken\n');
      await expect.poll(() => logged.some((l) => l.includes('keeping the previous peers')), { timeout: 5000 }).toBe(true);
      expect(applied).toHaveLength(2);
      expect(logged.find((l) => l.includes('keeping the previous peers'))).toContain(file);
      writeFileSync(file, '');
      await expect.poll(() => applied.length, { timeout: 5000 }).toBe(3);
      expect(applied[2]).toEqual([]);
    } finally {
      stop();
    }
  });
});
