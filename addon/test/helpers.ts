// Shared by the real-kernel suites: the test objects, the privilege gate, and namespace plumbing
// under this suite's prefix (fcl-) and subnet (10.201.0.0/16) from docs/design/contracts.md.
import { execFileSync, spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { probeFeatures } from '../lib/index.js';

export const addonDir = join(dirname(fileURLToPath(import.meta.url)), '..');
export const testObject = join(addonDir, 'build', 'bpf', 'loader_test.bpf.o');
export const rejectedObject = join(addonDir, 'build', 'bpf', 'rejected.bpf.o');
export const batchObject = join(addonDir, 'build', 'bpf', 'batch_test.bpf.o');

/** Why BPF tests cannot run here, or undefined. Only an unprivileged kernel is a reason to skip. */
export function skipReason(): string | undefined {
  const f = probeFeatures();
  if (f.privileged) return undefined;
  const reason = `kernel refuses BPF to this process (${f.privilegeError ?? 'no CAP_BPF/CAP_SYS_ADMIN'})`;
  console.warn(`\n*** SKIPPING bpf-loader kernel tests: ${reason} ***\n`);
  return reason;
}

export function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Runs and ignores failure (cleanup of things that may not exist). */
export function shQuiet(cmd: string, args: string[]): void {
  spawnSync(cmd, args, { stdio: 'ignore' });
}

export function inNs(ns: string, cmd: string, args: string[]): string {
  return sh('ip', ['netns', 'exec', ns, cmd, ...args]);
}

/** Removes namespaces (and their veths) left by an earlier crashed run of this prefix. */
export function removeNetnsWithPrefix(prefix: string): void {
  const list = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout ?? '';
  for (const line of list.split('\n')) {
    const name = line.split(' ')[0];
    if (name && name.startsWith(prefix)) shQuiet('ip', ['netns', 'del', name]);
  }
  const links = spawnSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }).stdout ?? '';
  for (const line of links.split('\n')) {
    const m = /^\d+: ([^:@]+)/.exec(line);
    if (m?.[1]?.startsWith(prefix)) shQuiet('ip', ['link', 'del', m[1]]);
  }
}

/**
 * Two namespaces joined by a veth: `${p}a` holds `${p}va` (10.201.N.1), `${p}b` holds `${p}vb`
 * (10.201.N.2).
 */
export function makeVethPair(p: string, subnet: number): { a: string; b: string; va: string; vb: string; ipA: string; ipB: string } {
  const a = `${p}a`, b = `${p}b`, va = `${p}va`, vb = `${p}vb`;
  const ipA = `10.201.${subnet}.1`, ipB = `10.201.${subnet}.2`;
  sh('ip', ['netns', 'add', a]);
  sh('ip', ['netns', 'add', b]);
  sh('ip', ['link', 'add', va, 'netns', a, 'type', 'veth', 'peer', 'name', vb, 'netns', b]);
  inNs(a, 'ip', ['addr', 'add', `${ipA}/24`, 'dev', va]);
  inNs(b, 'ip', ['addr', 'add', `${ipB}/24`, 'dev', vb]);
  for (const [ns, dev] of [[a, va], [b, vb]] as const) {
    inNs(ns, 'ip', ['link', 'set', dev, 'up']);
    inNs(ns, 'ip', ['link', 'set', 'lo', 'up']);
  }
  return { a, b, va, vb, ipA, ipB };
}

export function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}

export function u64(n: bigint | number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return b;
}

export { linkExists, ownTcxLinks } from '../lib/testing.js';
