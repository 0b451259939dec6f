// Transport security end to end (issue 27): two real flowctl agents (replay mode) serving mutual TLS,
// a flowctl-relay dialling them with its client certificate and serving mutual TLS itself, and the
// real Hubble CLI and flowctl reading flows through it with certificates from a throw-away
// openssl CA. Then every refused case, each logged once; rotation of the relay's certificate under
// a --follow client; start-up errors naming the file or flag; unix sockets with mode 0660.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PeerClient, type ChangeNotification } from '@flowctl/flow';
import { encodeResponse } from '@flowctl/flow/json';
import { clientCredentials, serverNameOptions } from '@flowctl/flow/tls';
import { hubbleCli, makeCa, makeCorpus, makeLeaf, type Ca, type KeyPair } from '@flowctl/flow/testing';
import { startFakeAgent, type FakeAgent } from './testing/fake-agent.js';
import { repoRoot, spawnAgent, spawnRelay, type Child } from './testing/spawn.js';

const run = promisify(execFile);

const RELAY_NAME = 'relay.hubble-relay.cilium.io';
const dir = mkdtempSync(join(tmpdir(), 'fcr-tls-'));
const children: Child[] = [];
let ca: Ca;
let client: KeyPair;
let relay: Child;
let agents: Child[];
let rogue: FakeAgent | undefined;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function waitFor<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(150);
  }
}

const mtls = (kp: KeyPair | undefined, serverName = RELAY_NAME) => [
  '--tls', '--tls-ca-cert-files', ca.cert, '--tls-server-name', serverName,
  ...(kp ? ['--tls-client-cert-file', kp.cert, '--tls-client-key-file', kp.key] : []),
];

async function hubble(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(hubbleCli(), [...args, '--server', `127.0.0.1:${relay.port}`], { timeout: 30_000 });
    return { code: 0, ...r };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof err.code === 'number' ? err.code : 1, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}

function flowctl(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ['--conditions=@flowctl/source', '--import', 'tsx', join(repoRoot, 'packages/cli/src/bin.ts'), ...args], {
      cwd: repoRoot,
      env: { ...process.env, FLOWCTL_SERVER: '' },
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Relay log lines (pino JSON) of one message. */
const relayLog = (msg: string) =>
  relay
    .stderr()
    .split('\n')
    .filter((l) => l.includes(`"msg":"${msg}"`))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

/** The certificate the relay presents to a new connection. */
function presented(): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port: relay.port, ca: readFileSync(ca.cert), servername: RELAY_NAME, cert: readFileSync(client.cert), key: readFileSync(client.key), ALPNProtocols: ['h2'] }, () => {
      const c = s.getPeerX509Certificate();
      s.destroy();
      if (c) resolve(c);
      else reject(new Error('no certificate'));
    });
    s.on('error', reject);
  });
}

beforeAll(async () => {
  ca = makeCa(dir, 'ca');
  const agentCerts = [1, 2].map((n) => makeLeaf(dir, ca, `node-${n}`, [`node-${n}.default.hubble-grpc.cilium.io`]));
  makeLeaf(dir, ca, 'relay-server', [RELAY_NAME]);
  const relayClient = makeLeaf(dir, ca, 'relay-client', ['relay-client.hubble-relay.cilium.io']);
  client = makeLeaf(dir, ca, 'client', ['client.example']);
  const replay = join(dir, 'flows.json');
  writeFileSync(replay, `${makeCorpus(200, 7).filter((r) => r.flow).map(encodeResponse).join('\n')}\n`);
  agents = await Promise.all(
    [1, 2].map((n) =>
      spawnAgent([
        '--replay', replay, '--replay-rate', '50', '--metrics-address', '', '--node-name', `node-${n}`,
        '--listen-address', '127.0.0.1:0', '--unix-socket', join(dir, `node-${n}.sock`),
        '--tls-cert-file', agentCerts[n - 1]!.cert, '--tls-key-file', agentCerts[n - 1]!.key, '--tls-client-ca-files', ca.cert,
      ]),
    ),
  );
  children.push(...agents);
  // An agent whose certificate comes from another CA: the relay must refuse it, and say so once.
  const otherCa = makeCa(dir, 'other-ca');
  const rogueCert = makeLeaf(dir, otherCa, 'rogue', ['rogue.default.hubble-grpc.cilium.io']);
  rogue = await startFakeAgent({
    nodeName: 'rogue', listen: '127.0.0.1:0', rate: 0,
    tls: { cert: { flag: 'cert', path: rogueCert.cert }, key: { flag: 'key', path: rogueCert.key }, clientCAs: [] },
  });
  writeFileSync(join(dir, 'peers.yaml'), [
    `- { name: node-1, address: "127.0.0.1:${agents[0]!.port}" }`,
    `- { name: node-2, address: "127.0.0.1:${agents[1]!.port}" }`,
    `- { name: rogue, address: "127.0.0.1:${rogue.port}" }`,
    '',
  ].join('\n'));
  // The relay reads its certificate from files the rotation test replaces.
  copyFileSync(join(dir, 'relay-server.crt'), join(dir, 'relay.crt'));
  copyFileSync(join(dir, 'relay-server.key'), join(dir, 'relay.key'));
  relay = await spawnRelay([
    '--listen-address', '127.0.0.1:0', '--peers-file', join(dir, 'peers.yaml'),
    '--dial-timeout', '1s', '--retry-timeout', '1s',
    '--tls-relay-server-cert-file', join(dir, 'relay.crt'), '--tls-relay-server-key-file', join(dir, 'relay.key'),
    '--tls-relay-client-ca-files', ca.cert,
    '--tls-hubble-server-ca-files', ca.cert, '--tls-hubble-client-cert-file', relayClient.cert, '--tls-hubble-client-key-file', relayClient.key,
  ]);
  children.push(relay);
  await waitFor('both agents connected over mTLS', () => relayLog('connected to peer').length === 2);
}, 120_000);

