// flowctl-agent: datapath → monitor consumer → parser → ring → observer → gRPC, plus the
// endpoints file and policy directory, both reloaded live.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { hostname, networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { configError, compilePolicies, parseEndpoints, type CompiledPolicy, type EndpointSet, type PolicyDoc, type ResolvedEndpoint } from '@flowctl/policy';
import type { Flow, LostEvent } from '@flowctl/flow';
import { PolicyService, type NodePolicies, type PolicyServer } from '@flowctl/flow/policy-service';
import { checkServerTls, hubbleServerName, plaintextRefusal, type ServerTlsFiles } from '@flowctl/flow/tls';
import type { Datapath, DatapathOptions } from './datapath/datapath.js';
import type { DatapathEvent } from './datapath/events.js';
import { EndpointDirectory } from './endpoints/directory.js';
import { AgentMetrics } from './metrics/agent-metrics.js';
import { FlowctlError } from './errors.js';
import { MonitorConsumer } from './monitor/consumer.js';
import { Observer } from './observer/observer.js';
import { LiveContext, readInterfaces } from './parser/live-context.js';
import { Parser } from './parser/parser.js';
import { parsePolicySources, readPolicySources, type PolicySource } from './policy/sources.js';
import { ReplaySource, loadReplayFile } from './replay/replay.js';
import { AgentServer, type Logger } from './server/server.js';
import { ServiceMapStore, type ServiceMapOptions } from './aggregate/service-map.js';
import { serviceMapImpl } from './server/service-map.js';
import { ServiceMapService } from '@flowctl/flow/gen/flowctl/servicemap.grpc';

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
  everyPacket?: boolean;
  /** Poll interval of the endpoints file and policy directory (reload within 2 s). */
  watchIntervalMs?: number;
  /** Service-map buckets (width, retention, bound, clock); defaults: 15 s buckets for an hour. */
  serviceMap?: Partial<Omit<ServiceMapOptions, 'nodeName' | 'isLocalIp'>>;
  /** A datapath to use instead of the kernel (tests). */
  datapath?: Datapath;
  log: Logger & { child?(b: object): Logger };
}

interface MapFillReporter {
  mapFill(): { map: string; entries: number; max: number }[];
}

