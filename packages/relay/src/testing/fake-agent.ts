// A small Observer server standing in for an agent in relay tests and benchmarks: a backlog of
// makeCorpus flows plus, in follow mode, fresh flows at a set rate stamped with their scheduled
// send time (so a client can measure agent→client delay). Serves the plain Observer API and,
// unless told not to, flowctl's batched GetFlows. Not a real agent: no filters, no datapath.
import { createServer } from 'node:net';
import type { Server as NetServer } from 'node:net';
import { Server, ServerCredentials, status as grpcStatus } from '@grpc/grpc-js';
import type { sendUnaryData, ServerUnaryCall, ServerWritableStream, UntypedServiceImplementation } from '@grpc/grpc-js';
import {
  ChangeNotificationType,
  Flow,
  GetFlowsResponse,
  HealthCheckResponse_ServingStatus,
  HealthService,
  LostEventSource,
  ObserverService,
  PeerService,
} from '@flowctl/flow';
import type { ChangeNotification, GetFlowsRequest, Namespace, ServerStatusResponse } from '@flowctl/flow';
import { makeCorpus } from '@flowctl/flow/testing';
import { encodeBatch, GET_FLOWS_BATCHED_PATH } from '@flowctl/flow/batch';
import { listenTls, type ServerTlsFiles, type TlsListener } from '@flowctl/flow/tls';

export interface FakeAgentOptions {
  nodeName: string;
  /** host:port; port 0 picks one. */
  listen?: string;
  /** Flows in the ring at start, timestamped over the last `backlog` ms. */
  backlog?: number;
  /** Flows per second generated for follow streams (0 = none). */
  rate?: number;
  /** Serve flowctl's batched GetFlows (default true). */
  batch?: boolean;
  /** Flows per batch message. */
  batchMax?: number;
  /** Generator period: fresh flows leave in one batch per tick (default 5 ms). */
  tickMs?: number;
  /** Accept TCP connections and never answer (a hung node). */
  hang?: boolean;
  /** Peers announced on peer.Peer/Notify (default: itself, as a flowctl agent does). */
  peers?: { name: string; address: string }[] | ((port: number) => { name: string; address: string }[]);
  /** Serve peer.Peer at all (default true); false is an Observer-only server. */
  peerService?: boolean;
  /** Accept GetFlows calls and never answer them (a node hung above the transport). */
  stall?: boolean;
  /** Serve TLS (mutual when client CAs are given), as a real agent with --tls-* files. */
  tls?: ServerTlsFiles;
  seed?: number;
}

export interface FakeAgent {
  port: number;
  /** Metadata of the latest GetFlows call (what a relay forwarded). */
  lastMetadata(): Record<string, string[]>;
  /** Follow/non-follow GetFlows streams open right now. */
  openStreams(): number;
  /** Ends every open GetFlows stream cleanly (status OK), as an agent that stops does. */
  endStreams(): void;
  close(): Promise<void>;
}

const RING_CAP = 4095;
const TICK_MS = 5;

/** A response with two fixed-width Timestamp bodies (flow.time and response time) to patch in place. */
interface Template {
  bytes: Buffer;
  tsOffsets: [number, number];
}

const TS_WIDTH = 12;
const TS_PLACEHOLDER = Buffer.from([0x08, 0x80, 0x80, 0x80, 0x80, 0x00, 0x10, 0x80, 0x80, 0x80, 0x80, 0x00]);

