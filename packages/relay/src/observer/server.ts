// GetFlows / ServerStatus / GetNodes / GetNamespaces fan-out over the peer pool
// (cilium pkg/hubble/relay/observer/server.go). gRPC statuses are produced only here.
import type { ListLearnedFqdnsRequest, ListLearnedFqdnsResponse, ListPoliciesResponse, NodeLearnedFqdns, NodePolicies } from '@flowctl/flow/policy-service';
import { Metadata, status as grpcStatus } from '@grpc/grpc-js';
import type { Client, ClientReadableStream, ServerWritableStream, ServiceError } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { NodeState } from '@flowctl/flow';
import type { Namespace, Node, NodeStatusEvent, ServerStatusResponse } from '@flowctl/flow';
import type { GetServiceMapRequest, GetServiceMapResponse } from '@flowctl/flow/gen/flowctl/servicemap';
import { mergeServiceMaps } from '@flowctl/flow/servicemap/merge';
import type { Peer, PeerManager } from '../pool/manager.js';
import { FlowctlError } from '@flowctl/flow';
import { grpcStatusOf } from '@flowctl/flow/grpc-status';
import { FanIn, aggregateErrors, itemBytes, nodeStatusItem, sortFlows } from './merge.js';
import type { Inlet, RelayItem, SortStats } from './merge.js';
import { FLOWS_UPSTREAM, rawCodec, unaryCodecs } from './services.js';
import type { RawRequest, Upstream } from './services.js';
import { forEachResponse } from '@flowctl/flow/batch';
import { ResponseTimeReader } from './wire.js';

export const RELAY_VERSION = '0.1.0';
/** Hubble's numUnavailableNodesReportMax. */
const UNAVAILABLE_REPORT_MAX = 10;
const PEER_UPDATE_INTERVAL_MS = 2000;
const ERROR_AGGREGATION_WINDOW_MS = 10_000;

export interface ObserverOptions {
  manager: PeerManager;
  log: Logger;
  relayNode: string;
  sortBufferLenMax: number;
  sortBufferDrainTimeoutMs: number;
  /** Deadline of unary calls to nodes (ServerStatus, GetNamespaces). */
  callTimeoutMs: number;
  errorAggregationWindowMs?: number;
  peerUpdateIntervalMs?: number;
  /** Ask nodes for flowctl's batched stream first (falls back per peer on UNIMPLEMENTED). */
  upstreamBatch?: boolean;
  /** Most flows per FlowBatch written to a batched client. */
  batchMax?: number;
  /** How long the merge waits for a node with nothing buffered before sending newer flows of
   * others (FanInOptions.waitMs; 0 = Hubble's behaviour). */
  mergeWaitMs?: number;
  /** A non-follow GetFlows stream to a node that sends nothing for this long is given up with a
   * NODE_ERROR (a node that accepts the call and hangs must not hold the client forever). */
  upstreamIdleTimeoutMs?: number;
}

/** Per-node counters; the map is keyed by node name and loses a node when it leaves the pool. */
export interface NodeStats {
  /** Responses from this node written to clients. */
  forwarded: number;
  /** Failures by kind: a GetFlows stream ending in error (or idle), a unary call failing, the
   * connection becoming unavailable. */
  errors: { stream: number; call: number; connect: number };
}

export interface RelayStats {
  /** GetFlows streams to nodes that are open right now. */
  openUpstreamStreams: number;
  /** Client GetFlows streams open right now. */
  openClientStreams: number;
  /** Responses from nodes that could not be parsed and were dropped. */
  malformedDropped: number;
  /** Responses from nodes (flows, lost events) written to clients. */
  forwarded: number;
  sort: SortStats;
  nodes: Map<string, NodeStats>;
}

/** Incoming metadata that must not be forwarded: transport and gRPC-reserved headers. */
const HOP_HEADERS = new Set(['user-agent', 'content-type', 'te', 'host', 'content-length', 'accept-encoding']);

/** A copy of the client's metadata for the nodes (Hubble forwards it, e.g. for auth or tracing). */
export function forwardedMetadata(md: Metadata | undefined): Metadata {
  const out = new Metadata();
  if (!md) return out;
  for (const key of Object.keys(md.getMap())) {
    if (key.startsWith(':') || key.startsWith('grpc-') || HOP_HEADERS.has(key)) continue;
    for (const v of md.get(key)) out.add(key, v);
  }
  return out;
}

