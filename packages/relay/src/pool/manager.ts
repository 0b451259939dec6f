// One long-lived grpc-js client per peer (cilium pkg/hubble/relay/pool/manager.go). Each peer runs
// its own dial loop, so a dead or hanging node costs one timer, never the other peers' progress.
import { EventEmitter } from 'node:events';
import { Client, connectivityState, credentials } from '@grpc/grpc-js';
import type { ChannelOptions } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { Backoff } from './backoff.js';
import { parsePeerAddress } from './address.js';
import type { PeerAddress } from './address.js';

export type PeerState = 'connecting' | 'ready' | 'unavailable';

export interface PeerSpec {
  /** Node name (from the peer service or a peers file); defaults to the address as given. */
  name?: string;
  address: string;
}

export interface PoolOptions {
  dialTimeoutMs: number;
  /** Longest wait between reconnect attempts (Hubble --retry-timeout). */
  retryTimeoutMs: number;
  log: Logger;
  channelOptions?: ChannelOptions;
}

const CHANNEL_OPTIONS: ChannelOptions = {
  // A fresh channel per dial attempt must not inherit a shared subchannel stuck in grpc-js' own backoff.
  'grpc.use_local_subchannel_pool': 1,
  'grpc.max_receive_message_length': 64 * 1024 * 1024,
  'grpc.max_send_message_length': 64 * 1024 * 1024,
};

export class Peer {
  state: PeerState = 'connecting';
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
    readonly name: string,
    readonly address: PeerAddress,
    private readonly opts: PoolOptions,
    private readonly emitter: EventEmitter,
  ) {
    this.backoff = new Backoff({ initialMs: Math.min(500, opts.retryTimeoutMs), maxMs: opts.retryTimeoutMs });
    void this.run();
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

  private async run(): Promise<void> {
    while (!this.stopped) {
      const client = new Client(this.address.target, credentials.createInsecure(), {
        ...CHANNEL_OPTIONS,
        ...this.opts.channelOptions,
      });
      this.client = client;
      this.batch = undefined;
      const err = await new Promise<Error | undefined>((resolve) =>
        client.waitForReady(Date.now() + this.opts.dialTimeoutMs, (e) => resolve(e ?? undefined)),
      );
      if (this.stopped) break;
      if (err) {
        const wasReady = this.generation > 0 && this.state !== 'unavailable';
        this.setState('unavailable', `dial ${this.address.target}: ${err.message}`);
        this.opts.log.debug({ peer: this.name, address: this.address.target, err: err.message }, 'peer unreachable');
        if (wasReady) this.opts.log.warn({ peer: this.name }, 'peer unavailable');
        this.client = undefined;
        client.close();
        await this.sleep(this.backoff.next());
        continue;
      }
      this.generation++;
      this.backoff.reset();
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
  }

  /** Replaces the peers known from `source`; bad addresses are logged once and skipped. */
  setSource(source: string, specs: PeerSpec[]): void {
    if (this.stopped) return;
    this.sources.set(source, specs);
    this.reconcile();
  }

  private reconcile(): void {
    const want = new Map<string, PeerAddress>();
    for (const [source, specs] of this.sources) {
      for (const spec of specs) {
        let addr: PeerAddress;
        try {
          addr = parsePeerAddress(spec.address);
        } catch (e) {
          this.opts.log.error({ source }, `${(e as Error).message}; peer ignored`);
          continue;
        }
        const name = spec.name || spec.address;
        if (!want.has(name)) want.set(name, addr);
      }
    }
    for (const [name, peer] of this.peers) {
      const addr = want.get(name);
      if (!addr || addr.target !== peer.address.target) {
        peer.stop();
        this.peers.delete(name);
        this.opts.log.info({ peer: name }, 'peer removed');
        this.emit('removed', peer);
      }
    }
    for (const [name, addr] of want) {
      if (this.peers.has(name)) continue;
      const peer = new Peer(name, addr, { ...this.opts, log: this.opts.log }, this);
      this.peers.set(name, peer);
      this.emit('added', peer);
    }
  }

  list(): Peer[] {
    return [...this.peers.values()];
  }

  stop(): void {
    this.stopped = true;
    for (const peer of this.peers.values()) peer.stop();
    this.peers.clear();
  }
}
