// Network namespaces for the agent's real-kernel e2e tests (prefix fca- unless a suite names its
// own, subnet 10.203.0.0/16): one node namespace with a bridge and one veth per pod namespace, like
// a CNI without overlay.
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';

export const sh = (cmd: string[]): string =>
  execFileSync(cmd[0]!, cmd.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const quiet = (cmd: string[]) => spawnSync(cmd[0]!, cmd.slice(1), { stdio: 'ignore' }).status;

export interface Pod {
  ns: string;
  hostIf: string;
  ip: string;
}

export interface Topology {
  node: string;
  gateway: string;
  pods: Pod[];
}

/** Removes every <prefix>-<tag> namespace (leftovers of a crashed run included); their links go with them. */
export function cleanupNetns(tag: string, prefix = 'fca'): void {
  let names: string[] = [];
  try {
    names = readdirSync('/run/netns');
  } catch {
    return;
  }
  for (const n of names) if (n.startsWith(`${prefix}-${tag}`)) quiet(['ip', 'netns', 'del', n]);
}

/** `tag` keeps suites apart; `subnet` is the third octet inside 10.203.0.0/16. */
export function buildTopology(tag: string, subnet: number, podCount: number, prefix = 'fca'): Topology {
  cleanupNetns(tag, prefix);
  const node = `${prefix}-${tag}-node`;
  const br = `${prefix}-br0`;
  const gateway = `10.203.${subnet}.1`;
  sh(['ip', 'netns', 'add', node]);
  sh(['ip', '-n', node, 'link', 'set', 'lo', 'up']);
  sh(['ip', '-n', node, 'link', 'add', br, 'type', 'bridge']);
  sh(['ip', '-n', node, 'addr', 'add', `${gateway}/24`, 'dev', br]);
  sh(['ip', '-n', node, 'link', 'set', br, 'up']);
  const pods: Pod[] = [];
  for (let i = 0; i < podCount; i++) {
    const ns = `${prefix}-${tag}-p${i}`;
    const hostIf = `${prefix}-h${i}`;
    const ip = `10.203.${subnet}.${10 * (i + 1)}`;
    sh(['ip', 'netns', 'add', ns]);
    sh(['ip', 'link', 'add', hostIf, 'netns', node, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    sh(['ip', '-n', node, 'link', 'set', hostIf, 'master', br, 'up']);
    sh(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
    sh(['ip', '-n', ns, 'addr', 'add', `${ip}/24`, 'dev', 'eth0']);
    sh(['ip', '-n', ns, 'link', 'set', 'eth0', 'up']);
    sh(['ip', '-n', ns, 'route', 'add', 'default', 'via', gateway]);
    pods.push({ ns, hostIf, ip });
  }
  return { node, gateway, pods };
}

export { linkExists, ownTcxLinks } from '@flowctl/bpf-loader/testing';
