import { defineConfig } from 'vitest/config';

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
  },
});
