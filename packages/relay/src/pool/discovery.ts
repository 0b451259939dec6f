// Peer discovery through an agent's peer.Peer/Notify stream (cilium pkg/hubble/peer): the server
// sends every known peer as PEER_ADDED, then changes. Reconnects with backoff when the stream ends.
import { Client, Metadata, credentials } from '@grpc/grpc-js';
import type { ServiceError } from '@grpc/grpc-js';
import { serverNameOptions } from '@flowctl/flow/tls';
import type { Logger } from 'pino';
import { ChangeNotification, ChangeNotificationType, NotifyRequest, PeerService } from '@flowctl/flow';
import { Backoff } from './backoff.js';
import { parsePeerAddress } from './address.js';
import type { PeerSpec, PeerTls } from './manager.js';

export function watchPeerService(
  address: string,
  log: Logger,
  apply: (specs: PeerSpec[]) => void,
  retryTimeoutMs: number,
  /** TLS as towards agents; `serverName` verifies the peer service (default: the host dialled). */
  tls?: PeerTls & { serverName?: string },
): () => void {
  const target = parsePeerAddress(address).target;
  const backoff = new Backoff({ initialMs: Math.min(500, retryTimeoutMs), maxMs: retryTimeoutMs });
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let client: Client | undefined;
  const connect = () => {
    if (stopped) return;
    const peers = new Map<string, { address: string; tlsServerName?: string }>();
    const secure = tls && !target.startsWith('unix:');
    client = new Client(target, secure ? tls.credentials() : credentials.createInsecure(), {
      'grpc.use_local_subchannel_pool': 1,
      ...(secure && serverNameOptions(tls.serverName)),
    });
    const stream = client.makeServerStreamRequest(
      PeerService.notify.path,
      (r: NotifyRequest) => Buffer.from(NotifyRequest.encode(r).finish()),
      (b: Buffer) => ChangeNotification.decode(b),
      {},
      new Metadata(),
      {},
    );
    stream.on('data', (n: ChangeNotification) => {
      backoff.reset();
      if (!n.name) return;
      if (n.type === ChangeNotificationType.PEER_DELETED) peers.delete(n.name);
      else if (n.address) peers.set(n.name, { address: n.address, ...(n.tls?.server_name && { tlsServerName: n.tls.server_name }) });
      apply([...peers].map(([name, p]) => ({ name, ...p })));
    });
    const retry = (why: string) => {
      client?.close();
      if (stopped) return;
      const ms = backoff.next();
      log.warn({ target, retryInMs: ms }, `peer service: ${why}`);
      timer = setTimeout(connect, ms);
    };
    stream.on('error', (e: ServiceError) => retry(e.details || e.message));
    stream.on('end', () => retry('stream ended'));
  };
  connect();
  return () => {
    stopped = true;
    if (timer) clearTimeout(timer);
    client?.close();
  };
}
