// Every test that runs scripts/demo.sh names its own FLOWCTL_DEMO_PREFIX: `demo.sh up` first removes
// whatever carries its prefix, so a test on the default (fcx) would tear down a user's `make demo-up`.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const DEFAULT_PREFIX = /^PREFIX=\$\{FLOWCTL_DEMO_PREFIX:-(\w+)\}/m.exec(readFileSync(join(ROOT, 'scripts', 'demo.sh'), 'utf8'))?.[1];

function testFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (name === 'node_modules' || name === 'dist') return [];
    if (statSync(p).isDirectory()) return testFiles(p);
    return /\.test\.ts$/.test(name) ? [p] : [];
  });
}

/** The prefix a test file gives demo.sh: a literal, or a `PREFIX` constant it defines. */
function prefixOf(src: string): string | undefined {
  const m = /FLOWCTL_DEMO_PREFIX:\s*(?:'(\w+)'|(PREFIX))/.exec(src);
  if (!m) return undefined;
  return m[1] ?? /const PREFIX = '(\w+)'/.exec(src)?.[1];
}

describe('tests that run the demo', () => {
  const users = [...testFiles(join(ROOT, 'test')), ...testFiles(join(ROOT, 'packages'))]
    .filter((f) => f !== fileURLToPath(import.meta.url))
    .map((f) => ({ file: relative(ROOT, f), src: readFileSync(f, 'utf8') }))
    .filter(({ src }) => /'demo\.sh'|\bDEMO\b/.test(src) && /\[\s*'up'/.test(src));

  it('finds the demo and the tests that bring it up', () => {
    expect(DEFAULT_PREFIX).toBe('fcx');
    expect(users.length).toBeGreaterThan(3);
  });

  it('each uses a prefix of its own, never the default one', () => {
    const prefixes = users.map(({ file, src }) => ({ file, prefix: prefixOf(src) }));
    for (const { file, prefix } of prefixes) {
      expect(prefix, `${file} runs demo.sh up without FLOWCTL_DEMO_PREFIX`).toBeDefined();
      expect(prefix, `${file} uses the default demo prefix`).not.toBe(DEFAULT_PREFIX);
    }
    const seen = new Map<string, string>();
    for (const { file, prefix } of prefixes) {
      expect(seen.get(prefix!), `${file} and ${seen.get(prefix!)} share the prefix ${prefix}`).toBeUndefined();
      seen.set(prefix!, file);
    }
  });
});
