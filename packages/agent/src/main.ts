// The flowctl-agent command line. The only place that calls process.exit.
import { Command, InvalidArgumentError } from 'commander';
import { hostname } from 'node:os';
import pino from 'pino';
import { dirname } from 'node:path';
import { Agent, DEFAULT_UNIX_SOCKET } from './agent.js';
import { DEFAULT_RING_CAPACITY, validateCapacity } from './container/ring.js';
import { FlowctlError } from './errors.js';
import type { ServerTlsFiles } from '@flowctl/flow/tls';
import { DEFAULT_METRICS, DEFAULT_METRICS_ADDRESS } from './metrics/agent-metrics.js';
import { parseMetricsSpec } from './metrics/hubble.js';
import { DEFAULT_CONN_BUDGET, DEFAULT_FQDN_MAX_IPS_PER_NAME, DEFAULT_FQDN_MIN_TTL_S, type ConnBudget } from './datapath/datapath.js';

function intArg(name: string, min: number, max: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!/^\d+$/.test(v) || n < min || n > max) throw new InvalidArgumentError(`${name} must be an integer in [${min}, ${max}]`);
    return n;
  };
}

function metricsArg(v: string): string {
  try {
    parseMetricsSpec(v);
  } catch (e) {
    throw new InvalidArgumentError(e instanceof Error ? e.message.replace(/^--metrics: /, '') : String(e));
  }
  return v;
}

function ringArg(v: string): number {
  const n = Number(v);
  try {
    return validateCapacity(/^\d+$/.test(v) ? n : NaN);
  } catch (e) {
    throw new InvalidArgumentError(e instanceof Error ? e.message.replace('NaN', JSON.stringify(v)) : String(e));
  }
}

/** --conn-budget RATE[:BURST] (burst defaults to ten times the rate), or 0 for none (false: commander turns null into ''). */
export function connBudgetArg(v: string): ConnBudget | false {
  const m = /^(\d+(?:\.\d+)?)(?::(\d+))?$/.exec(v);
  if (v === '0' || v === 'off') return false;
  const perSecond = m ? Number(m[1]) : NaN;
  const burst = m?.[2] !== undefined ? Number(m[2]) : Math.ceil(10 * perSecond);
  if (!m || !(perSecond > 0) || perSecond > 1e9 || burst < 1 || burst > 1e6)
    throw new InvalidArgumentError('must be RATE[:BURST] (new connections per second per source, e.g. 100:1000), or 0 for no budget');
  return { perSecond, burst };
}

export const DEFAULT_SYN_FLOOD_HALFOPEN = 100;

