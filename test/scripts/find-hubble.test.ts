// Where the interop tests and the demo find the real Hubble CLI, and what a run without one does:
// those tests (and only those) skip with one loud line, unless FLOWCTL_REQUIRE_HUBBLE=1 (CI).
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..', '..');
const top = mkdtempSync(join(tmpdir(), 'flowctl-find-hubble-'));
afterAll(() => rmSync(top, { recursive: true, force: true }));

// A PATH with node and pnpm but no hubble (unless the system has one in /usr/bin or /bin).
const basePath = [dirname(process.execPath), '/usr/local/bin', '/usr/bin', '/bin'].join(':');
const envWithout = (extra: Record<string, string>): NodeJS.ProcessEnv => {
  const { HUBBLE: _h, FLOWCTL_REQUIRE_HUBBLE: _r, ...rest } = process.env;
  return { ...rest, PATH: basePath, ...extra };
};

function fakeHubble(path: string): string {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, '#!/bin/sh\necho fake hubble\n');
  chmodSync(path, 0o755);
  return path;
}

/** A clone at <dir>/flowctl holding only `files` (copied from this repo). */
function clone(dir: string, files: string[]): string {
  const c = join(top, dir, 'flowctl');
  for (const f of files) {
    mkdirSync(dirname(join(c, f)), { recursive: true });
    copyFileSync(join(ROOT, f), join(c, f));
  }
  return c;
}

describe('scripts/find-hubble.sh', () => {
  const c = clone('lookup', ['scripts/find-hubble.sh']);
  const find = (env: NodeJS.ProcessEnv) => spawnSync(join(c, 'scripts', 'find-hubble.sh'), { env, encoding: 'utf8' });
  const shared = fakeHubble(join(top, 'lookup', 'shared', 'tools', 'hubble'));
  const onPath = fakeHubble(join(top, 'lookup', 'bin', 'hubble'));
  const explicit = fakeHubble(join(top, 'lookup', 'mine', 'hubble'));
  const withBin = `${join(top, 'lookup', 'bin')}:${basePath}`;

  it('looks at $HUBBLE first, then hubble on PATH, then ../shared/tools/hubble', () => {
    expect(find(envWithout({ HUBBLE: explicit, PATH: withBin })).stdout.trim()).toBe(explicit);
    expect(find(envWithout({ PATH: withBin })).stdout.trim()).toBe(onPath);
    expect(find(envWithout({})).stdout.trim()).toBe(shared);
  });

  it('fails when none is found, and when $HUBBLE names no executable', () => {
    rmSync(shared);
    const none = find(envWithout({}));
    expect(none.status).toBe(1);
    expect(none.stdout).toBe('');
    const bad = find(envWithout({ HUBBLE: join(top, 'nope'), PATH: withBin }));
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/HUBBLE=.*nope is not an executable/);
  });
});

describe('a test run in a clone with no Hubble CLI anywhere', () => {
  const c = clone('run', ['scripts/find-hubble.sh', 'scripts/run-tests.sh', 'vitest.config.ts', 'package.json']);
  symlinkSync(join(ROOT, 'node_modules'), join(c, 'node_modules'));
  mkdirSync(join(c, 'test'));
  writeFileSync(join(c, 'test', 'fixture.test.ts'), `import { expect, it } from 'vitest';
it('needs hubble', { tags: ['hubble'] }, () => expect(process.env.HUBBLE).not.toBe(''));
it('needs nothing', () => expect(1).toBe(1));
`);
  const runTests = (env: NodeJS.ProcessEnv) => spawnSync(join(c, 'scripts', 'run-tests.sh'), { cwd: c, env, encoding: 'utf8', timeout: 120_000 });

  it('skips only the interop tests and says so in one loud line', () => {
    const r = runTests(envWithout({}));
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^tests: 1 passed, 0 failed, 1 skipped$/m);
    const loud = r.stdout.split('\n').filter((l) => /SKIPPED/.test(l));
    expect(loud).toEqual([expect.stringMatching(/^!!! 1 interop tests SKIPPED: no Hubble CLI found .*HUBBLE=\/path\/to\/hubble/)]);
  });

  it('runs them with $HUBBLE set', () => {
    const r = runTests(envWithout({ HUBBLE: fakeHubble(join(top, 'run', 'mine', 'hubble')) }));
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^tests: 2 passed, 0 failed, 0 skipped$/m);
    expect(r.stdout).not.toMatch(/SKIPPED/);
  });

  it('fails under FLOWCTL_REQUIRE_HUBBLE=1 (as .ci/run sets it)', () => {
    const r = runTests(envWithout({ FLOWCTL_REQUIRE_HUBBLE: '1' }));
    expect(r.status).not.toBe(0);
    expect(r.stdout + r.stderr).toMatch(/FLOWCTL_REQUIRE_HUBBLE=1 but no Hubble CLI found/);
    expect(readFileSync(join(ROOT, '.ci', 'run'), 'utf8')).toMatch(/^export FLOWCTL_REQUIRE_HUBBLE=1$/m);
  });
});

describe('scripts/demo.sh try', () => {
  const demoTry = (env: NodeJS.ProcessEnv) => spawnSync(join(ROOT, 'scripts', 'demo.sh'), ['try'], { env, encoding: 'utf8' });

  it('prints the Hubble command with the CLI it found, and none when there is none', () => {
    const mine = fakeHubble(join(top, 'demo', 'hubble'));
    const found = demoTry(envWithout({ HUBBLE: mine }));
    expect(found.status).toBe(0);
    expect(found.stdout).toContain(`\n  ${mine} observe --server 127.0.0.1:4245 --last 10\n`);
    const none = demoTry(envWithout({ HUBBLE: join(top, 'nope') }));
    expect(none.status).toBe(0);
    expect(none.stdout).not.toMatch(/hubble observe/);
    expect(none.stdout).toContain('./bin/flowctl observe --namespace shop');
  });

  it("prints a metrics command for each node's namespace", () => {
    const r = demoTry(envWithout({ FLOWCTL_DEMO_PREFIX: 'zz' }));
    expect(r.stdout.match(/^ {2}ip netns exec zz-node-\d curl -s 127\.0\.0\.1:9965\/metrics .*$/gm)).toHaveLength(2);
  });
});
