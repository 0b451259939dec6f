// The gRPC side of the CLI. Imported lazily (await import('./client.js')) by the commands that
// talk to a server, so `--input-file`, `--help` and `version` never load grpc-js.
import { credentials, Metadata, status as grpcStatus, type ServiceError } from '@grpc/grpc-js';
import type { GetFlowsRequest, GetFlowsResponse } from '@flowctl/flow/gen/observer/observer';
import { ObserverClient } from '@flowctl/flow/gen/observer/observer.grpc';
import { HealthCheckResponse_ServingStatus } from '@flowctl/flow/gen/grpc/health/v1/health';
import { HealthClient } from '@flowctl/flow/gen/grpc/health/v1/health.grpc';
import type { GetNamespacesResponse, GetNodesResponse, ServerStatusResponse } from '@flowctl/flow/gen/observer/observer';
import { CliError } from './errors.js';

export const OBSERVER_SERVICE_NAME = 'hubble.server.Observer';

export interface ServerOptions {
  server: string;
  timeoutMs: number;
}

/** `host:port`, `unix:///path` (what grpc-js dials); TLS arrives with the TLS issue. */
export function normaliseAddress(server: string): string {
  if (server.startsWith('tls://')) throw new CliError('usage', `--server ${server}: TLS is not supported yet`);
  if (server.startsWith('unix://') || server.startsWith('unix:')) return server;
  const s = server.replace(/^(http|dns):\/\//, '');
  if (!s) throw new CliError('usage', '--server must not be empty');
  return s;
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
  private readonly address: string;

  constructor(private readonly opts: ServerOptions) {
    this.address = normaliseAddress(opts.server);
    this.observer = new ObserverClient(this.address, credentials.createInsecure(), {
      'grpc.max_receive_message_length': 64 * 1024 * 1024,
    });
  }

  async ready(): Promise<void> {
    const deadline = Date.now() + this.opts.timeoutMs;
    await new Promise<void>((resolve, reject) => {
      this.observer.waitForReady(deadline, (err) => {
        if (err) reject(new CliError('server', `cannot reach the server at ${this.opts.server}: ${err.message} (is flowctl-relay or flowctl-agent running?)`));
        else resolve();
      });
    });
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
    this.health ??= new HealthClient(this.address, credentials.createInsecure());
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
   */
  async *getFlows(req: GetFlowsRequest, signal?: AbortSignal): AsyncGenerator<GetFlowsResponse> {
    const stream = this.observer.getFlows(req);
    const onAbort = () => stream.cancel();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      for await (const r of stream as AsyncIterable<GetFlowsResponse>) yield r;
    } catch (e) {
      const se = e as ServiceError;
      if (se.code === grpcStatus.CANCELLED && signal?.aborted) return;
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
