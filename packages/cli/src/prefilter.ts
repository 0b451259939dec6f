// A byte pre-check for --input-file: when every allowlist filter requires a verdict, a line that
// mentions none of the wanted verdicts (by name or number) cannot match, so it is skipped without
// decoding. Conservative by construction: lines with a \u escape that could spell a letter or
// digit, lost events or node_status (which bypass filters) always go through the full decoder and
// filter engine.
//
// The needles are searched in the whole read buffer, not line by line: each search runs ahead to
// the next occurrence and is reused by every line before it, so a buffer is scanned about once per
// needle whatever the number of lines.
import { Verdict, type FlowFilter } from '@flowctl/flow/gen/flow/flow';

/** Lines of one buffer must be asked in increasing order; a new buffer starts over. */
export type LinePrefilter = (buf: Buffer, start: number, end: number) => boolean;

// lost_events, lostEvents, node_status, nodeStatus: needles whose letters are rare in flow JSON
// make the buffer search skip ahead fastest (`lost_events` itself costs 5x more).
const ALWAYS = ['_events', 'Events', '_status', 'Status'];
const ESCAPE = Buffer.from('\\u');
// Without its opening quote (the most frequent byte) for the same reason; checked below.
const VERDICT_KEY = Buffer.from('verdict"');

const isDigit = (c: number | undefined) => c !== undefined && c >= 48 && c <= 57;
const isSpace = (c: number | undefined) => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;

function hexValue(buf: Buffer, at: number): number {
  let v = 0;
  for (let k = at; k < at + 4; k++) {
    const h = buf[k];
    if (h === undefined) return -1;
    const d = isDigit(h) ? h - 48 : h >= 0x61 && h <= 0x66 ? h - 87 : h >= 0x41 && h <= 0x46 ? h - 55 : -1;
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

/** An escape that stands for [0-9A-Za-z_] could hide a verdict name, a number or a key. */
function escapeMayHide(buf: Buffer, at: number): boolean {
  const c = hexValue(buf, at + 2);
  return c < 0 || (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || c === 0x5f || (c >= 0x61 && c <= 0x7a);
}

export function verdictPrefilter(whitelist: readonly FlowFilter[]): LinePrefilter | undefined {
  if (!whitelist.length || whitelist.some((f) => !f.verdict?.length)) return undefined;
  const verdicts = new Set(whitelist.flatMap((f) => f.verdict!));
  const needles = [...[...verdicts].map((v) => Verdict[v]).filter((n): n is string => !!n), ...ALWAYS].map((n) => Buffer.from(n));
  // Next occurrence of each needle at or after the last line start; -1: none left in the buffer.
  const next = new Array<number>(needles.length).fill(-1);
  let nextEscape = -1;
  let nextKey = -1;
  let last: Buffer | undefined;
  let lastStart = -1;

  // `"verdict"` followed by a number (or a quoted number): a wanted one, or one we cannot read.
  const numericHit = (buf: Buffer, at: number, end: number): boolean => {
    if (buf[at - 1] !== 0x22) return false;
    let i = at + VERDICT_KEY.length;
    while (i < end && isSpace(buf[i])) i++;
    if (buf[i] !== 0x3a) return false;
    i++;
    while (i < end && isSpace(buf[i])) i++;
    if (buf[i] === 0x22) return isDigit(buf[i + 1]) || buf[i + 1] === 0x2d;
    if (buf[i] === 0x2d) return true;
    if (!isDigit(buf[i])) return false;
    let v = 0;
    while (i < end && isDigit(buf[i])) v = v * 10 + buf[i++]! - 48;
    const c = buf[i];
    return c === 0x2e || c === 0x65 || c === 0x45 || verdicts.has(v);
  };

  return (buf, start, end) => {
    if (buf !== last || start < lastStart) {
      last = buf;
      for (let k = 0; k < needles.length; k++) next[k] = buf.indexOf(needles[k]!, start);
      nextEscape = buf.indexOf(ESCAPE, start);
      nextKey = buf.indexOf(VERDICT_KEY, start);
    }
    lastStart = start;
    for (let k = 0; k < needles.length; k++) {
      let n = next[k]!;
      if (n !== -1 && n < start) next[k] = n = buf.indexOf(needles[k]!, start);
      if (n !== -1 && n < end) return true;
    }
    let n = nextEscape;
    if (n !== -1 && n < start) n = buf.indexOf(ESCAPE, start);
    while (n !== -1 && n < end) {
      if (escapeMayHide(buf, n)) {
        nextEscape = n;
        return true;
      }
      n = buf.indexOf(ESCAPE, n + 2);
    }
    nextEscape = n;
    n = nextKey;
    if (n !== -1 && n < start) n = buf.indexOf(VERDICT_KEY, start);
    while (n !== -1 && n < end) {
      if (numericHit(buf, n, end)) {
        nextKey = n;
        return true;
      }
      n = buf.indexOf(VERDICT_KEY, n + VERDICT_KEY.length);
    }
    nextKey = n;
    return false;
  };
}
