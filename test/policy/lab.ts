// The policy suites' lab on the real kernel: a node network namespace with a bridge, one veth per
// pod namespace (like a CNI without overlay), the real agent inside the node namespace, and the
// waiting and skipping both suites do. Each suite has its own prefix and subnet
// (docs/design/contracts.md, "Tests on the real kernel").
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The whole flowctl CLI, from source, as its own process. */
export function flowctl(...args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((res) => {
    const p = spawn(process.execPath, ['--conditions=@flowctl/source', '--import', 'tsx', join(ROOT, 'packages/cli/src/bin.ts'), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout!.on('data', (d: Buffer) => (out += d));
    p.stderr!.on('data', (d: Buffer) => (err += d));
    p.on('close', (code) => res({ code, out, err }));
  });
}

export const sh = (cmd: string[]): string => {
  const r = spawnSync(cmd[0]!, cmd.slice(1), { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd.join(' ')}: exit ${r.status}: ${r.stderr.trim()}`);
  return r.stdout;
};
const quiet = (cmd: string[]) => spawnSync(cmd[0]!, cmd.slice(1), { stdio: 'ignore' }).status;

export interface LabPod {
  netns: string;
  /** The host side of the pod's veth, in the node namespace. */
  hostIf: string;
  ip: string;
  ip6?: string;
}

export interface Lab {
  /** netns and link prefix: cleanup removes every namespace starting with it. */
  prefix: string;
  node: string;
  bridge: string;
  gateway: string;
  gateway6?: string;
  pods: LabPod[];
}

/** Removes every namespace of the lab's prefix (leftovers of a crashed run included); their veths go with them. */
export function cleanupLab(lab: Pick<Lab, 'prefix'>): void {
  let names: string[] = [];
  try {
    names = readdirSync('/run/netns');
  } catch {
    return;
  }
  for (const n of names) if (n.startsWith(lab.prefix)) quiet(['ip', 'netns', 'del', n]);
}

export function buildLab(lab: Lab): void {
  cleanupLab(lab);
  const { node, bridge } = lab;
  sh(['ip', 'netns', 'add', node]);
  sh(['ip', '-n', node, 'link', 'set', 'lo', 'up']);
  sh(['ip', '-n', node, 'link', 'add', bridge, 'type', 'bridge']);
  sh(['ip', '-n', node, 'addr', 'add', `${lab.gateway}/24`, 'dev', bridge]);
  if (lab.gateway6) sh(['ip', '-n', node, 'addr', 'add', `${lab.gateway6}/64`, 'dev', bridge, 'nodad']);
  sh(['ip', '-n', node, 'link', 'set', bridge, 'up']);
  for (const p of lab.pods) {
    sh(['ip', 'netns', 'add', p.netns]);
    sh(['ip', 'link', 'add', p.hostIf, 'netns', node, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', p.netns]);
    sh(['ip', '-n', node, 'link', 'set', p.hostIf, 'master', bridge, 'up']);
    sh(['ip', '-n', p.netns, 'link', 'set', 'lo', 'up']);
    sh(['ip', '-n', p.netns, 'addr', 'add', `${p.ip}/24`, 'dev', 'eth0']);
    if (p.ip6) sh(['ip', '-n', p.netns, 'addr', 'add', `${p.ip6}/64`, 'dev', 'eth0', 'nodad']);
    sh(['ip', '-n', p.netns, 'link', 'set', 'eth0', 'up']);
    sh(['ip', '-n', p.netns, 'route', 'add', 'default', 'via', lab.gateway]);
  }
}

/**
 * Why the suite `file` must skip, said loudly on stderr, or undefined. Only when the kernel refuses
 * BPF; a missing build is a failure, not a skip.
 */
export async function bpfSkipReason(file: string): Promise<string | undefined> {
  let reason: string | undefined;
  if (process.getuid?.() !== 0) reason = 'not root: the kernel refuses BPF and namespaces';
  else {
    try {
      const { KernelDatapath } = await import('../../packages/agent/src/datapath/kernel.js');
      new KernelDatapath({ ringBytes: 1 << 16, tracepoints: false }).close();
    } catch (e) {
      const err = e as { code?: string; errno?: number; message?: string };
      if (err.code === 'EPERM' || err.code === 'EACCES' || err.errno === 1 || err.errno === 13) {
        reason = `the kernel refused BPF: ${String(err.message).split('\n')[0]}`;
      }
    }
  }
  if (reason) process.stderr.write(`\n!!! SKIPPING ${file}: ${reason} !!!\n\n`);
  return reason;
}

/** Runs `args` in namespace `ns`; its stdout, or a rejection with its stderr. */
export function inNs(ns: string, args: string[], timeoutMs = 10_000): Promise<string> {
  return new Promise((res, rej) => {
    const p = spawn('ip', ['netns', 'exec', ns, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.stdout!.on('data', (d: Buffer) => (out += d));
    p.stderr!.on('data', (d: Buffer) => (err += d));
    p.on('close', (code) => {
      clearTimeout(t);
      if (code === 0) res(out);
      else rej(new Error(`${args.join(' ')} in ${ns} exited ${code}: ${err.trim()}`));
    });
  });
}

/** Polls `f` until it gives a value; the error says what was awaited and `context()` (an agent log). */
export async function waitFor<T>(what: string, f: () => Promise<T | undefined> | T | undefined, ms: number, context: () => string = () => ''): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const v = await f();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what} not within ${ms} ms ${last ? String(last) : ''}\n${context()}`);
}

export interface LabAgent {
  proc: ChildProcess;
  /** Everything it logged so far. */
  log(): string;
  /** SIGTERM and wait for the exit (SIGKILL after 5 s). */
  stop(): Promise<void>;
}

/** The real agent (through tsx) in the lab's node namespace; resolves once attached to every pod. */
export async function startAgent(lab: Lab, args: string[], sock: string): Promise<LabAgent> {
  let log = '';
  const proc = spawn('ip', [
    'netns', 'exec', lab.node, process.execPath, '--conditions=@flowctl/source', '--import', 'tsx',
    join(ROOT, 'packages/agent/src/main.ts'), '--node-name', lab.node, '--unix-socket', sock, '--listen-address', '', ...args,
  ], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout!.on('data', (d: Buffer) => (log += d));
  proc.stderr!.on('data', (d: Buffer) => (log += d));
  const agent: LabAgent = {
    proc,
    log: () => log,
    stop: async () => {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise<void>((r) => proc.once('exit', () => r()));
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    },
  };
  const attached = () => lab.pods.every((p) => log.includes(`"ifname":"${p.hostIf}","msg":"attached"`)) && existsSync(sock);
  await waitFor('agent attached to every pod', () => (attached() ? true : undefined), 40_000, () => `agent log:\n${log.slice(-3000)}`);
  return agent;
}
