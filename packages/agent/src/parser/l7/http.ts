// HTTP/1.x request and status lines plus headers, from a payload snippet that may be cut short:
// the start line must be complete; headers are read as far as the snippet goes.

export interface HttpRequest {
  kind: 'request';
  method: string;
  /** Request target as sent (origin form `/path?q` or absolute form). */
  target: string;
  protocol: string;
  headers: { key: string; value: string }[];
  host: string;
}

export interface HttpResponse {
  kind: 'response';
  protocol: string;
  code: number;
  headers: { key: string; value: string }[];
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

export function parseHttp(payload: Buffer): HttpMessage {
  const text = payload.toString('latin1');
  const eol = text.indexOf('\r\n');
  if (eol < 0) throw new HttpParseError('no complete start line');
  const start = text.slice(0, eol);
  // The last line may be cut by the snippet length; drop it unless the head ended.
  const headEnd = text.indexOf('\r\n\r\n');
  const rest = text.slice(eol + 2, headEnd >= 0 ? headEnd : text.lastIndexOf('\r\n') + 2);
  const headers = parseHeaders(rest.split('\r\n'));

  if (start.startsWith('HTTP/')) {
    const m = /^(HTTP\/\d(?:\.\d)?) (\d{3})(?: .*)?$/.exec(start);
    if (!m) throw new HttpParseError(`bad status line ${JSON.stringify(start.slice(0, 40))}`);
    const code = Number(m[2]);
    if (code < 100 || code > 599) throw new HttpParseError(`status code ${code} out of range`);
    return { kind: 'response', protocol: m[1]!, code, headers };
  }
  const m = /^([A-Z]+) (\S+) (HTTP\/\d(?:\.\d)?)$/.exec(start);
  if (!m || !METHODS.has(m[1]!)) throw new HttpParseError(`bad request line ${JSON.stringify(start.slice(0, 40))}`);
  const host = headers.find((h) => h.key.toLowerCase() === 'host')?.value ?? '';
  return { kind: 'request', method: m[1]!, target: m[2]!, protocol: m[3]!, headers, host };
}

/** The URL Hubble shows for a request: absolute, built from Host and the target. */
export function requestUrl(req: HttpRequest, dstIp: string, dstPort: number): string {
  if (/^https?:\/\//i.test(req.target)) return req.target;
  const host = req.host || (dstPort === 80 ? dstIp : `${dstIp}:${dstPort}`);
  return `http://${host}${req.target.startsWith('/') ? '' : '/'}${req.target}`;
}
