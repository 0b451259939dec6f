// The drop list outlives restarts, end to end with real flowctl-agent processes (--replay mode, on
// unix sockets) behind a real flowctl-relay: an agent with a --state-dir restores its entries with
// what is left of their TTL, and the relay brings a node that comes back in step (adds what it
// lacks, removes what was removed through the relay while it was away), also after the relay
// itself restarted (its --state-dir).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { credentials } from '@grpc/grpc-js';
import { BlocksClient } from '@flowctl/flow/gen/flowctl/blocks.grpc';
import type { AddBlockResponse, BlockEntry, ListBlocksResponse, RemoveBlockResponse } from '@flowctl/flow/gen/flowctl/blocks';
import { timestampToMs } from '@flowctl/flow/time';
import { encodeResponse } from '@flowctl/flow/json';
import { makeCorpus } from '@flowctl/flow/testing';
import { spawnAgent, spawnRelay, type Child } from './testing/spawn.js';

const dir = mkdtempSync(join(tmpdir(), 'fcr-blocks-'));
const sock = (n: number) => join(dir, `node-${n}.sock`);
const children: Child[] = [];
let relay: Child;
let common: string[];

const call = <T>(server: string, fn: (c: InstanceType<typeof BlocksClient>, cb: (err: Error | null, res: T) => void) => void) => {
  const c = new BlocksClient(server, credentials.createInsecure());
  return new Promise<T>((resolve, reject) => fn(c, (err, res) => (err ? reject(err) : resolve(res)))).finally(() => c.close());
};
const list = async (server: string): Promise<BlockEntry[]> => (await call<ListBlocksResponse>(server, (c, cb) => c.list({}, cb))).entries ?? [];
const relayAddr = () => `127.0.0.1:${relay.port}`;

async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

async function startNode(n: 1 | 2 | 3): Promise<Child> {
  // node-1 keeps its drop list in a state directory; node-2 and node-3 in memory only (as a new node would come).
  const state = n === 1 ? ['--state-dir', join(dir, 'state-1')] : [];
  const a = await spawnAgent([...common, '--node-name', `node-${n}`, '--listen-address', '', '--unix-socket', sock(n), ...state]);
  children.push(a);
  return a;
}

beforeAll(async () => {
  const replay = join(dir, 'flows.json');
  writeFileSync(replay, `${makeCorpus(20, 3).filter((r) => r.flow).map(encodeResponse).join('\n')}\n`);
  common = ['--replay', replay, '--replay-rate', '10', '--metrics-address', ''];
  await Promise.all([startNode(1), startNode(2)]);
  await startRelay([1, 2]);
}, 90_000);

async function startRelay(nodes: number[]): Promise<Child> {
  relay = await spawnRelay(['--listen-address', '127.0.0.1:0', ...nodes.flatMap((n) => ['--peer', `unix://${sock(n)}`]),
    '--dial-timeout', '1s', '--retry-timeout', '1s', '--metrics-address', '', '--node-name', 'relay-blocks', '--state-dir', join(dir, 'relay-state')]);
  children.push(relay);
  return relay;
}

afterAll(async () => {
  await Promise.all(children.map((c) => c.stop('SIGKILL')));
  rmSync(dir, { recursive: true, force: true });
});

