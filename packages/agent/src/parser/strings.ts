// Memory of a full ring is dominated by small strings, so flows store flat, shared ones:
// - crypto.randomUUID() returns a tree of ~16 V8 cons strings (~500 bytes) per UUID; ours is one
//   flat 36-byte string;
// - IPs and MACs repeat across flows (a pod talks to few peers), so they are interned.
import { randomFillSync } from 'node:crypto';

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
const POOL = 16 * 4096;

/** RFC 4122 version 4 UUIDs as flat strings, from a pool of random bytes refilled in bulk. */
export class UuidSource {
  private readonly pool = Buffer.alloc(POOL);
  private pos = POOL;
  private readonly out = Buffer.alloc(36);

  next(): string {
    if (this.pos + 16 > POOL) {
      randomFillSync(this.pool);
      this.pos = 0;
    }
    const b = this.pool;
    const o = this.pos;
    const out = this.out;
    this.pos += 16;
    b[o + 6] = (b[o + 6]! & 0x0f) | 0x40;
    b[o + 8] = (b[o + 8]! & 0x3f) | 0x80;
    let j = 0;
    for (let i = 0; i < 16; i++) {
      if (i === 4 || i === 6 || i === 8 || i === 10) out[j++] = 0x2d;
      const h = HEX[b[o + i]!]!;
      out[j++] = h.charCodeAt(0);
      out[j++] = h.charCodeAt(1);
    }
    return out.toString('latin1', 0, 36);
  }
}

/** Returns one shared instance per distinct string; forgets everything when it grows past `max`. */
export class Interner {
  private map = new Map<string, string>();
  constructor(private readonly max = 100_000) {}

  get(s: string): string {
    const hit = this.map.get(s);
    if (hit !== undefined) return hit;
    if (this.map.size >= this.max) this.map = new Map();
    // Slicing through a Buffer yields a flat string even when `s` is a cons string.
    const flat = s.length >= 13 ? Buffer.from(s, 'latin1').toString('latin1') : s;
    this.map.set(flat, flat);
    return flat;
  }
}
