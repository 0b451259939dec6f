// HTTP/1.x on one TCP connection as a stream of messages (RFC 9112), from the payload events of
// every segment. A message starts where the previous one ended (Content-Length, chunked framing,
// or the end of the head for messages without a body), and only there are bytes read as a
// request or status line, wherever they sit in a segment: a body that looks like a request is a
// body. Responses pair with requests in order. When a boundary is lost (a missed segment, bytes
// the kernel did not copy, framing that cannot be followed) the connection is given up, said so
// once, and never paired across the gap.
import { HttpParseError, parseHttp, requestUrl, type HttpRequest, type HttpResponse } from './http.js';
import { TcpStream } from './stream.js';

/** Where a direction is: at a message start, inside a head, a body, chunked framing, or past
 * anything it can follow (after an upgrade or a body read until close). */
type Mode = 'start' | 'head' | 'body' | 'chunk-line' | 'chunk-data' | 'trailer' | 'opaque';

const MAX_HEAD = 16 << 10;
const MAX_LINE = 1 << 10;
/** Requests awaiting their response (pipelined, or answered on a direction not seen as HTTP). */
const MAX_PENDING = 256;
const CRLF = Buffer.from('\r\n');
const HEAD_END = Buffer.from('\r\n\r\n');

interface Dir {
  stream: TcpStream;
  mode: Mode;
  /** Body or chunk bytes still to come (a chunk's count includes its CRLF). */
  left: number;
  /** Head or line bytes from earlier segments. */
  carry: Buffer | undefined;
  /** Time of the segment that carried the message's first byte. */
  startNs: bigint;
}

export interface PendingRequest {
  tsNs: bigint;
  method: string;
  url: string;
}

export type HttpNews =
  | { kind: 'request'; msg: HttpRequest; url: string; tsNs: bigint }
  | { kind: 'response'; msg: HttpResponse; req: PendingRequest; tsNs: bigint }
  | { kind: 'lost'; why: string };

/** A payload segment of one direction, as the tracker needs it. */
export interface Segment {
  /** Direction key (source then destination address and port) and the reverse one. */
  dir: string;
  seq: number;
  /** Payload bytes in the segment, and the first of them as copied by the kernel. */
  len: number;
  bytes: Buffer;
  tsNs: bigint;
  dstIp: string;
  dstPort: number;
}

export class HttpConn {
  private readonly dirs = new Map<string, Dir>();
  private readonly pending: PendingRequest[] = [];
  private client: string | undefined;
  lost = false;

  /** `firstSeq`: the sequence number of the direction's first payload byte, when its SYN was seen. */
  feed(seg: Segment, firstSeq: number | undefined): HttpNews[] {
    if (this.lost) return [];
    let d = this.dirs.get(seg.dir);
    if (!d) {
      if (firstSeq === undefined || firstSeq !== seg.seq) return this.lose('the stream started before it was seen');
      d = { stream: new TcpStream(firstSeq), mode: 'start', left: 0, carry: undefined, startNs: seg.tsNs };
      this.dirs.set(seg.dir, d);
    }
    const news = d.stream.accept(seg.seq, seg.len, seg.bytes.length);
    if (news.kind === 'old') return [];
    if (news.kind === 'gap') return this.lose(`${news.missing} bytes were not seen`);
    const out: HttpNews[] = [];
    let off = news.from;
    const end = seg.len;
    const cap = seg.bytes.length;
    while (off < end && !this.lost) {
      if (d.mode === 'opaque') break;
      if (d.mode === 'body' || d.mode === 'chunk-data') {
        const n = Math.min(d.left, end - off);
        d.left -= n;
        off += n;
        if (d.left === 0) d.mode = d.mode === 'body' ? 'start' : 'chunk-line';
        continue;
      }
      // Everything else is read from the bytes themselves, which must have been copied.
      if (off >= cap) return [...out, ...this.lose(`a message boundary at byte ${off} of a ${end}-byte segment was not copied`)];
      const head = d.mode === 'start' || d.mode === 'head';
      if (d.mode === 'start') d.startNs = seg.tsNs;
      const buf = d.carry ? Buffer.concat([d.carry, seg.bytes.subarray(off, cap)]) : seg.bytes.subarray(off, cap);
      const carried = d.carry?.length ?? 0;
      const at = buf.indexOf(head ? HEAD_END : CRLF);
      if (at < 0) {
        if (cap < end) return [...out, ...this.lose('a message head runs past the copied bytes')];
        if (buf.length > (head ? MAX_HEAD : MAX_LINE)) return [...out, ...this.lose('a message head or chunk line is too long')];
        d.carry = Buffer.from(buf);
        if (d.mode === 'start') d.mode = 'head';
        off = end;
        break;
      }
      const used = at + (head ? HEAD_END.length : CRLF.length);
      off += used - carried;
      d.carry = undefined;
      try {
        if (head) out.push(...this.message(seg, d, buf.subarray(0, used)));
        else this.chunkLine(d, buf.toString('latin1', 0, at));
      } catch (err) {
        if (!(err instanceof HttpParseError)) throw err;
        return [...out, ...this.lose(err.message)];
      }
    }
    return out;
  }