type Writer = (items: RelayItem[]) => Promise<void>;

export function unary<Req, Res>(
  client: Client,
  codec: { path: string; serialize: (r: Req) => Buffer; deserialize: (b: Buffer) => Res },
  req: Req,
  timeoutMs: number,
): Promise<Res> {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(codec.path, codec.serialize, codec.deserialize, req, new Metadata(), { deadline: Date.now() + timeoutMs }, (err, res) =>
      err || !res ? reject(err ?? new Error('empty response')) : resolve(res),
    );
  });
}

function waitDrain(call: ServerWritableStream<unknown, unknown>): Promise<boolean> {
  return new Promise((resolve) => {
    const done = (ok: boolean) => () => {
      call.off('drain', onDrain);
      call.off('cancelled', onGone);
      call.off('close', onGone);
      resolve(ok);
    };
    const onDrain = done(true);
    const onGone = done(false);
    call.once('drain', onDrain);
    call.once('cancelled', onGone);
    call.once('close', onGone);
  });
}

const DEFAULT_UPSTREAM_IDLE_TIMEOUT_MS = 10_000;
/** Responses a node's channel may hold before its stream is paused (at least qlen). */
const INLET_MIN_CAPACITY = 1024;
/** Batches handed to grpc-js for one client and not yet written out. grpc-js would queue 16 of up
 * to batchMax flows each before reporting backpressure: delay and memory behind a slow client. */
const MAX_BATCHES_IN_FLIGHT = 4;
export const DEFAULT_MERGE_WAIT_MS = 200;

export class RelayObserver {
  readonly stats: RelayStats = {
    openUpstreamStreams: 0,
    openClientStreams: 0,
    malformedDropped: 0,
    forwarded: 0,
    sort: { overflow: 0, drains: 0, drained: 0 },
    nodes: new Map(),
  };
  private readonly log: Logger;

  constructor(private readonly opts: ObserverOptions) {
    this.log = opts.log;
    opts.manager.on('state', (p: Peer) => {
      if (p.state === 'unavailable') this.nodeStats(p.name).errors.connect++;
    });
    // Forget counters of nodes that left, so label cardinality follows the pool, not history.
    opts.manager.on('removed', (p: Peer) => {
      if (!opts.manager.list().some((q) => q.name === p.name)) this.stats.nodes.delete(p.name);
    });
  }

  nodeStats(name: string): NodeStats {
    let n = this.stats.nodes.get(name);
    if (!n) {
      n = { forwarded: 0, errors: { stream: 0, call: 0, connect: 0 } };
      this.stats.nodes.set(name, n);
    }
    return n;
  }

  private countForwarded(item: RelayItem): void {
    if (item.src) {
      item.src.forwarded++;
      this.stats.forwarded++;
    }
  }

  /**
   * Plain Observer GetFlows: one response per message, respecting the client's flow control. Also
   * flowctl's GetAlerts (`upstream`), whose responses share GetFlowsResponse's time, node_status
   * and lost_events fields, so they merge with the same fan-in, node status and lost-event rules.
   */
  getFlows(call: ServerWritableStream<RawRequest, Buffer>, upstream: Upstream = FLOWS_UPSTREAM): void {
    let gone = false;
    call.on('cancelled', () => (gone = true));
    const write: Writer = async (items) => {
      for (const item of items) {
        if (gone) return;
        this.countForwarded(item);
        if (!call.write(itemBytes(item)) && !(await waitDrain(call))) gone = true;
      }
    };
    void this.run(call, write, upstream);
  }

  /** flowctl's batched GetFlows: the same stream, many responses per message. */
  getFlowsBatched(call: ServerWritableStream<RawRequest, RelayItem[]>): void {
    let gone = false;
    const max = this.opts.batchMax ?? 1024;
    let inFlight = 0;
    let written: (() => void) | undefined;
    const onWritten = () => {
      inFlight--;
      const w = written;
      written = undefined;
      w?.();
    };
    // grpc-js drops writes on a cancelled call without calling back: wake the writer to notice.
    const hangUp = () => {
      gone = true;
      const w = written;
      written = undefined;
      w?.();
    };
    call.on('cancelled', hangUp);
    call.on('close', hangUp);
    const write: Writer = async (items) => {
      for (let i = 0; i < items.length && !gone; i += max) {
        // Items, not bytes: the method's serializer encodes them when grpc-js sends the message.
        const chunk = i === 0 && items.length <= max ? items : items.slice(i, i + max);
        for (const it of chunk) this.countForwarded(it);
        inFlight++;
        call.write(chunk, onWritten);
        while (inFlight >= MAX_BATCHES_IN_FLIGHT && !gone) await new Promise<void>((resolve) => (written = resolve));
      }
    };
    void this.run(call, write);
  }

