import { createServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Server, ServerCredentials } from '@grpc/grpc-js';
import { pino } from 'pino';
import { Backoff } from './backoff.js';
import { PeerManager } from './manager.js';

describe('Backoff', () => {
  it('doubles from the initial delay up to the cap, then resets', () => {
    const b = new Backoff({ initialMs: 100, maxMs: 1000, random: () => 0.5 });
    expect([1, 2, 3, 4, 5, 6].map(() => b.next())).toEqual([100, 200, 400, 800, 1000, 1000]);
    b.reset();
    expect(b.next()).toBe(100);
  });

  it('jitters each delay by at most ±jitter, so restarted agents are not redialled in lockstep', () => {
    const lo = new Backoff({ initialMs: 1000, maxMs: 10_000, jitter: 0.2, random: () => 0 });
    const hi = new Backoff({ initialMs: 1000, maxMs: 10_000, jitter: 0.2, random: () => 0.999999 });
    expect(lo.next()).toBe(800);
    expect(hi.next()).toBe(1200);
    expect(lo.next()).toBe(1600);
  });
});

/** A port nothing listens on (bound, then released). */
async function deadPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe('peer reconnect loop with an injected clock', () => {
  let manager: PeerManager | undefined;
  let server: Server | undefined;
  afterEach(() => {
    manager?.stop();
    server?.forceShutdown();
  });

  it('waits with growing, capped delays while a peer is down, and starts over once it connected', async () => {
    const port = await deadPort();
    const waits: number[] = [];
    let release: (() => void) | undefined;
    manager = new PeerManager({
      dialTimeoutMs: 100,
      retryTimeoutMs: 2000,
      nameTimeoutMs: 200,
      log: pino({ level: 'silent' }),
      random: () => 0.5,
      // The clock: record each wait and return at once (or when the test lets it), never sleep.
      sleep: (ms) => {
        waits.push(ms);
        return waits.length < 6 ? Promise.resolve() : new Promise<void>((r) => (release = r));
      },
    });
    manager.setSource('flags', [{ address: `127.0.0.1:${port}` }]);
    await expect.poll(() => waits.length, { timeout: 10_000 }).toBe(6);
    expect(waits).toEqual([500, 1000, 2000, 2000, 2000, 2000]);
    expect(manager.list()[0]!.state).toBe('unavailable');

    server = new Server();
    await new Promise<number>((res, rej) => server!.bindAsync(`127.0.0.1:${port}`, ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
    release!();
    await expect.poll(() => manager!.list()[0]!.state, { timeout: 10_000 }).toBe('ready');
    server.forceShutdown();
    server = undefined;
    await expect.poll(() => waits.length, { timeout: 10_000 }).toBeGreaterThan(6);
    expect(waits[6]).toBe(500);
  });
});
