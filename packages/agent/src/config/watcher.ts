// Files → desired state: the endpoints file and the policy directory, polled and parsed again when
// they change. A bad file at start-up throws (there is no last good state yet); later the bad
// file is logged and the last good state stays.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { configError, parseEndpoints, type EndpointSet, type PolicyDoc } from '@flowctl/policy';
import { FlowctlError } from '../errors.js';
import { parsePolicySources, readPolicySources, type PolicySource } from '../policy/sources.js';
import type { Logger } from '../server/server.js';

export interface ConfigWatcherOptions {
  endpointsFile?: string;
  policyDir?: string;
  /** Poll interval (default 500 ms). */
  intervalMs?: number;
  log: (subsys: string) => Logger;
}

/** Who turns the parsed files into effect (the agent). */
export interface ConfigSink {
  endpoints(set: EndpointSet, text: string, initial: boolean): void;
  /** True once applied; false when they cannot be (the previous ones stay). */
  policies(docs: PolicyDoc[], sources: PolicySource[], initial: boolean): boolean;
  /** Policy files that cannot be read or parsed. */
  policyRejected(reason: string): void;
}

export class ConfigWatcher {
  private endpointsSig = '';
  private policySig = '';
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly opts: ConfigWatcherOptions,
    private readonly sink: ConfigSink,
  ) {}

  /** Polls both inputs until stop(). */
  start(): void {
    this.timer = setInterval(() => {
      if (this.opts.endpointsFile) this.loadEndpoints(false);
      if (this.opts.policyDir) this.loadPolicies(false);
    }, this.opts.intervalMs ?? 500);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Reads the endpoints file if it changed (always when `initial`); true when a new set was handed on. */
  loadEndpoints(initial: boolean): boolean {
    const file = this.opts.endpointsFile;
    if (!file) return false;
    const sig = fileSig(file);
    if (!initial && sig === this.endpointsSig) return false;
    this.endpointsSig = sig;
    let set: EndpointSet;
    let text: string;
    try {
      try {
        text = readFileSync(file, 'utf8');
      } catch (e) {
        throw configError(file, 0, `cannot read: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
      }
      set = parseEndpoints(text, file);
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      if (initial) throw new FlowctlError('CONFIG', msg, { cause: e });
      this.opts.log('endpoints').error({ file }, `endpoints file rejected, keeping the last good state: ${msg}`);
      return false;
    }
    this.sink.endpoints(set, text, initial);
    return true;
  }

  /** Reads *.yaml of the policy directory if anything changed (always when `initial`); true when applied. */
  loadPolicies(initial: boolean): boolean {
    const dir = this.opts.policyDir;
    if (!dir) return false;
    const sig = dirSig(dir);
    if (!initial && sig === this.policySig) return false;
    this.policySig = sig;
    let docs: PolicyDoc[];
    let sources: PolicySource[];
    try {
      sources = readPolicySources(dir);
      docs = parsePolicySources(sources);
    } catch (e) {
      const reason = e instanceof Error ? e.message : String(e);
      this.sink.policyRejected(reason);
      this.opts.log('policy').error({ dir }, `policy rejected, keeping the previous policy: ${reason}`);
      return false;
    }
    return this.sink.policies(docs, sources, initial);
  }
}

/** Changes when the file is replaced or written (inode, size, mtime); 'missing' when absent. */
export function fileSig(path: string): string {
  try {
    const s = statSync(path);
    return `${s.ino}:${s.size}:${s.mtimeMs}`;
  } catch {
    return 'missing';
  }
}

function dirSig(dir: string): string {
  try {
    return readdirSync(dir)
      .filter((n) => /\.ya?ml$/.test(n) && !n.startsWith('.'))
      .sort()
      .map((n) => `${n}:${fileSig(join(dir, n))}`)
      .join('|');
  } catch {
    return 'missing';
  }
}
