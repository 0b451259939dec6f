// Crafted Ethernet frames for BPF_PROG_TEST_RUN of the TC programs. Checksums are left zero: the
// programs never verify them, and test_run does not either.
import { encodeIpcacheKey } from '../../packages/agent/src/datapath/policy-maps.js';

export const TCP = 6;
export const UDP = 17;
export const ICMP = 1;
export const ICMPV6 = 58;
export const SCTP = 132;
export const F = { FIN: 0x01, SYN: 0x02, RST: 0x04, PSH: 0x08, ACK: 0x10 } as const;

const MAC_A = Buffer.from('02aabbccdd01', 'hex');
const MAC_B = Buffer.from('02aabbccdd02', 'hex');

function addr(ip: string): Buffer {
  const k = encodeIpcacheKey(ip);
  return Buffer.from(k.subarray(8, ip.includes(':') ? 24 : 12));
}

export function eth(etherType: number, payload: Buffer, src = MAC_A, dst = MAC_B): Buffer {
  const h = Buffer.alloc(14);
  dst.copy(h, 0);
  src.copy(h, 6);
  h.writeUInt16BE(etherType, 12);
  return Buffer.concat([h, payload]);
}

export interface Ip4Opts {
  src: string;
  dst: string;
  proto: number;
  /** Fragment offset in 8-byte units and more-fragments flag. */
  fragOffset?: number;
  mf?: boolean;
  /** IP options (multiple of 4 bytes). */
  options?: Buffer;
  /** Overrides the total length field (for lies about the length). */
  totalLength?: number;
}

export function ipv4(o: Ip4Opts, l4: Buffer): Buffer {
  const opts = o.options ?? Buffer.alloc(0);
  const h = Buffer.alloc(20 + opts.length);
  h[0] = 0x40 | ((20 + opts.length) / 4);
  h.writeUInt16BE(o.totalLength ?? h.length + l4.length, 2);
  h.writeUInt16BE(((o.mf ? 0x2000 : 0) | (o.fragOffset ?? 0)) & 0xffff, 6);
  h[8] = 64;
  h[9] = o.proto;
  addr(o.src).copy(h, 12);
  addr(o.dst).copy(h, 16);
  opts.copy(h, 20);
  return eth(0x0800, Buffer.concat([h, l4]));
}

export interface Ip6Opts {
  src: string;
  dst: string;
  proto: number;
  /** Extension headers, outermost first: [type, body] where body excludes next-header/len. */
  ext?: [number, Buffer][];
}

export function ipv6(o: Ip6Opts, l4: Buffer): Buffer {
  const exts = o.ext ?? [];
  const parts: Buffer[] = [];
  for (let i = 0; i < exts.length; i++) {
    const [type, body] = exts[i]!;
    const next = i + 1 < exts.length ? exts[i + 1]![0] : o.proto;
    const h = Buffer.concat([Buffer.from([next, 0]), body]);
    // AH counts 4-byte units minus 2, the others 8-byte units minus 1; fragment has no length.
    if (type === 51) h[1] = h.length / 4 - 2;
    else if (type !== 44) h[1] = h.length / 8 - 1;
    parts.push(h);
  }
  const ext = Buffer.concat(parts);
  const h = Buffer.alloc(40);
  h[0] = 0x60;
  h.writeUInt16BE(ext.length + l4.length, 4);
  h[6] = exts.length ? exts[0]![0] : o.proto;
  h[7] = 64;
  addr(o.src).copy(h, 8);
  addr(o.dst).copy(h, 24);
  return eth(0x86dd, Buffer.concat([h, ext, l4]));
}

export function tcp(sport: number, dport: number, flags: number, payload: Buffer = Buffer.alloc(0), options: Buffer = Buffer.alloc(0), seq = 1000, ack = 0): Buffer {
  const h = Buffer.alloc(20 + options.length);
  h.writeUInt16BE(sport, 0);
  h.writeUInt16BE(dport, 2);
  h.writeUInt32BE(seq, 4);
  h.writeUInt32BE(ack, 8);
  h[12] = ((20 + options.length) / 4) << 4;
  h[13] = flags & 0xff;
  if (flags & 0x100) h[12]! |= 1;
  h.writeUInt16BE(65535, 14);
  options.copy(h, 20);
  return Buffer.concat([h, payload]);
}

export function udp(sport: number, dport: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt16BE(sport, 0);
  h.writeUInt16BE(dport, 2);
  h.writeUInt16BE(8 + payload.length, 4);
  return Buffer.concat([h, payload]);
}

export function sctp(sport: number, dport: number): Buffer {
  const h = Buffer.alloc(12 + 16); // common header + an INIT chunk's worth of bytes
  h.writeUInt16BE(sport, 0);
  h.writeUInt16BE(dport, 2);
  h[12] = 1;
  return h;
}

export function icmp(type: number, code: number, id = 0, seq = 1): Buffer {
  const h = Buffer.alloc(8 + 16);
  h[0] = type;
  h[1] = code;
  h.writeUInt16BE(id, 4);
  h.writeUInt16BE(seq, 6);
  return h;
}

/** A DNS query for `name` (type A), or its response when `answer` is given. */
/** A DNS query for `name`, or its answer `answer` (an A record, or AAAA for an IPv6 address). */
export function dns(id: number, name: string, answer?: string): Buffer {
  const v6 = answer?.includes(':') ?? false;
  const q = Buffer.concat([
    ...name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])),
    Buffer.from([0, 0, v6 ? 28 : 1, 0, 1]),
  ]);
  const h = Buffer.alloc(12);
  h.writeUInt16BE(id, 0);
  h.writeUInt16BE(answer ? 0x8180 : 0x0100, 2);
  h.writeUInt16BE(1, 4);
  h.writeUInt16BE(answer ? 1 : 0, 6);
  if (!answer) return Buffer.concat([h, q]);
  const rdata = addr(answer);
  const a = Buffer.alloc(12 + rdata.length);
  a.writeUInt16BE(0xc00c, 0);
  a.writeUInt16BE(v6 ? 28 : 1, 2);
  a.writeUInt16BE(1, 4);
  a.writeUInt32BE(30, 6);
  a.writeUInt16BE(rdata.length, 10);
  rdata.copy(a, 12);
  return Buffer.concat([h, q, a]);
}