  private message(seg: Segment, d: Dir, head: Buffer): HttpNews[] {
    const msg = parseHttp(head);
    const isClient = msg.kind === 'request';
    this.client ??= isClient ? seg.dir : undefined;
    if (this.client === undefined) throw new HttpParseError('the connection starts with a response');
    if ((this.client === seg.dir) !== isClient) throw new HttpParseError(`a ${msg.kind} from the wrong side`);
    if (msg.kind === 'request') {
      const url = requestUrl(msg, seg.dstIp, seg.dstPort);
      if (this.pending.length >= MAX_PENDING) throw new HttpParseError(`${MAX_PENDING} requests without a response`);
      this.pending.push({ tsNs: d.startNs, method: msg.method, url });
      this.frame(d, msg.framing.chunked, msg.framing.length ?? 0);
      return [{ kind: 'request', msg, url, tsNs: d.startNs }];
    }
    const code = msg.code;
    if (code >= 100 && code < 200 && code !== 101) {
      d.mode = 'start'; // interim (100 Continue): the final response follows
      return [];
    }
    const req = this.pending.shift();
    if (!req) throw new HttpParseError('a response without a request');
    if (code === 101 || (req.method === 'CONNECT' && code < 300)) {
      // The connection now carries another protocol, both ways.
      for (const dir of this.dirs.values()) dir.mode = 'opaque';
    } else if (req.method === 'HEAD' || code === 204 || code === 304) {
      d.mode = 'start';
    } else if (msg.framing.chunked || msg.framing.length !== undefined) {
      this.frame(d, msg.framing.chunked, msg.framing.length ?? 0);
    } else {
      d.mode = 'opaque'; // the body runs until the connection closes
    }
    return [{ kind: 'response', msg, req, tsNs: d.startNs }];
  }

  private frame(d: Dir, chunked: boolean, length: number): void {
    if (chunked) d.mode = 'chunk-line';
    else if (length > 0) {
      d.mode = 'body';
      d.left = length;
    } else d.mode = 'start';
  }

  /** A chunk-size line (hex, maybe extensions), or a trailer line after the last chunk. */
  private chunkLine(d: Dir, line: string): void {
    if (d.mode === 'trailer') {
      if (line === '') d.mode = 'start';
      return;
    }
    const m = /^([0-9a-fA-F]{1,12})[ \t]*(?:;.*)?$/.exec(line);
    if (!m) throw new HttpParseError(`bad chunk size line ${JSON.stringify(line.slice(0, 40))}`);
    const size = parseInt(m[1]!, 16);
    if (size === 0) d.mode = 'trailer';
    else {
      d.mode = 'chunk-data';
      d.left = size + 2;
    }
  }

  private lose(why: string): HttpNews[] {
    this.lost = true;
    this.pending.length = 0;
    this.dirs.clear();
    return [{ kind: 'lost', why }];
  }
}
