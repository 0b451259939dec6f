// --peers-file: YAML (a list of addresses or {name, address, tls-server-name?}, optionally under `peers:`) or plain
// text with one address per line. Polled, so editors that replace the file are seen too.
import { readFileSync, statSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type { Logger } from 'pino';
import { FlowctlError } from '@flowctl/flow';
import type { PeerSpec } from './manager.js';

export function parsePeersFile(text: string, file: string): PeerSpec[] {
  const lines = text.split('\n');
  const plain = lines.every((l) => {
    const t = l.replace(/#.*/, '').trim();
    return t === '' || /^unix:\/\/\S+$/.test(t) || (/^[^\s:{}[\]-]\S*$/.test(t) && !t.endsWith(':'));
  });
  if (plain) {
    return lines.map((l) => l.replace(/#.*/, '').trim()).filter((l) => l !== '').map((address) => ({ address }));
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new FlowctlError('CONFIG', `${file}: ${(e as Error).message.split('\n')[0]}`);
  }
  if (doc && typeof doc === 'object' && !Array.isArray(doc) && 'peers' in doc) doc = (doc as { peers: unknown }).peers;
  if (doc === null || doc === undefined) return [];
  if (!Array.isArray(doc)) throw new FlowctlError('CONFIG', `${file}: want a list of peers (or "peers:" with a list)`);
  return doc.map((e: unknown, i): PeerSpec => {
    if (typeof e === 'string') return { address: e };
    if (e && typeof e === 'object' && typeof (e as { address?: unknown }).address === 'string') {
      const o = e as { address: string; name?: unknown; 'tls-server-name'?: unknown };
      const sn = o['tls-server-name'];
      if (sn !== undefined && typeof sn !== 'string') throw new FlowctlError('CONFIG', `${file}: peer ${i + 1}: tls-server-name must be a string`);
      return {
        ...(typeof o.name === 'string' && { name: o.name }),
        address: o.address,
        ...(sn && { tlsServerName: sn }),
      };
    }
    throw new FlowctlError('CONFIG', `${file}: peer ${i + 1}: want an address string or {name, address, tls-server-name?}`);
  });
}

/** Loads the file now and on every change; a broken file keeps the previous peer list. */
export function watchPeersFile(file: string, log: Logger, apply: (specs: PeerSpec[]) => void, intervalMs = 1000): () => void {
  // Polls the file's identity (inode, mtime, size) against what it was when last loaded. Not
  // fs.watchFile: its first stat is taken asynchronously, so a change made between our load and
  // that stat was never seen.
  const identity = () => {
    try {
      const st = statSync(file);
      return `${st.ino}:${st.mtimeMs}:${st.size}`;
    } catch {
      return 'missing';
    }
  };
  let loaded = '';
  const load = () => {
    loaded = identity(); // before reading: a write during the read is seen at the next poll
    try {
      const specs = parsePeersFile(readFileSync(file, 'utf8'), file);
      log.info({ file, peers: specs.length }, 'loaded peers file');
      apply(specs);
    } catch (e) {
      log.error({ file }, `${(e as Error).message}; keeping the previous peers`);
    }
  };
  load();
  const timer = setInterval(() => {
    if (identity() !== loaded) load();
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
