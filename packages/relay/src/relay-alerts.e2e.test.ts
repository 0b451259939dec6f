// Alerts through a relay from real flowctl-agent processes in --replay mode: each agent replays the
// flows of one scanner from the recorded nmap run (packages/agent/src/detect/testdata), as the node
// hosting it would see them, and raises that scan;
// `flowctl alerts` reads the merged stream, and a node that goes away is reported as GetFlows
// reports it, on stderr, while the other node's alerts keep coming.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot, spawnAgent, spawnRelay } from './testing/spawn.js';
import type { Child } from './testing/spawn.js';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'fcr-alerts-'));
const children: Child[] = [];
let agent2: Child;
let relay: Child;
const cli = (args: string[]) =>
  run(process.execPath, ['--conditions=@flowctl/source', '--import', 'tsx', join(repoRoot, 'packages/cli/src/bin.ts'), ...args, '--server', `127.0.0.1:${relay.port}`], { cwd: repoRoot, timeout: 30_000 });

interface Line { alert: { kind: string; node: string; time: string; source: { pod_name: string } } }
const parse = (stdout: string) => stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Line);

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, ms = 30_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

beforeAll(async () => {
  // A node reports the drops that happen on it, whoever scanned: were both agents to replay every
  // flow, node-1 would also report scanner-b from the policy drops recorded there.
  const recorded = gunzipSync(readFileSync(join(repoRoot, 'packages/agent/src/detect/testdata/nmap-ss-st-retry.jsonl.gz'))).toString().split('\n');
  const replayOf = (ip: string) => {
    const file = join(dir, `flows-${ip}.json`);
    writeFileSync(file, recorded.filter((l) => l.includes(`"${ip}"`)).join('\n') + '\n');
    return file;
  };
  // scanner-a runs on node-1, scanner-b on node-2: each node reports the scanner it hosts.
  const endpoints = join(dir, 'endpoints.yaml');
  writeFileSync(endpoints, `endpoints:
  - { name: scanner-a, namespace: default, node: node-1, labels: { app: scanner-a }, ips: [10.10.1.70] }
  - { name: scanner-b, namespace: default, node: node-2, labels: { app: scanner-b }, ips: [10.10.1.71] }
`);
  const common = ['--replay-rate', '1000', '--metrics-address', '', '--endpoints', endpoints, '--listen-address', '127.0.0.1:0'];
  const [agent1, a2] = await Promise.all([
    spawnAgent([...common, '--replay', replayOf('10.10.1.70'), '--node-name', 'node-1']),
    spawnAgent([...common, '--replay', replayOf('10.10.1.71'), '--node-name', 'node-2']),
  ]);
  agent2 = a2;
  children.push(agent1, agent2);
  relay = await spawnRelay(['--listen-address', '127.0.0.1:0', '--peer', `127.0.0.1:${agent1.port}`, '--peer', `127.0.0.1:${agent2.port}`, '--dial-timeout', '1s', '--retry-timeout', '1s']);
  children.push(relay);
}, 90_000);

afterAll(async () => {
  await Promise.all(children.map((c) => c.stop('SIGKILL')));
  rmSync(dir, { recursive: true, force: true });
});

describe('flowctl alerts through a relay', () => {
  it('merges both nodes\' alerts, oldest update first, each once', async () => {
    const lines = await waitFor('a port-scan alert from each node', async () => {
      const l = parse((await cli(['alerts', '-o', 'json', '--kind', 'port-scan'])).stdout);
      return l.length === 2 ? l : undefined;
    });
    expect(lines.map((l) => [l.alert.kind, l.alert.node, l.alert.source.pod_name]).sort()).toEqual([
      ['port-scan', 'node-1', 'scanner-a'],
      ['port-scan', 'node-2', 'scanner-b'],
    ]);
    expect(Date.parse(lines[0]!.alert.time)).toBeLessThanOrEqual(Date.parse(lines[1]!.alert.time));
    expect(parse((await cli(['alerts', '-o', 'json', '--kind', 'syn-flood'])).stdout)).toEqual([]);
    // The replay loops at 1,000 flows/s, so each scanner also opens connections fast enough to alert.
    const all = parse((await cli(['alerts', '-o', 'json'])).stdout);
    expect(all.map((l) => l.alert.kind).sort()).toEqual(['connection-rate', 'connection-rate', 'port-scan', 'port-scan'].slice(4 - all.length));
  });

  it('a node that stops: a follower hears of it on stderr, and one-shot reads name it and go on', async () => {
    const follow: ChildProcess = spawn(process.execPath, ['--conditions=@flowctl/source', '--import', 'tsx', join(repoRoot, 'packages/cli/src/bin.ts'), 'alerts', '--follow', '-o', 'json', '--server', `127.0.0.1:${relay.port}`], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    follow.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    follow.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    try {
      // The replay loops, so each scanner's alert keeps being updated.
      await waitFor('updates on the follow stream from both nodes', async () => (new Set(parse(out).map((l) => l.alert.node)).size === 2 ? true : undefined));
      await agent2.stop('SIGTERM');
      await waitFor('node-2 reported on the follower\'s stderr', async () => (/warning: alerts of node-2 missing/.test(err) ? true : undefined)).catch((e: Error) => {
        throw new Error(`${e.message}; stderr: ${err}`);
      });
      const before = parse(out).filter((l) => l.alert.node === 'node-1').length;
      await waitFor('node-1 updates after node-2 left', async () => (parse(out).filter((l) => l.alert.node === 'node-1').length > before ? true : undefined));
      const once = await cli(['alerts', '-o', 'json', '--kind', 'port-scan']);
      expect(parse(once.stdout).map((l) => l.alert.node)).toEqual(['node-1']);
      expect(once.stderr).toMatch(/warning: alerts of node-2 missing: (unavailable|error)/);
    } finally {
      follow.kill('SIGKILL');
    }
  });
});
