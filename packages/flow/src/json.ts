// The JSON codec of `hubble observe -o json`: Go protojson with UseProtoNames, passed through
// encoding/json (hubble-api.md §4.4). Encoders and decoders are generated per message
// (json-codec.gen.ts); this module is the typed, error-reporting surface over them.
import type { Flow, FlowFilter, LostEvent } from './gen/flow/flow.js';
import type {
  ExportEvent,
  GetFlowsRequest,
  GetFlowsResponse,
  GetNamespacesResponse,
  GetNodesResponse,
  Node,
  ServerStatusResponse,
} from './gen/observer/observer.js';
import type { NodeStatusEvent } from './gen/relay/relay.js';
import * as G from './json-codec.gen.js';
import { FlowctlError } from './errors.js';
import { FieldError, JsonBuffer, type Writer } from './json-primitives.js';

// Constants, not imported bindings: loaders that compile ESM to CommonJS (tsx, vitest) make each
// use of an import a getter call, on every line.
const {
  d_flow_Flow, d_flow_FlowFilter, d_observer_GetFlowsResponse, w_flow_Flow, w_flow_FlowFilter, w_observer_GetFlowsResponse, jsonCodecs,
} = G;

export { jsonCodecs } from './json-codec.gen.js';
export type { MessageJsonCodec } from './json-codec.gen.js';

/** Message types by proto full name, for the generic encode/decode. */
export interface JsonMessageTypes {
  'observer.GetFlowsResponse': GetFlowsResponse;
  'observer.GetFlowsRequest': GetFlowsRequest;
  'observer.ServerStatusResponse': ServerStatusResponse;
  'observer.Node': Node;
  'observer.GetNodesResponse': GetNodesResponse;
  'observer.GetNamespacesResponse': GetNamespacesResponse;
  'observer.ExportEvent': ExportEvent;
  'flow.Flow': Flow;
  'flow.FlowFilter': FlowFilter;
  'flow.LostEvent': LostEvent;
  'relay.NodeStatusEvent': NodeStatusEvent;
}

function encodeError(e: unknown, what: string): never {
  if (e instanceof FieldError) {
    throw new FlowctlError('MALFORMED', `cannot encode ${what}: ${e.path ? `field "${e.path}": ` : ''}${e.reason}`, { field: e.path || undefined });
  }
  throw e;
}

function decodeError(e: unknown, where: string): never {
  if (e instanceof FieldError) {
    const leaf = e.path.slice(e.path.lastIndexOf('.') + 1);
    const at = leaf !== e.path ? ` (at ${e.path})` : '';
    const field = e.path ? `field "${leaf}": ` : '';
    throw new FlowctlError('MALFORMED', `${where}: ${field}${e.reason}${at}`, { field: e.path || undefined });
  }
  throw e;
}

function parse(text: string, where: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    const detail = (e as Error).message.split('\n')[0];
    throw new FlowctlError('MALFORMED', `${where}: invalid JSON: ${detail}`);
  }
}

/**
 * Encodes messages as compact JSON lines, reusing one buffer and the text of recent timestamps
 * from line to line: each printer or server that writes many lines owns one.
 */
export class JsonEncoder {
  private readonly out = new JsonBuffer();

  /** One line (no newline), byte-identical to `hubble observe -o json` for this response. */
  response(r: GetFlowsResponse): string {
    return this.line(w_observer_GetFlowsResponse, r, 'GetFlowsResponse');
  }

  /**
   * response()'s line as UTF-8 bytes (no newline), without making a string: for writers that copy
   * lines into an output buffer. The result is a view of this encoder's buffer, which its next
   * line reuses, so copy or write it before encoding again.
   */
  responseBytes(r: GetFlowsResponse): Buffer {
    try {
      return this.out.bytes(w_observer_GetFlowsResponse, r);
    } catch (e) {
      return encodeError(e, 'GetFlowsResponse');
    }
  }

