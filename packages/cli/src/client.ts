// The gRPC side of the CLI. Imported lazily (await import('./client.js')) by the commands that
// talk to a server, so `--input-file`, `--help` and `version` never load grpc-js.
import { connectivityState, credentials, Metadata, status as grpcStatus, type ChannelCredentials, type ChannelOptions, type ClientReadableStream, type ServiceError } from '@grpc/grpc-js';
import { isFlowctlError } from '@flowctl/flow/errors';
import { clientCredentials, connectFailureReason, serverNameOptions } from '@flowctl/flow/tls';
import type { GetFlowsRequest, GetFlowsResponse } from '@flowctl/flow/gen/observer/observer';
import { ObserverClient } from '@flowctl/flow/gen/observer/observer.grpc';
import { BatchObserverClient, decodeFlowBatch } from '@flowctl/flow/batch';
import { HealthCheckResponse_ServingStatus } from '@flowctl/flow/gen/grpc/health/v1/health';
import { HealthClient } from '@flowctl/flow/gen/grpc/health/v1/health.grpc';
import type { GetNamespacesResponse, GetNodesResponse, ServerStatusResponse } from '@flowctl/flow/gen/observer/observer';
import { CliError } from './errors.js';

export const OBSERVER_SERVICE_NAME = 'hubble.server.Observer';

/** `hubble observe`'s TLS flags. */
export interface TlsOptions {
  tls?: boolean;
  tlsAllowInsecure?: boolean;
  tlsCaCertFiles?: string[];
  tlsClientCertFile?: string;
  tlsClientKeyFile?: string;
  tlsServerName?: string;
}

export interface ServerOptions {
  server: string;
  timeoutMs: number;
  tls?: TlsOptions;
}

