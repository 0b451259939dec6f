// --input-file: GetFlowsResponse JSON lines from a file or stdin, run through the same filters
// and selector rules as a server (hubble cmd/observe/io_reader_observer.go): since/until on the
// response time, then whitelist/blacklist, then --first N stops early, --last N keeps a ring of N.
//
// Bytes, not strings: the file is read in large buffers and split at newlines in place; a line is
// turned into a string only when it must be decoded. A prefilter may skip lines that cannot match
// (once a line has decoded, and only lines shaped as JSON objects, so unreadable ones are counted),
// and a pass-through may declare a line already canonical, so it is printed as its own bytes.
import { open } from 'node:fs/promises';
import { isUtf8 } from 'node:buffer';
import type { GetFlowsRequest, GetFlowsResponse } from '@flowctl/flow/gen/observer/observer';
import type { Timestamp } from '@flowctl/flow/gen/google/protobuf/timestamp';
import { CliError } from './errors.js';
import { UINT64_MAX } from './request.js';

export interface LineCodec {
  decodeResponse(line: string, where?: string): GetFlowsResponse;
}
export type Matcher = (r: GetFlowsResponse) => boolean;
/** `buf[start, end)` is one line; lines of one buffer come in increasing order. */
export type LineTest = (buf: Buffer, start: number, end: number) => boolean;

/**
 * A decoded response, or bytes printed as they are (`-o json` of canonical lines): one line or a
 * run of consecutive lines, newline-separated, without the final newline.
 */
export type InputItem = GetFlowsResponse | Buffer;

const CHUNK = 2 << 20;

function readError(path: string, e: unknown): CliError {
  const err = e as NodeJS.ErrnoException;
  return new CliError('input', `cannot read ${path}: ${err.code === 'ENOENT' ? 'no such file or directory' : err.message}`);
}

/**
 * Buffers of whole lines (the last one may lack its newline). A buffer is valid until the next
 * one is asked for: file reads go to two buffers in turn, the next read running (on libuv's
 * thread pool) while the caller works on the current one.
 */
export async function* readLineBuffers(path: string): AsyncGenerator<Buffer> {
  let rest: Buffer | undefined;
  // Yields the line completed by the start of `data`, then the whole lines after it.
  function* split(data: Buffer): Generator<Buffer> {
    const first = data.indexOf(0x0a);
    if (first < 0) {
      rest = rest ? Buffer.concat([rest, data]) : Buffer.from(data);
      return;
    }
    let from = 0;
    if (rest) {
      yield Buffer.concat([rest, data.subarray(0, first + 1)]);
      rest = undefined;
      from = first + 1;
    }
    const last = data.lastIndexOf(0x0a);
    if (last + 1 < data.length) rest = Buffer.from(data.subarray(last + 1));
    if (last + 1 > from) yield data.subarray(from, last + 1);
  }
  if (path === '-') {
    try {
      for await (const c of process.stdin as AsyncIterable<Buffer>) yield* split(c);
    } catch (e) {
      throw readError(path, e);
    }
  } else {
    let fh;
    try {
      fh = await open(path, 'r');
    } catch (e) {
      throw readError(path, e);
    }
    let cur = Buffer.allocUnsafe(CHUNK);
    let next = Buffer.allocUnsafe(CHUNK);
    let pending: Promise<{ bytesRead: number }> | undefined = fh.read(cur, 0, CHUNK, null);
    try {
      for (;;) {
        let n: number;
        try {
          n = (await pending).bytesRead;
        } catch (e) {
          pending = undefined;
          throw readError(path, e);
        }
        pending = undefined;
        if (n === 0) break;
        pending = fh.read(next, 0, CHUNK, null);
        yield* split(cur.subarray(0, n));
        [cur, next] = [next, cur];
      }
    } finally {
      await pending?.catch(() => undefined);
      await fh.close();
    }
  }
  if (rest?.length) yield rest;
}

function before(a: Timestamp, b: Timestamp): boolean {
  const as = a.seconds ?? 0n, bs = b.seconds ?? 0n;
  return as < bs || (as === bs && (a.nanos ?? 0) < (b.nanos ?? 0));
}

export interface InputFileStats {
  lines: number;
  invalid: number;
  /** Lines printed as they are, without decoding. */
  passedThrough: number;
  /** Lines not blank (read or skipped by the prefilter). */
  nonBlank?: number;
}

/**
 * One line for a file with unreadable lines (hubble warns once per line): a warning, or an error
 * when no line could be read at all (a file of garbage is not an empty result).
 */
export function unreadableSummary(path: string, stats: InputFileStats, first: string | undefined): CliError | string | undefined {
  if (!stats.invalid || first === undefined) return undefined;
  const text = `${path === '-' ? 'stdin' : path}: ${stats.invalid} of ${stats.nonBlank} lines could not be read; first at ${first}`;
  return stats.invalid === stats.nonBlank ? new CliError('input', text) : text;
}

