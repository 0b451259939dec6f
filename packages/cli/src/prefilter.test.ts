import { expect, it } from 'vitest';
import { Verdict } from '@flowctl/flow/gen/flow/flow';
import { verdictPrefilter } from './prefilter.js';

const lines = [
  ['{"flow":{"verdict":"FORWARDED"}}', false],
  ['{"flow":{"verdict":"DROPPED"}}', true],
  ['{"flow":{"verdict": 2}}', true],
  ['{"flow":{"verdict":3}}', true],
  ['{"flow":{"verdict":23}}', false],
  ['{"flow":{"verdict":2.0}}', true],
  ['{"flow":{"verdict":"2"}}', true],
  ['{"flow":{"verdict":"\\u0044ROPPED"}}', true],
  ['{"flow":{"verdic\\u0074":2}}', true],
  ['{"flow":{"verdict":"FORWARDED","Summary":"a \\u0026 b \\u003c"}}', false],
  ['{"lost_events":{"num_events_lost":"1"}}', true],
  ['{"nodeStatus":{}}', true],
  ['{"flow":{"verdict":"FORWARDED","Summary":"x"}}', false],
] as const;

it('skips only lines that cannot match a verdict allowlist, lines taken from one buffer in order', () => {
  const p = verdictPrefilter([{ verdict: [Verdict.DROPPED] }, { verdict: [Verdict.ERROR], source_pod: ['x'] }])!;
  const buf = Buffer.from(lines.map(([l]) => l + '\n').join(''));
  let start = 0;
  const got: boolean[] = [];
  for (let i = 0; i < lines.length; i++) {
    const end = buf.indexOf(0x0a, start);
    got.push(p(buf, start, end));
    start = end + 1;
  }
  expect(got).toEqual(lines.map(([, want]) => want));
  // A line alone in its own buffer gives the same answers (the search state starts over).
  expect(lines.map(([l]) => p(Buffer.from(l), 0, Buffer.byteLength(l)))).toEqual(lines.map(([, want]) => want));
});

it('is off when some allowlist filter does not constrain the verdict', () => {
  expect(verdictPrefilter([])).toBeUndefined();
  expect(verdictPrefilter([{ verdict: [Verdict.DROPPED] }, { source_pod: ['x'] }])).toBeUndefined();
});