describe('drop list across restarts (agent state dir, relay re-application)', () => {
  it('restores an agent\'s entries with their remaining TTL, and brings returning nodes in step', async () => {
    const add = (cidr: string, ttlS?: number) =>
      call<AddBlockResponse>(relayAddr(), (c, cb) => c.add({ cidr, reason: 'restart test', ...(ttlS && { ttl: { seconds: BigInt(ttlS), nanos: 0 } }) }, cb));
    const added = await waitFor('both nodes take an entry', async () => {
      const r = await add('198.51.100.0/24', 3600);
      return r.nodes?.filter((s) => !s.error).length === 2 ? r : undefined;
    });
    const expiresMs = timestampToMs(added.entry!.expires);
    await add('203.0.113.5');

    // node-1 stops; an entry is removed through the relay while it is away.
    const n1 = children.find((c) => c.stderr().includes('"node":"node-1"'))!;
    expect(await n1.stop('SIGTERM')).toBe(0);
    const rm = await call<RemoveBlockResponse>(relayAddr(), (c, cb) => c.remove({ cidr: '203.0.113.5' }, cb));
    expect(rm.nodes?.map((s) => s.node_name)).toContain('node-2');
    // The agent comes back with both entries from its state file (the TTL not restarted), and
    // the relay removes the one it removed meanwhile.
    const back = await startNode(1);
    expect(back.stderr()).toContain('drop list: restored 2 entries');
    const held = await waitFor('node-1 in step', async () => {
      const l = await list(`unix://${sock(1)}`);
      return l.length === 1 ? l : undefined;
    });
    expect(held).toMatchObject([{ cidr: '198.51.100.0/24', reason: 'restart test', origin: 'cli' }]);
    expect(Math.abs(timestampToMs(held[0]!.expires) - expiresMs)).toBeLessThan(1000);

    // node-2 keeps nothing across a restart: the relay adds what it lacks, with the time left.
    const n2 = children.find((c) => c.stderr().includes('"node":"node-2"'))!;
    await n2.stop('SIGKILL');
    await startNode(2);
    const again = await waitFor('node-2 re-applied', async () => {
      const l = await list(`unix://${sock(2)}`);
      return l.length ? l : undefined;
    });
    expect(again.map((e) => e.cidr)).toEqual(['198.51.100.0/24']);
    expect(Math.abs(timestampToMs(again[0]!.expires) - expiresMs)).toBeLessThan(2000);
    // Removed through the relay, it is gone from the state file too: a restart brings nothing back.
    await call<RemoveBlockResponse>(relayAddr(), (c, cb) => c.remove({ cidr: '198.51.100.0/24' }, cb));
    const n1b = back;
    expect(await n1b.stop('SIGTERM')).toBe(0);
    const third = await startNode(1);
    expect(third.stderr()).not.toContain('drop list: restored');
    expect(await list(`unix://${sock(1)}`)).toEqual([]);
  }, 90_000);

  it('a relay restarted with its --state-dir still brings new and returning nodes in step', async () => {
    // node-1 has just come back: the relay takes a moment to reconnect.
    const added = await waitFor('both nodes take an entry', async () => {
      const r = await call<AddBlockResponse>(relayAddr(), (c, cb) => c.add({ cidr: '192.0.2.0/24', reason: 'kept by the relay', ttl: { seconds: 3600n, nanos: 0 } }, cb));
      return r.nodes?.filter((s) => !s.error).length === 2 ? r : undefined;
    });
    const expiresMs = timestampToMs(added.entry!.expires);
    await call<AddBlockResponse>(relayAddr(), (c, cb) => c.add({ cidr: '2001:db8::/48', reason: 'until removed' }, cb));

    expect(await relay.stop('SIGTERM')).toBe(0);
    const r2 = await startRelay([1, 2, 3]);
    expect(r2.stderr()).toContain('relay drop list: restored 2 entries and 2 removals');
    // A node the relay never saw joins after the restart: it gets both, the TTL not restarted.
    await startNode(3);
    const got = await waitFor('node-3 given the relay\'s entries', async () => {
      const l = await list(`unix://${sock(3)}`);
      return l.length === 2 ? l : undefined;
    });
    expect(got.map((e) => [e.cidr, e.reason])).toEqual([['192.0.2.0/24', 'kept by the relay'], ['2001:db8::/48', 'until removed']]);
    expect(Math.abs(timestampToMs(got[0]!.expires) - expiresMs)).toBeLessThan(2000);
    expect(got[1]!.expires).toBeUndefined();

    // A removal made while node-1 is away is remembered across a second relay restart too.
    const n1 = children.filter((c) => c.stderr().includes('"node":"node-1"')).at(-1)!;
    expect(await n1.stop('SIGTERM')).toBe(0);
    await call<RemoveBlockResponse>(relayAddr(), (c, cb) => c.remove({ cidr: '2001:db8::/48' }, cb));
    expect(await r2.stop('SIGTERM')).toBe(0);
    const r3 = await startRelay([1, 2, 3]);
    expect(r3.stderr()).toContain('relay drop list: restored 1 entries and 3 removals');
    const back = await startNode(1);
    expect(back.stderr()).toContain('drop list: restored 2 entries');
    const held = await waitFor('node-1 in step', async () => {
      const l = await list(`unix://${sock(1)}`);
      return l.length === 1 ? l : undefined;
    });
    expect(held.map((e) => e.cidr)).toEqual(['192.0.2.0/24']);
  }, 90_000);
});
