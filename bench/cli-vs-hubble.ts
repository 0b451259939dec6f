// flowctl vs the real hubble CLI on the same 200,000-flow JSON file, both as processes with
// output to /dev/null: (a) read everything and print JSON, (b) --verdict DROPPED printed compact.
// Run: pnpm exec tsc -b packages/cli && pnpm exec tsx bench/cli-vs-hubble.ts
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeCorpus } from '../packages/flow/src/testing/corpus.js';
import { encodeResponse } from '../packages/flow/src/json.js';
import { machine, median, writeSection } from './lib/report.js';

const ROOT = join(import.meta.dirname, '..');
const found = spawnSync(join(ROOT, 'scripts', 'find-hubble.sh'), { encoding: 'utf8' });
if (found.status !== 0) throw new Error('no Hubble CLI found ($HUBBLE, hubble on PATH, ../shared/tools/hubble)');
const HUBBLE = found.stdout.trim();
const FLOWCTL = join(ROOT, 'packages', 'cli', 'dist', 'bin.js');
const N = Number(process.env.BENCH_FLOWS ?? 200_000);
const RUNS = 3;
const GNU_TIME = '/usr/bin/time';

if (!existsSync(FLOWCTL)) throw new Error(`${FLOWCTL} not found: run pnpm exec tsc -b packages/cli first`);

const dir = mkdtempSync(join(tmpdir(), 'flowctl-bench-cli-'));
try {
  const raw = join(dir, 'raw.json');
  const file = join(dir, 'flows.json');
  writeFileSync(raw, makeCorpus(N, 42, { clusterPrefix: true }).filter((r) => r.flow).map((r) => encodeResponse(r) + '\n').join(''));
  // Both CLIs read the same file: hubble's own re-encoding, so it never warns about fields newer
  // than its API (the warnings would slow it down and make the comparison unfair to it).
  const out = openSync(file, 'w');
  const norm = spawnSync(HUBBLE, ['observe', '--input-file', raw, '--all', '-o', 'json'], { stdio: ['ignore', out, 'ignore'] });
  closeSync(out);
  if (norm.status !== 0) throw new Error('hubble could not normalise the corpus');
  const lines = Number(spawnSync('wc', ['-l', file], { encoding: 'utf8' }).stdout.trim().split(' ')[0]);

  // Wall time, and CPU time (user + system, from GNU time) which a loaded machine disturbs less.
  const timeFile = join(dir, 'time.txt');
  const haveGnuTime = existsSync(GNU_TIME);
  const time = (cmd: string, args: string[]): { wall: number; cpu: number } => {
    const devnull = openSync('/dev/null', 'w');
    const argv = haveGnuTime ? ['-f', '%U %S', '-o', timeFile, cmd, ...args] : args;
    const t0 = process.hrtime.bigint();
    const r = spawnSync(haveGnuTime ? GNU_TIME : cmd, argv, { stdio: ['ignore', devnull, 'inherit'], env: { ...process.env, TZ: 'UTC' } });
    const wall = Number(process.hrtime.bigint() - t0) / 1e9;
    closeSync(devnull);
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}`);
    const cpu = haveGnuTime ? readFileSync(timeFile, 'utf8').trim().split(/\s+/).slice(-2).map(Number).reduce((a, b) => a + b, 0) : NaN;
    return { wall, cpu };
  };
  const scenarios = [
    { name: '(a) all flows, `-o json`', args: ['observe', '--input-file', file, '--all', '-o', 'json'] },
    { name: '(b) `--verdict DROPPED`, compact', args: ['observe', '--input-file', file, '--all', '--verdict', 'DROPPED'] },
  ];
  const rows: string[] = [];
  const rate = (secs: number) => Math.round(lines / secs).toLocaleString('en-US');
  for (const s of scenarios) {
    const h: { wall: number; cpu: number }[] = [];
    const f: { wall: number; cpu: number }[] = [];
    for (let i = 0; i < RUNS; i++) {
      h.push(time(HUBBLE, s.args));
      f.push(time(process.execPath, [FLOWCTL, ...s.args]));
    }
    const hw = median(h.map((t) => t.wall)), fw = median(f.map((t) => t.wall));
    const hc = median(h.map((t) => t.cpu)), fc = median(f.map((t) => t.cpu));
    rows.push(
      `| ${s.name} | ${rate(hw)} | ${rate(fw)} | **${(hw / fw).toFixed(2)}×** | ${hc.toFixed(2)} s | ${fc.toFixed(2)} s | ${(hc / fc).toFixed(2)}× |`,
    );
    console.log(s.name, 'hubble', h, 'flowctl', f);
  }
  const md = [
    '## CLI against the Hubble CLI (`bench/cli-vs-hubble.ts`)',
    '',
    `Input: ${lines.toLocaleString('en-US')} flows (\`makeCorpus(${N}, 42)\`, re-encoded by hubble), read with \`--input-file\`;`,
    `each CLI runs as a process with stdout to /dev/null; flows/s = flows in the file / median wall time of ${RUNS} runs;`,
    'CPU = median user + system time of the process (GNU time), less disturbed than wall time when the machine is shared.',
    `Baseline: the real hubble CLI v0.12.3 (\`../shared/tools/hubble\`) in the same run.`,
    'For (a) flowctl prints lines already in canonical form as they are, proven per line by a byte scan',
    'against shapes checked once with the codec (`packages/cli/src/canonical.ts`); for (b) it skips, without',
    'decoding, lines that name none of the wanted verdicts (`packages/cli/src/prefilter.ts`).',
    '',
    '| scenario | hubble flows/s | flowctl flows/s | flowctl / hubble (wall) | hubble CPU | flowctl CPU | flowctl / hubble (CPU) |',
    '|---|---|---|---|---|---|---|',
    ...rows,
    '',
    `Machine: ${machine()}; load average ${loadavg().map((l) => l.toFixed(1)).join(', ')} at the end of the run.`,
    'Command: `pnpm exec tsc -b packages/cli && pnpm exec tsx bench/cli-vs-hubble.ts`',
  ].join('\n');
  writeSection('cli-vs-hubble', md);
  console.log(md);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