export interface ObserveFileOptions {
  stats?: InputFileStats;
  /** False: the line cannot match the filters (checked before decoding). */
  prefilter?: LineTest;
  /**
   * True: the line is exactly what encoding its decoded response gives. Only for callers whose
   * matcher accepts every flow; ignored with since/until, which need the time.
   */
  passthrough?: LineTest;
}

const isSpace = (c: number | undefined) => c === 0x20 || c === 0x09 || c === 0x0d;

/** `{…}` around the line's text: only such a line may be skipped unread (a torn or stray one is decoded, and counted). */
function objectShaped(buf: Buffer, start: number, end: number): boolean {
  while (start < end && isSpace(buf[start])) start++;
  while (end > start && isSpace(buf[end - 1])) end--;
  return buf[start] === 0x7b && buf[end - 1] === 0x7d;
}

function isBlank(buf: Buffer, start: number, end: number): boolean {
  // `{` is the common case; anything else gets String.prototype.trim's idea of white space.
  return buf[start] !== 0x7b && !buf.toString('utf8', start, end).trim();
}

/** The responses (or raw lines) to print, in order, a batch per read buffer. */
export async function* observeFile(
  path: string,
  req: GetFlowsRequest,
  codec: LineCodec,
  match: Matcher,
  onInvalid: (msg: string) => void,
  opts: ObserveFileOptions = {},
): AsyncGenerator<InputItem[]> {
  const stats = opts.stats ?? { lines: 0, invalid: 0, passedThrough: 0 };
  stats.nonBlank ??= 0;
  const { prefilter } = opts;
  const n = req.number ?? 0n;
  const first = !!req.first && n !== 0n && n !== UINT64_MAX;
  const last = !req.first && n !== 0n && n !== UINT64_MAX;
  if (last && n > 1_000_000n) throw new CliError('usage', `--last must be <= 1_000_000, got ${n}`);
  const ringSize = last ? Number(n) : 0;
  const ring: InputItem[] = [];
  let ringStart = 0;
  let returned = 0n;
  const since = req.since, until = req.until;
  // Lines are decoded whatever the prefilter says until one decodes: a file of which no line
  // reads is an error however it is filtered.
  let decodedOne = false;

  for await (const buf of readLineBuffers(path)) {
    // Invalid UTF-8 is replaced while decoding, so such a line is never passed through.
    const passthrough = opts.passthrough && !since && !until ? opts.passthrough : undefined;
    const utf8 = !passthrough || isUtf8(buf);
    const batch: InputItem[] = [];
    // Consecutive pass-through lines are one run of bytes (with their newlines), one copy to print.
    let runStart = -1;
    let runEnd = -1;
    let start = 0;
    while (start < buf.length) {
      let end = buf.indexOf(0x0a, start);
      if (end < 0) end = buf.length;
      const s = start;
      start = end + 1;
      stats.lines++;
      if (s === end || isBlank(buf, s, end)) continue;
      stats.nonBlank!++;
      if (prefilter && decodedOne && objectShaped(buf, s, end) && !prefilter(buf, s, end)) continue;
      let item: InputItem;
      if (passthrough && (utf8 || isUtf8(buf.subarray(s, end))) && passthrough(buf, s, end)) {
        stats.passedThrough++;
        if (last) item = Buffer.from(buf.subarray(s, end));
        else {
          if (runStart >= 0 && runEnd + 1 === s) runEnd = end;
          else {
            if (runStart >= 0) batch.push(buf.subarray(runStart, runEnd));
            runStart = s;
            runEnd = end;
          }
          if (first && ++returned >= n) {
            batch.push(buf.subarray(runStart, runEnd));
            yield batch;
            return;
          }
          continue;
        }
      } else {
        let r: GetFlowsResponse;
        try {
          r = codec.decodeResponse(buf.toString('utf8', s, end), `line ${stats.lines}`);
        } catch (e) {
          // Like hubble: a bad line is reported and skipped, the rest of the file still counts.
          stats.invalid++;
          onInvalid((e as Error).message);
          continue;
        }
        decodedOne = true;
        const t = r.time ?? r.flow?.time;
        if (t && since && before(t, since)) continue;
        if (t && until && before(until, t)) continue;
        if (!match(r)) continue;
        item = r;
      }
      if (last) {
        if (ring.length < ringSize) ring.push(item);
        else {
          ring[ringStart] = item;
          ringStart = (ringStart + 1) % ringSize;
        }
        continue;
      }
      if (runStart >= 0) {
        batch.push(buf.subarray(runStart, runEnd));
        runStart = -1;
      }
      batch.push(item);
      if (first && ++returned >= n) {
        yield batch;
        return;
      }
    }
    if (runStart >= 0) batch.push(buf.subarray(runStart, runEnd));
    // The buffer is reused once the next one is asked for: the batch is printed before.
    if (batch.length) yield batch;
  }
  const out: InputItem[] = [];
  for (let i = 0; i < ring.length; i++) out.push(ring[(ringStart + i) % ring.length]!);
  if (out.length) yield out;
}
