// `make demo TLS=1` (scripts/demo.sh up --tls): the demo cluster with mutual TLS end to end. Real
// agents in their node namespaces serve TLS on their node's (non-loopback) address, the relay
// verifies them as <node>.default.hubble-grpc.cilium.io, and the real Hubble CLI and flowctl read
// flows of both nodes only with the client certificate the script printed flags for.
import { execFile } from 'node:child_process';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hubbleCli } from '../../packages/flow/src/testing/hubble.js';
import { DEMO, FLOWCTL } from './paths.js';

const run = promisify(execFile);
const RUN_DIR = '/run/flowctl-demo-tls-e2e';
const RELAY = '127.0.0.1:14246';
// Its own names, so a `make demo-up` of the user's can run beside it.
const env = { ...process.env, FLOWCTL_DEMO_PREFIX: 'fct', FLOWCTL_DEMO_DIR: RUN_DIR, FLOWCTL_DEMO_RELAY: RELAY, FLOWCTL_SERVER: '' };
const isRoot = process.getuid?.() === 0;

let printed = '';

async function tryRun(cmd: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    return { code: 0, ...(await run(cmd, args, { env, timeout: 60_000, maxBuffer: 64 << 20 })) };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof err.code === 'number' ? err.code : 1, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}

/** The TLS flags the demo printed for its hubble command. */
function tlsFlags(): string[] {
  const line = printed.split('\n').find((l) => l.includes('hubble observe') && l.includes('--tls-client-cert-file'));
  if (!line) throw new Error(`the demo printed no hubble command with TLS flags:\n${printed}`);
  const words = line.trim().split(/\s+/);
  return words.slice(words.indexOf('--tls'), words.indexOf('--last'));
}

describe.skipIf(!isRoot)('demo cluster with mutual TLS (make demo TLS=1)', { tags: ['hubble'] }, () => {
  beforeAll(async () => {
    const r = await run(DEMO, ['up', '--tls'], { env, timeout: 120_000 });
    printed = r.stdout;
  }, 180_000);

  afterAll(async () => {
    await run(DEMO, ['down'], { env, timeout: 60_000 }).catch((err: unknown) => process.stderr.write(`demo down failed: ${String(err)}\n`));
  }, 90_000);

  it('hubble and flowctl read flows of both nodes through the relay with the printed TLS flags', async () => {
    const flags = tlsFlags();
    expect(flags).toEqual(expect.arrayContaining(['--tls-ca-cert-files', '--tls-client-cert-file', '--tls-client-key-file', '--tls-server-name']));
    let nodes = new Set<string>();
    for (let i = 0; i < 60 && nodes.size < 2; i++) {
      const h = await tryRun(hubbleCli(), ['observe', '--server', RELAY, ...flags, '--last', '100', '-o', 'json']);
      nodes = new Set(h.stdout.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { node_name?: string }).node_name ?? ''));
      if (nodes.size < 2) await new Promise((r) => setTimeout(r, 1000));
    }
    expect([...nodes].sort()).toEqual(['node-1', 'node-2']);
    const f = await tryRun(FLOWCTL, ['observe', '--server', RELAY, ...flags, '--last', '20', '-o', 'json']);
    expect(f.code).toBe(0);
    expect(f.stdout.split('\n').filter(Boolean).length).toBeGreaterThan(0);
    const st = await tryRun(FLOWCTL, ['status', '--server', RELAY, ...flags]);
    expect(st.stdout).toMatch(/Connected Nodes:\s+2\/2/);
  });

  it('agents listen on their node address with TLS; the relay dials them by Hubble server name', async () => {
    const relayLog = await tryRun('cat', [join(RUN_DIR, 'logs', 'relay.log')]);
    expect(relayLog.stdout).toMatch(/"peer":"node-1","address":"10\.10\.201\.2:4244","msg":"connected to peer"/);
    expect(relayLog.stdout).toMatch(/"peer":"node-2","address":"10\.10\.202\.2:4244","msg":"connected to peer"/);
    const agentLog = await tryRun('cat', [join(RUN_DIR, 'logs', 'agent-node-1.log')]);
    expect(agentLog.stdout).toMatch(/"tcp":"10\.10\.201\.2:4244","tcpPort":4244,"tls":"mutual"/);
    expect(statSync(join(RUN_DIR, 'node-1.sock')).mode & 0o777).toBe(0o660);
  });

  it('refuses a client without a certificate and logs it once', async () => {
    const flags = tlsFlags().filter((_, i, a) => !['--tls-client-cert-file', '--tls-client-key-file'].includes(a[i]!) && !['--tls-client-cert-file', '--tls-client-key-file'].includes(a[i - 1]!));
    for (let i = 0; i < 2; i++) {
      const h = await tryRun(hubbleCli(), ['observe', '--server', RELAY, ...flags, '--last', '1', '--timeout', '2s']);
      expect(h.code).not.toBe(0);
    }
    const relayLog = await tryRun('cat', [join(RUN_DIR, 'logs', 'relay.log')]);
    expect(relayLog.stdout.split('\n').filter((l) => l.includes('"reason":"no client certificate"'))).toHaveLength(1);
  });
});
