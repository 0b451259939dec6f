// The size of the hot path, as the kernel runs it: the instructions of each TC program's own
// function after verification (`bpftool prog dump xlated`). That function is the dispatch and the
// two fast paths (fast4, fast6); the slow path and everything it calls are functions of their own
// (handle_slow, parse_packet, emit, new_conn, evaluate). A change that makes the fast path bigger
// than this bound has to say why here.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Datapath, skipReason } from './harness.js';

const skip = skipReason();
/** The measured size (861 instructions: 789 before the fast paths added to per-CPU counts of a
 * slot's connection, keeping the atomic adds for one in an LRU map) and some room. */
const FAST_PATH_MAX_INSNS = 900;

/** The xlated instructions of each function of a loaded program, by function name, in order. */
function functions(progFd: number): [name: string, insns: number][] {
  const id = /^prog_id:\s+(\d+)$/m.exec(readFileSync(`/proc/self/fdinfo/${progFd}`, 'utf8'))?.[1];
  if (!id) throw new Error(`no prog_id in /proc/self/fdinfo/${progFd}`);
  const out: [string, number][] = [];
  for (const line of execFileSync('bpftool', ['prog', 'dump', 'xlated', 'id', id], { encoding: 'utf8' }).split('\n')) {
    const fn = /^\S.*?(\w+)\(.*\):$/.exec(line);
    if (fn) out.push([fn[1]!, 0]);
    else if (/^\s*\d+: \(/.test(line) && out.length) out[out.length - 1]![1]++;
  }
  return out;
}

describe.skipIf(skip)('flowctl TC datapath: hot path size', () => {
  let dp: Datapath;
  beforeAll(() => {
    dp = new Datapath();
  });
  afterAll(() => dp?.close());

  it.each(['flowctl_tc_ingress', 'flowctl_tc_egress'])(`%s: the fast paths stay within ${FAST_PATH_MAX_INSNS} instructions, the slow path is a call`, (prog) => {
    const fns = functions(dp.obj.program(prog).fd);
    expect(fns[0]![0]).toBe(prog);
    expect(fns.map(([n]) => n)).toContain('handle_slow');
    expect(fns[0]![1]).toBeGreaterThan(100);
    expect(fns[0]![1]).toBeLessThanOrEqual(FAST_PATH_MAX_INSNS);
  });
});