  private async run(
    call: ServerWritableStream<RawRequest, Buffer> | ServerWritableStream<RawRequest, RelayItem[]>,
    write: Writer,
    upstream: Upstream = FLOWS_UPSTREAM,
  ): Promise<void> {
    this.stats.openClientStreams++;
    try {
      await this.streamFlows(call, write, upstream);
      call.end();
    } catch (e) {
      if (!(e instanceof FlowctlError)) this.log.error({ err: (e as Error).message }, `${upstream.name} failed`);
      call.emit('error', grpcStatusOf(e));
    } finally {
      this.stats.openClientStreams--;
    }
  }

  private async streamFlows(call: ServerWritableStream<RawRequest, unknown>, write: Writer, upstream: Upstream): Promise<void> {
    const { raw, req } = call.request;
    if (req.first && req.follow) throw new FlowctlError('INVALID_ARGUMENT', 'first cannot be specified with follow');
    const o = this.opts;
    const peers = o.manager.list();
    let qlen = o.sortBufferLenMax;
    const number = req.number ?? 0n;
    const want = number * BigInt(peers.length);
    if (want > 0n && want < BigInt(qlen)) qlen = Number(want);
    const md = forwardedMetadata(call.metadata);
    const follow = !!req.follow;

    // A node's channel holds qlen responses as in Hubble, but never less than a few of its
    // batches: pausing its stream after every message would cost more than the memory saved.
    const fan = new FanIn({
      capacity: Math.max(qlen, INLET_MIN_CAPACITY),
      relayNode: o.relayNode,
      waitMs: o.mergeWaitMs ?? DEFAULT_MERGE_WAIT_MS,
    });
    const cancels = new Set<() => void>();
    // Nodes with a live stream in this request; a node whose stream failed leaves it, so follow
    // mode picks it up again once the pool has reconnected it. Keyed by Peer, not name: a name is
    // learned from the node and two pool entries may briefly share one.
    const active = new Map<Peer, Inlet>();
    // The connection a node's failed stream ran on: retry only on a new one, not every tick.
    const failedOn = new Map<Peer, number>();
    let closed = false;
    const stop = () => {
      if (closed) return;
      closed = true;
      for (const c of [...cancels]) c();
      fan.close();
    };
    call.on('cancelled', stop);

    const start = (peer: Peer) => {
      const inlet = fan.add(peer.name);
      const generation = peer.generation;
      active.set(peer, inlet);
      this.openUpstream(upstream, peer, raw, md, follow, inlet, cancels, () => {
        if (active.get(peer) === inlet) active.delete(peer);
        failedOn.set(peer, generation);
      });
    };
    const requested = new Set(peers);
    const onRemoved = (peer: Peer) => {
      if (closed) return;
      const inlet = active.get(peer);
      active.delete(peer);
      failedOn.delete(peer);
      // A follow client hears about every node that leaves; a one-shot request only about its own.
      if (!inlet && !(follow || requested.has(peer))) return;
      inlet?.cancel?.();
      fan.event(nodeStatusItem(NodeState.NODE_GONE, [peer.name], o.relayNode, Date.now()));
    };
    o.manager.on('removed', onRemoved);

    const connected: Peer[] = [];
    const unavailable: string[] = [];
    for (const p of peers) {
      if (p.state === 'ready' && p.client) connected.push(p);
      else unavailable.push(p.name);
    }
    const head: RelayItem[] = [];
    if (connected.length) head.push(nodeStatusItem(NodeState.NODE_CONNECTED, connected.map((p) => p.name), o.relayNode, Date.now()));
    if (unavailable.length) head.push(nodeStatusItem(NodeState.NODE_UNAVAILABLE, unavailable, o.relayNode, Date.now()));
    let ticker: NodeJS.Timeout | undefined;
    try {
      if (head.length) await write(head);
      for (const p of connected) start(p);

      if (follow) {
        ticker = setInterval(() => {
          for (const p of o.manager.list()) if (p.state === 'ready' && p.client && !active.has(p) && failedOn.get(p) !== p.generation) start(p);
        }, o.peerUpdateIntervalMs ?? PEER_UPDATE_INTERVAL_MS);
      } else fan.seal();

      const pipeline = sortFlows(aggregateErrors(fan, o.errorAggregationWindowMs ?? ERROR_AGGREGATION_WINDOW_MS), {
        qlen,
        drainTimeoutMs: o.sortBufferDrainTimeoutMs,
        stats: this.stats.sort,
      });
      for await (const items of pipeline) {
        if (closed) break;
        await write(items);
      }
    } finally {
      if (ticker) clearInterval(ticker);
      o.manager.off('removed', onRemoved);
      stop();
    }
  }

