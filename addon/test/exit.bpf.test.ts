// TC filters and qdiscs are netlink objects that outlive a process (TCX links die with their fd); these run a child that
// attaches and then dies in each way a daemon can, and check that nothing of ours stays behind.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addonDir, inNs, linkExists, makeVethPair, removeNetnsWithPrefix, skipReason, testObject } from './helpers.js';

const skip = skipReason();
const P = 'fcl-x-';
const child = join(addonDir, 'test', 'fixtures', 'attach-child.ts');
const repoRoot = join(addonDir, '..');

/** What of the child's is still attached: its filters and qdiscs on our veths, the TCX links it said it made. */
function attachedState(net: ReturnType<typeof makeVethPair>, tcxLinks: number[]): string {
  return [
    inNs(net.a, 'tc', ['filter', 'show', 'dev', net.va, 'ingress']),
    inNs(net.a, 'tc', ['filter', 'show', 'dev', net.va, 'egress']),
    inNs(net.b, 'tc', ['filter', 'show', 'dev', net.vb, 'ingress']),
    inNs(net.a, 'tc', ['qdisc', 'show', 'dev', net.va]).includes('clsact') ? 'clsact on va' : '',
    inNs(net.b, 'tc', ['qdisc', 'show', 'dev', net.vb]).includes('clsact') ? 'clsact on vb' : '',
    ...tcxLinks.filter(linkExists).map((id) => `tcx link ${id}`),
  ]
    .join('')
    .trim();
}

function runChild(
  mode: string,
  net: ReturnType<typeof makeVethPair>,
  signal?: NodeJS.Signals,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; whileRunning: string; stderr: string; tcxLinks: number[] }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', child, mode, testObject, net.a, net.va, net.b, net.vb], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let whileRunning = '';
    let stderr = '';
    let stdout = '';
    let tcxLinks: number[] = [];
    const timer = setTimeout(() => {
      p.kill('SIGKILL');
      reject(new Error(`child (${mode}) did not finish: ${stderr}`));
    }, 30_000);
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      const ready = /^ready ([\d,]*)\n/m.exec(stdout);
      if (!ready || tcxLinks.length) return;
      tcxLinks = ready[1]!.split(',').filter(Boolean).map(Number);
      if (signal) {
        whileRunning = attachedState(net, tcxLinks);
        p.kill(signal);
      }
    });
    p.on('exit', (code, sig) => {
      clearTimeout(timer);
      resolve({ code, signal: sig, whileRunning, stderr, tcxLinks });
    });
  });
}

describe.skipIf(skip)('nothing stays attached after the process ends (real kernel)', () => {
  let net: ReturnType<typeof makeVethPair>;
  beforeAll(() => {
    removeNetnsWithPrefix(P);
    net = makeVethPair(P, 2);
  });
  afterAll(() => removeNetnsWithPrefix(P));

  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    it(`on ${sig}, and the process still dies by that signal`, async () => {
      const r = await runChild('signal', net, sig);
      expect(r.whileRunning).toMatch(/count_ingress/);
      expect(r.whileRunning).toMatch(/clsact on va/);
      expect(r.whileRunning).toMatch(/tcx link \d+/);
      expect(r.signal).toBe(sig);
      expect(attachedState(net, r.tcxLinks)).toBe('');
    });
  }

  it('on process.exit()', async () => {
    const r = await runChild('exit', net);
    expect(r.code).toBe(3);
    expect(r.tcxLinks).toHaveLength(1);
    expect(attachedState(net, r.tcxLinks)).toBe('');
  });

  it('on an uncaught exception', async () => {
    const r = await runChild('throw', net);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/child crashed on purpose/);
    expect(r.tcxLinks).toHaveLength(1);
    expect(attachedState(net, r.tcxLinks)).toBe('');
  });

  it('when the event loop simply runs out', async () => {
    const r = await runChild('natural', net);
    expect(r.code).toBe(0);
    expect(r.tcxLinks).toHaveLength(1);
    expect(attachedState(net, r.tcxLinks)).toBe('');
  });
});