export function buildCommand(): Command {
  return new Command('flowctl-agent')
    .description('Per-node eBPF flow observer serving the Hubble Observer API')
    .option('--node-name <name>', 'name of this node', hostname())
    .option('--endpoints <file>', 'cluster-wide endpoints file (YAML), reloaded on change')
    .option('--policy-dir <dir>', 'directory of policy *.yaml files, reloaded on change')
    .option('--policy-audit', 'report policy denials as AUDIT instead of dropping', false)
    .option('--ring-capacity <n>', 'flows kept in memory: 2^n-1, up to 65535', ringArg, DEFAULT_RING_CAPACITY)
    .option('--unix-socket <path>', 'serve on this unix socket')
    .option('--listen-address <addr>', 'serve on this TCP address ("" disables TCP); plaintext only on loopback unless --disable-tls', ':4244')
    .option('--tls-cert-file <file>', 'serve TLS on the TCP listener with this certificate (PEM), reloaded on change')
    .option('--tls-key-file <file>', 'private key of --tls-cert-file (PEM)')
    .option('--tls-client-ca-files <files>', 'require client certificates signed by these CAs (mutual TLS); repeatable, comma-separated', (v: string, prev: string[] = []) => [...prev, v])
    .option('--disable-tls', 'serve plaintext TCP on purpose, even where other machines can reach it', false)
    .option('--cluster-name <name>', 'cluster name in the TLS server name <node>.<cluster>.hubble-grpc.cilium.io', 'default')
    .option('--metrics-address <addr>', 'serve Prometheus metrics at http://ADDR/metrics ("" disables)', DEFAULT_METRICS_ADDRESS)
    .option('--metrics <handlers>', 'Hubble metrics handlers with options, e.g. "dns:query;ignoreAAAA drop tcp flow:sourceContext=namespace"', metricsArg, DEFAULT_METRICS)
    .option('--replay <file>', 'serve flows from a `hubble observe -o json` file instead of the kernel')
    .option('--replay-rate <n>', 'flows per second in --replay mode', intArg('--replay-rate', 1, 10_000_000), 1000)
    .option('--max-payload <bytes>', 'bytes of L4 payload copied for DNS/HTTP', intArg('--max-payload', 0, 1024))
    .option('--kernel-ring-bytes <n>', 'size of the kernel\'s flow event ring: a power of two, at least 4096 (default 8 MiB)', intArg('--kernel-ring-bytes', 4096, 1 << 30))
    .option('--every-packet', 'one event per packet instead of per connection', false)
    .option('--blocklist <file>', 'blocklisted domains and addresses: hosts file, domain or IP/CIDR list, Spamhaus DROP JSON, URLhaus CSV (recognised from the content); repeatable, reloaded on change', (v: string, prev: string[] = []) => [...prev, v])
    .option('--detect-config <file>', 'detector thresholds (YAML, docs/alerts.md); the documented defaults without it')
    .option('--block-from-lists', 'put the addresses and CIDRs of the --blocklist files into the drop list (reason: the list\'s name), updated when they are reloaded', false)
    .option('--state-dir <dir>', 'keep the drop list (flowctl block) here across restarts ("" keeps it in memory only); default: the directory of --unix-socket, else /var/run/flowctl')
    .option('--xdp-interface <ifname>', 'attach the XDP drop list (flowctl block) to this node interface; repeatable', (v: string, prev: string[] = []) => [...prev, v])
    .option('--conn-budget <rate[:burst]>', 'per-source budget of new-flow events (TCP, UDP, ICMP each; DNS ten times it); over it, attempts are summed in one summary flow per source and second ("0": no budget)', connBudgetArg, DEFAULT_CONN_BUDGET)
    .option('--syn-flood-protect [half-open]', `drop SYNs over their source's budget to a destination with more than this many half-open attempts per second (default ${DEFAULT_SYN_FLOOD_HALFOPEN}), at TC on pods' interfaces and at XDP on --xdp-interface ones`, intArg('--syn-flood-protect', 1, 1_000_000))
    .option('--tofqdns-min-ttl <seconds>', `toFQDNs: seconds an address learned from a DNS answer stays allowed at least (default ${DEFAULT_FQDN_MIN_TTL_S})`, intArg('--tofqdns-min-ttl', 0, 0xffffffff))
    .option('--tofqdns-endpoint-max-ip-per-hostname <n>', `toFQDNs: addresses an endpoint keeps per DNS name (default ${DEFAULT_FQDN_MAX_IPS_PER_NAME})`, intArg('--tofqdns-endpoint-max-ip-per-hostname', 1, 1_000_000))
    .option('--log-level <level>', 'pino log level', 'info');
}

