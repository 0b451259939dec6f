// flowctl-agent: datapath → monitor consumer → parser → ring → observer → gRPC. The endpoints file
// and the policy directory (ConfigWatcher) become the endpoint directory, the compiled policy and
// the datapath's state (DatapathReconciler); PoliciesInForce answers PolicyService/List.
import { statSync } from 'node:fs';
import { hostname, networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { compilePolicies, type CompiledPolicy, type EndpointSet, type PolicyDoc, type ResolvedEndpoint } from '@flowctl/policy';
import type { Flow, LostEvent } from '@flowctl/flow';
import { PolicyService } from '@flowctl/flow/policy-service';
import { checkServerTls, hubbleServerName, plaintextRefusal, type ServerTlsFiles } from '@flowctl/flow/tls';
import { ConfigWatcher } from './config/watcher.js';
import type { ConnBudget, Datapath, DatapathOptions } from './datapath/datapath.js';
import { DatapathReconciler } from './datapath/reconciler.js';
import { FqdnLearner } from './policy/fqdn-learner.js';
import { parsePrefix } from '@flowctl/flow/ip';
import { EndpointDirectory } from './endpoints/directory.js';
import { AgentMetrics } from './metrics/agent-metrics.js';
import { FlowctlError } from './errors.js';
import { MonitorConsumer } from './monitor/consumer.js';
import { Observer } from './observer/observer.js';
import { LiveContext, readInterfaces } from './parser/live-context.js';
import { Parser } from './parser/parser.js';
import { PoliciesInForce } from './policy/in-force.js';
import type { PolicySource } from './policy/sources.js';
import { ReplaySource, loadReplayFile } from './replay/replay.js';
import { AgentServer, type Logger } from './server/server.js';
import { ServiceMapStore, type ServiceMapOptions } from './aggregate/service-map.js';
import { serviceMapImpl } from './server/service-map.js';
import { ServiceMapService } from '@flowctl/flow/gen/flowctl/servicemap.grpc';
import { DEFAULT_RING_CAPACITY } from './container/ring.js';
import { AlertsService } from '@flowctl/flow/gen/flowctl/alerts.grpc';
import { CONFIG_SECTIONS, Detection } from './detect/index.js';
import { loadDetectConfig } from './detect/config.js';
import { alertsImpl } from './server/alerts.js';
import { BlocksService } from '@flowctl/flow/gen/flowctl/blocks.grpc';
import { BlockList } from './respond/block-list.js';
import type { CidrSet } from './detect/blocklist-index.js';
import { RESPOND_SECTION, Responder } from './respond/responder.js';
import { defaultConfig } from './detect/config.js';
import { blocksImpl } from './server/blocks.js';

export interface AgentOptions {
  nodeName?: string;
  endpointsFile?: string;
  policyDir?: string;
  policyAudit?: boolean;
  ringCapacity?: number;
  unixSocket?: string;
  /** TCP listen address (":4244"); empty string disables TCP. */
  listenAddress?: string;
  /** The listen address was not given: a plaintext one other machines reach is dropped with a
   * warning (the unix socket is served) instead of refusing to start. */
  listenAddressDefaulted?: boolean;
  /** Serve TLS on the TCP listener (mutual TLS when client CAs are given). */
  tls?: ServerTlsFiles;
  /** Serve plaintext TCP on purpose, even where other machines can reach it. */
  disableTls?: boolean;
  /** Cluster name in the TLS server name this agent announces (`<node>.<cluster>.hubble-grpc.cilium.io`). */
  clusterName?: string;
  /** Prometheus /metrics address (":9965", "127.0.0.1:0"); unset or empty disables metrics. */
  metricsAddress?: string;
  /** Hubble's --metrics handler list (default flow,drop,tcp,icmp,dns,http). */
  metrics?: string;
  replay?: string;
  replayRate?: number;
  maxPayload?: number;
  /** Bytes of the kernel's flow event ring (a power of two >= 4096). */
  kernelRingBytes?: number;
  everyPacket?: boolean;
  /** Per-source budget of new-connection events; null: none (DatapathOptions.connBudget). */
  connBudget?: ConnBudget | null;
  /** Half-open threshold of --syn-flood-protect; 0 or unset: off. */
  synFloodProtect?: number;
  /** --tofqdns-min-ttl and --tofqdns-endpoint-max-ip-per-hostname (DatapathOptions). */
  fqdnMinTtlS?: number;
  fqdnMaxIpsPerName?: number;
  /** Poll interval of the endpoints file and policy directory (reload within 2 s). */
  watchIntervalMs?: number;
  /** Service-map buckets (width, retention, bound, clock); defaults: 15 s buckets for an hour. */
  serviceMap?: Partial<Omit<ServiceMapOptions, 'nodeName' | 'isLocalIp'>>;
  /** --detect-config: detector thresholds (YAML); the documented defaults without it. */
  detectConfig?: string;
  /** --blocklist: files of blocklisted names and addresses, reloaded on change. */
  blocklist?: string[];
  /** Run no detectors (benchmarks measure the agent with and without them). */
  detectOff?: boolean;
  /** Node interfaces of the agent's namespace to attach the XDP drop list to. */
  xdpInterfaces?: string[];
  /** --state-dir: where the drop list is kept across restarts (blocks.json); unset: nowhere. */
  stateDir?: string;
  /** --block-from-lists: the addresses of the --blocklist files go into the drop list. */
  blockFromLists?: boolean;
  /** A datapath to use instead of the kernel (tests). */
  datapath?: Datapath;
  log: Logger & { child?(b: object): Logger };
}

/** How long the kernel rings rest between reads (MonitorConsumer readIntervalMs). */
const READ_INTERVAL_MS = 5;

const noopLog: Logger = { info() {}, warn() {}, error() {} };

/** Served when no --unix-socket is named and the default TCP listener is refused (Cilium: /var/run/cilium/hubble.sock). */
export const DEFAULT_UNIX_SOCKET = '/var/run/flowctl/hubble.sock';

export class Agent {
  readonly nodeName: string;
  readonly directory: EndpointDirectory;
  readonly ctx: LiveContext;
  readonly parser: Parser;
  readonly observer: Observer;
  readonly server: AgentServer;
  readonly config: ConfigWatcher;
  readonly policies: PoliciesInForce;
  reconciler: DatapathReconciler | undefined;
  consumer: MonitorConsumer | undefined;
  private replay: ReplaySource | undefined;
  private clockTimer: NodeJS.Timeout | undefined;
  policy: CompiledPolicy | undefined;
  tcpPort: number | undefined;
  /** What start() decided to serve (listenPlan). */
  private listening: { unixSocket?: string; tcp?: string; tls?: ServerTlsFiles } | undefined;
  /** Bound port of /metrics, when serving. */
  metricsPort: number | undefined;
  readonly metrics: AgentMetrics | undefined;
  readonly serviceMap: ServiceMapStore;
  readonly detection: Detection | undefined;
  readonly blocks: BlockList;
  /** Interfaces the XDP drop list is attached to. */
  readonly xdpAttached: string[] = [];
  private readonly log: Logger;
  private stopped = false;
  /** toFQDNs answers the kernel does not learn from (TCP answers split over segments; patterns, as a fallback). */
  private readonly fqdnLearner = new FqdnLearner(
    (a) => this.datapath?.learnFqdn?.(a) ?? 0,
    (ip) => (this.directory.isLocal(ip) ? this.directory.forIp(ip).identity : undefined),
    (err, failed) => this.child('policy').error({ err: String(err), failed }, 'toFQDNs: storing addresses learned from a DNS answer failed'),
    (ip) => {
      const p = this.dualStack().find((d) => d.v4 === ip || d.v6 === ip);
      return p && (p.v4 === ip ? p.v6 : p.v4);
    },
  );

  constructor(readonly opts: AgentOptions) {
    this.nodeName = opts.nodeName || hostname();
    this.log = opts.log ?? noopLog;
    this.directory = new EndpointDirectory(this.nodeName);
    const hostAddrs = hostIps();
    this.directory.setHostIps(hostAddrs);
    this.ctx = new LiveContext(this.directory);
    this.parser = new Parser(this.ctx);
    this.observer = new Observer({ nodeName: this.nodeName, capacity: opts.ringCapacity ?? DEFAULT_RING_CAPACITY });
    this.server = new AgentServer({
      observer: this.observer,
      peerAddress: () => this.peerAddress(),
      tlsServerName: () => this.tlsServerName,
      log: this.child('server'),
    });
    this.policies = new PoliciesInForce({
      node: this.nodeName,
      audit: opts.policyAudit === true,
      policyDir: opts.policyDir ?? '',
      endpointsFile: opts.endpointsFile ?? '',
      hostIps: hostAddrs,
    });
    this.server.addService(PolicyService, this.policies.server({
      learned: () => this.datapath?.fqdnLearned?.() ?? [],
      policy: () => this.policy,
      endpointOf: (ip) => this.localPod(ip),
      namesOf: (ip) => this.ctx.dns.names(ip),
    }));
    this.serviceMap = new ServiceMapStore({ ...opts.serviceMap, nodeName: this.nodeName, isLocalIp: (ip) => this.ctx.isLocalEndpointIp(ip) });
    this.server.addService(ServiceMapService, serviceMapImpl(this.serviceMap));
    const blocksLog = this.child('blocks');
    this.blocks = new BlockList({ ...(opts.stateDir && { stateFile: join(opts.stateDir, 'blocks.json') }), warn: (m) => blocksLog.warn(m) });
    const restored = this.blocks.load();
    if (restored) blocksLog.info({ entries: restored, stateDir: opts.stateDir }, `drop list: restored ${restored} ${restored === 1 ? 'entry' : 'entries'}`);
    if (opts.blockFromLists && (opts.detectOff || !opts.blocklist?.length)) throw new FlowctlError('CONFIG', '--block-from-lists needs --blocklist FILE: the lists whose addresses it blocks');
    if (!opts.detectOff) {
      const config = opts.detectConfig ? loadDetectConfig(opts.detectConfig, CONFIG_SECTIONS) : undefined;
      this.detection = new Detection({
        nodeName: this.nodeName,
        isLocalIp: (ip) => this.ctx.isLocalEndpointIp(ip),
        blocklistFiles: opts.blocklist ?? [],
        log: (subsys) => this.child(subsys),
        ...(opts.blockFromLists && { blocklistLoaded: (file: string, cidrs: CidrSet) => this.blockListed(file, cidrs) }),
      }, config);
      const detection = this.detection;
      const respond = (config ?? defaultConfig(CONFIG_SECTIONS)).get(RESPOND_SECTION.name)!;
      const responder = new Responder(respond, this.blocks, hostAddrs, (ip) => this.localPod(ip));
      detection.store.respondWith((f) => responder.act(f));
      this.server.addService(AlertsService, alertsImpl(detection.store, this.nodeName, (call) => this.server.track(call)));
    }
    this.server.addService(BlocksService, blocksImpl({ nodeName: this.nodeName, list: this.blocks, xdpInterfaces: () => [...this.xdpAttached] }));
    this.ctx.setBlockList(this.blocks);
    // An isolation follows its pod: the addresses the endpoints give "namespace/name" on this node now.
    this.blocks.resolvePodsWith((pod) => {
      const ep = this.directory.localEndpoints().find((e) => `${e.namespace}/${e.name}` === pod);
      return ep?.ips.map((ip) => parsePrefix(ip)).filter((p) => p !== undefined);
    });
    this.config = new ConfigWatcher(
      {
        ...(opts.endpointsFile !== undefined && { endpointsFile: opts.endpointsFile }),
        ...(opts.policyDir !== undefined && { policyDir: opts.policyDir }),
        ...(opts.watchIntervalMs !== undefined && { intervalMs: opts.watchIntervalMs }),
        log: (subsys) => this.child(subsys),
      },
      {
        endpoints: (set, text, initial) => this.endpointsChanged(set, text, initial),
        policies: (docs, sources, initial) => this.policiesChanged(docs, sources, initial),
        policyRejected: (reason) => this.policies.reject(reason),
      },
    );
    // Built here so a bad --metrics list fails before anything is loaded or bound.
    if (opts.metricsAddress) {
      this.metrics = new AgentMetrics({
        ...(opts.metrics !== undefined && { spec: opts.metrics }),
        sources: {
          ring: () => ({ len: this.observer.ring.length, cap: this.observer.ring.capacity }),
          parserCounters: () => this.ctx.counters,
          datapathCounters: () => this.datapath?.counters(),
          ringLapped: () => this.observer.stats.ringLapped,
          mapFill: () => this.datapath?.mapFill?.() ?? [],
          detection: () => this.detection,
        },
      });
    }
  }

  get datapath(): Datapath | undefined {
    return this.reconciler?.datapath;
  }

  /** Every flow and lost event goes through here on its way into the ring, so metrics see them all. */
  private writeFlow(flow: Flow): void {
    this.metrics?.observe(flow);
    this.serviceMap.observe(flow);
    this.detection?.observe(flow, Date.now());
    this.observer.writeFlow(flow);
  }

  private writeLost(ev: LostEvent): void {
    this.metrics?.lostEvents(ev);
    this.observer.writeLost(ev);
  }

  private child(subsys: string): Logger {
    return this.opts.log?.child ? this.opts.log.child({ subsys }) : this.log;
  }

  /**
   * Where to serve, decided before anything is loaded: TLS when certificates are given (checked
   * now: a missing or expired one stops the start), plaintext TCP only on loopback or with
   * --disable-tls. A plaintext default listener other machines could reach is dropped with a
   * warning, and the unix socket (the default one if none was named) is served instead.
   */
  private listenPlan(log: Logger): { unixSocket?: string; tcp?: string; tls?: ServerTlsFiles } {
    const plan: { unixSocket?: string; tcp?: string; tls?: ServerTlsFiles } = {};
    if (this.opts.unixSocket) plan.unixSocket = this.opts.unixSocket;
    const listen = this.opts.listenAddress ?? ':4244';
    if (!listen) return plan;
    if (this.opts.tls && this.opts.disableTls) throw new FlowctlError('CONFIG', '--disable-tls and --tls-cert-file exclude each other');
    if (this.opts.tls) {
      checkServerTls(this.opts.tls);
      return { ...plan, tcp: listen, tls: this.opts.tls };
    }
    const refusal = this.opts.disableTls ? undefined : plaintextRefusal(listen, { listen: '--listen-address', cert: '--tls-cert-file', key: '--tls-key-file', disable: '--disable-tls' });
    if (!refusal) return { ...plan, tcp: listen };
    if (!this.opts.listenAddressDefaulted) throw new FlowctlError('CONFIG', refusal);
    plan.unixSocket ??= DEFAULT_UNIX_SOCKET;
    log.warn({ unixSocket: plan.unixSocket }, `${refusal}; serving only the unix socket ${plan.unixSocket}`);
    return plan;
  }

  /** The TLS server name peer.Peer announces, as a Cilium agent does when it serves TLS. */
  get tlsServerName(): string | undefined {
    return this.listening?.tls ? hubbleServerName(this.nodeName, this.opts.clusterName ?? 'default') : undefined;
  }

  async start(): Promise<void> {
    const log = this.child('agent');
    const plan = this.listenPlan(log);
    if (this.metrics && this.opts.metricsAddress) {
      try {
        this.metricsPort = await this.metrics.listen(this.opts.metricsAddress);
        log.info({ address: this.opts.metricsAddress, port: this.metricsPort }, 'serving metrics at /metrics');
      } catch (e) {
        // Metrics are secondary: flows keep being served without them.
        log.error({ address: this.opts.metricsAddress }, `metrics disabled: cannot listen on ${this.opts.metricsAddress}: ${e instanceof Error ? e.message : String(e)}`);
      }
    }

    if (this.opts.replay) {
      if (this.opts.xdpInterfaces?.length) throw new FlowctlError('CONFIG', '--xdp-interface needs the kernel datapath: it cannot be used with --replay');
      const flows = loadReplayFile(this.opts.replay);
      this.replay = new ReplaySource(flows, this.opts.replayRate ?? 1000, this.nodeName, (f) => this.writeFlow(f), () => this.ctx.newUuid());
      this.replay.start();
      // Nothing is enforced without a datapath, but the endpoints and policies are loaded, watched
      // and reported (PolicyService/List) as on a kernel node, for what-if checks and tests.
      this.config.loadEndpoints(true);
      this.config.loadPolicies(true);
      log.info({ file: this.opts.replay, flows: flows.length, rate: this.opts.replayRate ?? 1000 }, 'replaying flows');
    } else {
      // Endpoints first (a bad file at start-up is fatal: there is no last good state yet).
      this.config.loadEndpoints(true);
      const dp = this.opts.datapath ?? (await loadKernelDatapath(this.datapathOptions()));
      this.reconciler = new DatapathReconciler(dp, this.child('datapath'), (ifname) => this.metrics?.attachError(ifname));
      if (dp.learnFqdn) this.ctx.onDnsAnswer = (name, ips, ttlS, client, tcp) => this.fqdnLearner.answer(name, ips, ttlS, client, tcp);
      const sink = { writeFlow: (f: Flow) => this.writeFlow(f), writeLost: (ev: LostEvent) => this.writeLost(ev) };
      const metrics = this.metrics;
      this.consumer = new MonitorConsumer(dp, (ev) => this.parser.decode(ev), sink, {
        dropped: (ev) => this.parser.dropped(ev),
        ...(metrics ? { countRead: (b) => metrics.eventsRead(b) } : {}),
        // Events wait at most this long in the kernel ring; reads come in batches at any rate.
        readIntervalMs: READ_INTERVAL_MS,
      });
      this.consumer.start();
      this.attachXdp(dp);
      this.reconcile();
      this.config.loadPolicies(true);
      this.pushIdentities();
    }

    const { tcpPort } = await this.server.listen(plan);
    this.tcpPort = tcpPort;
    this.listening = plan;
    const tls = plan.tls ? (plan.tls.clientCAs.length > 0 ? 'mutual' : 'server') : undefined;
    log.info({ node: this.nodeName, unixSocket: plan.unixSocket, tcp: plan.tcp, tcpPort, tls, ring: this.observer.ring.capacity }, 'serving');

    this.config.start();
    this.clockTimer = setInterval(() => this.ctx.clock.calibrate(), 60_000);
    this.clockTimer.unref();
  }

  /** --block-from-lists: a list file's addresses become its entries of the drop list. */
  private blockListed(file: string, cidrs: CidrSet): void {
    const r = this.blocks.setListed(file, cidrs.prefixes());
    const log = this.child('blocks');
    log.info({ file, entries: r.entries }, `drop list: ${r.entries} entries from ${file}`);
    if (r.refused) log.warn({ file, refused: r.refused }, `drop list: ${r.refused} entries of ${file} not added: ${r.firstError}`);
  }

  /** The XDP drop list on every --xdp-interface; the list's entries go to the kernel from here on. */
  private attachXdp(dp: Datapath): void {
    const ifaces = this.opts.xdpInterfaces ?? [];
    // Without XDP the list still isolates pods (at TC) and keeps its drops for a restart with it.
    if (!ifaces.length) return this.blocks.bindDatapath(dp, false);
    if (!dp.attachXdp) throw new FlowctlError('CONFIG', '--xdp-interface: this datapath has no XDP drop list');
    const log = this.child('xdp');
    for (const ifname of ifaces) {
      const mode = dp.attachXdp(ifname);
      this.xdpAttached.push(ifname);
      log.info({ ifname, mode }, `XDP drop list attached to ${ifname} in ${mode} mode${mode === 'generic' ? ' (the driver has no native XDP)' : ''}`);
    }
    this.blocks.bindDatapath(dp);
  }

  private datapathOptions(): DatapathOptions {
    const o: DatapathOptions = {};
    if (this.opts.xdpInterfaces?.length) o.xdp = true;
    if (this.opts.maxPayload !== undefined) o.maxPayload = this.opts.maxPayload;
    if (this.opts.kernelRingBytes !== undefined) o.ringBytes = this.opts.kernelRingBytes;
    if (this.opts.everyPacket) o.everyPacket = true;
    if (this.opts.policyAudit) o.policyAudit = true;
    if (this.opts.connBudget !== undefined) o.connBudget = this.opts.connBudget;
    if (this.opts.synFloodProtect) o.synFloodProtect = this.opts.synFloodProtect;
    if (this.opts.fqdnMinTtlS !== undefined) o.fqdnMinTtlS = this.opts.fqdnMinTtlS;
    if (this.opts.fqdnMaxIpsPerName !== undefined) o.fqdnMaxIpsPerName = this.opts.fqdnMaxIpsPerName;
    return o;
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.config.stop();
    if (this.clockTimer) clearInterval(this.clockTimer);
    this.replay?.stop();
    this.detection?.close();
    await this.metrics?.close();
    await this.server.close();
    this.consumer?.stop();
    this.blocks.close();
    this.reconciler?.close();
  }

  /** "namespace/name" of the local pod with address `ip`. */
  private localPod(ip: string): string | undefined {
    const ep = this.directory.isLocal(ip) ? this.directory.forIp(ip) : undefined;
    return ep?.pod_name ? `${ep.namespace}/${ep.pod_name}` : undefined;
  }

  private endpointsChanged(set: EndpointSet, text: string, initial: boolean): void {
    this.directory.setEndpoints(set);
    this.policies.endpointsLoaded(text);
    this.directory.setNetnsInodes(netnsInodes(set.endpoints));
    this.blocks.podsChanged();
    this.child('endpoints').info({ file: this.opts.endpointsFile, endpoints: set.endpoints.length, local: this.directory.localEndpoints().length }, 'endpoints loaded');
    if (initial) return;
    this.reconcile();
    // The same policies compiled against the new endpoints.
    const docs = this.policies.documents;
    if (this.opts.policyDir && docs.length) {
      const compiled = this.compileAndApply(docs);
      if (compiled) this.policies.recompiled(compiled);
    }
    this.pushIdentities();
  }

  private policiesChanged(docs: PolicyDoc[], sources: PolicySource[], initial: boolean): boolean {
    const compiled = this.compileAndApply(docs);
    if (!compiled) return false;
    this.policies.applied(compiled, docs, sources);
    if (!initial) this.pushIdentities();
    return true;
  }

  /** Compiles `docs` against the endpoints and hands the result to the datapath; undefined (and the previous policy stays) when either refuses. */
  private compileAndApply(docs: PolicyDoc[]): CompiledPolicy | undefined {
    const log = this.child('policy');
    let compiled: CompiledPolicy;
    try {
      compiled = compilePolicies(docs, this.directory.endpoints, { ...(this.policy && { fqdnPrevious: this.policy.fqdnSelectors }) });
    } catch (e) {
      const reason = e instanceof Error ? e.message : String(e);
      this.policies.reject(reason);
      log.error({ dir: this.opts.policyDir }, `policy rejected, keeping the previous policy: ${reason}`);
      return undefined;
    }
    try {
      this.reconciler?.setPolicy(compiled);
    } catch (e) {
      this.policies.reject(`datapath refused the policy: ${String(e)}`);
      log.error({ err: String(e) }, 'datapath refused the policy, keeping the previous one');
      return undefined;
    }
    this.policy = compiled;
    this.ctx.setPolicyRefs(compiled.refs);
    this.directory.setCidrIdentities(compiled.cidrIdentities);
    this.directory.setAddressIdentities(compiled.addressIdentities);
    log.info({ revision: compiled.revision, entries: compiled.entries.length, policies: docs.length }, 'policy applied');
    this.fqdnLearner.setPolicy(compiled);
    return compiled;
  }

  private pushIdentities(): void {
    if (!this.reconciler) return;
    const rows = this.directory.identities();
    for (const c of this.policy?.cidrIdentities ?? []) rows.push(c);
    this.reconciler.setIdentities(rows);
    this.datapath?.setFqdnPeers?.(this.dualStack());
  }

  /** Local endpoints with addresses of both families: the first of each. */
  private dualStack(): { v4: string; v6: string }[] {
    return this.directory.localEndpoints().flatMap((e) => {
      const v4 = e.ips.find((ip) => !ip.includes(':'));
      const v6 = e.ips.find((ip) => ip.includes(':'));
      return v4 && v6 ? [{ v4, v6 }] : [];
    });
  }

  /** Local endpoint interfaces (every host interface but lo without an endpoints file), and the namespaces of local endpoints. */
  private reconcile(): void {
    if (!this.reconciler) return;
    const interfaces = new Set<string>();
    const netns = new Set<string>(['']);
    if (this.opts.endpointsFile) {
      for (const ep of this.directory.localEndpoints()) if (ep.interface) interfaces.add(ep.interface);
    } else {
      for (const name of readInterfaces().values()) if (name !== 'lo') interfaces.add(name);
    }
    for (const ep of this.directory.localEndpoints()) if (ep.netns) netns.add(ep.netns);
    this.reconciler.reconcile(interfaces, netns);
  }

  /** What peer.Peer announces: this node's TCP address, or the unix socket when TCP is off. */
  peerAddress(): string {
    const listen = this.listening?.tcp;
    if (listen && this.tcpPort !== undefined) {
      const host = listen.startsWith(':') || listen.startsWith('0.0.0.0') || listen.startsWith('[::]') ? primaryIp() : listen.slice(0, listen.lastIndexOf(':'));
      return `${host}:${this.tcpPort}`;
    }
    return this.listening?.unixSocket ? `unix://${this.listening.unixSocket}` : '';
  }
}

function hostIps(): string[] {
  const out: string[] = [];
  for (const addrs of Object.values(networkInterfaces())) for (const a of addrs ?? []) out.push(a.address.split('%')[0]!);
  return out;
}

function primaryIp(): string {
  for (const addrs of Object.values(networkInterfaces())) {
    for (const a of addrs ?? []) if (!a.internal && a.family === 'IPv4') return a.address;
  }
  return '127.0.0.1';
}

/** Named network namespaces (ip netns) → inode, for attributing socket events to pods. */
function netnsInodes(eps: ResolvedEndpoint[]): Map<number, ResolvedEndpoint> {
  const m = new Map<number, ResolvedEndpoint>();
  for (const ep of eps) {
    if (!ep.netns) continue;
    const path = ep.netns.startsWith('/') ? ep.netns : `/var/run/netns/${ep.netns}`;
    try {
      m.set(statSync(path).ino, ep);
    } catch {
      // namespace not created yet; attribution falls back to IPs
    }
  }
  return m;
}

/** Loads the kernel datapath lazily so replay and fake modes never load the native addon. */
async function loadKernelDatapath(opts: DatapathOptions): Promise<Datapath> {
  const spec = './datapath/kernel.js';
  let mod: Record<string, unknown>;
  try {
    mod = (await import(spec)) as Record<string, unknown>;
  } catch (e) {
    throw new FlowctlError('UNAVAILABLE', `kernel datapath unavailable: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  const Ctor = mod.KernelDatapath as (new (o: DatapathOptions) => Datapath) | undefined;
  const open = (mod.openKernelDatapath ?? mod.createKernelDatapath) as ((o: DatapathOptions) => Datapath | Promise<Datapath>) | undefined;
  if (open) return await open(opts);
  if (Ctor) return new Ctor(opts);
  throw new FlowctlError('UNAVAILABLE', 'kernel datapath module exports no KernelDatapath');
}
