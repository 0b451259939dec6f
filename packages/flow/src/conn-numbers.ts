// Connection numbers (bytes, packets, RTT, retransmits, duration, TCP state) that Hubble's Flow has
// no field for. They travel in Flow.extensions as a google.protobuf.Struct, which every protojson
// client can print: {"connection": {"bytes_sent": 1024, ...}} (docs/flows.md).
import type { Flow } from './gen/flow/flow.js';
import type { Any } from './gen/google/protobuf/any.js';
import { Struct } from './gen/google/protobuf/struct.js';

export const STRUCT_TYPE_URL = 'type.googleapis.com/google.protobuf.Struct';
/** The Struct key the numbers sit under, so other extensions can sit beside them. */
export const CONNECTION_KEY = 'connection';

export interface ConnNumbers {
  /** Payload bytes from the flow's source to its destination (SOCK: tcp bytes_acked). */
  bytes_sent?: number;
  bytes_received?: number;
  packets_sent?: number;
  packets_received?: number;
  /** Smoothed RTT, microseconds. */
  srtt_us?: number;
  retransmits?: number;
  duration_ms?: number;
  /** TCP state of a SOCK record (ESTABLISHED, CLOSED...). */
  state?: string;
  /** Why a connection ended: "refused", "reset", "timed out" (SOCK CLOSED records). */
  close_reason?: string;
  /** L7 flows: bytes of this one message on the wire (DNS: the whole message, which the payload snippet may cut). */
  message_bytes?: number;
}

const KEY_ORDER = [
  'bytes_sent', 'bytes_received', 'packets_sent', 'packets_received', 'srtt_us', 'retransmits', 'duration_ms', 'state', 'close_reason',
  'message_bytes',
] as const;

// Numbers of flows this process made, so its own readers (metrics, service map) skip decoding.
const made = new WeakMap<Flow, ConnNumbers>();

// ---- a small protobuf writer: the Struct of one flow, without a BinaryWriter per call -----------

const keyBytes = new Map<string, Buffer>(KEY_ORDER.map((k) => [k, Buffer.from(k)]));
const CONNECTION = Buffer.from(CONNECTION_KEY);

function varintLen(n: number): number {
  let len = 1;
  while (n >= 0x80) {
    n >>>= 7;
    len++;
  }
  return len;
}
function putVarint(b: Buffer, p: number, n: number): number {
  while (n >= 0x80) {
    b[p++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  b[p++] = n;
  return p;
}

/** Value message length: number (tag 0x11 + 8 bytes) or string (tag 0x1a, len, bytes). */
function valueLen(v: number | string): number {
  if (typeof v === 'number') return 9;
  const n = Buffer.byteLength(v);
  return 1 + varintLen(n) + n;
}
function putValue(b: Buffer, p: number, v: number | string): number {
  if (typeof v === 'number') {
    b[p++] = 0x11;
    b.writeDoubleLE(v, p);
    return p + 8;
  }
  b[p++] = 0x1a;
  const n = Buffer.byteLength(v);
  p = putVarint(b, p, n);
  return p + b.write(v, p);
}
/** A map entry of Struct.fields: key (1) and Value (2). */
function entryLen(key: Buffer, valLen: number): number {
  return 1 + varintLen(key.length) + key.length + 1 + varintLen(valLen) + valLen;
}
function putEntry(b: Buffer, p: number, key: Buffer, valLen: number): number {
  b[p++] = 0x0a;
  p = putVarint(b, p, entryLen(key, valLen));
  b[p++] = 0x0a;
  p = putVarint(b, p, key.length);
  p += key.copy(b, p);
  b[p++] = 0x12;
  return putVarint(b, p, valLen);
}

/** Encodes {"connection": numbers} as a google.protobuf.Struct. */
export function encodeConnStruct(n: ConnNumbers): Buffer {
  let inner = 0;
  for (const k of KEY_ORDER) {
    const v = n[k];
    if (v !== undefined) inner += 1 + varintLen(entryLen(keyBytes.get(k)!, valueLen(v))) + entryLen(keyBytes.get(k)!, valueLen(v));
  }
  const structValLen = 1 + varintLen(inner) + inner; // Value{struct_value (5)}
  const total = 1 + varintLen(entryLen(CONNECTION, structValLen)) + entryLen(CONNECTION, structValLen);
  const b = Buffer.allocUnsafe(total);
  let p = putEntry(b, 0, CONNECTION, structValLen);
  b[p++] = 0x2a;
  p = putVarint(b, p, inner);
  for (const k of KEY_ORDER) {
    const v = n[k];
    if (v === undefined) continue;
    p = putEntry(b, p, keyBytes.get(k)!, valueLen(v));
    p = putValue(b, p, v);
  }
  return b;
}

/** Sets flow.extensions to the numbers (and remembers them for connNumbers). */
export function attachConnNumbers(f: Flow, n: ConnNumbers): void {
  f.extensions = { type_url: STRUCT_TYPE_URL, value: encodeConnStruct(n) } satisfies Any;
  made.set(f, n);
}

/** The connection numbers of a flow, from this process's parser or decoded from its extensions. */
export function connNumbers(f: Flow): ConnNumbers | undefined {
  const n = made.get(f);
  if (n) return n;
  const ext = f.extensions;
  if (!ext || ext.type_url !== STRUCT_TYPE_URL || !ext.value) return undefined;
  try {
    const obj = Struct.unwrap(Struct.decode(ext.value)) as Record<string, unknown>;
    const c = obj[CONNECTION_KEY];
    if (!c || typeof c !== 'object') return undefined;
    const out: ConnNumbers = {};
    for (const k of KEY_ORDER) {
      const v = (c as Record<string, unknown>)[k];
      if (k === 'state' || k === 'close_reason') {
        if (typeof v === 'string') out[k] = v;
      } else if (typeof v === 'number') out[k] = v;
    }
    made.set(f, out);
    return out;
  } catch {
    return undefined;
  }
}
