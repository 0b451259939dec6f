// A peer.Peer server whose Notify streams a test drives by hand (discovery, NODE_GONE tests).
import { Server, ServerCredentials } from '@grpc/grpc-js';
import type { ServerWritableStream } from '@grpc/grpc-js';
import { PeerService } from '@flowctl/flow';
import type { ChangeNotification, NotifyRequest } from '@flowctl/flow';

export interface FakePeerServer {
  port: number;
  /** Notify streams open now, newest last. */
  streams: ServerWritableStream<NotifyRequest, ChangeNotification>[];
  /** What every new Notify stream gets first (Hubble sends all known peers as PEER_ADDED). */
  initial: ChangeNotification[];
  close(): void;
}

export async function startFakePeerServer(initial: ChangeNotification[]): Promise<FakePeerServer> {
  const server = new Server();
  const fake: FakePeerServer = { port: 0, streams: [], initial, close: () => server.forceShutdown() };
  server.addService(PeerService, {
    notify: (call: ServerWritableStream<NotifyRequest, ChangeNotification>) => {
      fake.streams.push(call);
      call.on('cancelled', () => fake.streams.splice(fake.streams.indexOf(call), 1));
      for (const n of fake.initial) call.write(n);
    },
  });
  fake.port = await new Promise<number>((res, rej) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))),
  );
  return fake;
}

