// HTTP/1.x on one TCP connection as a stream of messages (RFC 9112), from the payload events of
// every segment. A message starts where the previous one ended (Content-Length, chunked framing,
// or the end of the head for messages without a body), and only there are bytes read as a
// request or status line, wherever they sit in a segment: a body that looks like a request is a
// body. Responses pair with requests in order.
//
// When a direction loses its boundary (bytes never seen, bytes the kernel did not copy, framing
// that cannot be followed) it says so once (an unparsed flow) and is given up until the
// connection ends: after a gap no later boundary is certain (a body can hold anything), and a
// new connection is the next certain start. A gap inside a body of known length loses nothing.
// Every message of a given-up direction is counted lost: the one cut by the gap, then one per
// later segment that starts with a request or status line (the kernel counts the same way for
// segments it could not send). The other direction goes on: responses after the client side was
// given up pair with the requests already seen, then are reported without one; requests after the
// server side was given up are reported, their responses counted lost.
import { HttpParseError, parseHttp, requestUrl, type HttpRequest, type HttpResponse } from './http.js';
import { TcpStream, type SegmentNews } from './stream.js';

/** Where a direction is: at a message start, inside a head, a body, chunked framing, past
 * anything it can follow (after an upgrade or a body read until close), or given up. */
type Mode = 'start' | 'head' | 'body' | 'chunk-line' | 'chunk-data' | 'trailer' | 'opaque' | 'lost';

const MAX_HEAD = 16 << 10;
const MAX_LINE = 1 << 10;
/** Requests awaiting their response (pipelined, or answered on a direction not seen as HTTP). */
const MAX_PENDING = 256;
const CRLF = Buffer.from('\r\n');
const HEAD_END = Buffer.from('\r\n\r\n');
const REQUEST_STARTS = new Set(['GET ', 'POST', 'PUT ', 'HEAD', 'DELE', 'PATC', 'OPTI', 'CONN', 'TRAC']);

export type MessageKind = 'request' | 'response';

/** The kind of message bytes start with, by the test the kernel makes (bpf/flowctl.bpf.c is_http). */
export function startKind(b: Buffer): MessageKind | undefined {
  if (b.length < 8) return undefined;
  if (b.toString('latin1', 0, 7) === 'HTTP/1.') return 'response';
  return REQUEST_STARTS.has(b.toString('latin1', 0, 4)) ? 'request' : undefined;
}

interface Dir {
  key: string;
  stream: TcpStream<Segment>;
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
  /** `req` is undefined for a response whose request was in a given-up client direction. */
  | { kind: 'response'; msg: HttpResponse; req: PendingRequest | undefined; tsNs: bigint }
  | { kind: 'lost'; why: string };

/** A payload segment of one direction, as the tracker needs it. */
export interface Segment {
  /** Direction key (source then destination address and port). */
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

  /** `lost` counts each message that will never be reported. */
  constructor(private readonly lost: (kind: MessageKind) => void) {}

  /** `firstSeq`: the sequence number of the direction's first payload byte, when its SYN was seen. */
  feed(seg: Segment, firstSeq: number | undefined): HttpNews[] {
    const out: HttpNews[] = [];
    let d = this.dirs.get(seg.dir);
    if (!d) {
      d = { key: seg.dir, stream: new TcpStream(firstSeq ?? seg.seq), mode: 'start', left: 0, carry: undefined, startNs: seg.tsNs };
      this.dirs.set(seg.dir, d);
      if (firstSeq === undefined) out.push(...this.lose(d, 'the stream started before it was seen', false));
    }
    for (const { seg: s, news } of d.stream.push(seg)) out.push(...this.place(d, s, news));
    return out;
  }

  /** The connection ends: segments still waiting for earlier bytes are placed after the gap. */
  flush(): HttpNews[] {
    const out: HttpNews[] = [];
    for (const d of this.dirs.values()) for (const { seg, news } of d.stream.flush()) out.push(...this.place(d, seg, news));
    return out;
  }

  private place(d: Dir, seg: Segment, news: SegmentNews): HttpNews[] {
    if (news.kind === 'old' || d.mode === 'opaque') return [];
    if (news.kind === 'gap') {
      if ((d.mode === 'body' || d.mode === 'chunk-data') && news.missing <= d.left) {
        d.left -= news.missing; // inside a body of known length: the boundary is still known
        if (d.left === 0) d.mode = d.mode === 'body' ? 'start' : 'chunk-line';
        return [];
      }
      // A message whose head had begun was seen and is counted here; one starting in the missing
      // bytes is counted by its segment's start, by the kernel or the agent's queue that lost it.
      return d.mode === 'lost' ? [] : this.lose(d, `${news.missing} bytes were not seen`, d.mode === 'head');
    }
    if (d.mode === 'lost') {
      const kind = news.from === 0 ? startKind(seg.bytes) : undefined;
      if (kind && kind === this.role(d, seg.bytes)) this.lost(kind);
      return [];
    }
    return this.parse(d, seg, news.from);
  }

