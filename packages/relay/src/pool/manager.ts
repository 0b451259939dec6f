// One long-lived grpc-js client per peer (cilium pkg/hubble/relay/pool/manager.go). Each peer runs
// its own dial loop, so a dead or hanging node costs one timer, never the other peers' progress.
import { EventEmitter } from 'node:events';
import { Client, Metadata, connectivityState, credentials } from '@grpc/grpc-js';
import type { ChannelCredentials, ChannelOptions, ServiceError } from '@grpc/grpc-js';
import { connectFailureReason, hubbleServerName, serverNameOptions } from '@flowctl/flow/tls';
import { ChangeNotification, ChangeNotificationType, NotifyRequest, PeerService } from '@flowctl/flow';
import type { Logger } from 'pino';
import { Backoff } from './backoff.js';
import { parsePeerAddress } from './address.js';
import type { PeerAddress } from './address.js';

export type PeerState = 'connecting' | 'ready' | 'unavailable';

export interface PeerSpec {
  /** Node name (from the peer service or a peers file); defaults to the address as given. */
  name?: string;
  address: string;
  /** The name the agent's TLS certificate must carry; default `<name>.<cluster>.hubble-grpc.cilium.io`. */
  tlsServerName?: string;
}

/** TLS towards agents (hubble-relay's --tls-hubble-* flags); unix socket peers stay plaintext. */
export interface PeerTls {
  /** Current client credentials (reloaded when their files change). */
  credentials(): ChannelCredentials;
  clusterName: string;
}

export interface PoolOptions {
  dialTimeoutMs: number;
  /** How long a newly connected peer without a configured name gets to announce itself on
   * peer.Peer/Notify before it is named by its address (default: min(dial timeout, 2 s)). */
  nameTimeoutMs?: number;
  /** Waits between dial attempts; injectable so tests can drive the backoff without real time. */
  sleep?: (ms: number, wake: AbortSignal) => Promise<void>;
  /** Jitter source for the reconnect backoff (tests make it deterministic). */
  random?: () => number;
  /** Longest wait between reconnect attempts (Hubble --retry-timeout). */
  retryTimeoutMs: number;
  log: Logger;
  channelOptions?: ChannelOptions;
  tls?: PeerTls;
}

const CHANNEL_OPTIONS: ChannelOptions = {
  // A fresh channel per dial attempt must not inherit a shared subchannel stuck in grpc-js' own backoff.
  'grpc.use_local_subchannel_pool': 1,
  'grpc.max_receive_message_length': 64 * 1024 * 1024,
  'grpc.max_send_message_length': 64 * 1024 * 1024,
  // HTTP/2's default 64 KiB stream window makes a node wait for a WINDOW_UPDATE every ~80 flows,
  // a round trip through two busy event loops each time. A node may have this much in flight to
  // a paused stream, on top of grpc-js's 16 decoded messages: with 10 nodes both count toward RSS.
  'grpc-node.flow_control_window': 1024 * 1024,
};

/** After the first announcement, how long to wait for the one whose address is the peer's own. */
const NAME_SETTLE_MS = 100;

export class Peer {
  state: PeerState = 'connecting';
  /** The node name the peer announced about itself on peer.Peer/Notify (static peers only). */
  learnedName: string | undefined;
  client: Client | undefined;
  lastError: string | undefined;
  /** Whether the peer serves flowctl's batched GetFlows; undefined until tried on this connection. */
  batch: boolean | undefined;
  /** Bumped on every new connection, so streams can tell which one they belong to. */
  generation = 0;
  private stopped = false;
  private wake: (() => void) | undefined;
  private readonly backoff: Backoff;

  constructor(
    /** Identity in the pool: the configured name, or the address as given. */
    readonly key: string,
    readonly address: PeerAddress,
    private readonly opts: PoolOptions,
    private readonly emitter: EventEmitter,
    /** Name from the peer service or a peers file; static --peer addresses have none. */
    readonly configuredName?: string,
    /** Server name to verify over TLS (from the peers file or the peer's announcement). */
    readonly tlsServerName?: string,
  ) {
    this.backoff = new Backoff({
      initialMs: Math.min(500, opts.retryTimeoutMs),
      maxMs: opts.retryTimeoutMs,
      ...(opts.random && { random: opts.random }),
    });
    void this.run();
  }

