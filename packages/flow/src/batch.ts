// flowctl's batched GetFlows (proto/flowctl/batch.proto): the Observer GetFlows request and
// semantics, but each stream message is a FlowBatch of many GetFlowsResponses. grpc-js pays per
// message, not per byte, so batching is what lets agent → relay → CLI keep up with a busy cluster. Hand-written
// rather than generated: the relay only splits batches into response bytes and never decodes them.
import { makeGenericClientConstructor } from '@grpc/grpc-js';
import type {
  CallOptions,
  ChannelCredentials,
  Client,
  ClientOptions,
  ClientReadableStream,
  handleServerStreamingCall,
  Metadata,
  ServiceDefinition,
  UntypedServiceImplementation,
} from '@grpc/grpc-js';
import { BinaryWriter } from '@bufbuild/protobuf/wire';
import { FlowctlError } from './errors.js';
import { GetFlowsRequest, GetFlowsResponse } from './gen/observer/observer.js';

export const BATCH_OBSERVER_SERVICE_NAME = 'flowctl.observer.BatchObserver';
export const GET_FLOWS_BATCHED_PATH = `/${BATCH_OBSERVER_SERVICE_NAME}/GetFlowsBatched`;


/** Reads a protobuf varint (up to 2^53 exactly) at `pos`; throws a MALFORMED FlowctlError when malformed. */
export function readVarint(buf: Uint8Array, pos: number, end: number): [value: number, next: number] {
  const r = new VarintReader();
  const v = r.read(buf, pos, end);
  return [v, r.pos];
}

/**
 * Reads varints and leaves `pos` after the last one, instead of returning a [value, next] pair:
 * scanners run this per field of every flow through the relay, and the pair was their one
 * allocation. Each scanner owns its reader.
 */
export class VarintReader {
  pos = 0;

  /** The varint at `at` (up to 2^53 exactly); throws a MALFORMED FlowctlError. */
  read(buf: Uint8Array, at: number, end: number): number {
    if (at < end) {
      const b = buf[at]!;
      if (b < 0x80) {
        this.pos = at + 1;
        return b;
      }
    }
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (at >= end) throw new FlowctlError('MALFORMED', 'truncated varint');
      const b = buf[at++]!;
      result += (b & 0x7f) * mul;
      if (b < 0x80) {
        this.pos = at;
        return result;
      }
      mul *= 128;
    }
    throw new FlowctlError('MALFORMED', 'varint longer than 10 bytes');
  }
}

/**
 * Calls `fn(buf, start, end)` for every encoded response of a FlowBatch, in order, without views
 * or copies (a Buffer view per flow costs more than reading its time). Unknown fields are skipped.
 * Returns the number of responses. Throws a MALFORMED FlowctlError on a malformed batch; responses before the
 * fault have been passed to `fn` by then.
 */
export function forEachResponse(buf: Uint8Array, fn: (buf: Uint8Array, start: number, end: number) => void): number {
  const r = new VarintReader();
  let n = 0;
  let pos = 0;
  const end = buf.length;
  while (pos < end) {
    const tag = r.read(buf, pos, end);
    const wt = tag & 7;
    if (wt === 2) {
      const len = r.read(buf, r.pos, end);
      const q = r.pos;
      if (q + len > end) throw new FlowctlError('MALFORMED', `field ${Math.floor(tag / 8)} runs past the end of the batch`);
      if (tag === 0x0a) {
        fn(buf, q, q + len);
        n++;
      }
      pos = q + len;
    } else if (wt === 0) {
      r.read(buf, r.pos, end);
      pos = r.pos;
    } else if (wt === 1) pos = r.pos + 8;
    else if (wt === 5) pos = r.pos + 4;
    else throw new FlowctlError('MALFORMED', `unsupported wire type ${wt} in batch`);
    if (pos > end) throw new FlowctlError('MALFORMED', 'batch truncated');
  }
  return n;
}