  private openUpstream(
    upstream: Upstream,
    peer: Peer,
    raw: Buffer,
    md: Metadata,
    follow: boolean,
    inlet: Inlet,
    cancels: Set<() => void>,
    onEnd: () => void,
  ): void {
    const client = peer.client;
    const node = this.nodeStats(peer.name);
    if (!client) {
      node.errors.stream++;
      inlet.end(new Error(`no connection to ${peer.name}`));
      onEnd();
      return;
    }
    const batched = upstream.batchedPath !== undefined && this.opts.upstreamBatch !== false && peer.batch !== false;
    const stream: ClientReadableStream<Buffer> = client.makeServerStreamRequest(
      batched ? upstream.batchedPath! : upstream.path,
      rawCodec,
      rawCodec,
      raw,
      md.clone(),
      {},
    );
    this.stats.openUpstreamStreams++;
    let received = false;
    let finished = false;
    const cancel = () => stream.cancel();
    cancels.add(cancel);
    inlet.cancel = cancel;
    // Non-follow only: a follow stream may legitimately stay quiet for hours.
    const idleMs = this.opts.upstreamIdleTimeoutMs ?? DEFAULT_UPSTREAM_IDLE_TIMEOUT_MS;
    let idle: NodeJS.Timeout | undefined;
    const arm = () => {
      if (follow || idleMs <= 0 || finished) return;
      clearTimeout(idle);
      idle = setTimeout(() => {
        if (!finish()) return;
        node.errors.stream++;
        this.log.warn({ peer: peer.name, idleMs }, `node sent nothing on ${upstream.name}; giving up on it for this request`);
        onEnd();
        inlet.end(new Error(`no response from node within ${idleMs / 1000}s`));
        stream.cancel();
      }, idleMs);
    };
    const finish = () => {
      if (finished) return false;
      finished = true;
      clearTimeout(idle);
      cancels.delete(cancel);
      this.stats.openUpstreamStreams--;
      return true;
    };
    arm();
    let items: RelayItem[] = [];
    // Each response stays in the message it arrived in; an item only records where it lies.
    const times = new ResponseTimeReader();
    const toItem = (buf: Buffer, start: number, end: number): void => {
      const item: RelayItem = { sec: 0, nsec: 0, raw: buf, start, end, src: node, at: 0 };
      try {
        times.read(buf, start, end, item);
        items.push(item);
      } catch (e) {
        this.stats.malformedDropped++;
        if (this.stats.malformedDropped === 1 || this.stats.malformedDropped % 10000 === 0)
          this.log.warn({ peer: peer.name, err: (e as Error).message, dropped: this.stats.malformedDropped }, 'dropped malformed response from node');
      }
    };
    stream.on('data', (buf: Buffer) => {
      received = true;
      arm();
      items = [];
      if (batched) {
        try {
          forEachResponse(buf, toItem as (b: Uint8Array, start: number, end: number) => void);
        } catch (e) {
          this.stats.malformedDropped++;
          this.log.warn({ peer: peer.name, err: (e as Error).message }, 'dropped malformed batch from node');
        }
      } else toItem(buf, 0, buf.length);
      if (items.length && !inlet.push(items)) {
        // The client is the slow one here, not the node: no idle clock while paused.
        clearTimeout(idle);
        stream.pause();
        inlet.onResume = () => {
          arm();
          stream.resume();
        };
      }
    });
    stream.on('error', (err: ServiceError) => {
      if (!finish()) return;
      if (err.code === grpcStatus.UNIMPLEMENTED && batched && !received) {
        // Not a flowctl agent (or an older one): remember and use the plain Observer API.
        peer.batch = false;
        this.log.debug({ peer: peer.name }, 'peer has no batched GetFlows; using plain GetFlows');
        if (!inlet.ended) this.openUpstream(upstream, peer, raw, md, follow, inlet, cancels, onEnd);
        return;
      }
      if (batched) peer.batch = true;
      onEnd();
      if (err.code === grpcStatus.CANCELLED) inlet.end();
      else {
        node.errors.stream++;
        inlet.end(new Error(err.details || err.message));
      }
    });
    stream.on('end', () => {
      if (!finish()) return;
      if (batched) peer.batch = true;
      onEnd();
      if (follow) {
        // A follow stream never ends on its own: the node went away (an agent stopping
        // cleanly ends its streams with OK). Hubble stays silent here; users want to know.
        node.errors.stream++;
        this.log.warn({ peer: peer.name }, 'node ended a follow stream');
        inlet.end(new Error('node stopped streaming'));
      } else {
        inlet.end();
      }
    });
  }

