import { describe, expect, it } from 'vitest';
import { FakeDatapath } from '../testing/fake-datapath.js';
import type { Datapath } from './datapath.js';
import { DatapathReconciler } from './reconciler.js';

const quiet = { info() {}, warn() {}, error() {} };

/** A FakeDatapath that also watches namespaces, and refuses interfaces named in `missing`. */
class WatchingDatapath extends FakeDatapath implements Datapath {
  readonly watching = new Map<string, number>();
  readonly missing = new Set<string>();
  override attach(ifname: string, netns?: string): void {
    if (this.missing.has(ifname)) throw new Error(`${ifname}: no such device`);
    super.attach(ifname, netns);
  }
  watchNetns(name?: string): number {
    this.watching.set(name ?? '', (this.watching.get(name ?? '') ?? 0) + 1);
    return 1;
  }
  unwatchNetns(name?: string): void {
    const n = (this.watching.get(name ?? '') ?? 0) - 1;
    if (n > 0) this.watching.set(name ?? '', n);
    else this.watching.delete(name ?? '');
  }
}

describe('DatapathReconciler', () => {
  it('attaches what is wanted, detaches the rest, retries a failed attach, and undoes everything on close', () => {
    const dp = new WatchingDatapath();
    const failed: string[] = [];
    const r = new DatapathReconciler(dp, quiet, (i) => failed.push(i));
    dp.missing.add('veth-b');
    r.reconcile(['veth-a', 'veth-b'], ['', 'pod-a']);
    expect([...dp.attached.keys()]).toEqual(['/veth-a']);
    expect(failed).toEqual(['veth-b']);
    expect([...dp.watching.keys()].sort()).toEqual(['', 'pod-a']);

    dp.missing.clear();
    r.reconcile(['veth-b', 'veth-c'], ['', 'pod-b']);
    expect([...dp.attached.keys()].sort()).toEqual(['/veth-b', '/veth-c']);
    expect(r.attachedInterfaces).toEqual(['veth-b', 'veth-c']);
    expect([...dp.watching]).toEqual([['', 1], ['pod-b', 1]]);

    r.close();
    r.close();
    expect(dp.attached.size).toBe(0);
    expect(dp.watching.size).toBe(0);
    expect(dp.closed).toBe(true);
  });

  it('works with a datapath that cannot watch namespaces', () => {
    const dp = new FakeDatapath();
    const r = new DatapathReconciler(dp, quiet);
    r.reconcile(['veth-a'], ['', 'pod-a']);
    expect([...dp.attached.keys()]).toEqual(['/veth-a']);
    r.close();
    expect(dp.closed).toBe(true);
  });

  it('passes a refused policy up and keeps going when identities are refused', () => {
    const dp = new FakeDatapath();
    const errors: string[] = [];
    const r = new DatapathReconciler(dp, { ...quiet, error: (_o, msg) => void errors.push(String(msg)) });
    dp.setPolicy = () => {
      throw new Error('E2BIG');
    };
    dp.setIdentities = () => {
      throw new Error('ENOMEM');
    };
    expect(() => r.setPolicy({} as never)).toThrow('E2BIG');
    r.setIdentities([{ cidr: '10.0.0.1', identity: 300 }]);
    expect(errors).toEqual(['datapath refused the identities']);
  });
});
