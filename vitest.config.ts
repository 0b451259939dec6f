import { execFileSync } from 'node:child_process';
import { defineConfig } from 'vitest/config';

// The real Hubble CLI for the interop tests (tagged 'hubble'): they skip when none is found, unless
// FLOWCTL_REQUIRE_HUBBLE=1 (CI), where a missing CLI stops the run.
function findHubble(): string | undefined {
  try {
    return execFileSync('scripts/find-hubble.sh', { cwd: import.meta.dirname, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
  } catch {
    if (process.env.FLOWCTL_REQUIRE_HUBBLE === '1') {
      throw new Error('FLOWCTL_REQUIRE_HUBBLE=1 but no Hubble CLI found ($HUBBLE, hubble on PATH, ../shared/tools/hubble)');
    }
    return undefined;
  }
}
const hubble = findHubble();

// Tests import workspace packages through the "@flowctl/source" export condition, so they run
// against TypeScript sources without a prior build.
export default defineConfig({
  resolve: { conditions: ['@flowctl/source'] },
  ssr: { resolve: { conditions: ['@flowctl/source'], externalConditions: ['@flowctl/source'] } },
  test: {
    include: ['packages/*/src/**/*.test.ts', 'addon/test/**/*.test.ts', 'bpf/test/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    fileParallelism: false,
    env: { HUBBLE: hubble ?? '' },
    tags: [{ name: 'hubble', description: 'runs the real Hubble CLI', skip: hubble === undefined }],
  },
});
