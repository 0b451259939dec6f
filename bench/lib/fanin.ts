// The relay fan-in setup shared by bench/relay-fanin*.ts: fake agents (child processes) streaming
// flows at a set rate into one flowctl-relay (child process) and one measuring follow client,
// in plaintext or with mutual TLS on every hop (agent ↔ relay ↔ client).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { clientCredentials } from '../../packages/flow/src/tls.js';
import type { Ca, KeyPair } from '../../packages/flow/src/testing/pki.js';
import { spawnFakeAgent, spawnRelay } from '../../packages/relay/src/testing/spawn.js';
import type { Child } from '../../packages/relay/src/testing/spawn.js';
import { consume } from '../../packages/relay/src/testing/follow-client.js';
import type { Result } from '../../packages/relay/src/testing/follow-client.js';

/** Certificates for mutual TLS on every hop, from one throw-away CA (testing/pki). */
export interface FaninTls {
  dir: string;
  ca: Ca;
  /** One certificate for every agent, naming each bench-node-N as Hubble does. */
  agent: KeyPair;
  relayServer: KeyPair;
  relayClient: KeyPair;
  client: KeyPair;
  relayServerName: string;
}

export interface FaninOptions {
  tickMs: number;
  warmupS: number;
  /** Run the relay from packages/relay/dist (as bin/flowctl-relay). */
  compiled: boolean;
  relayArgs?: string[];
  tls?: FaninTls;
}

export const pids = (cs: Child[]) => cs.map((c) => c.proc.pid!).filter((p) => p > 0);

export async function withAgents<T>(n: number, rate: number, o: FaninOptions, fn: (agents: Child[]) => Promise<T>): Promise<T> {
  const tlsArgs = o.tls ? ['--tls-cert-file', o.tls.agent.cert, '--tls-key-file', o.tls.agent.key, '--tls-client-ca-files', o.tls.ca.cert] : [];
  const agents = await Promise.all(
    Array.from({ length: n }, (_, i) =>
      spawnFakeAgent(['--node-name', `bench-node-${i + 1}`, '--rate', String(rate), '--seed', String(i + 1), '--tick-ms', String(o.tickMs), ...tlsArgs]),
    ),
  );
  try {
    return await fn(agents);
  } finally {
    await Promise.all(agents.map((a) => a.stop()));
  }
}

export async function viaRelay(n: number, rate: number, seconds: number, batched: boolean, o: FaninOptions): Promise<Result> {
  return withAgents(n, rate, o, async (agents) => {
    let peerArgs = agents.flatMap((a) => ['--peer', `127.0.0.1:${a.port}`]);
    let tlsArgs: string[] = [];
    if (o.tls) {
      // Named peers, so the relay verifies each agent as bench-node-N.default.hubble-grpc.cilium.io.
      const peers = join(o.tls.dir, 'peers.yaml');
      writeFileSync(peers, agents.map((a, i) => `- { name: bench-node-${i + 1}, address: "127.0.0.1:${a.port}" }\n`).join(''));
      peerArgs = ['--peers-file', peers];
      tlsArgs = [
        '--tls-relay-server-cert-file', o.tls.relayServer.cert, '--tls-relay-server-key-file', o.tls.relayServer.key,
        '--tls-relay-client-ca-files', o.tls.ca.cert,
        '--tls-hubble-server-ca-files', o.tls.ca.cert,
        '--tls-hubble-client-cert-file', o.tls.relayClient.cert, '--tls-hubble-client-key-file', o.tls.relayClient.key,
      ];
    }
    const relay = await spawnRelay([
      '--listen-address', '127.0.0.1:0',
      ...peerArgs,
      ...(batched ? [] : ['--no-upstream-batch']),
      ...tlsArgs,
      ...(o.relayArgs ?? []),
    ], o.compiled);
    try {
      await new Promise((r) => setTimeout(r, 500));
      return await consume(relay.port, seconds, batched, o.warmupS, {
        rssPid: relay.proc.pid,
        cpuPids: { relay: pids([relay]), agents: pids(agents), client: [process.pid] },
        ...(o.tls && {
          tls: {
            credentials: clientCredentials({
              ca: [{ flag: 'ca', path: o.tls.ca.cert }],
              cert: { flag: 'cert', path: o.tls.client.cert },
              key: { flag: 'key', path: o.tls.client.key },
            }),
            serverName: o.tls.relayServerName,
          },
        }),
      });
    } finally {
      await relay.stop();
    }
  });
}
