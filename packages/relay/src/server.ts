// The relay's gRPC server: Observer (fan-out), flowctl's batched GetFlows, and grpc.health.v1
// answering SERVING for "hubble.server.Observer", which `hubble status` checks first.
import { Server, ServerCredentials, status as grpcStatus } from '@grpc/grpc-js';
import type { sendUnaryData, ServerUnaryCall, ServerWritableStream, UntypedServiceImplementation } from '@grpc/grpc-js';
import { HealthCheckResponse_ServingStatus, HealthService } from '@flowctl/flow';
import type { HealthCheckRequest, HealthCheckResponse } from '@flowctl/flow';
import { PolicyService, type ListLearnedFqdnsRequest } from '@flowctl/flow/policy-service';
import { ServiceMapService } from '@flowctl/flow/gen/flowctl/servicemap.grpc';
import { BlocksService } from '@flowctl/flow/gen/flowctl/blocks.grpc';
import type { AddBlockRequest, RemoveBlockRequest } from '@flowctl/flow/gen/flowctl/blocks';
import { RelayBlocks } from './observer/blocks.js';
import type { GetServiceMapRequest, GetServiceMapResponse } from '@flowctl/flow/gen/flowctl/servicemap';
import { FlowctlError } from '@flowctl/flow';
import { grpcStatusOf } from '@flowctl/flow/grpc-status';
import { listenTls, restrictSocket, type Logger, type ServerTlsFiles, type TlsListener } from '@flowctl/flow/tls';
import { RelayObserver } from './observer/server.js';
import type { ObserverOptions } from './observer/server.js';
import type { RelayItem } from './observer/merge.js';
import { ALERTS_UPSTREAM, batchObserverDefinition, relayAlertsDefinition, relayObserverDefinition } from './observer/services.js';
import type { RawRequest } from './observer/services.js';

export const OBSERVER_SERVICE_NAME = 'hubble.server.Observer';

/** `:4245` → all interfaces; `unix:///path` as is; `host:port` as is. */
export function parseListenAddress(addr: string): string {
  const a = addr.trim();
  if (a.startsWith('unix://')) {
    if (!a.startsWith('unix:///')) throw new FlowctlError('CONFIG', `invalid listen address "${addr}": unix socket path must be absolute`);
    return a;
  }
  const m = /^(.*):(\d{1,5})$/.exec(a);
  if (!m || Number(m[2]) > 65535) throw new FlowctlError('CONFIG', `invalid listen address "${addr}": want host:port, :port or unix:///path`);
  return `${m[1] === '' ? '0.0.0.0' : m[1]}:${m[2]}`;
}

export interface RelayServer {
  observer: RelayObserver;
  /** Bound TCP port (0 for unix sockets). */
  port: number;
  address: string;
  close(): Promise<void>;
}

function unaryHandler<Res, Req = unknown>(fn: (req: Req) => Promise<Res>) {
  return (call: ServerUnaryCall<Req, Res>, cb: sendUnaryData<Res>) => {
    fn(call.request).then(
      (r) => cb(null, r),
      (e: unknown) => cb(grpcStatusOf(e)),
    );
  };
}

function unimplemented(what: string) {
  return (call: ServerWritableStream<unknown, unknown>) =>
    call.emit('error', { code: grpcStatus.UNIMPLEMENTED, details: `${what} is not implemented by the relay` });
}

export interface RelayServerOptions extends ObserverOptions {
  /** The relay's drop-list memory (RelayBlocks) is kept in this file across restarts; none: in memory. */
  blocksStateFile?: string;
}