  /** The node name used everywhere (GetNodes, node_status, ServerStatus, logs). */
  get name(): string {
    return this.configuredName || this.learnedName || this.address.given;
  }

  get log(): Logger {
    return this.opts.log;
  }

  private setState(s: PeerState, err?: string): void {
    if (err !== undefined) this.lastError = err;
    if (this.state === s) return;
    this.state = s;
    this.emitter.emit('state', this);
  }

  /** The name the agent's certificate is verified by: as configured or announced, else Hubble's
   * `<node>.<cluster>.hubble-grpc.cilium.io`, else (an unnamed --peer) the host dialled. */
  get serverName(): string | undefined {
    if (!this.opts.tls || this.address.target.startsWith('unix:')) return undefined;
    if (this.tlsServerName) return this.tlsServerName;
    if (this.configuredName) return hubbleServerName(this.configuredName, this.opts.tls.clusterName);
    return undefined;
  }

  private dial(): Client {
    const tls = this.opts.tls && !this.address.target.startsWith('unix:');
    return new Client(this.address.target, tls ? this.opts.tls!.credentials() : credentials.createInsecure(), {
      ...CHANNEL_OPTIONS,
      ...this.opts.channelOptions,
      ...serverNameOptions(this.serverName),
    });
  }

  private async run(): Promise<void> {
    let logged: string | undefined;
    while (!this.stopped) {
      const client = this.dial();
      this.client = client;
      this.batch = undefined;
      const err = await new Promise<Error | undefined>((resolve) =>
        client.waitForReady(Date.now() + this.opts.dialTimeoutMs, (e) => resolve(e ?? undefined)),
      );
      if (this.stopped) break;
      if (err) {
        const wasReady = this.generation > 0 && this.state !== 'unavailable';
        const reason = (await connectFailureReason(client)) ?? err.message;
        if (this.stopped) break;
        this.setState('unavailable', `dial ${this.address.target}: ${reason}`);
        // Once per peer and reason: a peer refusing our certificate is not news on every retry.
        if (reason !== logged) this.opts.log.warn({ peer: this.name, address: this.address.target, serverName: this.serverName, reason }, 'cannot connect to peer');
        logged = reason;
        if (wasReady) this.opts.log.warn({ peer: this.name }, 'peer unavailable');
        this.client = undefined;
        client.close();
        await this.sleep(this.backoff.next());
        continue;
      }
      if (!this.configuredName) await this.learnName(client);
      if (this.stopped) break;
      this.generation++;
      this.backoff.reset();
      logged = undefined;
      this.setState('ready');
      this.opts.log.info({ peer: this.name, address: this.address.target }, 'connected to peer');
      await this.untilNotReady(client);
      if (this.stopped) break;
      this.setState('unavailable', `connection to ${this.address.target} lost`);
      this.opts.log.warn({ peer: this.name, address: this.address.target }, 'lost connection to peer');
      this.client = undefined;
      client.close();
    }
  }

  /**
   * Asks the peer's own peer.Peer/Notify who it is. The server first sends every peer it knows as
   * PEER_ADDED: a flowctl agent sends only itself, a Cilium agent the whole cluster, so prefer the
   * entry whose address is the one we dialled, else the first. No Peer service (any error, or
   * silence until the timeout) leaves the address as the name.
   */
  private learnName(client: Client): Promise<void> {
    const timeoutMs = this.opts.nameTimeoutMs ?? Math.min(this.opts.dialTimeoutMs, 2000);
    return new Promise((resolve) => {
      const seen: ChangeNotification[] = [];
      let settle: NodeJS.Timeout | undefined;
      let finished = false;
      const stream = client.makeServerStreamRequest(
        PeerService.notify.path,
        (r: NotifyRequest) => Buffer.from(NotifyRequest.encode(r).finish()),
        (b: Buffer) => ChangeNotification.decode(b),
        {},
        new Metadata(),
        { deadline: Date.now() + timeoutMs },
      );
      const own = (n: ChangeNotification) => {
        try {
          return !!n.address && parsePeerAddress(n.address).target === this.address.target;
        } catch {
          return false;
        }
      };
      const done = (why?: string) => {
        if (finished) return;
        finished = true;
        clearTimeout(settle);
        this.wake = undefined;
        stream.cancel();
        const pick = seen.find(own) ?? seen[0];
        const before = this.learnedName;
        this.learnedName = pick?.name;
        if (pick && pick.name !== before)
          this.opts.log.info({ peer: pick.name, address: this.address.target }, 'peer named by its peer service');
        else if (!pick && before !== undefined)
          this.opts.log.info({ peer: this.name, address: this.address.target }, 'peer no longer announces a name; using its address');
        else if (!pick) this.opts.log.debug({ peer: this.name, reason: why }, 'peer announced no name; using its address');
        resolve();
      };
      stream.on('data', (n: ChangeNotification) => {
        if (!n.name || n.type === ChangeNotificationType.PEER_DELETED) return;
        seen.push(n);
        if (own(n)) done();
        else settle ??= setTimeout(done, NAME_SETTLE_MS);
      });
      stream.on('error', (e: ServiceError) => done(e.details || e.message));
      stream.on('end', () => done('stream ended'));
      this.wake = () => done('stopped');
    });
  }

