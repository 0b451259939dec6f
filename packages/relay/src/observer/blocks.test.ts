import { EventEmitter } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { PeerManager } from '../pool/manager.js';
import { RelayBlocks } from './blocks.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function blocks(stateFile: string, warnings: string[]): RelayBlocks {
  const manager = Object.assign(new EventEmitter(), { list: () => [] }) as unknown as PeerManager;
  return new RelayBlocks({ manager, callTimeoutMs: 1000, stateFile, warn: (m) => warnings.push(m) });
}

describe('RelayBlocks state file', () => {
  it('restores live entries and removals, skipping expired and malformed ones', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fcr-relay-state-'));
    dirs.push(dir);
    const file = join(dir, 'relay-blocks.json');
    writeFileSync(file, JSON.stringify({
      version: 1,
      added: [
        { cidr: '192.0.2.0/24', reason: 'r', origin: 'cli', expiresMs: Date.now() + 60_000 },
        { cidr: '198.51.100.0/24', reason: 'gone', origin: 'cli', expiresMs: Date.now() - 1 },
        { cidr: '2001:db8::/48', reason: '', origin: 'cli' },
        { reason: 'no cidr' },
      ],
      removed: [{ cidr: '203.0.113.5/32', atMs: 5 }, { cidr: 7, atMs: 1 }],
    }));
    const warnings: string[] = [];
    expect(blocks(file, warnings).load()).toEqual({ added: 2, removed: 1 });
    expect(warnings).toEqual([]);
  });

  it('starts empty with one warning line when the file is not JSON, and leaves it as it is', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fcr-relay-state-'));
    dirs.push(dir);
    const file = join(dir, 'relay-blocks.json');
    writeFileSync(file, '{not json');
    const warnings: string[] = [];
    expect(blocks(file, warnings).load()).toEqual({ added: 0, removed: 0 });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(new RegExp(`^relay drop list state ${file} unreadable, starting empty: .*JSON`));
    expect(readFileSync(file, 'utf8')).toBe('{not json');
  });
});
