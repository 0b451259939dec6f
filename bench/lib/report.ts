// Each benchmark owns one section of docs/benchmarks.md, delimited by HTML comments, so that
// benchmarks can run alone or together and never overwrite each other's figures.
import { readFileSync, writeFileSync, existsSync, mkdirSync } from 'node:fs';
import { cpus, totalmem, release } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const reportPath = join(root, 'docs', 'benchmarks.md');

const HEADER = `# flowctl benchmarks

Every figure below is written by a script under \`bench/\` (\`make bench\` runs them all). Each
reports the median of several runs, the baseline measured in the same run, and the ratio. The
machines are noisy: compare ratios, not absolute numbers.
`;

export function machine(): string {
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  return `${cpus().length} × ${cpu}, ${Math.round(totalmem() / 2 ** 30)} GiB, Linux ${release()}, Node ${process.version}`;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

/**
 * A 95% confidence interval for the median of `xs`, distribution-free: the order statistics
 * n/2 ∓ 0.98·√n (the normal approximation of the binomial; fine from n ≈ 20).
 */
export function medianCI(xs: number[]): [number, number] {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  const half = 0.98 * Math.sqrt(n);
  const lo = Math.max(0, Math.floor(n / 2 - half) - 1);
  const hi = Math.min(n - 1, Math.ceil(n / 2 + half));
  return [s[lo]!, s[hi]!];
}

/** Replaces (or appends) the section `name` of docs/benchmarks.md with `markdown`. */
export function writeSection(name: string, markdown: string): void {
  mkdirSync(dirname(reportPath), { recursive: true });
  let doc = existsSync(reportPath) ? readFileSync(reportPath, 'utf8') : HEADER;
  const begin = `<!-- bench:${name} -->`;
  const end = `<!-- /bench:${name} -->`;
  const block = `${begin}\n${markdown.trim()}\n\n_Measured ${new Date().toISOString().slice(0, 10)} on ${machine()}._\n${end}`;
  const i = doc.indexOf(begin);
  const j = doc.indexOf(end);
  if (i >= 0 && j > i) doc = doc.slice(0, i) + block + doc.slice(j + end.length);
  else doc = `${doc.trimEnd()}\n\n${block}\n`;
  writeFileSync(reportPath, doc);
}

export function progress(msg: string): void {
  process.stderr.write(`[bench] ${msg}\n`);
}
