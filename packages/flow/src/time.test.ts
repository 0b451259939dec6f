import { describe, expect, it } from 'vitest';

const malformed = expect.objectContaining({ name: 'FlowctlError', code: 'MALFORMED' });
import {
  compareTimestamps, formatRfc3339, parseRfc3339, timestampFromMs, timestampFromNs, timestampToMs, timestampToNs,
} from './time.js';

describe('timestamps', () => {
  it('converts between ns, ms and {seconds, nanos}, flooring before 1970', () => {
    expect(timestampFromNs(1_714_564_800_123_456_789n)).toEqual({ seconds: 1_714_564_800n, nanos: 123_456_789 });
    expect(timestampFromNs(-1n)).toEqual({ seconds: -1n, nanos: 999_999_999 });
    expect(timestampToNs(timestampFromNs(-1n))).toBe(-1n);
    expect(timestampFromMs(1_714_564_800_123.5)).toEqual({ seconds: 1_714_564_800n, nanos: 123_500_000 });
    expect(timestampToMs({ seconds: 2n, nanos: 500_000_000 })).toBe(2500);
    expect(timestampToNs(undefined)).toBe(0n);
  });

  it('orders by seconds then nanos', () => {
    const a = { seconds: 1n, nanos: 900 }, b = { seconds: 2n, nanos: 0 }, c = { seconds: 2n, nanos: 1 };
    expect([c, b, a].sort(compareTimestamps)).toEqual([a, b, c]);
    expect(compareTimestamps(b, { seconds: 2n, nanos: 0 })).toBe(0);
    expect(compareTimestamps(undefined, a)).toBeLessThan(0);
  });

  it('formats and parses RFC 3339 like Hubble', () => {
    expect(formatRfc3339({ seconds: 1234n, nanos: 567_800_000 })).toBe('1970-01-01T00:20:34.567800Z');
    expect(formatRfc3339({ seconds: 0n, nanos: 0 })).toBe('1970-01-01T00:00:00Z');
    expect(parseRfc3339('1970-01-01T00:20:34.5678Z')).toEqual({ seconds: 1234n, nanos: 567_800_000 });
    expect(parseRfc3339('2024-05-01T14:00:00.000000001+02:00')).toEqual({ seconds: 1_714_564_800n, nanos: 1 });
    expect(() => parseRfc3339('2024-13-01T00:00:00Z')).toThrow(malformed);
    expect(() => formatRfc3339({ seconds: 10n ** 12n, nanos: 0 })).toThrow(/out of range/);
  });
});