async function main(): Promise<void> {
  const cmd = buildCommand();
  cmd.parse(process.argv);
  const o = cmd.opts<{
    nodeName: string; endpoints?: string; policyDir?: string; policyAudit: boolean; ringCapacity: number;
    unixSocket?: string; listenAddress: string; metricsAddress: string; metrics: string; replay?: string; replayRate: number;
    maxPayload?: number; kernelRingBytes?: number; everyPacket: boolean; logLevel: string; detectConfig?: string; blockFromLists: boolean; stateDir?: string; xdpInterface?: string[]; blocklist?: string[]; connBudget: ConnBudget | false; synFloodProtect?: number | true;
    tofqdnsMinTtl?: number; tofqdnsEndpointMaxIpPerHostname?: number;
    tlsCertFile?: string; tlsKeyFile?: string; tlsClientCaFiles?: string[]; disableTls: boolean; clusterName: string;
  }>();
  let tls: ServerTlsFiles | undefined;
  if (o.tlsCertFile || o.tlsKeyFile || o.tlsClientCaFiles) {
    if (!o.tlsCertFile || !o.tlsKeyFile) {
      process.stderr.write(`flowctl-agent: ${o.tlsCertFile ? '--tls-key-file' : '--tls-cert-file'} is needed too: TLS takes a certificate and its key\n`);
      process.exit(2);
    }
    tls = {
      cert: { flag: '--tls-cert-file', path: o.tlsCertFile },
      key: { flag: '--tls-key-file', path: o.tlsKeyFile },
      clientCAs: (o.tlsClientCaFiles ?? []).flatMap((f) => f.split(',')).filter(Boolean).map((path) => ({ flag: '--tls-client-ca-files', path })),
    };
  }
  const log = pino({ level: o.logLevel, base: { node: o.nodeName } }, pino.destination(2));
  let agent: Agent;
  try {
    agent = newAgent();
  } catch (e) {
    process.stderr.write(`flowctl-agent: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(e instanceof FlowctlError && e.code === 'CONFIG' ? 2 : 1);
  }
  function newAgent(): Agent {
    return new Agent({
    nodeName: o.nodeName,
    ...(o.endpoints !== undefined && { endpointsFile: o.endpoints }),
    ...(o.policyDir !== undefined && { policyDir: o.policyDir }),
    policyAudit: o.policyAudit,
    ringCapacity: o.ringCapacity,
    ...(o.unixSocket !== undefined && { unixSocket: o.unixSocket }),
    listenAddress: o.listenAddress,
    listenAddressDefaulted: cmd.getOptionValueSource('listenAddress') === 'default',
    ...(tls && { tls }),
    disableTls: o.disableTls,
    clusterName: o.clusterName,
    metricsAddress: o.metricsAddress,
    metrics: o.metrics,
    ...(o.replay !== undefined && { replay: o.replay }),
    replayRate: o.replayRate,
    ...(o.maxPayload !== undefined && { maxPayload: o.maxPayload }),
    ...(o.kernelRingBytes !== undefined && { kernelRingBytes: o.kernelRingBytes }),
    everyPacket: o.everyPacket,
    ...(o.detectConfig !== undefined && { detectConfig: o.detectConfig }),
    ...(o.xdpInterface && { xdpInterfaces: o.xdpInterface }),
    stateDir: o.stateDir ?? dirname(o.unixSocket ?? DEFAULT_UNIX_SOCKET),
    blockFromLists: o.blockFromLists,
    ...(o.blocklist !== undefined && { blocklist: o.blocklist }),
    connBudget: o.connBudget || null,
    ...(o.synFloodProtect !== undefined && { synFloodProtect: o.synFloodProtect === true ? DEFAULT_SYN_FLOOD_HALFOPEN : o.synFloodProtect }),
    ...(o.tofqdnsMinTtl !== undefined && { fqdnMinTtlS: o.tofqdnsMinTtl }),
    ...(o.tofqdnsEndpointMaxIpPerHostname !== undefined && { fqdnMaxIpsPerName: o.tofqdnsEndpointMaxIpPerHostname }),
    log,
  });
  }
  let stopping = false;
  const stop = (sig: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal: sig }, 'stopping');
    agent.stop().then(
      () => process.exit(0),
      (e) => {
        log.error({ err: String(e) }, 'error while stopping');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  try {
    await agent.start();
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    process.stderr.write(`flowctl-agent: ${msg}\n`);
    await agent.stop().catch(() => {});
    process.exit(e instanceof FlowctlError && e.code === 'CONFIG' ? 2 : 1);
  }
}

void main();
