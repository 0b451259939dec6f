// A summary flow of new-connection packets the kernel suppressed (over their source's budget): the
// counts Hubble's Flow has no field for travel in Flow.extensions, a google.protobuf.Struct, under
// the key `suppressed` (docs/flows.md), beside the Summary text that says the same.
import type { Flow } from './gen/flow/flow.js';
import { Struct } from './gen/google/protobuf/struct.js';
import { STRUCT_TYPE_URL } from './conn-numbers.js';

export const SUPPRESSED_KEY = 'suppressed';

export interface SuppressedNumbers {
  /** What was suppressed: packets that would have started a connection, or kernel drops of them. */
  events: 'new-connection' | 'kernel-drop';
  /** Suppressed packets in the window: SYNs, SYN-ACKs and RSTs that would have started a connection. */
  packets: number;
  /** Of which SYNs without ACK. */
  syns: number;
  /** Of which dropped (policy, or --syn-flood-protect). */
  dropped: number;
  /** First to last suppressed packet. */
  window_ms: number;
  /** "one" (the source's own budget) or "many" (sources without one; the flow names the last). */
  sources: 'one' | 'many';
}

// Summaries this process made, so its own readers (detectors) skip decoding.
const made = new WeakMap<Flow, SuppressedNumbers>();
const KEY = Buffer.from(SUPPRESSED_KEY);

export function attachSuppressed(f: Flow, n: SuppressedNumbers): void {
  f.extensions = { type_url: STRUCT_TYPE_URL, value: Buffer.from(Struct.encode(Struct.wrap({ [SUPPRESSED_KEY]: { ...n } })).finish()) };
  made.set(f, n);
}

/** The suppressed counts of a summary flow, or undefined for any other flow (cheaply: most flows carry other extensions). */
export function suppressedNumbers(f: Flow): SuppressedNumbers | undefined {
  const m = made.get(f);
  if (m) return m;
  const ext = f.extensions;
  if (!ext || ext.type_url !== STRUCT_TYPE_URL || !ext.value) return undefined;
  // The Struct's first field is its first key: a map entry's tag and lengths, then the key.
  const at = Buffer.from(ext.value.buffer, ext.value.byteOffset, ext.value.byteLength).indexOf(KEY);
  if (at < 0 || at > 8) return undefined;
  try {
    const v = (Struct.unwrap(Struct.decode(ext.value)) as Record<string, unknown>)[SUPPRESSED_KEY] as Record<string, unknown> | undefined;
    if (!v || typeof v.packets !== 'number' || typeof v.syns !== 'number' || typeof v.dropped !== 'number') return undefined;
    return { events: v.events === 'kernel-drop' ? 'kernel-drop' : 'new-connection', packets: v.packets, syns: v.syns, dropped: v.dropped, window_ms: Number(v.window_ms), sources: v.sources === 'many' ? 'many' : 'one' };
  } catch {
    return undefined;
  }
}
