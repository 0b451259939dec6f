// DNS over TCP (RFC 1035 §4.2.2, RFC 7766): each message is preceded by a 2-byte length, and
// length and message may be split across segments or several may share one. One direction of
// a connection, from the payload events of its segments. Bytes missed inside a message of known
// length lose that message only (counted); a missed length prefix gives the direction up, and
// each later segment is counted as a lost message (the kernel counts lost DNS segments the same).
import { TcpStream, type Piece, type SegmentNews } from './stream.js';

/** Bytes of a message kept for parsing; the rest is counted past (answers cut short are dropped). */
const MAX_KEPT = 4096;

export type DnsTcpNews = { kind: 'message'; bytes: Buffer; len: number; tsNs: bigint } | { kind: 'lost'; why: string };

export class DnsTcpDir {
  private readonly stream: TcpStream;
  /** Bytes of the length prefix or of the message read so far. */
  private got: Buffer[] = [];
  private gotLen = 0;
  private keptLen = 0;
  /** A byte of the message was not copied: nothing after it is kept. */
  private cut = false;
  /** A byte of the message was never seen: it is counted lost, not parsed. */
  private missed = false;
  /** Message length once the prefix is read; -1 while reading the prefix. */
  private msgLen = -1;
  private startNs = 0n;
  lost = false;

  /** `lostMessage` counts each message that will never be reported. */
  constructor(firstSeq: number, private readonly lostMessage: () => void) {
    this.stream = new TcpStream(firstSeq);
  }

  feed(seq: number, len: number, bytes: Buffer, tsNs: bigint): DnsTcpNews[] {
    return this.placeAll(this.stream.push({ seq, len, bytes, tsNs }));
  }

  /** The connection ends: segments still waiting for earlier bytes are placed after the gap. */
  flush(): DnsTcpNews[] {
    return this.placeAll(this.stream.flush());
  }

  /** Gives the direction up from the start (its first bytes were not seen). */
  giveUp(why: string): DnsTcpNews[] {
    this.lostMessage();
    return this.lose(why);
  }

  private placeAll(placed: { seg: Piece; news: SegmentNews }[]): DnsTcpNews[] {
    const out: DnsTcpNews[] = [];
    for (const { seg, news } of placed) out.push(...this.place(seg, news));
    return out;
  }

  private place(seg: Piece, news: SegmentNews): DnsTcpNews[] {
    if (news.kind === 'old') return [];
    if (this.lost) {
      if (news.kind === 'new' && news.from === 0) this.lostMessage();
      return [];
    }
    if (news.kind === 'gap') {
      if (this.msgLen >= 0 && news.missing <= this.msgLen - this.gotLen) {
        this.gotLen += news.missing;
        this.missed = true;
        return this.end();
      }
      if (this.msgLen >= 0 || this.gotLen > 0) this.lostMessage();
      return this.lose(`${news.missing} bytes were not seen`);
    }
    const { bytes, len } = seg;
    const out: DnsTcpNews[] = [];
    let off = news.from;
    const cap = bytes.length;
    while (off < len) {
      if (this.msgLen < 0) {
        if (off >= cap) {
          this.lostMessage();
          return [...out, ...this.lose('a length prefix was not copied')];
        }
        if (this.gotLen === 0) this.startNs = seg.tsNs;
        const n = Math.min(2 - this.gotLen, cap - off);
        this.got.push(Buffer.from(bytes.subarray(off, off + n)));
        this.gotLen += n;
        off += n;
        if (this.gotLen === 2) {
          this.msgLen = Buffer.concat(this.got).readUInt16BE(0);
          this.got = [];
          this.gotLen = 0;
          out.push(...this.end());
        }
        continue;
      }
      // Message bytes: keep what was copied, up to the first byte that was not (or MAX_KEPT);
      // count past the rest (answers cut short are dropped by the parser).
      const n = Math.min(this.msgLen - this.gotLen, len - off);
      const keep = this.cut ? 0 : Math.max(0, Math.min(n, cap - off, MAX_KEPT - this.keptLen));
      if (keep > 0) this.got.push(Buffer.from(bytes.subarray(off, off + keep)));
      if (keep < n) this.cut = true;
      this.keptLen += keep;
      this.gotLen += n;
      off += n;
      out.push(...this.end());
    }
    return out;
  }

  /** The message once all its bytes went by: reported, or counted lost when some were missed. */
  private end(): DnsTcpNews[] {
    if (this.msgLen < 0 || this.gotLen < this.msgLen) return [];
    const msg: DnsTcpNews = { kind: 'message', bytes: Buffer.concat(this.got), len: this.msgLen, tsNs: this.startNs };
    const missed = this.missed;
    this.got = [];
    this.gotLen = this.keptLen = 0;
    this.msgLen = -1;
    this.cut = this.missed = false;
    if (missed) {
      this.lostMessage();
      return [];
    }
    return [msg];
  }

  private lose(why: string): DnsTcpNews[] {
    this.lost = true;
    this.got = [];
    return [{ kind: 'lost', why }];
  }
}
