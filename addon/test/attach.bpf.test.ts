// Attach points on the real kernel: TC on a veth inside test-created namespaces with real traffic,
// tracepoints caused by forking, XDP and cgroup links; and that detach/close leave nothing behind.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BpfError, BpfObject } from '../lib/index.js';
import { inNs, makeVethPair, ownTcxLinks, removeNetnsWithPrefix, sh, skipReason, testObject, u32 } from './helpers.js';

const skip = skipReason();
const P = 'fcl-t-';

function tcFilters(ns: string, dev: string, dir: 'ingress' | 'egress'): string {
  return inNs(ns, 'tc', ['filter', 'show', 'dev', dev, dir]).trim();
}
function hasClsact(ns: string, dev: string): boolean {
  return /clsact/.test(inNs(ns, 'tc', ['qdisc', 'show', 'dev', dev]));
}
/** Sends `n` UDP datagrams from namespace `ns` to `ip` (the discard port; nobody needs to listen). */
function sendUdp(ns: string, ip: string, n: number): void {
  const js = `const s=require('dgram').createSocket('udp4');let i=0;const f=()=>{if(i++>=${n})return s.close();s.send('fcl',9,'${ip}',f)};f()`;
  sh('ip', ['netns', 'exec', ns, process.execPath, '-e', js]);
}

