// HTTP/1.x request and status lines plus headers, from a message head (start line to the empty
// line), with the framing headers the message stream needs (RFC 9112 §6).

export interface HttpRequest {
  kind: 'request';
  method: string;
  /** Request target as sent (origin form `/path?q` or absolute form). */
  target: string;
  protocol: string;
  headers: { key: string; value: string }[];
  host: string;
  framing: Framing;
}

export interface HttpResponse {
  kind: 'response';
  protocol: string;
  code: number;
  headers: { key: string; value: string }[];
  framing: Framing;
}

/** How the body is delimited: Transfer-Encoding chunked, a Content-Length, or neither. */
export interface Framing {
  chunked: boolean;
  /** undefined without a Content-Length header. */
  length: number | undefined;
}

export type HttpMessage = HttpRequest | HttpResponse;

export class HttpParseError extends Error {}

const METHODS = new Set(['GET', 'POST', 'PUT', 'DELETE', 'HEAD', 'OPTIONS', 'PATCH', 'CONNECT', 'TRACE']);

/** Headers never copied into flows: they carry credentials. */
const REDACTED = new Set(['authorization', 'proxy-authorization', 'cookie', 'set-cookie']);
const MAX_HEADERS = 16;

function parseHeaders(lines: string[]): { key: string; value: string }[] {
  const out: { key: string; value: string }[] = [];
  for (const line of lines) {
    if (line === '') break;
    const colon = line.indexOf(':');
    if (colon <= 0) continue; // a header cut in the middle by the snippet length
    const key = line.slice(0, colon).trim();
    if (REDACTED.has(key.toLowerCase())) continue;
    out.push({ key, value: line.slice(colon + 1).trim() });
    if (out.length >= MAX_HEADERS) break;
  }
  return out;
}

function parseFraming(lines: string[]): Framing {
  const f: Framing = { chunked: false, length: undefined };
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const key = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (key === 'transfer-encoding') {
      // Chunked must be the last coding (RFC 9112 §6.3); anything else is read until close.
      f.chunked = /(?:^|,)\s*chunked\s*$/i.test(value);
      if (!f.chunked) throw new HttpParseError(`transfer-encoding ${JSON.stringify(value.slice(0, 40))} has no length`);
    } else if (key === 'content-length') {
      if (!/^\d{1,15}$/.test(value) || (f.length !== undefined && f.length !== Number(value)))
        throw new HttpParseError(`bad content-length ${JSON.stringify(value.slice(0, 40))}`);
      f.length = Number(value);
    }
  }
  return f;
}

interface HeaderBlock {
  headers: { key: string; value: string }[];
  framing: Framing;
  host: string;
}

/** Header blocks parsed lately, by their text. A server sends the same few blocks again and again
 * (nginx's change once a second, with Date): their flows then share one frozen headers array
 * instead of parsing and keeping a score of strings each (the agent's CPU at 10,000 requests/s
 * goes mostly to the parser and the garbage collector). */
const BLOCKS_MAX = 1024;
let blocks = new Map<string, HeaderBlock>();

function headerBlock(text: string): HeaderBlock {
  const hit = blocks.get(text);
  if (hit) return hit;
  const lines = text.split('\r\n');
  const headers = parseHeaders(lines);
  const framing = Object.freeze(parseFraming(lines));
  const host = headers.find((h) => h.key.toLowerCase() === 'host')?.value ?? '';
  for (const h of headers) Object.freeze(h);
  const b = { headers: Object.freeze(headers) as HeaderBlock['headers'], framing, host };
  if (blocks.size >= BLOCKS_MAX) blocks = new Map();
  blocks.set(text, b);
  return b;
}

/** Parses a complete message head: the start line, headers and the empty line ending them. */
export function parseHttp(head: Buffer): HttpMessage {
  const text = head.toString('latin1');
  const eol = text.indexOf('\r\n');
  if (eol < 0) throw new HttpParseError('no complete start line');
  const start = text.slice(0, eol);
  const headEnd = text.indexOf('\r\n\r\n');
  const { headers, framing, host } = headerBlock(text.slice(eol + 2, headEnd >= eol ? headEnd : text.length));

  if (start.startsWith('HTTP/')) {
    const m = /^(HTTP\/1\.[01]) (\d{3})(?: .*)?$/.exec(start);
    if (!m) throw new HttpParseError(`bad status line ${JSON.stringify(start.slice(0, 40))}`);
    const code = Number(m[2]);
    if (code < 100 || code > 599) throw new HttpParseError(`status code ${code} out of range`);
    return { kind: 'response', protocol: m[1]!, code, headers, framing };
  }
  const m = /^([A-Z]+) (\S+) (HTTP\/1\.[01])$/.exec(start);
  if (!m || !METHODS.has(m[1]!)) throw new HttpParseError(`bad request line ${JSON.stringify(start.slice(0, 40))}`);
  return { kind: 'request', method: m[1]!, target: m[2]!, protocol: m[3]!, headers, host, framing };
}

/** The URL Hubble shows for a request: absolute, built from Host and the target. */
export function requestUrl(req: HttpRequest, dstIp: string, dstPort: number): string {
  if (/^https?:\/\//i.test(req.target)) return req.target;
  const host = req.host || (dstPort === 80 ? dstIp : `${dstIp}:${dstPort}`);
  return `http://${host}${req.target.startsWith('/') ? '' : '/'}${req.target}`;
}
