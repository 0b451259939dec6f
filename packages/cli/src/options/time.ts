// --since/--until values: a Go duration meaning "that long ago", or one of the absolute layouts
// hubble accepts. Layouts without a zone are UTC, as Go's time.Parse reads them.
import type { Timestamp } from '@flowctl/flow/gen/google/protobuf/timestamp';

const UNIT_NS: Record<string, bigint> = {
  ns: 1n, us: 1_000n, 'µs': 1_000n, 'μs': 1_000n, ms: 1_000_000n, s: 1_000_000_000n, m: 60_000_000_000n, h: 3_600_000_000_000n,
};

/** Go's time.ParseDuration, in nanoseconds; undefined when `s` is not a duration. */
export function parseGoDuration(s: string): bigint | undefined {
  let rest = s;
  let sign = 1n;
  if (rest.startsWith('-') || rest.startsWith('+')) {
    if (rest[0] === '-') sign = -1n;
    rest = rest.slice(1);
  }
  if (rest === '0') return 0n;
  if (rest === '') return undefined;
  let total = 0n;
  const re = /^(\d+)(?:\.(\d*))?(ns|us|µs|μs|ms|s|m|h)/;
  while (rest.length) {
    const m = re.exec(rest);
    if (!m) return undefined;
    const unit = UNIT_NS[m[3]!]!;
    const frac = m[2] ?? '';
    total += BigInt(m[1]!) * unit + (frac ? (BigInt(frac) * unit) / 10n ** BigInt(frac.length) : 0n);
    rest = rest.slice(m[0].length);
  }
  return sign * total;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const DAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];

function offsetMinutes(z: string | undefined): number | undefined {
  if (z === undefined) return 0;
  if (z === 'Z') return 0;
  const m = /^([+-])(\d{2}):?(\d{2})$/.exec(z);
  if (!m) return undefined;
  return (m[1] === '-' ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3]));
}

function build(y: number, mo: number, d: number, h: number, mi: number, sec: number, frac: string, zone: string | undefined): Timestamp | undefined {
  const off = offsetMinutes(zone);
  if (off === undefined) return undefined;
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 59) return undefined;
  const ms = Date.UTC(y, mo - 1, d, h, mi, sec);
  const check = new Date(ms);
  if (check.getUTCDate() !== d) return undefined; // Feb 30 and friends
  const nanos = frac ? Number(frac.padEnd(9, '0').slice(0, 9)) : 0;
  return { seconds: BigInt(ms / 1000 - off * 60), nanos };
}

/** Absolute layouts: StampMilli, YearMonthDay[Hour[Minute]], RFC3339[Milli|Micro|Nano], RFC1123Z. */
export function parseAbsoluteTime(s: string, now = new Date()): Timestamp | undefined {
  let m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/.exec(s);
  if (m) return build(+m[1]!, +m[2]!, +m[3]!, +m[4]!, +m[5]!, +m[6]!, m[7] ?? '', m[8]);
  m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(Z|[+-]\d{2}:\d{2})$/.exec(s);
  if (m) return build(+m[1]!, +m[2]!, +m[3]!, +m[4]!, +m[5]!, 0, '', m[6]);
  m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2})(Z|[+-]\d{2}:\d{2})$/.exec(s);
  if (m) return build(+m[1]!, +m[2]!, +m[3]!, +m[4]!, 0, 0, '', m[5]);
  m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s);
  if (m) return build(+m[1]!, +m[2]!, +m[3]!, 0, 0, 0, '', undefined);
  m = /^([A-Z][a-z]{2}) ([ \d]\d) (\d{2}):(\d{2}):(\d{2})\.(\d{3})$/.exec(s);
  if (m) {
    const mo = MONTHS.indexOf(m[1]!);
    // StampMilli has no year; the current one is the only useful reading.
    if (mo >= 0) return build(now.getUTCFullYear(), mo + 1, Number(m[2]!.trim()), +m[3]!, +m[4]!, +m[5]!, m[6]!, undefined);
  }
  m = /^([A-Z][a-z]{2}), (\d{2}) ([A-Z][a-z]{2}) (\d{4}) (\d{2}):(\d{2}):(\d{2}) ([+-]\d{4})$/.exec(s);
  if (m && DAYS.includes(m[1]!)) {
    const mo = MONTHS.indexOf(m[3]!);
    if (mo >= 0) return build(+m[4]!, mo + 1, +m[2]!, +m[5]!, +m[6]!, +m[7]!, '', m[8]);
  }
  return undefined;
}

/** hubble's parseTime: relative duration first, then the absolute layouts. */
export function parseTimeFlag(s: string, nowMs = Date.now()): Timestamp | undefined {
  const d = parseGoDuration(s);
  if (d !== undefined) {
    const ns = BigInt(nowMs) * 1_000_000n - d;
    return { seconds: ns / 1_000_000_000n, nanos: Number(ns % 1_000_000_000n) };
  }
  return parseAbsoluteTime(s, new Date(nowMs));
}
