// flowctl.blocks.v1.Blocks on the relay: Add and Remove go to every node, List answers the union
// of the nodes' lists (mergeBlockLists). A node that cannot be asked is named in `nodes` with its
// error; a request every node refuses as the client's fault (a bad CIDR, an unknown one) is
// answered with that status, not as a node failure.
// The relay remembers what it added and removed, so that a node that was away (down, restarted
// without its state, new) is brought in step when it connects: the entries it lacks are added
// with what is left of their TTL, and those removed meanwhile are removed from it. With a state
// file it remembers them across its own restarts too.
import { status as grpcStatus, type Client, type ServiceError } from '@grpc/grpc-js';
import { FlowctlError } from '@flowctl/flow';
import { mergeBlockLists, parseBlockCidr } from '@flowctl/flow/block';
import { timestampToMs } from '@flowctl/flow/time';
import { readStateFile, writeStateFile } from '@flowctl/flow/state-file';
import type {
  AddBlockRequest,
  AddBlockResponse,
  BlockEntry,
  ListBlocksResponse,
  NodeBlockStatus,
  RemoveBlockRequest,
  RemoveBlockResponse,
} from '@flowctl/flow/gen/flowctl/blocks';
import type { Peer, PeerManager } from '../pool/manager.js';
import { unary } from './server.js';
import { unaryCodecs } from './services.js';

export interface RelayBlocksOptions {
  manager: PeerManager;
  callTimeoutMs: number;
  /** Counts a failed call to a node (the relay's per-node error counters). */
  callFailed?: (node: string) => void;
  /** Where what was added and removed is kept across restarts of the relay (JSON); none: in memory. */
  stateFile?: string;
  /** Told when the state file cannot be read or written (the relay goes on in memory). */
  warn?: (msg: string) => void;
}

interface Added {
  reason: string;
  origin: string;
  expiresMs?: number;
}

/** The state file's content. */
interface StateFile {
  version: 1;
  added: ({ cidr: string } & Added)[];
  removed: { cidr: string; atMs: number }[];
}

interface Answer<Res> {
  node: string;
  res?: Res;
  err?: { code: number; details: string };
}

/** Removals remembered for nodes that come back (the oldest are forgotten first). */
const REMOVED_KEPT = 4096;

export class RelayBlocks {
  /** Entries added through this relay and not removed since, by canonical CIDR. */
  private readonly added = new Map<string, Added>();
  /** CIDRs removed through this relay, and when. */
  private readonly removed = new Map<string, number>();

  constructor(private readonly opts: RelayBlocksOptions) {
    opts.manager.on('state', (p: Peer) => {
      if (p.state === 'ready' && p.client) void this.bringInStep(p.name, p.client);
    });
  }

  /** Reads the state file back (entries not yet expired). Returns how many entries were added and removed. */
  load(): { added: number; removed: number } {
    const file = this.opts.stateFile;
    if (!file) return { added: 0, removed: 0 };
    let state: StateFile | undefined;
    try {
      state = readStateFile<StateFile>(file);
    } catch (e) {
      this.opts.warn?.(`relay drop list state ${file} unreadable, starting empty: ${(e as Error).message}`);
    }
    const now = Date.now();
    for (const a of Array.isArray(state?.added) ? state.added : []) {
      if (typeof a?.cidr !== 'string' || (a.expiresMs !== undefined && !(a.expiresMs > now))) continue;
      this.added.set(a.cidr, { reason: String(a.reason ?? ''), origin: String(a.origin || 'cli'), ...(a.expiresMs !== undefined && { expiresMs: Number(a.expiresMs) }) });
    }
    for (const r of Array.isArray(state?.removed) ? state.removed : []) {
      if (typeof r?.cidr === 'string' && Number.isFinite(r.atMs)) this.removed.set(r.cidr, r.atMs);
    }
    return { added: this.added.size, removed: this.removed.size };
  }

  async add(req: AddBlockRequest): Promise<AddBlockResponse> {
    const answers = await this.fanOut(unaryCodecs.addBlock, req);
    this.clientFault(answers, grpcStatus.INVALID_ARGUMENT, 'INVALID_ARGUMENT');
    const ok = answers.filter((a) => a.res);
    if (!ok.length) throw new FlowctlError('UNAVAILABLE', `no node took the entry: ${summary(answers)}`);
    const entry = merged(ok.map((a) => a.res!.entry));
    if (entry?.cidr) {
      this.removed.delete(entry.cidr);
      this.added.set(entry.cidr, { reason: req.reason ?? '', origin: req.origin || 'cli', ...(entry.expires && { expiresMs: timestampToMs(entry.expires) }) });
      this.save();
    }
    return { entry, nodes: statuses(answers) };
  }

