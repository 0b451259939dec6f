// Inspection helpers for tests of code that attaches TC programs: which TCX links exist, and which
// this process holds. Test-only (they read /proc and run bpftool), kept here so that the addon's and
// the agent's tests share one copy.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

export interface OwnTcxLink {
  linkId: number;
  progId: number;
  ifindex: number;
  direction: 'ingress' | 'egress';
}

/** TCX links this process holds (from /proc/self/fdinfo of its bpf_link fds). */
export function ownTcxLinks(): OwnTcxLink[] {
  const out: OwnTcxLink[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    let info: string;
    try {
      if (!readlinkSync(`/proc/self/fd/${fd}`).startsWith('anon_inode:bpf_link')) continue;
      info = readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8');
    } catch {
      continue; // closed meanwhile
    }
    if (!/^link_type:\s*tcx$/m.test(info)) continue;
    const num = (k: string) => Number(new RegExp(`^${k}:\\s*(\\d+)`, 'm').exec(info)?.[1] ?? -1);
    out.push({ linkId: num('link_id'), progId: num('prog_id'), ifindex: num('ifindex'), direction: num('attach_type') === 47 ? 'egress' : 'ingress' });
  }
  return out;
}

/** Names of the programs of every TCX link on the machine (bpftool: link type 11 is TCX). */
export function tcxProgramNames(): string[] {
  const bpftool = (...args: string[]) => execFileSync('bpftool', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const links = JSON.parse(bpftool('-j', 'link', 'show')) as { type: number | string; prog_id: number }[];
  const progs = JSON.parse(bpftool('-j', 'prog', 'show')) as { id: number; name?: string }[];
  const name = new Map(progs.map((p) => [p.id, p.name ?? '']));
  return links.filter((l) => l.type === 11 || l.type === 'tcx').map((l) => name.get(l.prog_id) ?? `prog ${l.prog_id}`);
}