afterAll(async () => {
  await Promise.all(children.map((c) => c.stop('SIGKILL')));
  await rogue?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('mutual TLS between agents, relay and clients', { tags: ['hubble'] }, () => {
  it('the real Hubble CLI and flowctl read both agents through the relay with client certificates', async () => {
    await waitFor('flows of both nodes', async () => {
      const r = await hubble(['observe', '--last', '20', '-o', 'json', ...mtls(client)]);
      return new Set(r.stdout.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { node_name?: string }).node_name)).size === 2;
    });
    const h = await hubble(['list', 'nodes', ...mtls(client)]);
    expect(h.code).toBe(0);
    expect(h.stdout).toMatch(/node-1\s+Connected/);
    expect(h.stdout).toMatch(/node-2\s+Connected/);
    expect(h.stdout).toMatch(/rogue\s+Unavailable/);

    const f = await flowctl(['observe', '--server', `tls://127.0.0.1:${relay.port}`, '--tls-ca-cert-files', ca.cert, '--tls-server-name', RELAY_NAME,
      '--tls-client-cert-file', client.cert, '--tls-client-key-file', client.key, '--last', '20', '-o', 'json']);
    // The only notice: the rogue agent the relay refused.
    expect(f.stderr.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { node_status?: { node_names?: string[] } })).toEqual([
      expect.objectContaining({ node_status: expect.objectContaining({ state_change: 'NODE_UNAVAILABLE', node_names: ['rogue'] }) }),
    ]);
    expect(f.code).toBe(0);
    const nodes = new Set(f.stdout.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { node_name?: string }).node_name));
    expect([...nodes].sort()).toEqual(['node-1', 'node-2']);
  });

  it('refuses an agent signed by another CA, logging the reason once across retries', async () => {
    await sleep(2500); // several 1 s retries
    const lines = relayLog('cannot connect to peer').filter((l) => l.peer === 'rogue');
    expect(lines).toHaveLength(1);
    expect(String(lines[0]!.reason)).toMatch(/self-signed certificate in certificate chain|unable to verify|issuer/);
    expect(lines[0]!.serverName).toBe('rogue.default.hubble-grpc.cilium.io');
  });

  const refused: [string, () => string[], RegExp][] = [
    ['no client certificate', () => mtls(undefined), /^no client certificate$/],
    ['a client certificate from another CA', () => mtls(makeLeaf(dir, makeCa(dir, 'ca-3'), 'client-3', ['client.example'])), /not signed by a trusted CA/],
    ['an expired client certificate', () => mtls(makeLeaf(dir, ca, 'client-expired', ['client.example'], { expired: true })), /expired/],
    ['the wrong server name', () => mtls(client, 'node-9.default.hubble-grpc.cilium.io'), /bad certificate/],
    ['plaintext to the TLS port', () => [], /not TLS/],
  ];
  it.each(refused)('refuses %s, and logs it once however often the client retries', async (_what, args, reason) => {
    const a = args();
    const before = relayLog('TLS handshake failed').length;
    for (let i = 0; i < 2; i++) {
      const r = await hubble(['observe', '--last', '1', '--timeout', '2s', ...a]);
      expect(r.code).not.toBe(0);
      expect(r.stdout).toBe('');
    }
    const lines = relayLog('TLS handshake failed').slice(before);
    expect(lines.map((l) => l.reason)).toEqual([expect.stringMatching(reason)]);
    expect(lines[0]!.peer).toBe('127.0.0.1');
  });

  it('flowctl takes a client certificate as implying TLS, and --tls-allow-insecure skips verifying the server', async () => {
    const f = await flowctl(['status', '--server', `127.0.0.1:${relay.port}`, '--tls-allow-insecure', '--tls-client-cert-file', client.cert, '--tls-client-key-file', client.key]);
    expect(f.stderr).toBe('');
    expect(f.code).toBe(0);
    expect(f.stdout).toMatch(/Connected Nodes:\s+2\/3/);
  });

  it('flowctl names the reason when the server name does not match', async () => {
    const f = await flowctl(['status', '--server', `tls://127.0.0.1:${relay.port}`, '--timeout', '2s', ...mtls(client, 'other.example').slice(1)]);
    expect(f.code).not.toBe(0);
    expect(f.stderr).toMatch(/does not match certificate's altnames|altnames/);
  });

  it('rotates the relay certificate without cutting a running --follow stream', async () => {
    const oldCert = await presented();
    const follow: ChildProcess = spawn(hubbleCli(), ['observe', '--follow', '-o', 'json', '--server', `127.0.0.1:${relay.port}`, ...mtls(client)]);
    let lines = 0;
    follow.stdout!.on('data', (d: Buffer) => (lines += d.toString().split('\n').length - 1));
    try {
      await waitFor('the follow client receiving flows', () => lines > 5);
      // A broken rotation first: the error names the file, the last good certificate stays.
      const reloads = () => relayLog('TLS certificate reloaded').length;
      writeFileSync(join(dir, 'relay.crt'), readFileSync(join(dir, 'client-expired.crt')));
      writeFileSync(join(dir, 'relay.key'), readFileSync(join(dir, 'client-expired.key')));
      await waitFor('the reload error', () => relay.stderr().includes('keeping the last good certificate'));
      expect(relay.stderr()).toMatch(new RegExp(`--tls-relay-server-cert-file ${join(dir, 'relay.crt')}: certificate .* expired on 2020-01-02`));
      expect((await presented()).fingerprint256).toBe(oldCert.fingerprint256);

      const fresh = makeLeaf(dir, ca, 'relay-server-2', [RELAY_NAME]);
      writeFileSync(join(dir, 'relay.crt'), readFileSync(fresh.cert));
      writeFileSync(join(dir, 'relay.key'), readFileSync(fresh.key));
      await waitFor('the reload', () => reloads() === 1);
      const newCert = await presented();
      expect(newCert.fingerprint256).not.toBe(oldCert.fingerprint256);
      expect(newCert.fingerprint256).toBe(new X509Certificate(readFileSync(fresh.cert)).fingerprint256);
      const seen = lines;
      await waitFor('flows after the rotation on the same stream', () => lines > seen + 5);
      expect(follow.exitCode).toBeNull();
      const h = await hubble(['observe', '--last', '1', '-o', 'json', ...mtls(client)]);
      expect(h.code).toBe(0);
    } finally {
      follow.kill('SIGKILL');
    }
  });

  it('agents announce their TLS server name on peer.Peer/Notify, as Cilium agents do', async () => {
    const pc = new PeerClient(`127.0.0.1:${agents[0]!.port}`, clientCredentials({
      ca: [{ flag: 'ca', path: ca.cert }], cert: { flag: 'cert', path: client.cert }, key: { flag: 'key', path: client.key },
    }), serverNameOptions('node-1.default.hubble-grpc.cilium.io'));
    try {
      const first = await new Promise<ChangeNotification>((resolve, reject) => {
        const s = pc.notify({});
        s.on('data', (n: ChangeNotification) => {
          resolve(n);
          s.cancel();
        });
        s.on('error', (e: Error & { code?: number }) => (e.code === 1 ? undefined : reject(e)));
      });
      expect(first).toMatchObject({ name: 'node-1', address: `127.0.0.1:${agents[0]!.port}`, tls: { server_name: 'node-1.default.hubble-grpc.cilium.io' } });
    } finally {
      pc.close();
    }
  });

  it('creates the agents\' unix sockets with mode 0660', () => {
    for (const n of [1, 2]) expect(statSync(join(dir, `node-${n}.sock`)).mode & 0o777).toBe(0o660);
  });
});

