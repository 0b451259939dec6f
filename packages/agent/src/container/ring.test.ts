import { describe, expect, it } from 'vitest';
import { Ring, validateCapacity } from './ring.js';
import { FlowctlError } from '../errors.js';

describe('Ring', () => {
  it('accepts only 2^n-1 capacities up to 65535', () => {
    for (const ok of [1, 3, 7, 4095, 65535]) expect(validateCapacity(ok)).toBe(ok);
    for (const bad of [0, 2, 4096, 4094, 65536, 131071, -1, 1.5]) {
      expect(() => validateCapacity(bad)).toThrow(FlowctlError);
    }
    expect(() => new Ring(100)).toThrow(/one less than a power of two/);
  });

  it('keeps the most recent capacity entries and overwrites the oldest', () => {
    const r = new Ring<number>(7);
    for (let i = 0; i < 5; i++) r.write(i);
    expect(r.length).toBe(5);
    expect(r.tail).toBe(0);
    expect([0, 1, 2, 3, 4].map((s) => r.read(s))).toEqual([0, 1, 2, 3, 4]);
    for (let i = 5; i < 20; i++) r.write(i);
    expect(r.length).toBe(7);
    expect(r.head).toBe(20);
    expect(r.tail).toBe(13);
    expect(r.read(12)).toBeUndefined(); // overwritten: a reader here was lapped
    expect(r.read(13)).toBe(13);
    expect(r.read(19)).toBe(19);
    expect(r.read(20)).toBeUndefined(); // not written yet
  });
});
