import { expect, it } from 'vitest';
import { Verdict } from '@flowctl/flow/gen/flow/flow';
import { verdictPrefilter } from './prefilter.js';

it('skips only lines that cannot match a verdict allowlist', () => {
  const p = verdictPrefilter([{ verdict: [Verdict.DROPPED] }, { verdict: [Verdict.ERROR], source_pod: ['x'] }])!;
  expect(p('{"flow":{"verdict":"FORWARDED"}}')).toBe(false);
  expect(p('{"flow":{"verdict":"DROPPED"}}')).toBe(true);
  expect(p('{"flow":{"verdict": 2}}')).toBe(true);
  expect(p('{"flow":{"verdict":3}}')).toBe(true);
  expect(p('{"flow":{"verdict":23}}')).toBe(false);
  expect(p('{"flow":{"verdict":"\\u0044ROPPED"}}')).toBe(true);
  expect(p('{"lost_events":{"num_events_lost":"1"}}')).toBe(true);
  expect(p('{"nodeStatus":{}}')).toBe(true);
});

it('is off when some allowlist filter does not constrain the verdict', () => {
  expect(verdictPrefilter([])).toBeUndefined();
  expect(verdictPrefilter([{ verdict: [Verdict.DROPPED] }, { source_pod: ['x'] }])).toBeUndefined();
});
