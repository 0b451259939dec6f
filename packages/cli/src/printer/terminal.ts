// Output sinks. Text reaches stdout in large chunks (one write per ~1 MiB) because per-line
// writes dominate the cost of printing 10^5 flows; a closed pipe (`| head`) ends output quietly.

export interface Sink {
  write(s: string): void;
  flush(): void;
}

export class BufferedSink implements Sink {
  private buf = '';
  closed = false;

  constructor(
    private readonly stream: NodeJS.WritableStream & { fd?: number },
    private readonly limit = 1 << 20,
  ) {
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') this.closed = true;
      else throw e;
    });
  }

  write(s: string): void {
    if (this.closed) return;
    this.buf += s;
    if (this.buf.length >= this.limit) this.flush();
  }

  flush(): void {
    if (!this.buf.length || this.closed) return;
    const s = this.buf;
    this.buf = '';
    this.stream.write(s);
  }
}

/** Collects output in memory (tests, and the table format, which aligns on close). */
export class StringSink implements Sink {
  text = '';
  write(s: string): void {
    this.text += s;
  }
  flush(): void {}
}

// Flow fields are untrusted input: a pod name with ESC or CR could rewrite the user's terminal.
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f]/g;
export function sanitize(s: string): string {
  return UNSAFE.test(s) ? s.replace(UNSAFE, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`) : s;
}
