#!/usr/bin/env node
// flowctl-relay: one Observer endpoint for every node (hubble-relay's flags and defaults).
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { createLogger, subsys } from './log.js';
import { PeerManager } from './pool/manager.js';
import { watchPeersFile } from './pool/peers-file.js';
import { watchPeerService } from './pool/discovery.js';
import { startRelayServer } from './server.js';
import { DEFAULT_MERGE_WAIT_MS, RELAY_VERSION } from './observer/server.js';
import { createRelayMetrics } from './metrics.js';
import { serveMetrics } from '@flowctl/flow/metrics-server';
import { FlowctlError } from '@flowctl/flow';
import { checkServerTls, plaintextRefusal, watchClientCredentials, type FileRef, type ServerTlsFiles } from '@flowctl/flow/tls';
import type { PeerTls } from './pool/manager.js';

/** Go-style durations as Hubble's flags take them: 500ms, 1s, 1m30s; a bare number is seconds. */
export function parseDuration(s: string): number {
  if (/^\d+(\.\d+)?$/.test(s)) return Number(s) * 1000;
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;
  const unit: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let total = 0;
  let consumed = 0;
  for (const m of s.matchAll(re)) {
    total += Number(m[1]) * unit[m[2]!]!;
    consumed += m[0].length;
  }
  if (consumed !== s.length || consumed === 0) throw new InvalidArgumentError(`"${s}" is not a duration (e.g. 500ms, 1s, 2m)`);
  return total;
}

function positiveInt(s: string): number {
  const n = Number(s);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`"${s}" is not a positive integer`);
  return n;
}

/** As the agent's: Cilium's run directory (the file names differ, so both can share it). */
const DEFAULT_STATE_DIR = '/var/run/flowctl';

const collect = (v: string, prev: string[]) => [...prev, v];
/** Hubble's file lists: repeatable and comma-separated. */
const files = (flag: string, v: string[]): FileRef[] => v.flatMap((f) => f.split(',')).filter(Boolean).map((path) => ({ flag, path }));

interface TlsOpts {
  tlsRelayServerCertFile?: string;
  tlsRelayServerKeyFile?: string;
  tlsRelayClientCaFiles: string[];
  disableServerTls?: boolean;
  tlsHubbleServerCaFiles: string[];
  tlsHubbleClientCertFile?: string;
  tlsHubbleClientKeyFile?: string;
  disableClientTls?: boolean;
}

/** The serving side: TLS files, or undefined for plaintext (loopback, unix, or asked for). Throws the one-line refusal. */
function serverTls(listen: string, o: TlsOpts): ServerTlsFiles | undefined {
  const cert = o.tlsRelayServerCertFile;
  const key = o.tlsRelayServerKeyFile;
  if (o.disableServerTls) {
    if (cert || key || o.tlsRelayClientCaFiles.length) throw new FlowctlError('CONFIG', '--disable-server-tls excludes --tls-relay-server-* files');
    return undefined;
  }
  if (cert || key || o.tlsRelayClientCaFiles.length) {
    if (!cert || !key) throw new FlowctlError('CONFIG', `${cert ? '--tls-relay-server-key-file' : '--tls-relay-server-cert-file'} is needed too: TLS takes a certificate and its key`);
    return {
      cert: { flag: '--tls-relay-server-cert-file', path: cert },
      key: { flag: '--tls-relay-server-key-file', path: key },
      clientCAs: files('--tls-relay-client-ca-files', o.tlsRelayClientCaFiles),
    };
  }
  if (listen.trim().startsWith('unix://')) return undefined;
  const refusal = plaintextRefusal(listen.trim(), { listen: '--listen-address', cert: '--tls-relay-server-cert-file', key: '--tls-relay-server-key-file', disable: '--disable-server-tls' });
  if (refusal) throw new FlowctlError('CONFIG', refusal);
  return undefined;
}