  async serverStatus(): Promise<ServerStatusResponse> {
    const peers = this.opts.manager.list();
    const results = await Promise.all(
      peers.map((p) =>
        p.state === 'ready' && p.client
          ? unary(p.client, unaryCodecs.serverStatus, {}, this.opts.callTimeoutMs).catch((e: Error) => {
              this.nodeStats(p.name).errors.call++;
              this.log.debug({ peer: p.name, err: e.message }, 'ServerStatus failed');
              return undefined;
            })
          : Promise.resolve(undefined),
      ),
    );
    const out: ServerStatusResponse = {
      num_flows: 0n,
      max_flows: 0n,
      seen_flows: 0n,
      uptime_ns: 0n,
      flows_rate: 0,
      unavailable_nodes: [],
      version: `flowctl-relay v${RELAY_VERSION}`,
    };
    let unavailable = 0;
    results.forEach((r, i) => {
      if (!r) {
        unavailable++;
        if (out.unavailable_nodes!.length < UNAVAILABLE_REPORT_MAX) out.unavailable_nodes!.push(peers[i]!.name);
        return;
      }
      out.num_flows! += r.num_flows ?? 0n;
      out.max_flows! += r.max_flows ?? 0n;
      out.seen_flows! += r.seen_flows ?? 0n;
      out.flows_rate! += r.flows_rate ?? 0;
      if ((r.uptime_ns ?? 0n) > out.uptime_ns!) out.uptime_ns = r.uptime_ns!;
    });
    out.num_connected_nodes = peers.length - unavailable;
    out.num_unavailable_nodes = unavailable;
    return out;
  }

  async getNodes(): Promise<Node[]> {
    const peers = this.opts.manager.list();
    return Promise.all(
      peers.map(async (p): Promise<Node> => {
        const node: Node = {
          name: p.name,
          address: p.address.target,
          tls: { enabled: false, server_name: '' },
          state: NodeState.NODE_UNAVAILABLE,
        };
        if (p.state !== 'ready' || !p.client) return node;
        try {
          const st = await unary(p.client, unaryCodecs.serverStatus, {}, this.opts.callTimeoutMs);
          node.state = NodeState.NODE_CONNECTED;
          node.version = st.version ?? '';
          node.uptime_ns = st.uptime_ns ?? 0n;
          node.num_flows = st.num_flows ?? 0n;
          node.max_flows = st.max_flows ?? 0n;
          node.seen_flows = st.seen_flows ?? 0n;
        } catch (e) {
          this.nodeStats(p.name).errors.call++;
          this.log.debug({ peer: p.name, err: (e as Error).message }, 'ServerStatus for GetNodes failed');
          node.state = NodeState.NODE_ERROR;
        }
        return node;
      }),
    );
  }

  /** Policies in force on every node (flowctl agents only); a node that cannot answer says why. */
  async listPolicies(): Promise<ListPoliciesResponse> {
    const peers = this.opts.manager.list();
    const nodes = await Promise.all(
      peers.map(async (p): Promise<NodePolicies[]> => {
        const failed = (error: string): NodePolicies[] => [
          { node: p.name, error, revision: 0, audit: false, policy_dir: '', policies: [], files: [], endpoints_file: '', endpoints_yaml: '', host_ips: [] },
        ];
        if (p.state !== 'ready' || !p.client) return failed(`not connected${p.lastError ? `: ${p.lastError}` : ''}`);
        try {
          return (await unary(p.client, unaryCodecs.listPolicies, {}, this.opts.callTimeoutMs)).nodes;
        } catch (e) {
          this.nodeStats(p.name).errors.call++;
          return failed((e as ServiceError).details || (e as Error).message);
        }
      }),
    );
    return { nodes: nodes.flat().sort((a, b) => a.node.localeCompare(b.node)) };
  }

