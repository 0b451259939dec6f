// DNS wire format (RFC 1035) decoding of the payload snippet the kernel copies. The snippet may
// be cut short (max_payload): a message whose question cannot be read is malformed; answers
// cut short are dropped from the end, as far as they were readable.

import { formatIpv4, formatIpv6 } from '../../datapath/abi.js';

export interface DnsMessage {
  id: number;
  isResponse: boolean;
  rcode: number;
  /** The first question's name with a trailing dot, lower-cased (Hubble's DNS.query). */
  query: string;
  qtypes: string[];
  ips: string[];
  cnames: string[];
  rrtypes: string[];
  /** Smallest TTL of the address answers, 0 when there are none. */
  ttl: number;
}

export class DnsParseError extends Error {}

const TYPES: Record<number, string> = {
  1: 'A', 2: 'NS', 5: 'CNAME', 6: 'SOA', 10: 'NULL', 12: 'PTR', 15: 'MX', 16: 'TXT', 28: 'AAAA', 33: 'SRV',
  35: 'NAPTR', 41: 'OPT', 43: 'DS', 46: 'RRSIG', 47: 'NSEC', 48: 'DNSKEY', 64: 'SVCB', 65: 'HTTPS',
  99: 'SPF', 252: 'AXFR', 255: 'ANY', 257: 'CAA',
};

export function dnsTypeName(t: number): string {
  return TYPES[t] ?? `TYPE${t}`;
}

export const DNS_RCODE_NAMES: Record<number, string> = {
  0: 'No Error', 1: 'Format Error', 2: 'Server Failure', 3: 'Non-Existent Domain',
  4: 'Not Implemented', 5: 'Query Refused',
};

export function dnsRcodeName(rcode: number): string {
  return DNS_RCODE_NAMES[rcode] ?? `RCode ${rcode}`;
}

/** Reads a possibly compressed name at `off`; returns the name and the offset after it. */
function readName(b: Buffer, off: number): [string, number] {
  const labels: string[] = [];
  let pos = off;
  let end = -1;
  // A pointer chain longer than the message itself is a loop.
  for (let hops = 0; hops < 128; hops++) {
    if (pos >= b.length) throw new DnsParseError('name runs past the end of the message');
    const len = b[pos]!;
    if (len === 0) {
      if (end < 0) end = pos + 1;
      const name = labels.join('.');
      return [name === '' ? '.' : `${name}.`, end];
    }
    if ((len & 0xc0) === 0xc0) {
      if (pos + 1 >= b.length) throw new DnsParseError('truncated compression pointer');
      if (end < 0) end = pos + 2;
      pos = ((len & 0x3f) << 8) | b[pos + 1]!;
      continue;
    }
    if ((len & 0xc0) !== 0) throw new DnsParseError(`bad label length byte 0x${len.toString(16)}`);
    if (pos + 1 + len > b.length) throw new DnsParseError('label runs past the end of the message');
    labels.push(b.toString('latin1', pos + 1, pos + 1 + len));
    pos += 1 + len;
  }
  throw new DnsParseError('compression pointer loop');
}


/**
 * Parses a DNS message. `tcp` payloads carry a 2-byte length prefix (RFC 1035 §4.2.2).
 * Throws DnsParseError when not even the header and first question are readable.
 */
export function parseDns(payload: Buffer, tcp: boolean): DnsMessage {
  const b = tcp ? payload.subarray(2) : payload;
  if (b.length < 12) throw new DnsParseError(`message of ${b.length} bytes is shorter than a DNS header`);
  const id = b.readUInt16BE(0);
  const flags = b.readUInt16BE(2);
  const qd = b.readUInt16BE(4);
  const an = b.readUInt16BE(6);
  const opcode = (flags >> 11) & 0xf;
  if (opcode > 6) throw new DnsParseError(`opcode ${opcode} is not DNS`);
  if (qd === 0 || qd > 16) throw new DnsParseError(`question count ${qd}`);
  const msg: DnsMessage = {
    id,
    isResponse: (flags & 0x8000) !== 0,
    rcode: flags & 0xf,
    query: '',
    qtypes: [],
    ips: [],
    cnames: [],
    rrtypes: [],
    ttl: 0,
  };
  let off = 12;
  for (let i = 0; i < qd; i++) {
    const [name, next] = readName(b, off);
    if (next + 4 > b.length) throw new DnsParseError('question truncated');
    if (i === 0) msg.query = name.toLowerCase();
    msg.qtypes.push(dnsTypeName(b.readUInt16BE(next)));
    off = next + 4;
  }
  if (!msg.isResponse) return msg;
  let minTtl = -1;
  try {
    for (let i = 0; i < an; i++) {
      const [, next] = readName(b, off);
      if (next + 10 > b.length) break;
      const type = b.readUInt16BE(next);
      const ttl = b.readUInt32BE(next + 4);
      const rdlen = b.readUInt16BE(next + 8);
      const rdata = next + 10;
      if (rdata + rdlen > b.length) break;
      msg.rrtypes.push(dnsTypeName(type));
      if (type === 1 && rdlen === 4) {
        msg.ips.push(formatIpv4(b, rdata));
        minTtl = minTtl < 0 ? ttl : Math.min(minTtl, ttl);
      } else if (type === 28 && rdlen === 16) {
        msg.ips.push(formatIpv6(b, rdata));
        minTtl = minTtl < 0 ? ttl : Math.min(minTtl, ttl);
      } else if (type === 5) {
        msg.cnames.push(readName(b, rdata)[0].toLowerCase());
      }
      off = rdata + rdlen;
    }
  } catch (err) {
    // Answers cut off by the snippet length: keep what was read.
    if (!(err instanceof DnsParseError)) throw err;
  }
  msg.ttl = minTtl < 0 ? 0 : minTtl;
  return msg;
}
