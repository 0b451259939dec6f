// Output sinks. Text reaches stdout in large chunks (one write per ~1 MiB) because per-line
// writes dominate the cost of printing 10^5 flows; a closed pipe (`| head`) ends output quietly.

export interface Sink {
  write(s: string): void;
  /** `buf[start, end)` (UTF-8) and a newline: lines printed as they were read. */
  writeLine?(buf: Buffer, start: number, end: number): void;
  flush(): void;
}

const NEWLINE = Buffer.from('\n');

/** Output bytes collected in one buffer and written ~1 MiB at a time; limit 0 writes through. */
export class BufferedSink implements Sink {
  private buf: Buffer;
  private pos = 0;
  closed = false;

  constructor(
    private readonly stream: NodeJS.WritableStream & { fd?: number },
    private readonly limit = 1 << 20,
  ) {
    this.buf = Buffer.allocUnsafe(limit);
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') this.closed = true;
      else throw e;
    });
  }

  write(s: string): void {
    if (this.closed) return;
    // A UTF-16 unit never takes more than 3 bytes in UTF-8.
    if (s.length * 3 > this.limit - this.pos) {
      this.flush();
      if (s.length * 3 > this.limit) {
        this.stream.write(s);
        return;
      }
    }
    this.pos += this.buf.write(s, this.pos);
  }

  writeLine(buf: Buffer, start: number, end: number): void {
    if (this.closed) return;
    if (this.limit === 0) {
      this.stream.write(Buffer.concat([buf.subarray(start, end), NEWLINE]));
      return;
    }
    // A run of lines larger than the room left goes out in buffer-sized pieces, through the one
    // buffer: no allocation per write.
    let s = start;
    while (end - s >= this.limit - this.pos) {
      const room = this.limit - this.pos;
      buf.copy(this.buf, this.pos, s, s + room);
      this.pos += room;
      s += room;
      this.flush();
      if (this.closed) return;
    }
    buf.copy(this.buf, this.pos, s, end);
    this.pos += end - s;
    this.buf[this.pos++] = 0x0a;
  }

  flush(): void {
    if (!this.pos || this.closed) return;
    const out = this.buf.subarray(0, this.pos);
    this.pos = 0;
    this.stream.write(out);
    // Written through (a file, /dev/null, a pipe with room): the buffer is free again. Otherwise
    // the stream holds on to it until written, so continue in a new one.
    if ((this.stream as { writableLength?: number }).writableLength !== 0) this.buf = Buffer.allocUnsafe(this.limit);
  }
}

/** Collects output in memory (tests, and the table format, which aligns on close). */
export class StringSink implements Sink {
  text = '';
  write(s: string): void {
    this.text += s;
  }
  writeLine(buf: Buffer, start: number, end: number): void {
    this.text += buf.toString('utf8', start, end) + '\n';
  }
  flush(): void {}
}

// Flow fields are untrusted input: a DNS name or URL with a newline could forge a line of output,
// one with ESC rewrite the terminal. Every byte outside printable ASCII is printed as \xNN (as
// Hubble does), so each flow stays on its own line.
const UNSAFE = /[^\u0020-\u007e]/;
export function sanitize(s: string): string {
  if (!UNSAFE.test(s)) return s;
  let out = '';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (c >= 0x20 && c <= 0x7e) out += ch;
    else for (const b of Buffer.from(ch, 'utf8')) out += `\\x${b.toString(16).padStart(2, '0')}`;
  }
  return out;
}