/** Bytes a varint of `v` takes. */
export function varintLength(v: number): number {
  let n = 1;
  while (v >= 128) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

/** Writes `v` as a varint at `pos`; returns the position after it. */
export function writeVarint(buf: Uint8Array, pos: number, v: number): number {
  while (v >= 128) {
    buf[pos++] = (v % 128) | 0x80;
    v = Math.floor(v / 128);
  }
  buf[pos++] = v;
  return pos;
}

/** Encodes already-encoded GetFlowsResponses as one FlowBatch (field 1, length-delimited each). */
export function encodeBatch(items: readonly Uint8Array[]): Buffer {
  let total = 0;
  for (const it of items) total += 1 + varintLength(it.length) + it.length;
  const out = Buffer.allocUnsafe(total);
  let pos = 0;
  for (const it of items) {
    out[pos++] = 0x0a;
    pos = writeVarint(out, pos, it.length);
    out.set(it, pos);
    pos += it.length;
  }
  return out;
}

/** Splits an encoded FlowBatch into its encoded responses (views into `buf`, no copies).
 * Unknown fields are skipped, so a newer sender can add some. Throws a MALFORMED FlowctlError. */
export function decodeBatch(buf: Uint8Array): Buffer[] {
  const b = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: Buffer[] = [];
  forEachResponse(b, (_b, start, end) => out.push(b.subarray(start, end)));
  return out;
}

export function encodeFlowBatch(responses: readonly GetFlowsResponse[]): Buffer {
  return encodeBatch(responses.map((r) => GetFlowsResponse.encode(r).finish()));
}

/** Decodes every response of a FlowBatch; errors name `where` (e.g. the server address). */
export function decodeFlowBatch(buf: Uint8Array, where = 'FlowBatch'): GetFlowsResponse[] {
  try {
    return decodeBatch(buf).map((b) => GetFlowsResponse.decode(b));
  } catch (e) {
    throw new FlowctlError('MALFORMED', `${where}: malformed FlowBatch: ${(e as Error).message}`);
  }
}

/**
 * Collects encoded responses for a server's batched stream. `push` says when the batch is full
 * (by count or bytes); a server also flushes when its source has nothing more right now, so a
 * quiet follow stream never holds a flow back waiting for company.
 */
export class BatchBuilder {
  private items: Uint8Array[] = [];
  private bytes = 0;
  /** One writer for every response: a fresh one grows from 128 bytes by doubling for each flow,
   * which made buffer growth the largest part of encoding (docs/benchmarks.md, HTTP keep-alive). */
  private readonly writer = new BinaryWriter();

  constructor(
    readonly maxItems = 256,
    readonly maxBytes = 1 << 20,
  ) {}

  get length(): number {
    return this.items.length;
  }

  /** Adds one response (a message or its encoding); true when the batch should be flushed now. */
  push(r: GetFlowsResponse | Uint8Array): boolean {
    const b = r instanceof Uint8Array ? r : GetFlowsResponse.encode(r, this.writer).finish();
    this.items.push(b);
    this.bytes += b.length;
    return this.items.length >= this.maxItems || this.bytes >= this.maxBytes;
  }

  /** The encoded FlowBatch, or undefined when empty; the builder starts over. */
  take(): Buffer | undefined {
    if (this.items.length === 0) return undefined;
    const out = encodeBatch(this.items);
    this.items = [];
    this.bytes = 0;
    return out;
  }
}

const identity = (b: Buffer): Buffer => b;

/**
 * The service: GetFlowsRequest in, encoded FlowBatch messages out (servers write `Buffer`s from
 * encodeBatch/BatchBuilder, clients get `Buffer`s for decodeBatch/decodeFlowBatch).
 */
export const BatchObserverService = {
  getFlowsBatched: {
    path: GET_FLOWS_BATCHED_PATH,
    requestStream: false,
    responseStream: true,
    requestSerialize: (r: GetFlowsRequest): Buffer => Buffer.from(GetFlowsRequest.encode(r).finish()),
    requestDeserialize: (b: Buffer): GetFlowsRequest => GetFlowsRequest.decode(b),
    responseSerialize: identity,
    responseDeserialize: identity,
  },
} as const satisfies ServiceDefinition;

export interface BatchObserverServer extends UntypedServiceImplementation {
  getFlowsBatched: handleServerStreamingCall<GetFlowsRequest, Buffer>;
}

export interface BatchObserverClient extends Client {
  getFlowsBatched(request: GetFlowsRequest, options?: Partial<CallOptions>): ClientReadableStream<Buffer>;
  getFlowsBatched(request: GetFlowsRequest, metadata?: Metadata, options?: Partial<CallOptions>): ClientReadableStream<Buffer>;
}

export const BatchObserverClient = makeGenericClientConstructor(
  BatchObserverService,
  BATCH_OBSERVER_SERVICE_NAME,
) as unknown as {
  new (address: string, credentials: ChannelCredentials, options?: Partial<ClientOptions>): BatchObserverClient;
  service: typeof BatchObserverService;
  serviceName: string;
};