interface NetnsWatcher {
  watchNetns(name?: string): number;
  unwatchNetns(name?: string): void;
}

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
  datapath: Datapath | undefined;
  consumer: MonitorConsumer | undefined;
  private replay: ReplaySource | undefined;
  private watchTimer: NodeJS.Timeout | undefined;
  private clockTimer: NodeJS.Timeout | undefined;
  private endpointsSig = '';
  private policySig = '';
  private policyDocs: PolicyDoc[] = [];
  /** The texts behind policyDocs and the endpoint set in force (PolicyService/List). */
  private policySources: PolicySource[] = [];
  private endpointsText = '';
  private policyRejected: string | undefined;
  private readonly hostAddrs: string[];
  private attached = new Map<string, { ifname: string; netns?: string }>();
  /** Network namespaces whose socket events and kernel drops the datapath reports ('' = our own). */
  private watchedNetns = new Set<string>();
  policy: CompiledPolicy | undefined;
  tcpPort: number | undefined;
  /** What start() decided to serve (listenPlan). */
  private listening: { unixSocket?: string; tcp?: string; tls?: ServerTlsFiles } | undefined;
  /** Bound port of /metrics, when serving. */
  metricsPort: number | undefined;
  readonly metrics: AgentMetrics | undefined;
  readonly serviceMap: ServiceMapStore;
  private readonly log: Logger;
  private stopped = false;

  constructor(readonly opts: AgentOptions) {
    this.nodeName = opts.nodeName || hostname();
    this.log = opts.log ?? noopLog;
    this.directory = new EndpointDirectory(this.nodeName);
    this.hostAddrs = hostIps();
    this.directory.setHostIps(this.hostAddrs);
    this.ctx = new LiveContext(this.directory);
    this.parser = new Parser(this.ctx);
    this.observer = new Observer({ nodeName: this.nodeName, capacity: opts.ringCapacity ?? 4095 });
    this.server = new AgentServer({
      observer: this.observer,
      peerAddress: () => this.peerAddress(),
      tlsServerName: () => this.tlsServerName,
      log: this.child('server'),
    });
    this.server.addService(PolicyService, {
      list: (_call, cb) => cb(null, { nodes: [this.policyInForce()] }),
    } satisfies PolicyServer);
    this.serviceMap = new ServiceMapStore({ ...opts.serviceMap, nodeName: this.nodeName, isLocalIp: (ip) => this.ctx.isLocalEndpointIp(ip) });
    this.server.addService(ServiceMapService, serviceMapImpl(this.serviceMap));
    // Built here so a bad --metrics list fails before anything is loaded or bound.
    if (opts.metricsAddress) {
      this.metrics = new AgentMetrics({
        ...(opts.metrics !== undefined && { spec: opts.metrics }),
        sources: {
          ring: () => ({ len: this.observer.ring.length, cap: this.observer.ring.capacity }),
          parserCounters: () => this.ctx.counters,
          datapathCounters: () => this.datapath?.counters(),
          ringLapped: () => this.observer.stats.ringLapped,
          mapFill: () => {
            const dp = this.datapath as Partial<MapFillReporter> | undefined;
            return typeof dp?.mapFill === 'function' ? dp.mapFill() : [];
          },
        },
      });
    }
  }

  /** Every flow and lost event goes through here on its way into the ring, so metrics see them all. */
  private writeFlow(flow: Flow): void {
    this.metrics?.observe(flow);
    this.serviceMap.observe(flow);
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
      const flows = loadReplayFile(this.opts.replay);
      this.replay = new ReplaySource(flows, this.opts.replayRate ?? 1000, this.nodeName, (f) => this.writeFlow(f), () => this.ctx.newUuid());
      this.replay.start();
      // Nothing is enforced without a datapath, but the endpoints and policies are loaded, watched
      // and reported (PolicyService/List) as on a kernel node, for what-if checks and tests.
      if (this.opts.endpointsFile) this.loadEndpoints(true);
      if (this.opts.policyDir) this.loadPolicies(true);
      log.info({ file: this.opts.replay, flows: flows.length, rate: this.opts.replayRate ?? 1000 }, 'replaying flows');
    } else {
      // Endpoints first (a bad file at start-up is fatal: there is no last good state yet).
      if (this.opts.endpointsFile) this.loadEndpoints(true);
      this.datapath = this.opts.datapath ?? (await loadKernelDatapath(this.datapathOptions()));
      const sink = { writeFlow: (f: Flow) => this.writeFlow(f), writeLost: (ev: LostEvent) => this.writeLost(ev) };
      this.consumer = new MonitorConsumer(this.metrics ? countingDatapath(this.datapath, this.metrics) : this.datapath, (ev) => this.parser.decode(ev), sink);
      this.consumer.start();
      this.reconcileAttachments();
      if (this.opts.policyDir) this.loadPolicies(true);
      this.pushIdentities();
    }

    const { tcpPort } = await this.server.listen(plan);
    this.tcpPort = tcpPort;
    this.listening = plan;
    const tls = plan.tls ? (plan.tls.clientCAs.length > 0 ? 'mutual' : 'server') : undefined;
    log.info({ node: this.nodeName, unixSocket: plan.unixSocket, tcp: plan.tcp, tcpPort, tls, ring: this.observer.ring.capacity }, 'serving');

    this.watchTimer = setInterval(() => this.poll(), this.opts.watchIntervalMs ?? 500);
    this.clockTimer = setInterval(() => this.ctx.clock.calibrate(), 60_000);
    this.clockTimer.unref();
  }

  private datapathOptions(): DatapathOptions {
    const o: DatapathOptions = {};
    if (this.opts.maxPayload !== undefined) o.maxPayload = this.opts.maxPayload;
    if (this.opts.everyPacket) o.everyPacket = true;
    if (this.opts.policyAudit) o.policyAudit = true;
    return o;
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.watchTimer) clearInterval(this.watchTimer);
    if (this.clockTimer) clearInterval(this.clockTimer);
    this.replay?.stop();
    await this.metrics?.close();
    await this.server.close();
    this.consumer?.stop();
    if (this.datapath) {
      for (const a of this.attached.values()) {
        try {
          this.datapath.detach(a.ifname, a.netns);
        } catch (e) {
          this.log.warn({ ifname: a.ifname, err: String(e) }, 'detach failed');
        }
      }
      this.attached.clear();
      const watcher = this.datapath as Partial<NetnsWatcher>;
      for (const n of this.watchedNetns) watcher.unwatchNetns?.(n || undefined);
      this.watchedNetns.clear();
      this.datapath.close();
    }
  }

  private poll(): void {
    if (this.opts.endpointsFile) this.loadEndpoints(false);
    if (this.opts.policyDir) this.loadPolicies(false);
  }

  /** Reloads the endpoints file if it changed; a bad file keeps the last good state. */
  loadEndpoints(initial: boolean): boolean {
    const file = this.opts.endpointsFile!;
    const sig = fileSig(file);
    if (!initial && sig === this.endpointsSig) return false;
    this.endpointsSig = sig;
    const log = this.child('endpoints');
    let set: EndpointSet;
    let text: string;
    try {
      try {
        text = readFileSync(file, 'utf8');
      } catch (e) {
        throw configError(file, 0, `cannot read: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
      }
      set = parseEndpoints(text, file);
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      if (initial) throw new FlowctlError('CONFIG', msg, { cause: e });
      log.error({ file }, `endpoints file rejected, keeping the last good state: ${msg}`);
      return false;
    }
    this.directory.setEndpoints(set);
    this.endpointsText = text;
    this.directory.setNetnsInodes(netnsInodes(set.endpoints));
    log.info({ file, endpoints: set.endpoints.length, local: this.directory.localEndpoints().length }, 'endpoints loaded');
    if (!initial) {
      this.reconcileAttachments();
      if (this.opts.policyDir && this.policyDocs.length) this.compileAndPush(this.policyDocs);
      this.pushIdentities();
    }
    return true;
  }

  /** Reloads *.yaml from the policy directory if anything changed; invalid policy keeps the previous one. */
  loadPolicies(initial: boolean): boolean {
    const dir = this.opts.policyDir!;
    const sig = dirSig(dir);
    if (!initial && sig === this.policySig) return false;
    this.policySig = sig;
    const log = this.child('policy');
    let docs: PolicyDoc[];
    let sources: PolicySource[];
    try {
      sources = readPolicySources(dir);
      docs = parsePolicySources(sources);
    } catch (e) {
      this.policyRejected = e instanceof Error ? e.message : String(e);
      log.error({ dir }, `policy rejected, keeping the previous policy: ${this.policyRejected}`);
      return false;
    }
    if (!this.compileAndPush(docs)) return false;
    this.policyDocs = docs;
    this.policySources = sources;
    this.policyRejected = undefined;
    if (!initial) this.pushIdentities();
    return true;
  }

  private compileAndPush(docs: PolicyDoc[]): boolean {
    const log = this.child('policy');
    let compiled: CompiledPolicy;
    try {
      compiled = compilePolicies(docs, this.directory.endpoints);
    } catch (e) {
      this.policyRejected = e instanceof Error ? e.message : String(e);
      log.error({ dir: this.opts.policyDir }, `policy rejected, keeping the previous policy: ${e instanceof Error ? e.message : String(e)}`);
      return false;
    }
    try {
      this.datapath?.setPolicy(compiled);
    } catch (e) {
      this.policyRejected = `datapath refused the policy: ${String(e)}`;
      log.error({ err: String(e) }, 'datapath refused the policy, keeping the previous one');
      return false;
    }
    this.policy = compiled;
    this.ctx.setPolicyRefs(compiled.refs);
    this.directory.setCidrIdentities(compiled.cidrIdentities);
    this.directory.setAddressIdentities(compiled.addressIdentities);
    log.info({ revision: compiled.revision, entries: compiled.entries.length, policies: docs.length }, 'policy applied');
    return true;
  }

  private pushIdentities(): void {
    if (!this.datapath) return;
    const rows = this.directory.identities();
    for (const c of this.policy?.cidrIdentities ?? []) rows.push(c);
    try {
      this.datapath.setIdentities(rows);
    } catch (e) {
      this.log.error({ err: String(e) }, 'datapath refused the identities');
    }
  }

  /** Attaches to local endpoint interfaces (or every host interface without an endpoints file). */
  private reconcileAttachments(): void {
    const dp = this.datapath;
    if (!dp) return;
    const want = new Map<string, { ifname: string; netns?: string }>();
    if (this.opts.endpointsFile) {
      for (const ep of this.directory.localEndpoints()) {
        if (ep.interface) want.set(ep.interface, { ifname: ep.interface });
      }
    } else {
      for (const name of readInterfaces().values()) if (name !== 'lo') want.set(name, { ifname: name });
    }
    const log = this.child('datapath');
    this.reconcileNetns(dp, log);
    for (const [k, a] of this.attached) {
      if (want.has(k)) continue;
      try {
        dp.detach(a.ifname, a.netns);
      } catch (e) {
        log.warn({ ifname: a.ifname, err: String(e) }, 'detach failed');
      }
      this.attached.delete(k);
    }
    for (const [k, a] of want) {
      if (this.attached.has(k)) continue;
      try {
        dp.attach(a.ifname, a.netns);
        this.attached.set(k, a);
        log.info({ ifname: a.ifname }, 'attached');
      } catch (e) {
        // The interface may not exist yet (pod still starting); the next reload retries.
        this.metrics?.attachError(a.ifname);
        log.warn({ ifname: a.ifname, err: e instanceof Error ? e.message : String(e) }, 'attach failed');
      }
    }
  }

  /** Tells the datapath which namespaces to watch (optional capability: KernelDatapath.watchNetns). */
  private reconcileNetns(dp: Datapath, log: Logger): void {
    const watcher = dp as Partial<NetnsWatcher>;
    if (typeof watcher.watchNetns !== 'function' || typeof watcher.unwatchNetns !== 'function') return;
    const want = new Set<string>(['']);
    for (const ep of this.directory.localEndpoints()) if (ep.netns) want.add(ep.netns);
    for (const n of this.watchedNetns) {
      if (want.has(n)) continue;
      watcher.unwatchNetns(n || undefined);
      this.watchedNetns.delete(n);
    }
    for (const n of want) {
      if (this.watchedNetns.has(n)) continue;
      try {
        watcher.watchNetns(n || undefined);
        this.watchedNetns.add(n);
      } catch (e) {
        log.warn({ netns: n, err: e instanceof Error ? e.message : String(e) }, 'cannot watch network namespace');
      }
    }
  }

  /** What PolicyService/List reports for this node: exactly the inputs of the policy in force. */
  policyInForce(): NodePolicies {
    const n: NodePolicies = {
      node: this.nodeName,
      revision: this.policy?.revision ?? 0,
      audit: this.opts.policyAudit === true,
      policy_dir: this.opts.policyDir ?? '',
      policies: this.policyDocs.map((d) => ({ kind: d.kind, name: d.name, namespace: d.namespace, labels: d.labels, file: d.file, document: d.document })),
      files: this.policySources.map((s) => ({ file: s.file, text: s.text })),
      endpoints_file: this.opts.endpointsFile ?? '',
      endpoints_yaml: this.endpointsText,
      host_ips: [...this.hostAddrs],
    };
    if (this.policyRejected !== undefined) n.rejected = this.policyRejected;
    return n;
  }

  get attachedInterfaces(): string[] {
    return [...this.attached.keys()].sort();
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

/** The datapath as the consumer sees it, counting every event read before the queue can drop it. */
function countingDatapath(dp: Datapath, metrics: AgentMetrics): Datapath {
  return {
    start: (onEvents: (events: DatapathEvent[]) => void) =>
      dp.start((batch) => {
        metrics.eventsRead(batch);
        onEvents(batch);
      }),
    attach: (i, n) => dp.attach(i, n),
    detach: (i, n) => dp.detach(i, n),
    setIdentities: (e) => dp.setIdentities(e),
    setPolicy: (p) => dp.setPolicy(p),
    pause: () => dp.pause(),
    resume: () => dp.resume(),
    counters: () => dp.counters(),
    close: () => dp.close(),
  };
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

function fileSig(path: string): string {
  try {
    const s = statSync(path);
    return `${s.ino}:${s.size}:${s.mtimeMs}`;
  } catch {
    return 'missing';
  }
}

function dirSig(dir: string): string {
  try {
    return readdirSync(dir)
      .filter((n) => /\.ya?ml$/.test(n) && !n.startsWith('.'))
      .sort()
      .map((n) => `${n}:${fileSig(join(dir, n))}`)
      .join('|');
  } catch {
    return 'missing';
  }
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
