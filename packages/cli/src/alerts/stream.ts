// The GetAlerts stream of an agent or relay (flowctl.alerts.v1.Alerts), as an async iteration.
import { Metadata, connectivityState, status as grpcStatus, type ServiceError } from '@grpc/grpc-js';
import type { GetAlertsRequest, GetAlertsResponse } from '@flowctl/flow/gen/flowctl/alerts';
import { AlertsClient } from '@flowctl/flow/gen/flowctl/alerts.grpc';
import { connectFailureReason } from '@flowctl/flow/tls';
import { CliError } from '../errors.js';
import { channelFor, type TlsOptions } from '../client.js';

export interface AlertsQuery {
  server: string;
  timeoutMs: number;
  tls?: TlsOptions;
}

function failure(e: ServiceError, server: string): CliError {
  if (e.code === grpcStatus.UNIMPLEMENTED) return new CliError('server', `${server} does not serve flowctl's alerts (flowctl.alerts.v1.Alerts): is it a flowctl agent or relay with detection on?`);
  if (e.code === grpcStatus.UNAVAILABLE || e.code === grpcStatus.DEADLINE_EXCEEDED) return new CliError('server', `cannot reach the server at ${server}: ${e.details || e.message} (is flowctl-relay or flowctl-agent running?)`);
  return new CliError('server', `${server}: ${grpcStatus[e.code] ?? e.code}: ${e.details || e.message}`);
}

/** Streams GetAlerts; `signal` (Ctrl-C) cancels the call and ends the iteration without error. */
export async function* streamAlerts(q: AlertsQuery, req: GetAlertsRequest, signal?: AbortSignal): AsyncGenerator<GetAlertsResponse> {
  const ch = channelFor(q.server, q.tls);
  const client = new AlertsClient(ch.address, ch.creds, { 'grpc.max_receive_message_length': 64 * 1024 * 1024, ...ch.options });
  try {
    // Connect within --timeout; a refused connection is reported at once with its reason.
    const deadline = Date.now() + q.timeoutMs;
    const channel = client.getChannel();
    for (let state = channel.getConnectivityState(true); state !== connectivityState.READY; state = channel.getConnectivityState(true)) {
      if (state === connectivityState.TRANSIENT_FAILURE) {
        throw new CliError('server', `cannot reach the server at ${q.server}: ${(await connectFailureReason(client)) ?? 'connection failed'} (is flowctl-relay or flowctl-agent running?)`);
      }
      const changed = await new Promise<boolean>((resolve) => channel.watchConnectivityState(state, deadline, (err) => resolve(!err)));
      if (!changed) throw new CliError('server', `cannot reach the server at ${q.server}: no answer before the dial timeout (--timeout) (is flowctl-relay or flowctl-agent running?)`);
    }
    const stream = client.getAlerts(req, new Metadata());
    const onAbort = () => stream.cancel();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      for await (const r of stream as AsyncIterable<GetAlertsResponse>) yield r;
    } catch (e) {
      const se = e as ServiceError;
      if (se.code === grpcStatus.CANCELLED && signal?.aborted) return;
      throw failure(se, q.server);
    } finally {
      signal?.removeEventListener('abort', onAbort);
      stream.cancel();
    }
  } finally {
    client.close();
  }
}
