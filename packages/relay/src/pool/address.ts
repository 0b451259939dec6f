// Peer addresses as Hubble's relay accepts them: host:port, a bare host (port 4244 is the agent's
// Hubble port), [v6]:port, unix:///path or a bare /path.sock.
import { isIP } from 'node:net';
import { FlowctlError } from '@flowctl/flow';

export const DEFAULT_AGENT_PORT = 4244;

export interface PeerAddress {
  /** What grpc-js dials: `host:port`, `[v6]:port` or `unix:///path`. */
  target: string;
  /** As the user wrote it, for logs and as the peer name when none is known. */
  given: string;
}

const HOST_RE = /^[A-Za-z0-9]([A-Za-z0-9-]{0,62})?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62})?)*\.?$/;

function validPort(p: string): boolean {
  return /^\d{1,5}$/.test(p) && Number(p) >= 1 && Number(p) <= 65535;
}

/** Throws FlowctlError('CONFIG') naming the address and what is wrong with it. */
export function parsePeerAddress(given: string): PeerAddress {
  const s = given.trim();
  const bad = (why: string) => new FlowctlError('CONFIG', `invalid peer address "${given}": ${why}`);
  if (s === '') throw bad('empty');
  if (s.startsWith('unix://')) {
    const path = s.slice('unix://'.length);
    if (!path.startsWith('/')) throw bad('unix socket path must be absolute (unix:///path)');
    return { target: `unix://${path}`, given };
  }
  if (s.startsWith('/')) return { target: `unix://${s}`, given };
  if (s.includes('://')) throw bad('only unix:// URLs are supported; use host:port for TCP');
  if (s.startsWith('[')) {
    const m = /^\[([^\]]+)\](?::(.*))?$/.exec(s);
    if (!m || isIP(m[1]!) !== 6) throw bad('bad IPv6 literal');
    const port = m[2] ?? String(DEFAULT_AGENT_PORT);
    if (!validPort(port)) throw bad(`bad port "${port}"`);
    return { target: `[${m[1]}]:${port}`, given };
  }
  if (isIP(s) === 6) return { target: `[${s}]:${DEFAULT_AGENT_PORT}`, given };
  const colon = s.lastIndexOf(':');
  const host = colon >= 0 ? s.slice(0, colon) : s;
  const port = colon >= 0 ? s.slice(colon + 1) : String(DEFAULT_AGENT_PORT);
  if (!validPort(port)) throw bad(`bad port "${port}"`);
  if (isIP(host) !== 4 && !HOST_RE.test(host)) throw bad(`bad host "${host}"`);
  return { target: `${host}:${port}`, given };
}