function varint(v: number): Buffer {
  const out: number[] = [];
  while (v >= 128) {
    out.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return Buffer.from(out);
}

function makeTemplate(flowBody: Buffer, rest: Buffer): Template {
  const inner = Buffer.concat([Buffer.from([0x0a, TS_WIDTH]), TS_PLACEHOLDER, flowBody]);
  const head = Buffer.concat([Buffer.from([0x0a]), varint(inner.length)]);
  const bytes = Buffer.concat([head, inner, rest, Buffer.from([0xca, 0x3e, TS_WIDTH]), TS_PLACEHOLDER]);
  return { bytes, tsOffsets: [head.length + 2, bytes.length - TS_WIDTH] };
}

/** 5-byte varints (non-minimal but valid protobuf) keep every emitted flow the template's size. */
function write5(buf: Buffer, pos: number, v: number): void {
  buf[pos] = (v & 0x7f) | 0x80;
  buf[pos + 1] = ((v >>> 7) & 0x7f) | 0x80;
  buf[pos + 2] = ((v >>> 14) & 0x7f) | 0x80;
  buf[pos + 3] = ((v >>> 21) & 0x7f) | 0x80;
  buf[pos + 4] = (v >>> 28) & 0x7f;
}

/**
 * Every template framed as a FlowBatch entry, twice over, so that any run of up to tpl.length
 * consecutive flows (wrapping around) is one contiguous slice: a batch of fresh flows is then one
 * copy plus timestamp patches, which keeps ten fake agents from eating the CPU the relay is
 * being measured on.
 */
interface BatchTemplate {
  bytes: Buffer;
  /** starts[i]: offset of entry i (i < 2n), starts[2n] = bytes.length. */
  starts: Int32Array;
  /** Two timestamp offsets per entry (flow.time, response time). */
  ts: Int32Array;
}

function batchTemplate(tpl: Template[]): BatchTemplate {
  const n = tpl.length;
  const parts: Buffer[] = [];
  const starts = new Int32Array(2 * n + 1);
  const ts = new Int32Array(4 * n);
  let pos = 0;
  for (let i = 0; i < 2 * n; i++) {
    const t = tpl[i % n]!;
    const head = Buffer.concat([Buffer.from([0x0a]), varint(t.bytes.length)]);
    starts[i] = pos;
    ts[2 * i] = pos + head.length + t.tsOffsets[0];
    ts[2 * i + 1] = pos + head.length + t.tsOffsets[1];
    parts.push(head, t.bytes);
    pos += head.length + t.bytes.length;
  }
  starts[2 * n] = pos;
  return { bytes: Buffer.concat(parts), starts, ts };
}

/** FlowBatch of flows first..first+count-1 (count <= templates), flow j stamped msOf(j). */
function emitRun(bt: BatchTemplate, n: number, first: number, count: number, msOf: (j: number) => number): Buffer {
  const i0 = first % n;
  const s = bt.starts[i0]!;
  const out = Buffer.allocUnsafe(bt.starts[i0 + count]! - s);
  bt.bytes.copy(out, 0, s, s + out.length);
  for (let j = 0; j < count; j++) {
    const ms = msOf(first + j);
    const sec = Math.floor(ms / 1000);
    const nsec = Math.round((ms - sec * 1000) * 1e6) % 1e9;
    for (let k = 0; k < 2; k++) {
      const off = bt.ts[2 * (i0 + j) + k]! - s;
      write5(out, off + 1, sec);
      write5(out, off + 7, nsec);
    }
  }
  return out;
}

function templates(nodeName: string, seed: number): { tpl: Template[]; namespaces: Namespace[]; backlog: GetFlowsResponse[] } {
  const corpus = makeCorpus(1000, seed);
  const namespaces = new Map<string, Namespace>();
  const tpl: Template[] = [];
  for (const r of corpus) {
    if (!r.flow) continue;
    for (const ns of [r.flow.source?.namespace, r.flow.destination?.namespace]) if (ns) namespaces.set(ns, { cluster: 'default', namespace: ns });
    const flowBody = Buffer.from(Flow.encode({ ...r.flow, time: undefined, node_name: nodeName }).finish());
    const rest = Buffer.from(GetFlowsResponse.encode({ node_name: nodeName }).finish());
    tpl.push(makeTemplate(flowBody, rest));
  }
  return { tpl, namespaces: [...namespaces.values()], backlog: corpus };
}

function emit(t: Template, ms: number): Buffer {
  const sec = Math.floor(ms / 1000);
  const nsec = Math.round((ms - sec * 1000) * 1e6) % 1e9;
  const out = Buffer.allocUnsafe(t.bytes.length);
  t.bytes.copy(out);
  for (const off of t.tsOffsets) {
    write5(out, off + 1, sec);
    write5(out, off + 7, nsec);
  }
  return out;
}

interface Entry {
  ms: number;
  bytes: Buffer;
}

interface Subscriber {
  send(e: Entry): void;
  /** Set on streams that take pre-built FlowBatches of fresh flows. */
  sendRun?(batch: Buffer, count: number): void;
}

export async function startFakeAgent(o: FakeAgentOptions): Promise<FakeAgent> {
  const listen = o.listen ?? '127.0.0.1:0';
  if (o.hang) return startHungServer(listen);
  const started = Date.now();
  const { tpl, namespaces, backlog } = templates(o.nodeName, o.seed ?? 1);
  const ring: Entry[] = [];
  let seen = 0;
  const push = (e: Entry) => {
    ring.push(e);
    if (ring.length > RING_CAP) ring.shift();
    seen++;
  };
  const n = o.backlog ?? 0;
  for (let i = 0; i < n; i++) {
    const r = backlog[i % backlog.length]!;
    const ms = started - n + i;
    const sec = Math.floor(ms / 1000);
    const time = { seconds: BigInt(sec), nanos: (ms - sec * 1000) * 1e6 };
    const resp: GetFlowsResponse = r.flow
      ? { flow: { ...r.flow, time, node_name: o.nodeName }, node_name: o.nodeName, time }
      : { ...r, node_name: o.nodeName, time };
    push({ ms, bytes: Buffer.from(GetFlowsResponse.encode(resp).finish()) });
  }

  const subscribers = new Set<Subscriber>();
  const calls = new Set<ServerWritableStream<unknown, unknown>>();
  let open = 0;
  let timer: NodeJS.Timeout | undefined;
  const rate = o.rate ?? 0;
  const batchMax = o.batchMax ?? 256;
  const bt = batchTemplate(tpl);
  const runMax = Math.min(batchMax, tpl.length);
  // Generation starts with the first follow stream, so a slow start-up (tsx compiling, a busy
  // machine) does not turn into an initial backlog that every measurement would include.
  const startGenerator = () => {
    if (timer || rate <= 0) return;
    let emitted = 0;
    const genStart = Date.now();
    const msOf = (j: number) => genStart + (j * 1000) / rate;
    timer = setInterval(() => {
      const due = Math.floor(((Date.now() - genStart) * rate) / 1000);
      if (due <= emitted) return;
      const runs: Subscriber[] = [];
      let perFlow = rate <= 1000;
      for (const s of subscribers) {
        if (s.sendRun) runs.push(s);
        else perFlow = true;
      }
      if (runs.length > 0) {
        for (let i = emitted; i < due; i += runMax) {
          const k = Math.min(runMax, due - i);
          const b = emitRun(bt, tpl.length, i, k, msOf);
          for (const s of runs) s.sendRun!(b, k);
        }
      }
      if (!perFlow) {
        seen += due - emitted;
        emitted = due;
        return;
      }
      for (; emitted < due; emitted++) {
        const ms = msOf(emitted);
        const e = { ms, bytes: emit(tpl[emitted % tpl.length]!, ms) };
        if (rate <= 1000) push(e);
        else seen++;
        for (const s of subscribers) if (!s.sendRun) s.send(e);
      }
    }, o.tickMs ?? TICK_MS);
  };

  let lastMd: Record<string, string[]> = {};
  const serve = (call: ServerWritableStream<GetFlowsRequest, Buffer>, batched: boolean) => {
    const req = call.request;
    lastMd = {};
    for (const k of Object.keys(call.metadata.getMap())) lastMd[k] = call.metadata.get(k).map(String);
    if (o.stall) {
      open++;
      call.on('cancelled', () => open--);
      return;
    }
    if (req.first && req.follow) {
      call.emit('error', { code: grpcStatus.INVALID_ARGUMENT, details: 'first cannot be specified with follow' });
      return;
    }
    open++;
    let closed = false;
    const done = () => {
      if (closed) return;
      closed = true;
      open--;
      subscribers.delete(sub);
      calls.delete(call);
    };
    calls.add(call);
    call.on('cancelled', done);
    call.on('close', done);
    const sinceMs = req.since ? Number(req.since.seconds ?? 0n) * 1000 + (req.since.nanos ?? 0) / 1e6 : -Infinity;
    const untilMs = req.until ? Number(req.until.seconds ?? 0n) * 1000 + (req.until.nanos ?? 0) / 1e6 : Infinity;
    let sel = ring.filter((e) => e.ms >= sinceMs && e.ms <= untilMs);
    const num = req.number ?? 0n;
    if (req.follow && num === 0n && !req.since) sel = [];
    else if (num > 0n && num < BigInt(sel.length)) sel = req.first ? sel.slice(0, Number(num)) : sel.slice(sel.length - Number(num));

    // Per-stream queue of messages (head index: shifting a long array per batch would be
    // quadratic); single responses wait in `loose` until framed into a batch. A slow reader gets
    // a lost_events record instead of unbounded memory.
    let queue: { buf: Buffer; flows: number }[] = [];
    let head = 0;
    let loose: Buffer[] = [];
    let pendingFlows = 0;
    let lost = 0;
    let writing = false;
    let scheduled = false;
    let writes = 0;
    let drains = 0;
    const trace = process.env.FAKE_AGENT_TRACE
      ? setInterval(() => process.stderr.write(`trace ${o.nodeName} pending=${pendingFlows} writing=${writing} writes=${writes} drains=${drains} lost=${lost}\n`), 1000)
      : undefined;
    call.on('close', () => trace && clearInterval(trace));
    const seal = () => {
      for (let i = 0; i < loose.length; i += batchMax) {
        const part = loose.slice(i, i + batchMax);
        queue.push({ buf: encodeBatch(part), flows: part.length });
      }
      loose = [];
    };
    const enqueue = (bytes: Buffer) => {
      pendingFlows++;
      if (batched) loose.push(bytes);
      else queue.push({ buf: bytes, flows: 1 });
    };
    const pump = () => {
      scheduled = false;
      if (writing || closed) return;
      seal();
      while (head < queue.length) {
        // FlowBatches concatenate into one FlowBatch: a reader that fell behind gets fewer,
        // bigger messages.
        let chunk = queue[head++]!;
        if (batched && head < queue.length && chunk.flows + queue[head]!.flows <= batchMax) {
          const parts = [chunk.buf];
          let flows = chunk.flows;
          while (head < queue.length && flows + queue[head]!.flows <= batchMax) {
            parts.push(queue[head]!.buf);
            flows += queue[head++]!.flows;
          }
          chunk = { buf: Buffer.concat(parts), flows };
        }
        pendingFlows -= chunk.flows;
        if (head === queue.length || head > 4096) {
          queue = queue.slice(head);
          head = 0;
        }
        writes++;
        if (!call.write(chunk.buf)) {
          writing = true;
          call.once('drain', () => {
            drains++;
            writing = false;
            pump();
          });
          return;
        }
      }
    };
    const schedule = () => {
      if (!writing && !scheduled) {
        scheduled = true;
        setImmediate(pump);
      }
    };
    const reportLost = () => {
      if (lost === 0) return;
      const now = Date.now();
      const sec = Math.floor(now / 1000);
      enqueue(
        Buffer.from(
          GetFlowsResponse.encode({
            lost_events: { source: LostEventSource.HUBBLE_RING_BUFFER, num_events_lost: BigInt(lost) },
            node_name: o.nodeName,
            time: { seconds: BigInt(sec), nanos: (now - sec * 1000) * 1e6 },
          }).finish(),
        ),
      );
      lost = 0;
    };
    const sub: Subscriber = {
      send: (e) => {
        if (e.ms > untilMs) return;
        if (pendingFlows >= 65536) {
          lost++;
          return;
        }
        reportLost();
        enqueue(e.bytes);
        schedule();
      },
    };
    // Fresh flows come pre-framed when nothing (an until bound) needs them one by one.
    if (batched && untilMs === Infinity) {
      sub.sendRun = (b, count) => {
        if (pendingFlows >= 65536) {
          lost += count;
          return;
        }
        reportLost();
        seal();
        queue.push({ buf: b, flows: count });
        pendingFlows += count;
        schedule();
      };
    }
    for (const e of sel) enqueue(e.bytes);
    pump();
    if (req.follow) {
      subscribers.add(sub);
      startGenerator();
    }
    else {
      const finish = () => (writing ? call.once('drain', finish) : (done(), call.end()));
      finish();
    }
  };

  const raw = (b: Buffer) => b;
  const server = new Server();
  server.addService({ ...ObserverService, getFlows: { ...ObserverService.getFlows, responseSerialize: raw } } as never, {
    getFlows: (call: ServerWritableStream<GetFlowsRequest, Buffer>) => serve(call, false),
    getAgentEvents: (call: ServerWritableStream<unknown, unknown>) => call.end(),
    getDebugEvents: (call: ServerWritableStream<unknown, unknown>) => call.end(),
    getNodes: (_c: unknown, cb: sendUnaryData<unknown>) => cb({ code: grpcStatus.UNIMPLEMENTED, details: 'agents do not serve GetNodes' }),
    getNamespaces: (_c: unknown, cb: sendUnaryData<unknown>) => cb(null, { namespaces }),
    serverStatus: (_c: unknown, cb: sendUnaryData<ServerStatusResponse>) =>
      cb(null, {
        num_flows: BigInt(ring.length),
        max_flows: BigInt(RING_CAP),
        seen_flows: BigInt(seen),
        uptime_ns: BigInt(Date.now() - started) * 1_000_000n,
        // Open streams ride in the version string so cross-process tests can check for leaks.
        version: `flowctl-fake-agent v0.1.0 (open-streams=${open})`,
        flows_rate: rate,
      }),
  } as UntypedServiceImplementation);
  if (o.batch !== false) {
    server.addService(
      {
        getFlowsBatched: {
          path: GET_FLOWS_BATCHED_PATH,
          requestStream: false,
          responseStream: true,
          requestSerialize: raw,
          requestDeserialize: ObserverService.getFlows.requestDeserialize,
          responseSerialize: raw,
          responseDeserialize: raw,
        },
      } as never,
      { getFlowsBatched: (call: ServerWritableStream<GetFlowsRequest, Buffer>) => serve(call, true) } as UntypedServiceImplementation,
    );
  }
  server.addService(HealthService, {
    check: (_c: ServerUnaryCall<unknown, unknown>, cb: sendUnaryData<unknown>) => cb(null, { status: HealthCheckResponse_ServingStatus.SERVING }),
    watch: (call: ServerWritableStream<unknown, unknown>) => call.write({ status: HealthCheckResponse_ServingStatus.SERVING }),
  } as UntypedServiceImplementation);
  let port = 0;
  if (o.peerService !== false) {
    server.addService(PeerService, {
      notify: (call: ServerWritableStream<unknown, ChangeNotification>) => {
        const peers =
          typeof o.peers === 'function' ? o.peers(port) : (o.peers ?? [{ name: o.nodeName, address: listen.replace(/:0$/, `:${port}`) }]);
        for (const p of peers) call.write({ name: p.name, address: p.address, type: ChangeNotificationType.PEER_ADDED });
      },
    } as UntypedServiceImplementation);
  }
  let tlsListener: TlsListener | undefined;
  if (o.tls) {
    const i = listen.lastIndexOf(':');
    tlsListener = await listenTls(server, listen.slice(0, i), Number(listen.slice(i + 1)), o.tls, { info() {}, warn() {}, error() {} });
    port = tlsListener.port;
  } else {
    port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(listen, ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
  }
  return {
    port,
    lastMetadata: () => lastMd,
    openStreams: () => open,
    endStreams: () => {
      for (const c of [...calls]) c.end();
    },
    close: () =>
      new Promise((resolve) => {
        if (timer) clearInterval(timer);
        tlsListener?.close();
        server.forceShutdown();
        resolve();
      }),
  };
}

function startHungServer(listen: string): Promise<FakeAgent> {
  const m = /^(.*):(\d+)$/.exec(listen);
  const sockets = new Set<import('node:net').Socket>();
  const srv: NetServer = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
  });
  return new Promise((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(Number(m?.[2] ?? 0), m?.[1] || '127.0.0.1', () => {
      const addr = srv.address();
      resolve({
        port: typeof addr === 'object' && addr ? addr.port : 0,
        lastMetadata: () => ({}),
        openStreams: () => 0,
        endStreams: () => {},
        close: () =>
          new Promise((res) => {
            for (const s of sockets) s.destroy();
            srv.close(() => res());
          }),
      });
    });
  });
}