  private parse(d: Dir, seg: Segment, from: number): HttpNews[] {
    const out: HttpNews[] = [];
    let off = from;
    const end = seg.len;
    const cap = seg.bytes.length;
    while (off < end && d.mode !== 'lost' && d.mode !== 'opaque') {
      if (d.mode === 'body' || d.mode === 'chunk-data') {
        const n = Math.min(d.left, end - off);
        d.left -= n;
        off += n;
        if (d.left === 0) d.mode = d.mode === 'body' ? 'start' : 'chunk-line';
        continue;
      }
      // Everything else is read from the bytes themselves, which must have been copied.
      const head = d.mode === 'start' || d.mode === 'head';
      if (off >= cap) return [...out, ...this.lose(d, `a message boundary at byte ${off} of a ${end}-byte segment was not copied`, head)];
      if (d.mode === 'start') d.startNs = seg.tsNs;
      const buf = d.carry ? Buffer.concat([d.carry, seg.bytes.subarray(off, cap)]) : seg.bytes.subarray(off, cap);
      const carried = d.carry?.length ?? 0;
      const at = buf.indexOf(head ? HEAD_END : CRLF);
      if (at < 0) {
        if (cap < end) return [...out, ...this.lose(d, 'a message head runs past the copied bytes', head)];
        if (buf.length > (head ? MAX_HEAD : MAX_LINE)) return [...out, ...this.lose(d, 'a message head or chunk line is too long', head)];
        d.carry = Buffer.from(buf);
        if (d.mode === 'start') d.mode = 'head';
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
        return [...out, ...this.lose(d, err.message, head)];
      }
    }
    return out;
  }

  /** The other direction of the connection, if it was seen. */
  private other(d: Dir): Dir | undefined {
    for (const x of this.dirs.values()) if (x !== d) return x;
    return undefined;
  }

  private message(seg: Segment, d: Dir, head: Buffer): HttpNews[] {
    const msg = parseHttp(head);
    const isClient = msg.kind === 'request';
    const other = this.other(d);
    // The first message names the client; a response first is one when the client side was given up.
    this.client ??= isClient ? seg.dir : other?.mode === 'lost' ? other.key : undefined;
    if (this.client === undefined) throw new HttpParseError('the connection starts with a response');
    if ((this.client === seg.dir) !== isClient) throw new HttpParseError(`a ${msg.kind} from the wrong side`);
    if (msg.kind === 'request') {
      const url = requestUrl(msg, seg.dstIp, seg.dstPort);
      // With the server side given up, the response is counted when its start is seen.
      if (other?.mode !== 'lost') {
        if (this.pending.length >= MAX_PENDING) throw new HttpParseError(`${MAX_PENDING} requests without a response`);
        this.pending.push({ tsNs: d.startNs, method: msg.method, url });
      }
      this.frame(d, msg.framing.chunked, msg.framing.length ?? 0);
      return [{ kind: 'request', msg, url, tsNs: d.startNs }];
    }
    const code = msg.code;
    if (code >= 100 && code < 200 && code !== 101) {
      d.mode = 'start'; // interim (100 Continue): the final response follows
      return [];
    }
    const req = this.pending.shift();
    if (!req && other?.mode !== 'lost') throw new HttpParseError('a response without a request');
    if (code === 101 || (req?.method === 'CONNECT' && code < 300)) {
      // The connection now carries another protocol, both ways.
      for (const dir of this.dirs.values()) dir.mode = 'opaque';
    } else if (req?.method === 'HEAD' || code === 204 || code === 304) {
      d.mode = 'start';
    } else if (!req && code < 300 && !msg.framing.chunked && msg.framing.length === undefined) {
      throw new HttpParseError('a response without its request has no length'); // HEAD or CONNECT?
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

  /** What direction `d` sends, by the side that sent the first request, else by `start`'s bytes. */
  private role(d: Dir, start: Buffer | undefined): MessageKind {
    if (this.client !== undefined) return d.key === this.client ? 'request' : 'response';
    return (start && startKind(start)) ?? 'request';
  }

  /** Gives up direction `d`; `cut`: a message had started there and was not reported. */
  private lose(d: Dir, why: string, cut: boolean): HttpNews[] {
    if (cut) this.lost(this.role(d, d.carry));
    d.mode = 'lost';
    d.carry = undefined;
    // Responses to the requests waiting will be counted by their starts, as the later ones.
    if (this.client !== undefined && d.key !== this.client) this.pending.length = 0;
    return [{ kind: 'lost', why }];
  }
}