  async remove(req: RemoveBlockRequest): Promise<RemoveBlockResponse> {
    const answers = await this.fanOut(unaryCodecs.removeBlock, req);
    this.clientFault(answers, grpcStatus.INVALID_ARGUMENT, 'INVALID_ARGUMENT');
    const had = answers.filter((a) => a.res);
    // A node without the entry is not a failure: it had nothing to remove.
    const failed = answers.filter((a) => a.err && a.err.code !== grpcStatus.NOT_FOUND);
    if (!had.length) {
      if (failed.length) throw new FlowctlError('UNAVAILABLE', `cannot remove ${req.cidr}: ${summary(failed)}`);
      throw new FlowctlError('NOT_FOUND', answers[0]?.err?.details ?? `${req.cidr} is not in the drop list`);
    }
    // By CIDR, or by the name of an isolated pod: the nodes' answers say its address.
    const cidr = had.find((a) => a.res!.entry?.cidr)?.res!.entry!.cidr ?? parseBlockCidr(req.cidr ?? '').cidr;
    this.added.delete(cidr);
    this.removed.delete(cidr);
    this.removed.set(cidr, Date.now());
    if (this.removed.size > REMOVED_KEPT) this.removed.delete(this.removed.keys().next().value!);
    this.save();
    return { entry: merged(had.map((a) => a.res!.entry)), nodes: statuses(answers.filter((a) => a.err?.code !== grpcStatus.NOT_FOUND)) };
  }

  async list(): Promise<ListBlocksResponse> {
    const answers = await this.fanOut(unaryCodecs.listBlocks, {});
    return { entries: mergeBlockLists(answers.map((a) => a.res?.entries ?? [])), nodes: statuses(answers) };
  }

  /** Adds to a node that has just connected what it lacks of the relay's entries, and removes
   * what was removed through the relay while it was away (entries it made since stay). */
  private async bringInStep(node: string, client: Client): Promise<void> {
    if (!this.added.size && !this.removed.size) return;
    const timeout = this.opts.callTimeoutMs;
    try {
      const held = new Map(((await unary(client, unaryCodecs.listBlocks, {}, timeout)).entries ?? []).map((e) => [e.cidr ?? '', e]));
      for (const [cidr, at] of this.removed) {
        const e = held.get(cidr);
        if (e && timestampToMs(e.created) <= at) await unary(client, unaryCodecs.removeBlock, { cidr }, timeout);
      }
      const now = Date.now();
      for (const [cidr, a] of this.added) {
        if (a.expiresMs !== undefined && a.expiresMs <= now) {
          this.added.delete(cidr);
          this.save();
        } else if (!held.has(cidr)) {
          const ttl = a.expiresMs === undefined ? undefined : durationOf(a.expiresMs - now);
          await unary(client, unaryCodecs.addBlock, { cidr, reason: a.reason, origin: a.origin, ...(ttl && { ttl }) }, timeout);
        }
      }
    } catch {
      // The node went away again, or refused: it is brought in step at its next connection.
      this.opts.callFailed?.(node);
    }
  }

  /** Replaces the state file with what the relay remembers; nothing to remember, no file. */
  private save(): void {
    const file = this.opts.stateFile;
    if (!file) return;
    const state: StateFile | undefined = this.added.size || this.removed.size ? {
      version: 1,
      added: [...this.added].map(([cidr, a]) => ({ cidr, ...a })),
      removed: [...this.removed].map(([cidr, atMs]) => ({ cidr, atMs })),
    } : undefined;
    try {
      writeStateFile(file, state);
    } catch (e) {
      this.opts.warn?.(`relay drop list state ${file} not written: ${(e as Error).message}`);
    }
  }

  /** Throws `code` when every node that answered refused the request with it. */
  private clientFault(answers: Answer<unknown>[], status: number, code: 'INVALID_ARGUMENT'): void {
    const refused = answers.filter((a) => a.err?.code === status);
    if (refused.length && refused.length === answers.filter((a) => a.res || a.err?.code === status).length) {
      throw new FlowctlError(code, refused[0]!.err!.details);
    }
  }

  private async fanOut<Req, Res>(
    codec: { path: string; serialize: (r: Req) => Buffer; deserialize: (b: Buffer) => Res },
    req: Req,
  ): Promise<Answer<Res>[]> {
    const peers = this.opts.manager.list();
    const answers = await Promise.all(
      peers.map(async (p): Promise<Answer<Res>> => {
        if (p.state !== 'ready' || !p.client) return { node: p.name, err: { code: grpcStatus.UNAVAILABLE, details: `not connected${p.lastError ? `: ${p.lastError}` : ''}` } };
        try {
          return { node: p.name, res: await unary(p.client, codec, req, this.opts.callTimeoutMs) };
        } catch (e) {
          const se = e as ServiceError;
          if (se.code !== grpcStatus.INVALID_ARGUMENT && se.code !== grpcStatus.NOT_FOUND) this.opts.callFailed?.(p.name);
          return { node: p.name, err: { code: se.code ?? grpcStatus.UNKNOWN, details: se.details || se.message } };
        }
      }),
    );
    return answers.sort((a, b) => a.node.localeCompare(b.node));
  }
}

function merged(entries: (BlockEntry | undefined)[]): BlockEntry | undefined {
  return mergeBlockLists([entries.filter((e): e is BlockEntry => e !== undefined)])[0];
}

function statuses(answers: Answer<{ nodes?: NodeBlockStatus[] }>[]): NodeBlockStatus[] {
  return answers.flatMap((a) => (a.res ? (a.res.nodes ?? []) : [{ node_name: a.node, xdp_interfaces: [], error: a.err?.details ?? '' }]));
}

function summary(answers: Answer<unknown>[]): string {
  return answers.map((a) => `${a.node}: ${a.err?.details ?? 'ok'}`).join('; ') || 'no nodes';
}

function durationOf(ms: number): { seconds: bigint; nanos: number } {
  const whole = Math.max(1, Math.ceil(ms));
  return { seconds: BigInt(Math.floor(whole / 1000)), nanos: (whole % 1000) * 1e6 };
}