/** `host:port`, `unix:///path` (what grpc-js dials); `tls://host:port` dials host:port with TLS. */
export function normaliseAddress(server: string): string {
  if (server.startsWith('unix://') || server.startsWith('unix:')) return server;
  const s = server.replace(/^(http|dns|tls):\/\//, '');
  if (!s) throw new CliError('usage', '--server must not be empty');
  return s;
}

/**
 * What to dial and how, as the Hubble CLI decides: TLS with --tls, a tls:// address or a client
 * certificate; --tls-server-name is the name the server's certificate must carry.
 */
export function channelFor(server: string, t: TlsOptions = {}): { address: string; creds: ChannelCredentials; options: ChannelOptions } {
  const address = normaliseAddress(server);
  const useTls = !!t.tls || server.startsWith('tls://') || !!t.tlsClientCertFile || !!t.tlsClientKeyFile;
  if (!useTls) return { address, creds: credentials.createInsecure(), options: {} };
  try {
    const creds = clientCredentials({
      ca: (t.tlsCaCertFiles ?? []).flatMap((f) => f.split(',')).filter(Boolean).map((path) => ({ flag: '--tls-ca-cert-files', path })),
      ...(t.tlsClientCertFile && { cert: { flag: '--tls-client-cert-file', path: t.tlsClientCertFile } }),
      ...(t.tlsClientKeyFile && { key: { flag: '--tls-client-key-file', path: t.tlsClientKeyFile } }),
      allowInsecure: !!t.tlsAllowInsecure,
    });
    return { address, creds, options: serverNameOptions(t.tlsServerName) };
  } catch (e) {
    if (isFlowctlError(e)) throw new CliError('usage', e.message.replace(/^a client (\w+) file is needed too: (.*)$/, '$2 is needed too: a client certificate takes its key'));
    throw e;
  }
}

function describe(e: ServiceError | Error, server: string): string {
  const se = e as ServiceError;
  if (se.code === grpcStatus.UNAVAILABLE || se.code === grpcStatus.DEADLINE_EXCEEDED) {
    return `cannot reach the server at ${server}: ${se.details || se.message}`;
  }
  if (se.code !== undefined && se.details) return `${server}: ${grpcStatus[se.code] ?? se.code}: ${se.details}`;
  return `${server}: ${e.message}`;
}

export class Connection {
  readonly observer: ObserverClient;
  private health: HealthClient | undefined;
  private batchClient: BatchObserverClient | undefined;
  /** Whether the server serves flowctl's batched GetFlows; undefined until tried. */
  private batched: boolean | undefined;
  private readonly channel: ReturnType<typeof channelFor>;

  constructor(private readonly opts: ServerOptions) {
    this.channel = channelFor(opts.server, opts.tls);
    this.observer = new ObserverClient(this.channel.address, this.channel.creds, {
      'grpc.max_receive_message_length': 64 * 1024 * 1024,
      // As the relay's upstream channels (relay pool/manager.ts): with HTTP/2's 64 KiB window a
      // following stream waits for a WINDOW_UPDATE every ~50 flows, a round trip through two busy
      // event loops, and falls behind a busy node (docs/benchmarks.md, HTTP keep-alive).
      'grpc-node.flow_control_window': 4 << 20,
      ...this.channel.options,
    });
  }

  /**
   * Connects within --timeout. The timeout is for a server that stays silent: a refused or failed
   * connection (TRANSIENT_FAILURE) is reported at once, with the reason grpc-js saw.
   */
  async ready(): Promise<void> {
    const deadline = Date.now() + this.opts.timeoutMs;
    const channel = this.observer.getChannel();
    const unreachable = (why: string) => new CliError('server', `cannot reach the server at ${this.opts.server}: ${why} (is flowctl-relay or flowctl-agent running?)`);
    for (let state = channel.getConnectivityState(true); state !== connectivityState.READY; state = channel.getConnectivityState(true)) {
      // The channel's last error says why (connection refused, a TLS handshake refused).
      if (state === connectivityState.TRANSIENT_FAILURE) throw unreachable((await connectFailureReason(this.observer)) ?? 'connection failed');
      const changed = await new Promise<boolean>((resolve) => channel.watchConnectivityState(state, deadline, (err) => resolve(!err)));
      if (!changed) throw unreachable('no answer before the dial timeout (--timeout)');
    }
  }

  private unary<T>(call: (cb: (e: ServiceError | null, r: T) => void) => void): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      call((e, r) => (e ? reject(new CliError('server', describe(e, this.opts.server))) : resolve(r)));
    });
  }

  private deadline(): { deadline: number } {
    return { deadline: Date.now() + Math.max(this.opts.timeoutMs, 12_000) };
  }

  async healthCheck(): Promise<void> {
    this.health ??= new HealthClient(this.channel.address, this.channel.creds, this.channel.options);
    const h = this.health;
    const resp = await this.unary<{ status?: HealthCheckResponse_ServingStatus }>((cb) =>
      h.check({ service: OBSERVER_SERVICE_NAME }, new Metadata(), this.deadline(), cb),
    );
    if (resp.status !== HealthCheckResponse_ServingStatus.SERVING) {
      throw new CliError('server', `${this.opts.server}: health check for ${OBSERVER_SERVICE_NAME}: ${HealthCheckResponse_ServingStatus[resp.status ?? 0]}`);
    }
  }

  serverStatus(): Promise<ServerStatusResponse> {
    return this.unary((cb) => this.observer.serverStatus({}, new Metadata(), this.deadline(), cb));
  }
  getNodes(): Promise<GetNodesResponse> {
    return this.unary((cb) => this.observer.getNodes({}, new Metadata(), this.deadline(), cb));
  }
  getNamespaces(): Promise<GetNamespacesResponse> {
    return this.unary((cb) => this.observer.getNamespaces({}, new Metadata(), this.deadline(), cb));
  }

  /**
   * Streams GetFlows; `signal` (Ctrl-C) cancels the call and ends the iteration without error.
   * flowctl's agents and relay serve the same stream batched, many responses per gRPC message
   * (grpc-js sends messages one at a time, each a trip through the server's event loop): asked
   * for first; a server without it (Hubble's) answers UNIMPLEMENTED before sending anything.
   */
  async *getFlows(req: GetFlowsRequest, signal?: AbortSignal): AsyncGenerator<GetFlowsResponse> {
    if (this.batched !== false) {
      this.batchClient ??= new BatchObserverClient(this.channel.address, this.channel.creds, { channelOverride: this.observer.getChannel() });
      let unimplemented = false;
      const batches = this.read(this.batchClient.getFlowsBatched(req), signal, (e) => (unimplemented = !this.batched && e.code === grpcStatus.UNIMPLEMENTED));
      for await (const b of batches) {
        this.batched = true;
        let responses: GetFlowsResponse[];
        try {
          responses = decodeFlowBatch(b, this.opts.server);
        } catch (e) {
          throw new CliError('server', (e as Error).message);
        }
        yield* responses;
      }
      if (!unimplemented) return;
      this.batched = false;
    }
    yield* this.read<GetFlowsResponse>(this.observer.getFlows(req), signal);
  }

  /** A server stream's messages. `signal` cancels it quietly, and so does an error `quiet` accepts. */
  private async *read<T>(stream: ClientReadableStream<T>, signal?: AbortSignal, quiet?: (e: ServiceError) => boolean): AsyncGenerator<T> {
    const onAbort = () => stream.cancel();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      for await (const r of stream as AsyncIterable<T>) yield r;
    } catch (e) {
      const se = e as ServiceError;
      if (se.code === grpcStatus.CANCELLED && signal?.aborted) return;
      if (quiet?.(se)) return;
      throw new CliError('server', describe(se, this.opts.server));
    } finally {
      signal?.removeEventListener('abort', onAbort);
      stream.cancel();
    }
  }

  close(): void {
    this.observer.close();
    this.health?.close();
  }
}