/** Serves every service on `listen`: TLS when `tls` is given (TCP only), a unix socket with mode 0660. */
export async function startRelayServer(listen: string, opts: RelayServerOptions, tls?: { files: ServerTlsFiles; log: Logger }): Promise<RelayServer> {
  const observer = new RelayObserver(opts);
  const server = new Server({
    'grpc.max_send_message_length': 64 * 1024 * 1024,
  });
  server.addService(relayObserverDefinition, {
    getFlows: (call: ServerWritableStream<RawRequest, Buffer>) => observer.getFlows(call),
    getAgentEvents: unimplemented('GetAgentEvents'),
    getDebugEvents: unimplemented('GetDebugEvents'),
    getNodes: unaryHandler(async () => ({ nodes: await observer.getNodes() })),
    getNamespaces: unaryHandler(async () => ({ namespaces: await observer.getNamespaces() })),
    serverStatus: unaryHandler(() => observer.serverStatus()),
  } as UntypedServiceImplementation);
  server.addService(batchObserverDefinition(), {
    getFlowsBatched: (call: ServerWritableStream<RawRequest, RelayItem[]>) => observer.getFlowsBatched(call),
  } as UntypedServiceImplementation);
  server.addService(PolicyService, {
    list: unaryHandler(() => observer.listPolicies()),
    listLearnedFqdns: unaryHandler((req: ListLearnedFqdnsRequest) => observer.listLearnedFqdns(req)),
  } as UntypedServiceImplementation);
  server.addService(ServiceMapService, {
    getServiceMap: (call: ServerUnaryCall<GetServiceMapRequest, GetServiceMapResponse>, cb: sendUnaryData<GetServiceMapResponse>) =>
      unaryHandler(() => observer.getServiceMap(call.request))(call, cb),
  } as UntypedServiceImplementation);
  server.addService(relayAlertsDefinition, {
    getAlerts: (call: ServerWritableStream<RawRequest, Buffer>) => observer.getFlows(call, ALERTS_UPSTREAM),
  } as UntypedServiceImplementation);
  const blocks = new RelayBlocks({
    manager: opts.manager,
    callTimeoutMs: opts.callTimeoutMs,
    callFailed: (n) => observer.nodeStats(n).errors.call++,
    ...(opts.blocksStateFile && { stateFile: opts.blocksStateFile }),
    warn: (m) => opts.log.warn(m),
  });
  const restored = blocks.load();
  if (restored.added || restored.removed) {
    opts.log.info({ ...restored, stateFile: opts.blocksStateFile }, `relay drop list: restored ${restored.added} entries and ${restored.removed} removals`);
  }
  server.addService(BlocksService, {
    add: unaryHandler((req: AddBlockRequest) => blocks.add(req)),
    remove: unaryHandler((req: RemoveBlockRequest) => blocks.remove(req)),
    list: unaryHandler(() => blocks.list()),
  } as UntypedServiceImplementation);
  const healthStatus = (service: string | undefined) =>
    !service || service === OBSERVER_SERVICE_NAME ? HealthCheckResponse_ServingStatus.SERVING : undefined;
  server.addService(HealthService, {
    check: (call: ServerUnaryCall<HealthCheckRequest, HealthCheckResponse>, cb: sendUnaryData<HealthCheckResponse>) => {
      const s = healthStatus(call.request.service);
      if (s === undefined) cb({ code: grpcStatus.NOT_FOUND, details: `unknown service "${call.request.service}"` });
      else cb(null, { status: s });
    },
    watch: (call: ServerWritableStream<HealthCheckRequest, HealthCheckResponse>) => {
      call.write({ status: healthStatus(call.request.service) ?? HealthCheckResponse_ServingStatus.SERVICE_UNKNOWN });
    },
  } as UntypedServiceImplementation);
  const address = parseListenAddress(listen);
  let tlsListener: TlsListener | undefined;
  let port: number;
  if (tls && !address.startsWith('unix:')) {
    const i = address.lastIndexOf(':');
    try {
      tlsListener = await listenTls(server, address.slice(0, i).replace(/^\[|\]$/g, ''), Number(address.slice(i + 1)), tls.files, tls.log);
    } catch (e) {
      throw new FlowctlError('CONFIG', e instanceof FlowctlError ? e.message : `cannot listen on ${listen}: ${(e as Error).message}`);
    }
    port = tlsListener.port;
  } else {
    port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(address, ServerCredentials.createInsecure(), (err, p) =>
        err ? reject(new FlowctlError('CONFIG', `cannot listen on ${listen}: ${err.message}`)) : resolve(p),
      ),
    );
    if (address.startsWith('unix://')) restrictSocket(address.slice('unix://'.length));
  }
  return {
    observer,
    port,
    address: address.startsWith('unix:') ? address : address.replace(/:\d+$/, `:${port}`),
    close: () =>
      new Promise<void>((resolve) => {
        tlsListener?.close();
        // Give open streams a moment to finish, then cut them: a client must not hold up shutdown.
        const t = setTimeout(() => server.forceShutdown(), 1000);
        server.tryShutdown(() => {
          clearTimeout(t);
          resolve();
        });
      }),
  };
}