  /** What every node's endpoints learned for toFQDNs; a node that cannot answer carries `error`,
   * a request every node refuses (a bad name or address) is refused with its status. */
  async listLearnedFqdns(req: ListLearnedFqdnsRequest): Promise<ListLearnedFqdnsResponse> {
    const peers = this.opts.manager.list();
    let refused: ServiceError | undefined;
    const nodes = await Promise.all(
      peers.map(async (p): Promise<NodeLearnedFqdns[]> => {
        if (p.state !== 'ready' || !p.client) return [{ node: p.name, learned: [], error: `not connected${p.lastError ? `: ${p.lastError}` : ''}` }];
        try {
          return (await unary(p.client, unaryCodecs.listLearnedFqdns, req, this.opts.callTimeoutMs)).nodes;
        } catch (e) {
          const se = e as ServiceError;
          if (se.code === grpcStatus.INVALID_ARGUMENT) refused = se;
          else this.nodeStats(p.name).errors.call++;
          return [{ node: p.name, learned: [], error: se.details || se.message }];
        }
      }),
    );
    if (refused) throw new FlowctlError('INVALID_ARGUMENT', refused.details);
    return { nodes: nodes.flat().sort((a, b) => a.node.localeCompare(b.node)) };
  }

  /**
   * The service map of every node, summed (each agent counts a connection at one end only). A node
   * that cannot answer is named in node_status, as GetFlows names it, and the map lacks its part.
   */
  async getServiceMap(req: GetServiceMapRequest): Promise<GetServiceMapResponse> {
    const peers = this.opts.manager.list();
    const status: NodeStatusEvent[] = [];
    const parts = await Promise.all(
      peers.map(async (p): Promise<GetServiceMapResponse | undefined> => {
        if (p.state !== 'ready' || !p.client) {
          status.push({ state_change: NodeState.NODE_UNAVAILABLE, node_names: [p.name], message: p.lastError ?? 'not connected' });
          return undefined;
        }
        try {
          const r = await unary(p.client, unaryCodecs.getServiceMap, req, this.opts.callTimeoutMs);
          status.push({ state_change: NodeState.NODE_CONNECTED, node_names: [p.name], message: '' });
          return r;
        } catch (e) {
          this.nodeStats(p.name).errors.call++;
          const se = e as ServiceError;
          // A bad filter is the client's to fix, not a node's failure.
          if (se.code === grpcStatus.INVALID_ARGUMENT) throw new FlowctlError('INVALID_ARGUMENT', se.details);
          status.push({ state_change: NodeState.NODE_ERROR, node_names: [p.name], message: se.details || se.message });
          return undefined;
        }
      }),
    );
    const merged = mergeServiceMaps(parts.filter((r): r is GetServiceMapResponse => r !== undefined));
    merged.node_status = status.sort((a, b) => (a.node_names![0] ?? '').localeCompare(b.node_names![0] ?? ''));
    return merged;
  }

  async getNamespaces(): Promise<Namespace[]> {
    const peers = this.opts.manager.list().filter((p) => p.state === 'ready' && p.client);
    const seen = new Map<string, Namespace>();
    const results = await Promise.all(
      peers.map((p) =>
        unary(p.client!, unaryCodecs.getNamespaces, {}, this.opts.callTimeoutMs).catch((e: Error) => {
          this.nodeStats(p.name).errors.call++;
          this.log.debug({ peer: p.name, err: e.message }, 'GetNamespaces failed; partial result');
          return undefined;
        }),
      ),
    );
    for (const r of results) for (const ns of r?.namespaces ?? []) seen.set(`${ns.cluster ?? ''}\0${ns.namespace ?? ''}`, ns);
    return [...seen.values()].sort(
      (a, b) => (a.cluster ?? '').localeCompare(b.cluster ?? '') || (a.namespace ?? '').localeCompare(b.namespace ?? ''),
    );
  }
}

