// Runs the fake agent and the relay as real child processes for end-to-end tests and benchmarks.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';

const here = dirname(fileURLToPath(import.meta.url));
export const repoRoot = join(here, '..', '..', '..', '..');

export interface Child {
  proc: ChildProcess;
  port: number;
  /** Everything the process wrote to stderr so far (logs). */
  stderr(): string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

function tsArgs(file: string): string[] {
  // Run TypeScript sources directly; "@flowctl/source" makes workspace imports resolve to src/.
  return ['--conditions=@flowctl/source', '--import', 'tsx', file];
}

function launch(
  file: string,
  args: string[],
  portFrom: (line: string) => number | undefined,
  stream: 'stdout' | 'stderr',
  execArgv: string[] = [],
): Promise<Child> {
  const nodeArgs = file.endsWith('.js') ? [file] : tsArgs(file);
  const proc = spawn(process.execPath, [...execArgv, ...nodeArgs, ...args], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`${file} did not start within 30s: ${err}`));
    }, 30_000);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${file} exited with ${code} before listening: ${err}`));
    });
    const rl = createInterface({ input: proc[stream]! });
    rl.on('line', (line) => {
      const port = portFrom(line);
      if (port === undefined) return;
      clearTimeout(timer);
      resolve({
        proc,
        port,
        stderr: () => err,
        stop: (signal = 'SIGTERM') => {
          if (proc.exitCode !== null || proc.signalCode !== null) return exited;
          proc.kill(signal);
          return exited;
        },
      });
    });
  });
}

const jsonField = (key: string) => (line: string) => {
  try {
    const v = (JSON.parse(line) as Record<string, unknown>)[key];
    return typeof v === 'number' ? v : undefined;
  } catch {
    return undefined;
  }
};

/** `execArgv`: extra node flags, e.g. --cpu-prof for a benchmark's profile. */
export function spawnFakeAgent(args: string[], execArgv: string[] = []): Promise<Child> {
  return launch(join(here, 'fake-agent-main.ts'), args, jsonField('port'), 'stdout', execArgv);
}

/** Starts a real flowctl-agent (sources through tsx, or the compiled dist/ with `compiled`),
 * e.g. in --replay mode. `port` is its TCP port, 0 when it serves only a unix socket. Its drop
 * list is kept in memory unless `args` name a --state-dir (the default one is the machine's). */
export function spawnAgent(args: string[], compiled = false): Promise<Child> {
  const main = join(repoRoot, 'packages', 'agent', compiled ? 'dist/main.js' : 'src/main.ts');
  if (!args.includes('--state-dir')) args = [...args, '--state-dir', ''];
  return launch(main, args, (line) => {
    if (!line.includes('"serving"')) return undefined;
    return jsonField('tcpPort')(line) ?? 0;
  }, 'stderr');
}

/** Starts flowctl-relay (from source, or the compiled dist/ with `compiled`); `args` should
 * include --listen-address 127.0.0.1:0. What it adds and removes of the drop list is kept in memory
 * unless `args` name a --state-dir (the default one is the machine's). */
export function spawnRelay(args: string[], compiled = false, execArgv: string[] = []): Promise<Child> {
  if (!args.includes('--state-dir')) args = [...args, '--state-dir', ''];
  const main = compiled ? join(here, '..', '..', 'dist', 'main.js') : join(here, '..', 'main.ts');
  return launch(main, args, (line) => {
    if (!line.includes('relay listening')) return undefined;
    return jsonField('port')(line);
  }, 'stderr', execArgv);
}
