// HTTP/1.x on one TCP connection as a stream of messages (RFC 9112), from the payload events of
// every segment. A message starts where the previous one ended (Content-Length, chunked framing,
// or the end of the head for messages without a body), and only there are bytes read as a
// request or status line, wherever they sit in a segment: a body that looks like a request is a
// body. Responses pair with requests in order.
//
// The kernel sends a segment as one or more windows of bytes (bpf/l7.bpf.h): where it follows the
// direction's messages, one at each message start or head byte past the previous window, each
// saying where the first message in it starts by the kernel's count and which message that is.
//
// When a direction loses its boundary (bytes never seen, bytes the kernel did not copy, framing
// that cannot be followed) it says so once (an unparsed flow). After missing bytes it finds its
// place again at the next message start the kernel names, if the kernel's starts matched its own
// until then; otherwise (and after bytes it could not parse) it is given up until the connection
// ends: a body can hold anything, so no other boundary is certain. A gap inside a body of known
// length loses nothing. Every message not reported is counted lost once: the one cut by the
// gap here, those whose starts were in events lost before they reached the parser by the kernel
// or the agent's queue, and in a given-up direction those of each later window (the kernel's
// count of starts in it, else one per segment starting with a request or status line). Responses
// pair with requests by their index in the connection (the kernel's after a resync), never
// across a gap: a response whose request was lost is reported without one.
import { HttpParseError, parseHttp, requestUrl, type HttpRequest, type HttpResponse } from './http.js';
import { TcpStream, type SegmentNews } from './stream.js';

/** Where a direction is: at a message start, inside a head, a body, chunked framing, past
 * anything it can follow (after an upgrade or a body read until close), or lost (given up, or
 * until the next start the kernel names: Dir.resync). */
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

/** Bytes of a segment the kernel copied, from payload offset `off` (FlowEvent capturedOff, l7*). */
interface Window {
  off: number;
  bytes: Buffer;
  followed: boolean;
  start: number | undefined;
  msg: number;
  starts: number;
  more: number;
}

/** A segment as its stream holds it: its windows so far. */
interface Piece {
  seq: number;
  len: number;
  bytes: Buffer;
  tsNs: bigint;
  seg: Segment;
  windows: Window[];
  /** Offset of the window still to come, 0 when all came. */
  more: number;
}