async function main(): Promise<void> {
  const program = new Command('flowctl-relay')
    .description('Fan-in of every flowctl (or Hubble) agent behind one Observer API endpoint')
    .version(RELAY_VERSION)
    .option('--listen-address <addr>', 'address to serve on (host:port, :port or unix:///path)', ':4245')
    .option('--peer <addr>', 'agent to fan in (host:port, bare host = :4244, unix:///path); repeatable', collect, [] as string[])
    .option('--peers-file <file>', 'YAML list or one address per line; reloaded on change')
    .option('--peer-service <addr>', 'discover agents through this peer.Peer/Notify service')
    .option('--sort-buffer-len-max <n>', 'max flows held for time ordering', positiveInt, 100)
    .addOption(new Option('--sort-buffer-drain-timeout <dur>', 'flush the sort buffer after this idle time').default(1000, '1s').argParser(parseDuration))
    .addOption(new Option('--dial-timeout <dur>', 'give up connecting to an agent after this').default(5000, '5s').argParser(parseDuration))
    .addOption(new Option('--retry-timeout <dur>', 'longest wait between reconnect attempts').default(30_000, '30s').argParser(parseDuration))
    .addOption(
      new Option('--upstream-idle-timeout <dur>', 'give up a non-follow GetFlows stream to a node that sends nothing for this long (0 = never)')
        .default(10_000, '10s')
        .argParser(parseDuration),
    )
    .addOption(
      new Option('--merge-wait <dur>', 'how long flows may wait for a node with nothing buffered, for time order across nodes (0 = never, as hubble-relay)')
        .default(DEFAULT_MERGE_WAIT_MS, '200ms')
        .argParser(parseDuration),
    )
    .option('--metrics-address <addr>', 'serve Prometheus metrics on [host]:port at /metrics (hubble-relay uses :9966); empty = off', '')
    .option('--node-name <name>', 'name on relay-generated events', hostname())
    .option('--state-dir <dir>', 'keep what flowctl block added and removed through the relay here across restarts ("" keeps it in memory only); default: the directory of a unix:// --listen-address, else /var/run/flowctl')
    .option('--no-upstream-batch', "use only the plain Observer API towards agents (no flowctl batching)")
    .option('--tls-relay-server-cert-file <file>', 'serve TLS with this certificate (PEM), reloaded on change')
    .option('--tls-relay-server-key-file <file>', 'private key of --tls-relay-server-cert-file (PEM)')
    .option('--tls-relay-client-ca-files <files>', 'require client certificates signed by these CAs (mutual TLS); repeatable, comma-separated', collect, [] as string[])
    .option('--disable-server-tls', 'serve plaintext on purpose, even where other machines can reach it')
    .option('--tls-hubble-server-ca-files <files>', 'connect to agents over TLS, verifying them with these CAs; repeatable, comma-separated', collect, [] as string[])
    .option('--tls-hubble-client-cert-file <file>', "the relay's certificate towards agents (PEM), reloaded on change")
    .option('--tls-hubble-client-key-file <file>', 'private key of --tls-hubble-client-cert-file (PEM)')
    .option('--disable-client-tls', 'connect to agents in plaintext on purpose')
    .option('--cluster-name <name>', 'cluster name in the agents\' TLS server names <node>.<cluster>.hubble-grpc.cilium.io', 'default')
    .option('--debug', 'debug logging');
  program.parse();
  const o = program.opts<{
    listenAddress: string;
    peer: string[];
    peersFile?: string;
    peerService?: string;
    sortBufferLenMax: number;
    sortBufferDrainTimeout: number;
    dialTimeout: number;
    retryTimeout: number;
    upstreamIdleTimeout: number;
    mergeWait: number;
    metricsAddress: string;
    nodeName: string;
    stateDir?: string;
    upstreamBatch: boolean;
    debug?: boolean;
    clusterName: string;
  } & TlsOpts>();
  const log = createLogger(o.debug ? 'debug' : undefined);
  // Every certificate is checked before anything starts: one line naming the file, then exit.
  let tlsFiles: ServerTlsFiles | undefined;
  let peerTls: (PeerTls & { stop(): void }) | undefined;
  try {
    tlsFiles = serverTls(o.listenAddress, o);
    if (tlsFiles) checkServerTls(tlsFiles);
    const clientFlags = o.tlsHubbleServerCaFiles.length > 0 || !!o.tlsHubbleClientCertFile || !!o.tlsHubbleClientKeyFile;
    if (o.disableClientTls && clientFlags) throw new FlowctlError('CONFIG', '--disable-client-tls excludes --tls-hubble-* files');
    if (clientFlags) {
      if (o.tlsHubbleServerCaFiles.length === 0) throw new FlowctlError('CONFIG', '--tls-hubble-server-ca-files is needed to verify agents over TLS');
      const w = watchClientCredentials({
        ca: files('--tls-hubble-server-ca-files', o.tlsHubbleServerCaFiles),
        ...(o.tlsHubbleClientCertFile && { cert: { flag: '--tls-hubble-client-cert-file', path: o.tlsHubbleClientCertFile } }),
        ...(o.tlsHubbleClientKeyFile && { key: { flag: '--tls-hubble-client-key-file', path: o.tlsHubbleClientKeyFile } }),
      }, subsys(log, 'peer-tls'));
      peerTls = { credentials: w.current, clusterName: o.clusterName, stop: w.stop };
    }
  } catch (e) {
    log.fatal((e as Error).message);
    process.exit(1);
  }
  const manager = new PeerManager({
    dialTimeoutMs: o.dialTimeout,
    retryTimeoutMs: o.retryTimeout,
    log: subsys(log, 'peer-pool'),
    ...(peerTls && { tls: peerTls }),
  });
  manager.setSource('flags', o.peer.map((address) => ({ address })));
  const stops: (() => void)[] = [];
  if (o.peersFile) stops.push(watchPeersFile(o.peersFile, subsys(log, 'peers-file'), (s) => manager.setSource('file', s)));
  if (o.peerService) {
    try {
      stops.push(watchPeerService(o.peerService, subsys(log, 'peer-service'), (s) => manager.setSource('peer-service', s), o.retryTimeout, peerTls));
    } catch (e) {
      log.error(`${(e as Error).message}; peer discovery disabled`);
    }
  }
  const listen = o.listenAddress.trim();
  const stateDir = o.stateDir ?? (listen.startsWith('unix://') ? dirname(listen.slice('unix://'.length)) : DEFAULT_STATE_DIR);
  let server;
  try {
    server = await startRelayServer(o.listenAddress, {
      manager,
      log: subsys(log, 'observer'),
      relayNode: o.nodeName,
      sortBufferLenMax: o.sortBufferLenMax,
      sortBufferDrainTimeoutMs: o.sortBufferDrainTimeout,
      callTimeoutMs: o.dialTimeout,
      upstreamBatch: o.upstreamBatch,
      upstreamIdleTimeoutMs: o.upstreamIdleTimeout,
      mergeWaitMs: o.mergeWait,
      ...(stateDir && { blocksStateFile: join(stateDir, 'relay-blocks.json') }),
    }, tlsFiles && { files: tlsFiles, log: subsys(log, 'server-tls') });
  } catch (e) {
    log.fatal((e as Error).message);
    manager.stop();
    process.exit(1);
  }
  let metrics: Awaited<ReturnType<typeof serveMetrics>> | undefined;
  if (o.metricsAddress) {
    try {
      metrics = await serveMetrics(o.metricsAddress, createRelayMetrics(server.observer, manager));
      const a = metrics.address();
      log.info({ address: o.metricsAddress, metricsPort: typeof a === 'object' && a ? a.port : undefined }, 'metrics listening');
    } catch (e) {
      const msg = (e as Error).message;
      log.fatal(msg.startsWith('--metrics-address') ? msg : `--metrics-address ${o.metricsAddress}: ${msg}`);
      manager.stop();
      await server.close();
      process.exit(1);
    }
  }
  const tls = tlsFiles ? (tlsFiles.clientCAs.length > 0 ? 'mutual' : 'server') : undefined;
  log.info({ address: server.address, port: server.port, version: RELAY_VERSION, tls, peerTls: !!peerTls }, 'relay listening');
  if (peerTls) stops.push(peerTls.stop);
  let stopping = false;
  const shutdown = (sig: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal: sig }, 'stopping');
    for (const s of stops) s();
    manager.stop();
    metrics?.close();
    void server.close().then(() => process.exit(0));
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

void main();