describe.skipIf(skip)('attach and detach (real kernel)', () => {
  let obj: BpfObject;
  let net: ReturnType<typeof makeVethPair>;

  beforeAll(() => {
    removeNetnsWithPrefix(P);
    net = makeVethPair(P, 1);
    obj = BpfObject.open(testObject).setRodata('target_tgid', process.pid);
    obj.load();
  });

  afterAll(() => {
    try {
      obj?.close();
    } finally {
      removeNetnsWithPrefix(P);
    }
  });

  it('counts UDP traffic between two namespaces at TC ingress, then removes filter and qdisc', () => {
    const counters = obj.map('counters');
    const link = obj.program('count_ingress').attachTc({ ifname: net.va, direction: 'ingress', netns: net.a, mode: 'clsact' });
    expect(link.info()).toMatchObject({ kind: 'tc', direction: 'ingress' });
    expect(tcFilters(net.a, net.va, 'ingress')).toMatch(/bpf.*count_ingress/);
    expect(hasClsact(net.a, net.va)).toBe(true);
    // Our own namespace never saw the interface.
    expect(spawnSync('ip', ['link', 'show', net.va]).status).not.toBe(0);

    sendUdp(net.b, net.ipA, 5);
    const udp = counters.lookup(u32(1))!.readBigUInt64LE();
    const ipv4 = counters.lookup(u32(0))!.readBigUInt64LE();
    expect(udp).toBeGreaterThanOrEqual(5n);
    expect(ipv4).toBeGreaterThanOrEqual(udp);

    link.detach();
    link.detach(); // idempotent
    expect(link.detached).toBe(true);
    expect(tcFilters(net.a, net.va, 'ingress')).toBe('');
    expect(hasClsact(net.a, net.va)).toBe(false);
    sendUdp(net.b, net.ipA, 2);
    expect(counters.lookup(u32(1))!.readBigUInt64LE()).toBe(udp);
  });

  it('attaches as a TCX link by default: counts traffic, makes no qdisc or filter, and detach removes it', () => {
    const counters = obj.map('counters');
    const prog = obj.program('count_ingress');
    const ifindex = Number(/^(\d+):/.exec(inNs(net.a, 'ip', ['-o', 'link', 'show', net.va]))![1]);
    const link = prog.attachTc({ ifname: net.va, direction: 'ingress', netns: net.a });
    expect(link.info()).toMatchObject({ kind: 'tcx', direction: 'ingress', ifindex });
    expect(link.description).toMatch(new RegExp(`count_ingress tcx\\(ifindex=${ifindex} ${net.va}, netns=${net.a}, ingress\\)`));
    expect(ownTcxLinks()).toEqual([expect.objectContaining({ ifindex, direction: 'ingress' })]);
    expect(hasClsact(net.a, net.va)).toBe(false);
    expect(tcFilters(net.a, net.va, 'ingress')).toBe('');

    const before = counters.lookup(u32(1))!.readBigUInt64LE();
    sendUdp(net.b, net.ipA, 5);
    const udp = counters.lookup(u32(1))!.readBigUInt64LE();
    expect(udp - before).toBeGreaterThanOrEqual(5n);

    // An egress link on the same device, explicitly TCX; a priority means a clsact filter.
    const eg = prog.attachTc({ ifname: net.va, direction: 'egress', netns: net.a, mode: 'tcx' });
    expect(eg.info()).toMatchObject({ kind: 'tcx', direction: 'egress', ifindex });
    const filter = prog.attachTc({ ifname: net.va, direction: 'egress', netns: net.a, priority: 7 });
    expect(filter.info()).toMatchObject({ kind: 'tc', priority: 7 });
    filter.detach();
    eg.detach();
    link.detach();
    link.detach(); // idempotent
    expect(link.detached).toBe(true);
    expect(ownTcxLinks()).toEqual([]);
    expect(hasClsact(net.a, net.va)).toBe(false);
    sendUdp(net.b, net.ipA, 2);
    expect(counters.lookup(u32(1))!.readBigUInt64LE()).toBe(udp);
  });

  it('keeps our qdisc while another of our filters uses it, and never removes a pre-existing one', () => {
    const prog = obj.program('count_ingress');
    const byPath = `/run/netns/${net.a}`;
    const ing = prog.attachTc({ ifname: net.va, direction: 'ingress', netns: byPath, mode: 'clsact' });
    const eg = prog.attachTc({ ifname: net.va, direction: 'egress', netns: net.a, mode: 'clsact' });
    ing.detach();
    expect(hasClsact(net.a, net.va)).toBe(true);
    expect(tcFilters(net.a, net.va, 'egress')).toMatch(/count_ingress/);
    eg.detach();
    expect(hasClsact(net.a, net.va)).toBe(false);

    inNs(net.b, 'tc', ['qdisc', 'add', 'dev', net.vb, 'clsact']);
    try {
      const l = prog.attachTc({ ifname: net.vb, direction: 'egress', netns: net.b, mode: 'clsact' });
      l.detach();
      expect(tcFilters(net.b, net.vb, 'egress')).toBe('');
      expect(hasClsact(net.b, net.vb)).toBe(true);
    } finally {
      inNs(net.b, 'tc', ['qdisc', 'del', 'dev', net.vb, 'clsact']);
    }
  });

  it('reports attach failures as BpfError', () => {
    const prog = obj.program('count_ingress');
    try {
      prog.attachTc({ ifname: 'fcl-missing0', direction: 'ingress' });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(BpfError);
      expect((e as BpfError).code).toBe('ENODEV');
      expect((e as BpfError).message).toBe('if_nametoindex(fcl-missing0): ENODEV');
    }
    expect(() => prog.attachTc({ ifindex: 999999, direction: 'ingress', mode: 'clsact' })).toThrow(/bpf_tc_hook_create\(ifindex=999999\): E/);
    expect(() => prog.attachTc({ ifindex: 999999, direction: 'ingress' })).toThrow(/bpf_link_create\(tcx, ifindex=999999, ingress\): ENODEV/);
    expect(() => prog.attachTc({ ifname: net.va, netns: net.a, direction: 'ingress', mode: 'tc' as 'tcx' })).toThrow(
      /attachTc: mode must be 'auto', 'tcx' or 'clsact', got 'tc'/,
    );
    expect(() => prog.attachTc({ ifname: net.va, direction: 'ingress', netns: 'fcl-t-nope' })).toThrow(
      /open netns\(\/run\/netns\/fcl-t-nope\): ENOENT/,
    );
    // A failed attach inside a namespace must leave us in our own namespace.
    expect(() => prog.attachTc({ ifname: 'fcl-missing0', direction: 'ingress', netns: net.a })).toThrow(/ENODEV/);
    expect(spawnSync('ip', ['link', 'show', net.va]).status).not.toBe(0);
    expect(() => obj.program('count_ingress').attachTc({ ifname: 'lo', direction: 'sideways' as 'ingress' })).toThrow(
      /direction must be/,
    );
  });

  it('attaches a tracepoint and a raw tracepoint and counts the events we cause', () => {
    const stats = obj.map('stats');
    const before0 = stats.lookup(u32(0))!.readBigUInt64LE();
    const before1 = stats.lookup(u32(1))!.readBigUInt64LE();
    const tp = obj.program('on_fork').attachTracepoint('sched', 'sched_process_fork');
    const raw = obj.program('on_fork_raw').attachRawTracepoint('sched_process_fork');
    for (let i = 0; i < 3; i++) spawnSync('true');
    const d0 = stats.lookup(u32(0))!.readBigUInt64LE() - before0;
    const d1 = stats.lookup(u32(1))!.readBigUInt64LE() - before1;
    expect(d0).toBeGreaterThanOrEqual(3n);
    expect(d1).toBeGreaterThanOrEqual(3n);
    tp.detach();
    raw.detach();
    const after = stats.lookup(u32(0))!.readBigUInt64LE();
    spawnSync('true');
    expect(stats.lookup(u32(0))!.readBigUInt64LE()).toBe(after);
    expect(() => obj.program('on_fork').attachTracepoint('sched', 'no_such_tp')).toThrow(BpfError);
  });

  it('attaches XDP inside a namespace and detaches it', () => {
    const link = obj.program('xdp_pass').attachXdp({ ifname: net.va, netns: net.a });
    expect(inNs(net.a, 'ip', ['link', 'show', net.va])).toMatch(/xdp/);
    sendUdp(net.b, net.ipA, 2);
    link.detach();
    expect(inNs(net.a, 'ip', ['link', 'show', net.va])).not.toMatch(/xdp/);
  });

  it('attaches XDP in the mode asked for and says which one it got', () => {
    // veth has native XDP: 'auto' takes it; 'generic' is skb mode ("xdpgeneric" in ip link).
    const auto = obj.program('xdp_pass').attachXdp({ ifname: net.va, netns: net.a });
    expect(auto.info()).toMatchObject({ kind: 'xdp', xdpMode: 'native' });
    expect(auto.description).toMatch(/xdp_pass xdp\(ifindex=\d+ .*native\)/);
    expect(inNs(net.a, 'ip', ['link', 'show', net.va])).toMatch(/ xdp /);
    auto.detach();
    const generic = obj.program('xdp_pass').attachXdp({ ifname: net.va, netns: net.a, mode: 'generic' });
    expect(generic.info().xdpMode).toBe('generic');
    expect(inNs(net.a, 'ip', ['link', 'show', net.va])).toMatch(/xdpgeneric/);
    generic.detach();
    expect(inNs(net.a, 'ip', ['link', 'show', net.va])).not.toMatch(/xdp/);
    // lo has no native XDP: 'native' is refused, 'auto' falls back to generic.
    expect(() => obj.program('xdp_pass').attachXdp({ ifname: 'lo', netns: net.a, mode: 'native' })).toThrow(/bpf_link_create\(xdp native, .*lo.*\): EOPNOTSUPP/);
    const lo = obj.program('xdp_pass').attachXdp({ ifname: 'lo', netns: net.a });
    expect(lo.info().xdpMode).toBe('generic');
    lo.detach();
    expect(() => obj.program('xdp_pass').attachXdp({ ifname: net.va, netns: net.a, mode: 'fast' as 'native' })).toThrow(/mode must be 'auto', 'native' or 'generic'/);
  });

  it('attaches cgroup skb, sock and sock_addr programs', () => {
    // Hybrid hosts mount cgroup v2 at /sys/fs/cgroup/unified, pure v2 hosts at /sys/fs/cgroup.
    const base = existsSync('/sys/fs/cgroup/unified/cgroup.procs') ? '/sys/fs/cgroup/unified' : '/sys/fs/cgroup';
    const cg = `${base}/fcl-t-${process.pid}`;
    mkdirSync(cg);
    try {
      const links = [
        obj.program('cg_skb').attachCgroup(cg),
        obj.program('cg_sock').attachCgroup(cg),
        obj.program('cg_connect4').attachCgroup(cg),
      ];
      const shown = sh('bpftool', ['cgroup', 'show', cg]);
      expect(shown).toMatch(/cg_skb/);
      expect(shown).toMatch(/cg_sock/);
      expect(shown).toMatch(/cg_connect4/);
      for (const l of links) l.detach();
      expect(sh('bpftool', ['cgroup', 'show', cg])).not.toMatch(/cg_/);
    } finally {
      rmdirSync(cg);
    }
    expect(() => obj.program('cg_skb').attachCgroup('/nonexistent/cg')).toThrow(/open cgroup\(\/nonexistent\/cg\): ENOENT/);
  });

  it('close() detaches everything the object attached', () => {
    const o = BpfObject.open(testObject);
    o.load();
    o.program('count_ingress').attachTc({ ifname: net.va, direction: 'ingress', netns: net.a, mode: 'clsact' });
    o.program('count_ingress').attachTc({ ifname: net.vb, direction: 'egress', netns: net.b, mode: 'clsact' });
    o.program('count_ingress').attachTc({ ifname: net.vb, direction: 'ingress', netns: net.b });
    expect(ownTcxLinks()).toHaveLength(1);
    const x = o.program('xdp_pass').attachXdp({ ifname: net.va, netns: net.a });
    o.close();
    expect(x.detached).toBe(true);
    x.detach();
    expect(tcFilters(net.a, net.va, 'ingress')).toBe('');
    expect(tcFilters(net.b, net.vb, 'egress')).toBe('');
    expect(hasClsact(net.a, net.va)).toBe(false);
    expect(hasClsact(net.b, net.vb)).toBe(false);
    expect(inNs(net.a, 'bpftool', ['net'])).not.toMatch(/count_ingress|xdp_pass/);
    expect(ownTcxLinks()).toEqual([]);
  });
});
