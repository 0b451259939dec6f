// DNS over TCP (RFC 1035 §4.2.2, RFC 7766): each message is preceded by a 2-byte length, and
// length and message may be split across segments or several may share one. One direction of
// a connection, from the payload events of its segments.
import { TcpStream } from './stream.js';

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
  /** Message length once the prefix is read; -1 while reading the prefix. */
  private msgLen = -1;
  private startNs = 0n;
  lost = false;

  constructor(firstSeq: number) {
    this.stream = new TcpStream(firstSeq);
  }

  feed(seq: number, len: number, bytes: Buffer, tsNs: bigint): DnsTcpNews[] {
    if (this.lost) return [];
    const news = this.stream.accept(seq, len, bytes.length);
    if (news.kind === 'old') return [];
    if (news.kind === 'gap') return this.lose(`${news.missing} bytes were not seen`);
    const out: DnsTcpNews[] = [];
    let off = news.from;
    const cap = bytes.length;
    while (off < len) {
      if (this.msgLen < 0) {
        if (off >= cap) return [...out, ...this.lose('a length prefix was not copied')];
        if (this.gotLen === 0) this.startNs = tsNs;
        const n = Math.min(2 - this.gotLen, cap - off);
        this.keep(bytes.subarray(off, off + n));
        off += n;
        if (this.gotLen === 2) {
          const b = Buffer.concat(this.got);
          this.msgLen = b.readUInt16BE(0);
          this.got = [];
          this.gotLen = 0;
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
      if (this.gotLen === this.msgLen) {
        out.push({ kind: 'message', bytes: Buffer.concat(this.got), len: this.msgLen, tsNs: this.startNs });
        this.got = [];
        this.gotLen = this.keptLen = 0;
        this.msgLen = -1;
        this.cut = false;
      }
    }
    return out;
  }

  private keep(b: Buffer): void {
    this.got.push(Buffer.from(b));
    this.gotLen += b.length;
  }

  private lose(why: string): DnsTcpNews[] {
    this.lost = true;
    this.got = [];
    return [{ kind: 'lost', why }];
  }
}
