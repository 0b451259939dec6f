// Asks an agent or relay for its service map (flowctl.servicemap.v1.ServiceMap) and returns the
// map's JSON model. Shared by `flowctl map` and `flowctl ui`.
import { Metadata, status as grpcStatus, type ServiceError } from '@grpc/grpc-js';
import type { FlowFilter } from '@flowctl/flow/gen/flow/flow';
import type { GetServiceMapRequest, GetServiceMapResponse } from '@flowctl/flow/gen/flowctl/servicemap';
import { ServiceMapClient } from '@flowctl/flow/gen/flowctl/servicemap.grpc';
import type { Timestamp } from '@flowctl/flow/gen/google/protobuf/timestamp';
import { compileFilters } from '@flowctl/flow/filters';
import { CliError } from '../errors.js';
import { channelFor, type TlsOptions } from '../client.js';
import { parseTimeFlag } from '../options/time.js';
import { buildServiceMap, type ServiceMap } from './model.js';

export const DEFAULT_MAP_SINCE = '5m';

export interface MapQuery {
  server: string;
  timeoutMs: number;
  /** The global TLS flags (--tls, --tls-ca-cert-files...). */
  tls?: TlsOptions;
  /** Relative ("30m") or absolute, as observe's --since; default 5m. */
  since?: string;
  /** Default: now. */
  until?: string;
  whitelist?: FlowFilter[];
  blacklist?: FlowFilter[];
  /** --exclude selectors (see excludeMatcher). */
  exclude?: string[];
  nowMs?: number;
}

const toMs = (t: Timestamp) => Number(t.seconds ?? 0n) * 1000 + Math.floor((t.nanos ?? 0) / 1e6);

export function mapRequest(q: MapQuery): { req: GetServiceMapRequest; sinceMs: number; untilMs: number } {
  const now = q.nowMs ?? Date.now();
  const since = parseTimeFlag(q.since ?? DEFAULT_MAP_SINCE, now);
  if (!since) throw new CliError('time', `failed to parse the since time: failed to convert ${q.since} to time`);
  const until = q.until !== undefined ? parseTimeFlag(q.until, now) : undefined;
  if (q.until !== undefined && !until) throw new CliError('time', `failed to parse the until time: failed to convert ${q.until} to time`);
  const req: GetServiceMapRequest = { since, whitelist: q.whitelist ?? [], blacklist: q.blacklist ?? [] };
  if (until) req.until = until;
  // Fail on a bad CIDR or regex here, with the flag's value, before any connection.
  try {
    compileFilters(req.whitelist, req.blacklist);
  } catch (e) {
    throw new CliError('filter', (e as Error).message);
  }
  return { req, sinceMs: toMs(since), untilMs: until ? toMs(until) : now };
}

/** One GetServiceMap call. */
export function fetchServiceMap(server: string, timeoutMs: number, req: GetServiceMapRequest, tls?: TlsOptions): Promise<GetServiceMapResponse> {
  const ch = channelFor(server, tls);
  const client = new ServiceMapClient(ch.address, ch.creds, { 'grpc.max_receive_message_length': 64 * 1024 * 1024, ...ch.options });
  return new Promise<GetServiceMapResponse>((resolve, reject) => {
    client.getServiceMap(req, new Metadata(), { deadline: Date.now() + Math.max(timeoutMs, 12_000) }, (err: ServiceError | null, r) => {
      client.close();
      if (!err) return resolve(r);
      if (err.code === grpcStatus.UNIMPLEMENTED) {
        reject(new CliError('server', `${server} does not serve flowctl's service map (flowctl.servicemap.v1.ServiceMap): is it a flowctl agent or relay?`));
      } else if (err.code === grpcStatus.UNAVAILABLE || err.code === grpcStatus.DEADLINE_EXCEEDED) {
        reject(new CliError('server', `cannot reach the server at ${server}: ${err.details || err.message} (is flowctl-relay or flowctl-agent running?)`));
      } else {
        reject(new CliError('server', `${server}: ${grpcStatus[err.code] ?? err.code}: ${err.details || err.message}`));
      }
    });
  });
}

/** The service map of the window, as `flowctl map -o json` prints it. Throws CliError. */
export async function queryServiceMap(q: MapQuery): Promise<ServiceMap> {
  const { req, sinceMs, untilMs } = mapRequest(q);
  const resp = await fetchServiceMap(q.server, q.timeoutMs, req, q.tls);
  const window = { since: new Date(sinceMs).toISOString(), until: new Date(untilMs).toISOString() };
  return buildServiceMap(resp, window, { exclude: q.exclude ?? [], sinceMs });
}
