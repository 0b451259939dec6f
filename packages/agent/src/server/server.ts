// The gRPC edge: Observer, grpc.health.v1.Health and peer.Peer on one server, on a unix socket and
// TCP, as the Cilium agent serves Hubble. FlowctlError codes become gRPC status codes only here.
import { existsSync, mkdirSync, rmdirSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import {
  ChangeNotificationType,
  HealthCheckResponse_ServingStatus,
  HealthService,
  ObserverService,
  PeerService,
  type ChangeNotification,
  type GetFlowsRequest,
  type GetFlowsResponse,
  type HealthServer,
  type ObserverServer,
  type PeerServer,
} from '@flowctl/flow';
import { BatchBuilder, BatchObserverService, type BatchObserverServer } from '@flowctl/flow/batch';
import { grpcStatusOf } from '@flowctl/flow/grpc-status';
import { listenTls, restrictSocket, type ServerTlsFiles, type TlsListener } from '@flowctl/flow/tls';
import { FlowctlError } from '../errors.js';
import { DONE, WAIT, type Observer } from '../observer/observer.js';

/** The service name `hubble status` checks (pkg/hubble/api/v1/const.go ObserverServiceName). */
export const OBSERVER_HEALTH_SERVICE = 'hubble.server.Observer';

export interface Logger {
  info(obj: object | string, msg?: string): void;
  warn(obj: object | string, msg?: string): void;
  error(obj: object | string, msg?: string): void;
}

export interface AgentServerOptions {
  observer: Observer;
  /** Most responses per FlowBatch of GetFlowsBatched (default 256; also capped at 1 MiB). */
  maxBatch?: number;
  /** What peer.Peer/Notify announces for this node (bare IP, ip:port or unix://path). */
  peerAddress: () => string;
  /** The TLS server name peer.Peer announces when the TCP listener serves TLS. */
  tlsServerName?: () => string | undefined;
  log?: Logger;
}

export class AgentServer {
  readonly server = new grpc.Server({ 'grpc.max_send_message_length': 16 * 1024 * 1024 });
  private readonly streams = new Set<AbortController>();
  private unixPath: string | undefined;
  private tlsListener: TlsListener | undefined;
  /** The socket's directory when this server made it: removed again on close. */
  private madeDir: string | undefined;

  constructor(private readonly opts: AgentServerOptions) {
    this.server.addService(ObserverService, this.observerImpl());
    this.server.addService(HealthService, this.healthImpl());
    this.server.addService(PeerService, this.peerImpl());
    this.server.addService(BatchObserverService, this.batchImpl());
  }

  /** Adds another service (e.g. flowctl.policy.v1.PolicyService) before listen(). */
  addService(def: grpc.ServiceDefinition, impl: grpc.UntypedServiceImplementation): void {
    this.server.addService(def, impl);
  }

  /** Binds the unix socket (mode 0660) and/or TCP address, with TLS when `tls` is given; returns
   * the bound TCP port. Every service on the server is served on both. */
  async listen(addr: { unixSocket?: string; tcp?: string; tls?: ServerTlsFiles }): Promise<{ tcpPort?: number }> {
    const bind = (a: string, flag: string, value: string) =>
      new Promise<number>((resolve, reject) =>
        this.server.bindAsync(a, grpc.ServerCredentials.createInsecure(), (err, port) =>
          err ? reject(new FlowctlError('CONFIG', `${flag} ${value}: cannot listen: ${err.message}`)) : resolve(port),
        ),
      );
    if (addr.unixSocket) {
      const dir = dirname(addr.unixSocket);
      if (!existsSync(dir)) {
        mkdirSync(dir, { recursive: true });
        this.madeDir = dir;
      }
      rmSync(addr.unixSocket, { force: true }); // a stale socket from a crashed run
      await bind(`unix:${addr.unixSocket}`, '--unix-socket', addr.unixSocket);
      this.unixPath = addr.unixSocket;
      restrictSocket(addr.unixSocket);
    }
    let tcpPort: number | undefined;
    if (addr.tcp) {
      if (!/^(?:\[[^\]]+\]|[^:]*):\d{1,5}$/.test(addr.tcp)) {
        throw new FlowctlError('CONFIG', `--listen-address ${addr.tcp}: want [host]:port, e.g. :4244 or 127.0.0.1:4244`);
      }
      if (addr.tls) {
        const target = tcpTarget(addr.tcp);
        const host = target.slice(0, target.lastIndexOf(':')).replace(/^\[|\]$/g, '');
        const log = this.opts.log ?? { info() {}, warn() {}, error() {} };
        try {
          this.tlsListener = await listenTls(this.server, host, Number(target.slice(target.lastIndexOf(':') + 1)), addr.tls, log);
        } catch (e) {
          if (e instanceof FlowctlError) throw e;
          throw new FlowctlError('CONFIG', `--listen-address ${addr.tcp}: cannot listen: ${(e as Error).message}`);
        }
        tcpPort = this.tlsListener.port;
      } else {
        tcpPort = await bind(tcpTarget(addr.tcp), '--listen-address', addr.tcp);
      }
    }
    return tcpPort === undefined ? {} : { tcpPort };
  }

  /** Ends every open stream, then stops the server. */
  async close(): Promise<void> {
    for (const s of this.streams) s.abort();
    this.tlsListener?.close();
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, 2000);
      this.server.tryShutdown(() => {
        clearTimeout(t);
        resolve();
      });
    });
    if (this.unixPath) rmSync(this.unixPath, { force: true });
    if (this.madeDir) {
      try {
        rmdirSync(this.madeDir);
      } catch {
        // Not empty any more (someone else's files): leave it.
      }
    }
  }

  /** A stream that close() ends (with OK, as an agent stopping cleanly ends its streams). */
  track(call: grpc.ServerWritableStream<unknown, unknown>): AbortController {
    const ac = new AbortController();
    this.streams.add(ac);
    const abort = () => ac.abort();
    call.on('cancelled', abort);
    call.on('close', abort);
    call.on('error', abort);
    ac.signal.addEventListener('abort', () => this.streams.delete(ac), { once: true });
    return ac;
  }

  private observerImpl(): ObserverServer {
    const observer = this.opts.observer;
    const log = this.opts.log;
    const unimplemented = (what: string) => ({ code: grpc.status.UNIMPLEMENTED, details: `${what} is not implemented by the agent` });
    return {
      getFlows: (call: grpc.ServerWritableStream<GetFlowsRequest, GetFlowsResponse>) => {
        try {
          observer.prepare(call.request);
        } catch (e) {
          failStream(call, grpcStatusOf(e));
          return;
        }
        const ac = this.track(call);
        void (async () => {
          try {
            for await (const r of observer.getFlows(call.request, ac.signal)) {
              if (ac.signal.aborted) break;
              if (!call.write(r)) {
                await drained(call, ac.signal);
              }
            }
            if (!call.cancelled) call.end();
          } catch (e) {
            log?.warn({ err: String(e) }, 'GetFlows stream failed');
            if (!call.cancelled) failStream(call, grpcStatusOf(e));
          } finally {
            ac.abort();
          }
        })();
      },
      getAgentEvents: (call) => failStream(call, unimplemented('GetAgentEvents')),
      getDebugEvents: (call) => failStream(call, unimplemented('GetDebugEvents')),
      // Hubble's agent answers GetNodes with Unimplemented; only the relay knows the nodes.
      getNodes: (_call, cb) => cb(unimplemented('GetNodes')),
      getNamespaces: (_call, cb) => cb(null, { namespaces: observer.namespaces() }),
      serverStatus: (_call, cb) => cb(null, observer.serverStatus()),
    } as ObserverServer;
  }

  /**
   * flowctl's batched GetFlows: the GetFlows cursor, with the responses available at one time
   * grouped into one FlowBatch per write (up to maxBatch or 1 MiB). A follow stream that has
   * caught up sends what it has at once, so batching never delays a flow.
   */
  private batchImpl(): BatchObserverServer {
    const observer = this.opts.observer;
    const log = this.opts.log;
    const maxBatch = this.opts.maxBatch ?? 256;
    return {
      getFlowsBatched: (call: grpc.ServerWritableStream<GetFlowsRequest, Buffer>) => {
        let cursor;
        try {
          cursor = observer.cursor(call.request);
        } catch (e) {
          failStream(call, grpcStatusOf(e));
          return;
        }
        const ac = this.track(call);
        const builder = new BatchBuilder(maxBatch);
        void (async () => {
          try {
            while (!ac.signal.aborted) {
              const r = cursor.next();
              if (r !== WAIT && r !== DONE && !builder.push(r)) continue;
              const batch = builder.take();
              if (batch && !call.write(batch)) await drained(call, ac.signal);
              if (r === DONE) break;
              if (r === WAIT) await cursor.waitForWrite(ac.signal);
            }
            if (!call.cancelled) call.end();
          } catch (e) {
            log?.warn({ err: String(e) }, 'GetFlowsBatched stream failed');
            if (!call.cancelled) failStream(call, grpcStatusOf(e));
          } finally {
            ac.abort();
          }
        })();
      },
    };
  }

  private healthImpl(): HealthServer {
    const status = (service: string | undefined) =>
      service === undefined || service === '' || service === OBSERVER_HEALTH_SERVICE
        ? HealthCheckResponse_ServingStatus.SERVING
        : undefined;
    return {
      check: (call, cb) => {
        const s = status(call.request.service);
        if (s === undefined) cb({ code: grpc.status.NOT_FOUND, details: `unknown service ${call.request.service}` });
        else cb(null, { status: s });
      },
      watch: (call) => {
        this.track(call);
        call.write({ status: status(call.request.service) ?? HealthCheckResponse_ServingStatus.SERVICE_UNKNOWN });
      },
    };
  }

  private peerImpl(): PeerServer {
    return {
      notify: (call) => {
        const ac = this.track(call);
        const serverName = this.opts.tlsServerName?.();
        const self: ChangeNotification = {
          name: this.opts.observer.nodeName,
          address: this.opts.peerAddress(),
          type: ChangeNotificationType.PEER_ADDED,
          ...(serverName && { tls: { server_name: serverName } }),
        };
        call.write(self);
        // A single agent knows only itself; the stream stays open (as Hubble's) until the client leaves.
        ac.signal.addEventListener('abort', () => {
          if (!call.cancelled) call.end();
        }, { once: true });
      },
    };
  }
}

/** Waits for 'drain' or the end of the stream; removes both listeners either way (a stream
 * that is often backpressured would otherwise pile up abort listeners). */
function drained(call: grpc.ServerWritableStream<unknown, unknown>, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      call.off('drain', done);
      signal.removeEventListener('abort', done);
      resolve();
    };
    call.on('drain', done);
    signal.addEventListener('abort', done, { once: true });
  });
}

/** Ends a server stream with a status (grpc-js sends the status of an emitted 'error'). */
function failStream(call: grpc.ServerWritableStream<unknown, unknown>, st: Partial<grpc.StatusObject>): void {
  call.emit('error', { code: st.code ?? grpc.status.INTERNAL, details: st.details ?? '', metadata: new grpc.Metadata() });
}

/** ":4244" → "0.0.0.0:4244"; "host:port" and "[v6]:port" as given. */
export function tcpTarget(listen: string): string {
  return listen.startsWith(':') ? `0.0.0.0${listen}` : listen;
}
