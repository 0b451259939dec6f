#!/usr/bin/env node
// flowctl-relay: one Observer endpoint for every node (hubble-relay's flags and defaults).
import { hostname } from 'node:os';
import { Command, InvalidArgumentError, Option } from 'commander';
import { createLogger, subsys } from './log.js';
import { PeerManager } from './pool/manager.js';
import { watchPeersFile } from './pool/peers-file.js';
import { watchPeerService } from './pool/discovery.js';
import { startRelayServer } from './server.js';
import { DEFAULT_MERGE_WAIT_MS, RELAY_VERSION } from './observer/server.js';
import { createRelayMetrics } from './metrics.js';
import { serveMetrics } from '@flowctl/flow/metrics-server';

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

const collect = (v: string, prev: string[]) => [...prev, v];

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
    .option('--no-upstream-batch', "use only the plain Observer API towards agents (no flowctl batching)")
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
    upstreamBatch: boolean;
    debug?: boolean;
  }>();
  const log = createLogger(o.debug ? 'debug' : undefined);
  const manager = new PeerManager({ dialTimeoutMs: o.dialTimeout, retryTimeoutMs: o.retryTimeout, log: subsys(log, 'peer-pool') });
  manager.setSource('flags', o.peer.map((address) => ({ address })));
  const stops: (() => void)[] = [];
  if (o.peersFile) stops.push(watchPeersFile(o.peersFile, subsys(log, 'peers-file'), (s) => manager.setSource('file', s)));
  if (o.peerService) {
    try {
      stops.push(watchPeerService(o.peerService, subsys(log, 'peer-service'), (s) => manager.setSource('peer-service', s), o.retryTimeout));
    } catch (e) {
      log.error(`${(e as Error).message}; peer discovery disabled`);
    }
  }
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
    });
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
  log.info({ address: server.address, port: server.port, version: RELAY_VERSION }, 'relay listening');
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