interface Dir {
  key: string;
  stream: TcpStream<Piece>;
  mode: Mode;
  /** Messages started (requests, or final responses), as the kernel numbers them. */
  msgs: number;
  /** Lost after missing bytes: finds its place at the next start the kernel names. */
  resync: boolean;
  /** The kernel's starts disagreed with ours once: never resync on them. */
  distrust: boolean;
  /** Lost something once (a response may then have no request). */
  lostSome: boolean;
  /** The last window whose kernel start was compared with ours. */
  checked: Window | undefined;
  /** The segment whose windows are still coming (Piece.more), and where parsing waits in it. */
  open: Piece | undefined;
  waitAt: number | undefined;
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
  /** Its index among the connection's requests. */
  idx: number;
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
  /** Payload bytes in the segment, and those the kernel copied from payload offset `off` (0 when
   * absent); a further window of the segment comes as another Segment with the same seq. */
  len: number;
  bytes: Buffer;
  off?: number;
  /** The kernel's following of the direction's messages (FlowEvent l7Followed ... l7More). */
  followed?: boolean;
  start?: number;
  msg?: number;
  starts?: number;
  more?: number;
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
      d = {
        key: seg.dir, stream: new TcpStream(firstSeq ?? seg.seq), mode: 'start', left: 0, carry: undefined, startNs: seg.tsNs,
        msgs: 0, resync: false, distrust: false, lostSome: false, checked: undefined, open: undefined, waitAt: undefined,
      };
      this.dirs.set(seg.dir, d);
      if (firstSeq === undefined) out.push(...this.lose(d, 'the stream started before it was seen', false, false));
    }
    const w: Window = {
      off: seg.off ?? 0, bytes: seg.bytes, followed: seg.followed ?? false, start: seg.start, msg: seg.msg ?? 0,
      starts: seg.starts ?? 0, more: seg.more ?? 0,
    };
    const open = d.open;
    if (open && open.seq === seg.seq && open.len === seg.len && open.more === w.off) {
      // The next window of the segment being read.
      open.windows.push(w);
      open.more = w.more;
      if (!w.more) d.open = undefined;
      return [...out, ...this.resume(d, open)];
    }
    if (open) out.push(...this.closeOpen(d));
    const p: Piece = { seq: seg.seq, len: seg.len, bytes: seg.bytes, tsNs: seg.tsNs, seg, windows: [w], more: w.more };
    if (w.more) d.open = p;
    for (const { seg: s, news } of d.stream.push(p)) out.push(...this.place(d, s, news));
    return out;
  }

  /** The connection ends: segments still waiting for earlier bytes are placed after the gap. */
  flush(): HttpNews[] {
    const out: HttpNews[] = [];
    for (const d of this.dirs.values()) {
      if (d.open) out.push(...this.closeOpen(d));
      for (const { seg, news } of d.stream.flush()) out.push(...this.place(d, seg, news));
    }
    return out;
  }

  /** The windows of the open segment stop coming (an event was lost, or the connection ends). */
  private closeOpen(d: Dir): HttpNews[] {
    d.open!.more = 0;
    d.open = undefined;
    if (d.waitAt === undefined) return [];
    d.waitAt = undefined;
    // A message starting in the lost window was counted with it (kernel or queue); one whose head
    // began before it is counted here.
    return this.lose(d, 'a window of a segment was lost', d.mode === 'head', true);
  }

  /** Parsing waits in `p` for the window that came, or a lost direction may find its place in it. */
  private resume(d: Dir, p: Piece): HttpNews[] {
    if (d.stream.holds(p)) return []; // placed later, with all its windows
    const w = p.windows[p.windows.length - 1]!;
    if (d.waitAt !== undefined) {
      const at = d.waitAt;
      d.waitAt = undefined;
      return this.parse(d, p, at);
    }
    return d.mode === 'lost' ? this.lostWindows(d, p, [w], w.off) : [];
  }

  private place(d: Dir, p: Piece, news: SegmentNews): HttpNews[] {
    if (news.kind === 'old' || d.mode === 'opaque') return [];
    if (news.kind === 'gap') {
      if ((d.mode === 'body' || d.mode === 'chunk-data') && news.missing <= d.left) {
        d.left -= news.missing; // inside a body of known length: the boundary is still known
        if (d.left === 0) d.mode = d.mode === 'body' ? 'start' : 'chunk-line';
        return [];
      }
      // A message whose head had begun was seen and is counted here; one starting in the missing
      // bytes is counted by its segment's start, by the kernel or the agent's queue that lost it.
      return d.mode === 'lost' ? [] : this.lose(d, `${news.missing} bytes were not seen`, d.mode === 'head', true);
    }
    if (d.mode === 'lost') return this.lostWindows(d, p, p.windows, news.from);
    return this.parse(d, p, news.from);
  }

  /** Windows of a lost direction: its place again at a start the kernel names, else their
   * messages counted. */
  private lostWindows(d: Dir, p: Piece, windows: Window[], from: number): HttpNews[] {
    for (const w of windows) {
      if (w.followed && w.start !== undefined && w.start >= from && d.resync && !d.distrust) {
        d.mode = 'start';
        d.msgs = w.msg;
        return this.parse(d, p, w.start);
      }
      if (w.followed) {
        if (w.start !== undefined && w.start >= from) for (let i = 0; i < w.starts; i++) this.lost(this.role(d, undefined));
      } else {
        const kind = from === 0 && w.off === 0 ? startKind(w.bytes) : undefined;
        if (kind && kind === this.role(d, w.bytes)) this.lost(kind);
      }
    }
    return [];
  }

  /** The window of `p` holding payload byte `at`. */
  private static windowAt(p: Piece, at: number): Window | undefined {
    for (const w of p.windows) if (at >= w.off && at < w.off + w.bytes.length) return w;
    return undefined;
  }

  private parse(d: Dir, p: Piece, from: number): HttpNews[] {
    const out: HttpNews[] = [];
    const seg = p.seg;
    let off = from;
    const end = p.len;
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
      const w = HttpConn.windowAt(p, off);
      if (!w) {
        if (p.more && p.more <= off && d.open === p) {
          d.waitAt = off; // the kernel sends the window with these bytes next
          return out;
        }
        return [...out, ...this.lose(d, `a message boundary at byte ${off} of a ${end}-byte segment was not copied`, head, true)];
      }
      if (d.mode === 'start') {
        d.startNs = seg.tsNs;
        if (w.followed && d.checked !== w) {
          // The kernel's first start in this window must be this one, with our index.
          d.checked = w;
          if (w.start !== off || w.msg !== d.msgs) d.distrust = true;
        }
      }
      const cap = w.off + w.bytes.length;
      const bytes = w.bytes.subarray(off - w.off);
      const buf = d.carry ? Buffer.concat([d.carry, bytes]) : bytes;
      const carried = d.carry?.length ?? 0;
      const at = buf.indexOf(head ? HEAD_END : CRLF);
      if (at < 0) {
        const onward = cap === end || HttpConn.windowAt(p, cap) !== undefined || (d.open === p && p.more === cap);
        if (!onward) return [...out, ...this.lose(d, 'a message head runs past the copied bytes', head, true)];
        if (buf.length > (head ? MAX_HEAD : MAX_LINE)) return [...out, ...this.lose(d, 'a message head or chunk line is too long', head, false)];
        d.carry = Buffer.from(buf);
        if (d.mode === 'start') d.mode = 'head';
        off = cap;
        continue;
      }
      const used = at + (head ? HEAD_END.length : CRLF.length);
      off += used - carried;
      d.carry = undefined;
      try {
        if (head) out.push(...this.message(seg, d, buf.subarray(0, used)));
        else this.chunkLine(d, buf.toString('latin1', 0, at));
      } catch (err) {
        if (!(err instanceof HttpParseError)) throw err;
        return [...out, ...this.lose(d, err.message, head, false)];
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
      if (this.pending.length >= MAX_PENDING) {
        // Responses lost with the server side are not waited for forever.
        if (!other?.lostSome) throw new HttpParseError(`${MAX_PENDING} requests without a response`);
        this.pending.shift();
      }
      this.pending.push({ tsNs: d.startNs, method: msg.method, url, idx: d.msgs++ });
      this.frame(d, msg.framing.chunked, msg.framing.length ?? 0);
      return [{ kind: 'request', msg, url, tsNs: d.startNs }];
    }
    const code = msg.code;
    if (code >= 100 && code < 200 && code !== 101) {
      d.mode = 'start'; // interim (100 Continue): the final response follows
      return [];
    }
    // The request with this response's index, if it was seen: never one across a gap.
    const idx = d.msgs++;
    while (this.pending.length > 0 && this.pending[0]!.idx < idx) this.pending.shift();
    const req = this.pending[0]?.idx === idx ? this.pending.shift() : undefined;
    // No request: it was lost (maybe in events whose gap has not shown yet: the client sends
    // nothing more until this answer), or never sent. The response is reported without one.
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

  /** Direction `d` loses its place; `cut`: a message had started there and was not reported;
   * `resync`: after missing bytes (it may find its place again at a start the kernel names). */
  private lose(d: Dir, why: string, cut: boolean, resync: boolean): HttpNews[] {
    if (cut) this.lost(this.role(d, d.carry));
    d.mode = 'lost';
    d.carry = undefined;
    d.waitAt = undefined;
    d.lostSome = true;
    d.resync = resync;
    return [{ kind: 'lost', why }];
  }
}
