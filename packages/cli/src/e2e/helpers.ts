// Helpers for cross-process CLI tests: a small real Observer gRPC server (grpc-js, the generated
// ObserverService) serving corpus flows, and a runner for the flowctl CLI as a child process.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { Server, ServerCredentials, status, type ServerWritableStream, type ServerUnaryCall, type sendUnaryData } from '@grpc/grpc-js';
import { ObserverService } from '@flowctl/flow/gen/observer/observer.grpc';
import {
  type GetFlowsRequest,
  type GetFlowsResponse,
  type GetNodesResponse,
  type GetNamespacesResponse,
  type ServerStatusResponse,
} from '@flowctl/flow/gen/observer/observer';
import { HealthCheckResponse_ServingStatus } from '@flowctl/flow/gen/grpc/health/v1/health';
import { HealthService } from '@flowctl/flow/gen/grpc/health/v1/health.grpc';
import type { GetServiceMapRequest, GetServiceMapResponse } from '@flowctl/flow/gen/flowctl/servicemap';
import { ServiceMapService } from '@flowctl/flow/gen/flowctl/servicemap.grpc';
import { BatchObserverService, encodeFlowBatch } from '@flowctl/flow/batch';

export const ROOT = join(import.meta.dirname, '..', '..', '..', '..');

export interface TestServer {
  address: string;
  requests: GetFlowsRequest[];
  /** Requests of the batched GetFlows (served with `batched`). */
  batchedRequests: GetFlowsRequest[];
  mapRequests: GetServiceMapRequest[];
  /** Responses pushed to followers after the backlog. */
  push(r: GetFlowsResponse): void;
  cancelled: number;
  stop(): Promise<void>;
}

export async function startTestObserver(
  backlog: GetFlowsResponse[],
  extra: { status?: ServerStatusResponse; nodes?: GetNodesResponse; namespaces?: GetNamespacesResponse; serviceMap?: GetServiceMapResponse; batched?: boolean } = {},
): Promise<TestServer> {
  const server = new Server();
  const followers = new Set<ServerWritableStream<GetFlowsRequest, GetFlowsResponse>>();
  const state: TestServer = {
    address: '',
    requests: [],
    batchedRequests: [],
    mapRequests: [],
    cancelled: 0,
    push: (r) => followers.forEach((f) => f.write(r)),
    stop: () => new Promise((res) => server.tryShutdown(() => res())),
  };
  server.addService(ObserverService, {
    getFlows(call: ServerWritableStream<GetFlowsRequest, GetFlowsResponse>) {
      const req = call.request;
      state.requests.push(req);
      if (req.first && req.follow) {
        call.emit('error', { code: status.INVALID_ARGUMENT, details: 'first cannot be specified with follow' });
        return;
      }
      const num = req.number ?? 0n;
      const n = num > BigInt(backlog.length) ? backlog.length : Number(num);
      const items = n === 0 ? (req.follow ? [] : backlog) : req.first ? backlog.slice(0, n) : backlog.slice(-n);
      for (const r of items) call.write(r);
      if (req.follow) {
        followers.add(call);
        call.on('cancelled', () => {
          state.cancelled++;
          followers.delete(call);
        });
      } else call.end();
    },
    getAgentEvents(call: ServerWritableStream<unknown, unknown>) {
      call.emit('error', { code: status.UNIMPLEMENTED, details: 'not here' });
    },
    getDebugEvents(call: ServerWritableStream<unknown, unknown>) {
      call.emit('error', { code: status.UNIMPLEMENTED, details: 'not here' });
    },
    serverStatus(_c: ServerUnaryCall<unknown, ServerStatusResponse>, cb: sendUnaryData<ServerStatusResponse>) {
      cb(null, extra.status ?? { num_flows: BigInt(backlog.length), max_flows: 4095n, seen_flows: BigInt(backlog.length), uptime_ns: 10_000_000_000n });
    },
    getNodes(_c: ServerUnaryCall<unknown, GetNodesResponse>, cb: sendUnaryData<GetNodesResponse>) {
      if (extra.nodes) cb(null, extra.nodes);
      else cb({ code: status.UNIMPLEMENTED, details: 'GetNodes not implemented' }, null);
    },
    getNamespaces(_c: ServerUnaryCall<unknown, GetNamespacesResponse>, cb: sendUnaryData<GetNamespacesResponse>) {
      cb(null, extra.namespaces ?? { namespaces: [] });
    },
  });
  if (extra.batched) {
    // flowctl's batched GetFlows, as agents and relays serve it: the backlog in batches of 3.
    server.addService(BatchObserverService, {
      getFlowsBatched(call: ServerWritableStream<GetFlowsRequest, Buffer>) {
        const req = call.request;
        state.batchedRequests.push(req);
        const n = Number(req.number ?? 0n);
        const items = n === 0 ? (req.follow ? [] : backlog) : backlog.slice(-n);
        for (let i = 0; i < items.length; i += 3) call.write(encodeFlowBatch(items.slice(i, i + 3)));
        call.end();
      },
    });
  }
  if (extra.serviceMap) {
    const answer = extra.serviceMap;
    server.addService(ServiceMapService, {
      getServiceMap(call: ServerUnaryCall<GetServiceMapRequest, GetServiceMapResponse>, cb: sendUnaryData<GetServiceMapResponse>) {
        state.mapRequests.push(call.request);
        cb(null, answer);
      },
    });
  }
  server.addService(HealthService, {
    check(call: ServerUnaryCall<{ service?: string }, unknown>, cb: sendUnaryData<unknown>) {
      const ok = call.request.service === 'hubble.server.Observer' || !call.request.service;
      cb(null, { status: ok ? HealthCheckResponse_ServingStatus.SERVING : HealthCheckResponse_ServingStatus.SERVICE_UNKNOWN });
    },
    watch(call: ServerWritableStream<unknown, unknown>) {
      call.end();
    },
  });
  const port = await new Promise<number>((res, rej) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))),
  );
  state.address = `127.0.0.1:${port}`;
  return state;
}

export interface RunResult {
  stdout: string;
  stderr: string;
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Runs flowctl from source (tsx, with the workspace source condition) as a separate process. */
export function flowctl(
  args: string[],
  opts: { stdin?: string; env?: NodeJS.ProcessEnv; onStdout?: (chunk: string, kill: (s: NodeJS.Signals) => void) => void } = {},
): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--conditions=@flowctl/source', '--import', 'tsx', join(ROOT, 'packages/cli/src/bin.ts'), ...args], {
      cwd: ROOT,
      env: { ...process.env, TZ: 'UTC', FLOWCTL_SERVER: '', ...opts.env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => {
      stdout += c;
      opts.onStdout?.(c, (s) => child.kill(s));
    });
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.stdin.end(opts.stdin ?? '');
    child.on('close', (code, signal) => resolve({ stdout, stderr, code, signal }));
  });
}
