// A "pod" and a "node" network namespace joined by a veth pair, and the processes a benchmark runs
// in them (iperf3, tcpdump): shared by the benchmarks that push real traffic through the datapath.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';

export const sh = (...cmd: string[]) => execFileSync(cmd[0]!, cmd.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
export const quiet = (...cmd: string[]) => spawnSync(cmd[0]!, cmd.slice(1), { stdio: 'ignore' }).status;

export interface VethPair {
  /** Namespaces and the veth end in each; a /24 is shared by ipA and ipB. */
  a: string;
  b: string;
  devA: string;
  devB: string;
  ipA: string;
  ipB: string;
}

const OFFLOADS = ['gso', 'tso', 'gro'] as const;

/** Removes the namespaces, killing what a crashed run left running in them (and nothing else). */
export function removePair(p: VethPair): void {
  for (const ns of [p.a, p.b]) {
    const pids = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).stdout ?? '';
    for (const pid of pids.split('\n').map(Number).filter((x) => x > 1 && x !== process.pid)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    quiet('ip', 'netns', 'del', ns);
  }
}

/**
 * Creates the pair (after removing leftovers of an earlier run). With `offloads` false, GSO, TSO
 * and GRO go off on both ends, so every hook sees MTU-sized packets, and that is checked.
 */
export function createPair(p: VethPair, offloads: boolean): void {
  if (!offloads && quiet('ethtool', '--version') !== 0) throw new Error('ethtool not found (apt-get install ethtool): needed to turn veth offloads off');
  if (quiet('taskset', '--version') !== 0) throw new Error('taskset not found (util-linux)');
  removePair(p);
  sh('ip', 'netns', 'add', p.a);
  sh('ip', 'netns', 'add', p.b);
  sh('ip', 'link', 'add', p.devA, 'netns', p.a, 'type', 'veth', 'peer', 'name', p.devB, 'netns', p.b);
  sh('ip', '-n', p.a, 'addr', 'add', `${p.ipA}/24`, 'dev', p.devA);
  sh('ip', '-n', p.b, 'addr', 'add', `${p.ipB}/24`, 'dev', p.devB);
  for (const [ns, dev] of [[p.a, p.devA], [p.b, p.devB]] as const) {
    sh('ip', '-n', ns, 'link', 'set', 'lo', 'up');
    sh('ip', '-n', ns, 'link', 'set', dev, 'up');
    if (offloads) continue;
    sh('ip', 'netns', 'exec', ns, 'ethtool', '-K', dev, ...OFFLOADS.flatMap((o) => [o, 'off']));
    const k = sh('ip', 'netns', 'exec', ns, 'ethtool', '-k', dev);
    for (const feature of ['generic-segmentation-offload', 'tcp-segmentation-offload', 'generic-receive-offload']) {
      if (!new RegExp(`^${feature}: off`, 'm').test(k)) throw new Error(`${ns}/${dev}: ${feature} is still on after ethtool -K`);
    }
  }
}

/** Resolves once `proc` printed `marker` on stdout or stderr. */
export function waitFor(proc: ChildProcess, marker: RegExp, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`${what} did not start within 5 s: ${seen.trim()}`)), 5000);
    const on = (d: Buffer) => {
      seen += d.toString();
      if (marker.test(seen)) {
        clearTimeout(timer);
        resolve();
      }
    };
    proc.stdout?.on('data', on);
    proc.stderr?.on('data', on);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited with ${code}: ${seen.trim()}`));
    });
  });
}

export function stop(proc: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
    proc.once('exit', () => resolve());
    proc.kill('SIGTERM');
  });
}

/** taskset and `ip netns exec` both exec, so the child's pid is the tool's own. */
export function pinned(cpu: string, ns: string, cmd: string[]): ChildProcess {
  return spawn('taskset', ['-c', cpu, 'ip', 'netns', 'exec', ns, ...cmd], { stdio: ['ignore', 'pipe', 'pipe'] });
}

/**
 * Runs a benchmark's main: `cleanup` runs on SIGINT/SIGTERM (exit 130) and after a failure, which
 * prints one line prefixed with `name` and exits 1.
 */
export function runBenchmark(name: string, main: () => Promise<void>, cleanup: () => void): void {
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      cleanup();
      process.exit(130);
    });
  }
  main().catch((err: unknown) => {
    cleanup();
    process.stderr.write(`${name}: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
}