  /** A bare Flow (the legacy `HUBBLE_COMPAT=legacy-json-output` shape). */
  flow(f: Flow): string {
    return this.line(w_flow_Flow, f, 'Flow');
  }

  /** A FlowFilter as `--print-raw-filters` prints it and `--allowlist`/`--denylist` accept it. */
  flowFilter(f: FlowFilter): string {
    return this.line(w_flow_FlowFilter, f, 'FlowFilter');
  }

  /** Compact protojson (proto names) of any generated message, e.g. `message('observer.ServerStatusResponse', s)`. */
  message<K extends keyof JsonMessageTypes>(type: K, m: JsonMessageTypes[K]): string;
  message(type: string, m: unknown): string;
  message(type: string, m: unknown): string {
    return this.line(codecFor(type).write, m, type);
  }

  private line<T>(fn: Writer<T>, m: T, what: string): string {
    try {
      return this.out.line(fn, m);
    } catch (e) {
      return encodeError(e, what);
    }
  }
}

// For callers encoding now and then; a stream of lines gets its own JsonEncoder.
const occasional = new JsonEncoder();

/** JsonEncoder.response() for an occasional line. */
export function encodeResponse(r: GetFlowsResponse): string {
  return occasional.response(r);
}

/**
 * Parses one `-o json` line. Accepts proto and lowerCamel names, enum names or numbers, 64-bit
 * integers as strings or numbers; skips unknown fields. Throws a MALFORMED FlowctlError naming `where`.
 */
export function decodeResponse(line: string, where = 'input'): GetFlowsResponse {
  const j = parse(line, where);
  try {
    return d_observer_GetFlowsResponse(j);
  } catch (e) {
    return decodeError(e, where);
  }
}

/** JsonEncoder.flow() for an occasional line. */
export function encodeFlow(f: Flow): string {
  return occasional.flow(f);
}

export function decodeFlow(text: string, where = 'input'): Flow {
  const j = parse(text, where);
  try {
    return d_flow_Flow(j);
  } catch (e) {
    return decodeError(e, where);
  }
}

/** JsonEncoder.flowFilter() for an occasional line. */
export function encodeFlowFilter(f: FlowFilter): string {
  return occasional.flowFilter(f);
}

export function decodeFlowFilter(text: string, where = 'filter'): FlowFilter {
  const j = parse(text, where);
  try {
    return d_flow_FlowFilter(j);
  } catch (e) {
    return decodeError(e, where);
  }
}

function codecFor(type: string) {
  const c = jsonCodecs[type];
  if (c === undefined) throw new FlowctlError('MALFORMED', `no JSON codec for message type "${type}"`);
  return c;
}

/** JsonEncoder.message() for an occasional line. */
export function encodeMessage<K extends keyof JsonMessageTypes>(type: K, m: JsonMessageTypes[K]): string;
export function encodeMessage(type: string, m: unknown): string;
export function encodeMessage(type: string, m: unknown): string {
  return occasional.message(type, m);
}

export function decodeMessage<K extends keyof JsonMessageTypes>(type: K, text: string, where?: string): JsonMessageTypes[K];
export function decodeMessage(type: string, text: string, where?: string): unknown;
export function decodeMessage(type: string, text: string, where = 'input'): unknown {
  const c = codecFor(type);
  const j = parse(text, where);
  try {
    return c.decode(j);
  } catch (e) {
    return decodeError(e, where);
  }
}

/** Decodes an already-parsed JSON value (e.g. one element of a YAML/JSON config). */
export function decodeMessageValue<K extends keyof JsonMessageTypes>(type: K, value: unknown, where?: string): JsonMessageTypes[K];
export function decodeMessageValue(type: string, value: unknown, where?: string): unknown;
export function decodeMessageValue(type: string, value: unknown, where = 'input'): unknown {
  const c = codecFor(type);
  try {
    return c.decode(value);
  } catch (e) {
    return decodeError(e, where);
  }
}
