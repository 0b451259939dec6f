// Peer discovery against a fake peer.Peer server whose Notify streams the test drives by hand.
import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { ChangeNotificationType } from '@flowctl/flow';
import type { ChangeNotification } from '@flowctl/flow';
import { startFakePeerServer } from '../testing/fake-peer-server.js';
import type { FakePeerServer } from '../testing/fake-peer-server.js';
import { watchPeerService } from './discovery.js';
import type { PeerSpec } from './manager.js';

const added = (name: string, address: string): ChangeNotification => ({ name, address, type: ChangeNotificationType.PEER_ADDED });

describe('watchPeerService', () => {
  let fake: FakePeerServer | undefined;
  let stop: (() => void) | undefined;
  afterEach(() => {
    stop?.();
    fake?.close();
  });

  it('follows additions, updates and deletions, and reconnects when the stream ends', async () => {
    fake = await startFakePeerServer([added('node-1', '10.0.0.1'), added('node-2', '10.0.0.2:4244')]);
    const applied: PeerSpec[][] = [];
    const last = () => applied.at(-1)?.map((s) => `${s.name}=${s.address}`).sort();
    stop = watchPeerService(`127.0.0.1:${fake.port}`, pino({ level: 'silent' }), (s) => applied.push(s), 200);
    await expect.poll(last, { timeout: 5000 }).toEqual(['node-1=10.0.0.1', 'node-2=10.0.0.2:4244']);

    const s = fake.streams[0]!;
    s.write({ name: 'node-2', address: '10.0.0.22:4244', type: ChangeNotificationType.PEER_UPDATED });
    await expect.poll(last, { timeout: 5000 }).toEqual(['node-1=10.0.0.1', 'node-2=10.0.0.22:4244']);
    s.write({ name: 'node-1', address: '10.0.0.1', type: ChangeNotificationType.PEER_DELETED });
    await expect.poll(last, { timeout: 5000 }).toEqual(['node-2=10.0.0.22:4244']);

    // The server restarts its view: a new stream starts from the full list again.
    fake.initial = [added('node-3', 'unix:///run/n3.sock')];
    s.end();
    await expect.poll(last, { timeout: 5000 }).toEqual(['node-3=unix:///run/n3.sock']);
  });

  it("takes each agent's announced TLS server name (a Cilium agent serving TLS sends it)", async () => {
    fake = await startFakePeerServer([{ ...added('node-1', '10.0.0.1:4244'), tls: { server_name: 'node-1.prod.hubble-grpc.cilium.io' } }, added('node-2', '10.0.0.2')]);
    const applied: PeerSpec[][] = [];
    stop = watchPeerService(`127.0.0.1:${fake.port}`, pino({ level: 'silent' }), (s) => applied.push(s), 200);
    await expect.poll(() => applied.at(-1), { timeout: 5000 }).toEqual([
      { name: 'node-1', address: '10.0.0.1:4244', tlsServerName: 'node-1.prod.hubble-grpc.cilium.io' },
      { name: 'node-2', address: '10.0.0.2' },
    ]);
  });

  it('ignores nameless notifications', async () => {
    fake = await startFakePeerServer([{ name: '', address: '10.0.0.9', type: ChangeNotificationType.PEER_ADDED }, added('ok', '10.0.0.1')]);
    const applied: PeerSpec[][] = [];
    stop = watchPeerService(`127.0.0.1:${fake.port}`, pino({ level: 'silent' }), (s) => applied.push(s), 200);
    await expect.poll(() => applied.at(-1), { timeout: 5000 }).toEqual([{ name: 'ok', address: '10.0.0.1' }]);
    expect(applied.flat().some((s) => s.address === '10.0.0.9')).toBe(false);
  });
});
