// Where the demo-based end-to-end suites find the checkout's scripts, CLI and workload.
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const DEMO = join(ROOT, 'scripts', 'demo.sh');
export const FLOWCTL = join(ROOT, 'bin', 'flowctl');
export const WORKLOAD = join(ROOT, 'test', 'e2e', 'cluster', 'workload.mjs');
