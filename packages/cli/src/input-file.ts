// --input-file: GetFlowsResponse JSON lines from a file or stdin, run through the same filters
// and selector rules as a server (hubble cmd/observe/io_reader_observer.go): since/until on the
// response time, then whitelist/blacklist, then --first N stops early, --last N keeps a ring of N.
import { createReadStream } from 'node:fs';
import type { GetFlowsRequest, GetFlowsResponse } from '@flowctl/flow/gen/observer/observer';
import type { Timestamp } from '@flowctl/flow/gen/google/protobuf/timestamp';
import { CliError } from './errors.js';
import { UINT64_MAX } from './request.js';

export interface LineCodec {
  decodeResponse(line: string, where?: string): GetFlowsResponse;
}
export type Matcher = (r: GetFlowsResponse) => boolean;

/** Lines of a file (or '-' for stdin), without their newline; large chunks, no readline. */
export async function* readLines(path: string): AsyncGenerator<string> {
  const stream = path === '-' ? process.stdin : createReadStream(path, { highWaterMark: 1 << 20 });
  stream.setEncoding('utf8');
  let rest = '';
  try {
    for await (const chunk of stream as AsyncIterable<string>) {
      const text = rest + chunk;
      let start = 0;
      let nl: number;
      while ((nl = text.indexOf('\n', start)) >= 0) {
        yield text.slice(start, nl);
        start = nl + 1;
      }
      rest = text.slice(start);
    }
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new CliError('input', `cannot read ${path}: ${err.code === 'ENOENT' ? 'no such file or directory' : err.message}`);
  }
  if (rest) yield rest;
}

function before(a: Timestamp, b: Timestamp): boolean {
  const as = a.seconds ?? 0n, bs = b.seconds ?? 0n;
  return as < bs || (as === bs && (a.nanos ?? 0) < (b.nanos ?? 0));
}

export interface InputFileStats {
  lines: number;
  invalid: number;
}

export async function* observeFile(
  path: string,
  req: GetFlowsRequest,
  codec: LineCodec,
  match: Matcher,
  onInvalid: (msg: string) => void,
  stats: InputFileStats = { lines: 0, invalid: 0 },
  prefilter?: (line: string) => boolean,
): AsyncGenerator<GetFlowsResponse> {
  const n = req.number ?? 0n;
  const first = !!req.first && n !== 0n && n !== UINT64_MAX;
  const last = !req.first && n !== 0n && n !== UINT64_MAX;
  if (last && n > 1_000_000n) throw new CliError('usage', `--last must be <= 1_000_000, got ${n}`);
  const ringSize = last ? Number(n) : 0;
  const ring: GetFlowsResponse[] = [];
  let ringStart = 0;
  let returned = 0n;
  const name = path === '-' ? 'stdin' : path;
  for await (const line of readLines(path)) {
    stats.lines++;
    if (!line.trim()) continue;
    if (prefilter && !prefilter(line)) continue;
    let r: GetFlowsResponse;
    try {
      r = codec.decodeResponse(line, `${name}:${stats.lines}`);
    } catch (e) {
      // Like hubble: a bad line is reported and skipped, the rest of the file still counts.
      stats.invalid++;
      onInvalid((e as Error).message);
      continue;
    }
    const t = r.time ?? r.flow?.time;
    if (t && req.since && before(t, req.since)) continue;
    if (t && req.until && before(req.until, t)) continue;
    if (!match(r)) continue;
    if (last) {
      if (ring.length < ringSize) ring.push(r);
      else {
        ring[ringStart] = r;
        ringStart = (ringStart + 1) % ringSize;
      }
      continue;
    }
    yield r;
    if (first && ++returned >= n) return;
  }
  for (let i = 0; i < ring.length; i++) yield ring[(ringStart + i) % ring.length]!;
}
