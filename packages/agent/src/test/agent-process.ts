// The real agent process (from source, through tsx) in a node network namespace, serving on a
// unix socket: started, waited for until it serves and has attached to every pod interface.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { HealthCheckResponse_ServingStatus, HealthClient } from '@flowctl/flow';
import type { Topology } from './netns.js';

export const REPO = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../../..');

export interface AgentProcess {
  proc: ChildProcess;
  sock: string;
  log(): string;
}

/** Polls `f` until it gives something other than undefined or false; the error carries `log`. */
export async function waitFor<T>(what: string, f: () => Promise<T | undefined> | T | undefined, ms: number, log = () => ''): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const v = await f();
      if (v !== undefined && v !== false) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} not ready within ${ms} ms ${last ? String(last) : ''}\nagent log:\n${log().slice(-3000)}`);
}

/** Starts the agent in `topo.node` with the endpoints file `endpoints`, serving on `dir`/hubble.sock;
 * FLOWCTL_AGENT_NODE_ARGS adds node flags (a profiler's --require, say). */
export async function startAgent(topo: Topology, dir: string, endpoints: string, args: string[]): Promise<AgentProcess> {
  const sock = join(dir, 'hubble.sock');
  let log = '';
  const proc = spawn('ip', [
    'netns', 'exec', topo.node, process.execPath, ...(process.env.FLOWCTL_AGENT_NODE_ARGS?.split(' ').filter(Boolean) ?? []), '--conditions=@flowctl/source', '--import', 'tsx',
    join(REPO, 'packages/agent/src/main.ts'),
    '--node-name', topo.node, '--endpoints', endpoints, '--unix-socket', sock, ...args,
  ], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout!.on('data', (d: Buffer) => (log += d));
  proc.stderr!.on('data', (d: Buffer) => (log += d));
  const a = { proc, sock, log: () => log };
  const exited = new Promise<never>((_, rej) => proc.once('exit', (code) => rej(new Error(`the agent exited ${code}:\n${log.slice(-3000)}`))));
  exited.catch(() => {});
  await Promise.race([exited, waitFor('agent health', () => new Promise<boolean | undefined>((res) => {
    if (!existsSync(sock)) return res(undefined);
    const h = new HealthClient(`unix:${sock}`, grpc.credentials.createInsecure());
    h.check({ service: 'hubble.server.Observer' }, (e, r) => {
      h.close();
      res(!e && r.status === HealthCheckResponse_ServingStatus.SERVING ? true : undefined);
    });
  }), 30_000, a.log)]);
  const last = topo.pods[topo.pods.length - 1]!.hostIf;
  await waitFor('attachments', () => log.includes(`"ifname":"${last}"`) || undefined, 10_000, a.log);
  return a;
}
