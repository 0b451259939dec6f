// Number texts shared by status and list: Go's humanize-style thousands and time.Duration.String().

export function thousands(n: bigint): string {
  return n.toString().replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** Go's time.Duration.String() for a non-negative duration in nanoseconds (e.g. 5m1.515181665s). */
export function formatGoDuration(ns: bigint): string {
  if (ns === 0n) return '0s';
  if (ns < 1_000n) return `${ns}ns`;
  if (ns < 1_000_000n) return `${trim(ns, 1_000n)}µs`;
  if (ns < 1_000_000_000n) return `${trim(ns, 1_000_000n)}ms`;
  const h = ns / 3_600_000_000_000n;
  const m = (ns / 60_000_000_000n) % 60n;
  const s = ns % 60_000_000_000n;
  let out = '';
  if (h) out += `${h}h`;
  if (h || m) out += `${m}m`;
  return out + `${trim(s, 1_000_000_000n)}s`;
}

function trim(v: bigint, unit: bigint): string {
  const whole = v / unit;
  const frac = (v % unit).toString().padStart(unit.toString().length - 1, '0').replace(/0+$/, '');
  return frac ? `${whole}.${frac}` : `${whole}`;
}

/** A short age like kubectl's: 45s, 5m1s, 3h12m, 2d4h. */
export function formatAge(ns: bigint): string {
  const s = ns / 1_000_000_000n;
  if (s < 60n) return `${s}s`;
  if (s < 3600n) return `${s / 60n}m${s % 60n ? `${s % 60n}s` : ''}`;
  if (s < 86400n) return `${s / 3600n}h${(s / 60n) % 60n ? `${(s / 60n) % 60n}m` : ''}`;
  return `${s / 86400n}d${(s / 3600n) % 24n ? `${(s / 3600n) % 24n}h` : ''}`;
}