  private untilNotReady(client: Client): Promise<void> {
    const ch = client.getChannel();
    return new Promise((resolve) => {
      const check = (): void => {
        if (this.stopped) return resolve();
        const s = ch.getConnectivityState(false);
        if (s !== connectivityState.READY) return resolve();
        ch.watchConnectivityState(s, Infinity, check);
      };
      this.wake = resolve;
      check();
    });
  }

  private sleep(ms: number): Promise<void> {
    if (this.opts.sleep) {
      const ac = new AbortController();
      this.wake = () => ac.abort();
      return this.opts.sleep(ms, ac.signal);
    }
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.wake?.();
    this.client?.close();
    this.client = undefined;
    this.state = 'unavailable';
  }
}

/** Peers by name, merged from every source (command line, peers file, peer service). */
export class PeerManager extends EventEmitter {
  private readonly peers = new Map<string, Peer>();
  private readonly sources = new Map<string, PeerSpec[]>();
  private stopped = false;

  constructor(private readonly opts: PoolOptions) {
    super();
    // Every open GetFlows stream listens for 'removed' (NODE_GONE); many clients are normal.
    this.setMaxListeners(0);
  }

  /** Replaces the peers known from `source`; bad addresses are logged once and skipped. */
  setSource(source: string, specs: PeerSpec[]): void {
    if (this.stopped) return;
    this.sources.set(source, specs);
    this.reconcile();
  }

  private reconcile(): void {
    const want = new Map<string, { addr: PeerAddress; name: string | undefined; serverName: string | undefined }>();
    const targets = new Set<string>();
    for (const [source, specs] of this.sources) {
      for (const spec of specs) {
        let addr: PeerAddress;
        try {
          addr = parsePeerAddress(spec.address);
        } catch (e) {
          this.opts.log.error({ source }, `${(e as Error).message}; peer ignored`);
          continue;
        }
        // The same agent from two sources (--peer X and the peer service announcing X) is one
        // node: the first source wins, as sources are listed flags, file, peer service.
        if (targets.has(addr.target)) continue;
        const key = spec.name || spec.address;
        if (want.has(key)) continue;
        targets.add(addr.target);
        want.set(key, { addr, name: spec.name || undefined, serverName: spec.tlsServerName || undefined });
      }
    }
    for (const [key, peer] of this.peers) {
      const w = want.get(key);
      if (!w || w.addr.target !== peer.address.target || w.name !== peer.configuredName || w.serverName !== peer.tlsServerName) {
        peer.stop();
        this.peers.delete(key);
        this.opts.log.info({ peer: peer.name, address: peer.address.target }, 'peer removed');
        this.emit('removed', peer);
      }
    }
    for (const [key, w] of want) {
      if (this.peers.has(key)) continue;
      const peer = new Peer(key, w.addr, this.opts, this, w.name, w.serverName);
      this.peers.set(key, peer);
      this.emit('added', peer);
    }
  }

  list(): Peer[] {
    return [...this.peers.values()];
  }

  stop(): void {
    this.stopped = true;
    this.sources.clear();
    for (const peer of this.peers.values()) peer.stop();
    this.peers.clear();
  }
}