describe('start-up refusals', () => {
  const agentMain = join(repoRoot, 'packages/agent/src/main.ts');
  const relayMain = join(repoRoot, 'packages/relay/src/main.ts');
  async function exits(main: string, args: string[]): Promise<{ code: number; stderr: string }> {
    try {
      await run(process.execPath, ['--conditions=@flowctl/source', '--import', 'tsx', main, ...args], { cwd: repoRoot, timeout: 30_000 });
      return { code: 0, stderr: '' };
    } catch (e) {
      const err = e as { code?: number; stderr?: string };
      return { code: err.code ?? -1, stderr: err.stderr ?? '' };
    }
  }
  const agentBase = () => ['--replay', join(dir, 'flows.json'), '--metrics-address', '', '--node-name', 'n'];

  it('an agent with a missing or expired certificate exits with one line naming the file', async () => {
    const missing = await exits(agentMain, [...agentBase(), '--listen-address', '127.0.0.1:0', '--tls-cert-file', join(dir, 'nope.crt'), '--tls-key-file', join(dir, 'node-1.key')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr.trim().split('\n')).toEqual([`flowctl-agent: --tls-cert-file ${join(dir, 'nope.crt')}: cannot read: no such file`]);
    // Its own expired pair: the one of the hubble-tagged block is not made when that block skips.
    makeLeaf(dir, ca, 'agent-expired', ['node-1.default.hubble-grpc.cilium.io'], { expired: true });
    const expired = await exits(agentMain, [...agentBase(), '--listen-address', '127.0.0.1:0', '--tls-cert-file', join(dir, 'agent-expired.crt'), '--tls-key-file', join(dir, 'agent-expired.key')]);
    expect(expired.code).toBe(2);
    expect(expired.stderr.trim()).toMatch(new RegExp(`^flowctl-agent: --tls-cert-file ${join(dir, 'agent-expired.crt')}: certificate ".*" expired on 2020-01-02T00:00:00.000Z$`));
  });

  it('an agent refuses a plaintext listener other machines reach, naming the flags', async () => {
    const r = await exits(agentMain, [...agentBase(), '--listen-address', '0.0.0.0:0']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe('flowctl-agent: --listen-address 0.0.0.0:0 is reachable from other machines and would send flows in plaintext: add --tls-cert-file FILE --tls-key-file FILE to serve TLS, or --disable-tls to serve plaintext on purpose');
  });

  it('an agent on the default listener without TLS logs the line and serves its unix socket only', async () => {
    const sock = join(dir, 'default.sock');
    const a = await spawnAgent([...agentBase(), '--unix-socket', sock]);
    children.push(a);
    expect(a.port).toBe(0);
    expect(a.stderr()).toContain(`--listen-address :4244 is reachable from other machines and would send flows in plaintext: add --tls-cert-file FILE --tls-key-file FILE to serve TLS, or --disable-tls to serve plaintext on purpose; serving only the unix socket ${sock}`);
    expect(statSync(sock).mode & 0o777).toBe(0o660);
    await a.stop();
  });

  it('a relay refuses a plaintext non-loopback listener, and a missing certificate', async () => {
    const plain = await exits(relayMain, ['--listen-address', ':0']);
    expect(plain.code).toBe(1);
    expect(plain.stderr).toContain('--listen-address :0 is reachable from other machines and would send flows in plaintext: add --tls-relay-server-cert-file FILE --tls-relay-server-key-file FILE to serve TLS, or --disable-server-tls to serve plaintext on purpose');
    const missing = await exits(relayMain, ['--listen-address', '127.0.0.1:0', '--tls-hubble-server-ca-files', join(dir, 'nope-ca.crt')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`--tls-hubble-server-ca-files ${join(dir, 'nope-ca.crt')}: cannot read: no such file`);
  });

  it('a relay on a unix socket creates it with mode 0660', async () => {
    const sock = join(dir, 'relay.sock');
    const r = await spawnRelay(['--listen-address', `unix://${sock}`]);
    children.push(r);
    expect(statSync(sock).mode & 0o777).toBe(0o660);
    await r.stop();
  });
});
