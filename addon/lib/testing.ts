// Inspection helpers for tests of code that attaches TC programs: which TCX links a process holds,
// and whether a link still exists. Test-only (they read /proc and run bpftool), kept here so that
// the addon's and the agent's tests share one copy.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

export interface OwnTcxLink {
  linkId: number;
  progId: number;
  ifindex: number;
  direction: 'ingress' | 'egress';
}

/** TCX links this process (or process `pid`) holds, from the fdinfo of its bpf_link fds. */
export function ownTcxLinks(pid: number | 'self' = 'self'): OwnTcxLink[] {
  const out: OwnTcxLink[] = [];
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return out; // the process is gone
  }
  for (const fd of fds) {
    let info: string;
    try {
      if (!readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('anon_inode:bpf_link')) continue;
      info = readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8');
    } catch {
      continue; // closed meanwhile
    }
    if (!/^link_type:\s*tcx$/m.test(info)) continue;
    const num = (k: string) => Number(new RegExp(`^${k}:\\s*(\\d+)`, 'm').exec(info)?.[1] ?? -1);
    out.push({ linkId: num('link_id'), progId: num('prog_id'), ifindex: num('ifindex'), direction: num('attach_type') === 47 ? 'egress' : 'ingress' });
  }
  return out;
}

/**
 * Whether the kernel still has the BPF link `id`. Tests check the links they saw their own
 * processes hold, never every link on the machine (another agent may be running).
 */
export function linkExists(id: number): boolean {
  return spawnSync('bpftool', ['link', 'show', 'id', String(id)], { stdio: 'ignore' }).status === 0;
}
