// Blocklisted names and addresses: lists loaded from files (--blocklist, repeatable, any format of
// blocklist-formats.ts) and loaded again when they change. A query for a listed name, or an answer
// naming one through a CNAME, is a blocklisted-domain finding for the client; a connection to or
// from a listed address is a blocklisted-ip finding for the side that opened it.
import { closeSync, openSync, readSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { FlowType, L7FlowType, type Flow } from '@flowctl/flow';
import { FlowctlError } from '../errors.js';
import type { Logger } from '../server/server.js';
import type { AlertKind, AlertPeer, DetectContext, Detector, DetectorSpec, Finding } from './detector.js';
import type { SectionValues } from './config.js';
import type { CidrSet, Hit } from './blocklist-index.js';
import { ListParser, type BadLine, type ParsedList } from './blocklist-formats.js';
import { LruMap } from './lru.js';
import { describePeer, peerOf } from './peer.js';
import { ownedHere } from './syn.js';
import { fileSig } from '../config/watcher.js';

export interface BlocklistOptions {
  /** Least time between two findings for one (kind, source, entry). */
  updateMs: number;
  /** (kind, source, entry) triples remembered for that; the least recently seen is forgotten first. */
  maxTracked: number;
}

export const BLOCKLIST_DEFAULTS: Readonly<BlocklistOptions & { reloadMs: number }> = Object.freeze({
  updateMs: 10_000,
  maxTracked: 4096,
  /** How often the files are checked for changes. */
  reloadMs: 2000,
});

/** Bad lines logged one by one per load of a file; the rest are counted in one line. */
const BAD_LINES_LOGGED = 10;
/** Names and addresses whose lookup result is kept (flows repeat a few of each endlessly). */
const CACHE = 16384;

interface Loaded extends ParsedList {
  file: string;
  sig: string;
}

export interface ListMatch extends Hit {
  list: string;
  format: string;
}

/** The lists of --blocklist, each reloaded when its file changes (a bad reload keeps the last good one). */
export class Blocklists {
  private lists: Loaded[] = [];
  private readonly ipCache = new Map<string, ListMatch | null>();
  private readonly nameCache = new Map<string, ListMatch | null>();
  private timer: NodeJS.Timeout | undefined;
  private reloading = false;
  /** Lines skipped as neither comment nor entry, over every load. */
  badLines = 0;
  /** Loads that failed (unreadable file) and kept the previous list. */
  failedLoads = 0;

  constructor(
    readonly files: string[],
    private readonly log: Logger,
    private readonly onLoaded?: (file: string, cidrs: CidrSet) => void,
  ) {}

  /** Loads every file; an unreadable one is a CONFIG error (there is no last good list yet). */
  load(): void {
    this.lists = this.files.map((file) => {
      const sig = fileSig(file);
      try {
        const b = this.badLineLog(file);
        return this.loaded(file, sig, b.done(readListSync(file, b.bad)));
      } catch (e) {
        throw new FlowctlError('CONFIG', `--blocklist ${file}: ${cannotRead(e)}`);
      }
    });
    this.ipCache.clear();
    this.nameCache.clear();
  }

  /** Entries held over every list. */
  get size(): number {
    let n = 0;
    for (const l of this.lists) n += l.names.size + l.cidrs.size;
    return n;
  }

  /** Polls the files until stop(). */
  start(intervalMs: number): void {
    this.timer = setInterval(() => void this.reloadChanged(), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /**
   * Reads again the files whose size, mtime or inode changed; true when any list was replaced.
   * A file is read a slice at a time, letting flows through between slices, while the old list
   * stays in force until the new one is complete. One reload at a time (a poll during one is skipped).
   */
  async reloadChanged(): Promise<boolean> {
    if (this.reloading) return false;
    this.reloading = true;
    try {
      let changed = false;
      for (const old of this.lists) {
        const sig = fileSig(old.file);
        if (sig === old.sig) continue;
        let parsed: ParsedList;
        try {
          const b = this.badLineLog(old.file);
          parsed = b.done(await readList(old.file, b.bad));
        } catch (e) {
          this.failedLoads++;
          old.sig = sig; // one error per change, not one per poll
          this.log.error({ file: old.file }, `blocklist ${old.file}: ${cannotRead(e)}; keeping the previous list`);
          continue;
        }
        const l = this.loaded(old.file, sig, parsed);
        this.lists = this.lists.map((x) => (x === old ? l : x));
        changed = true;
      }
      if (changed) {
        this.ipCache.clear();
        this.nameCache.clear();
      }
      return changed;
    } finally {
      this.reloading = false;
    }
  }

  /** Where a file's bad lines go: the first few logged one by one, the rest in one line when done. */
  private badLineLog(file: string): { bad: BadLine; done: (parsed: ParsedList) => ParsedList } {
    let logged = 0;
    return {
      bad: (line, why) => {
        if (logged++ < BAD_LINES_LOGGED) this.log.warn({ file, line }, `${file}:${line}: ${why}`);
      },
      done: (parsed) => {
        if (logged > BAD_LINES_LOGGED) this.log.warn({ file }, `${file}: ${logged - BAD_LINES_LOGGED} more bad lines skipped`);
        return parsed;
      },
    };
  }

  private loaded(file: string, sig: string, parsed: ParsedList): Loaded {
    this.badLines += parsed.badLines;
    this.log.info({ file, format: parsed.format, names: parsed.names.size, cidrs: parsed.cidrs.size, badLines: parsed.badLines }, 'blocklist loaded');
    this.onLoaded?.(file, parsed.cidrs);
    return { ...parsed, file, sig };
  }

  matchName(name: string): ListMatch | undefined {
    let m = this.nameCache.get(name);
    if (m === undefined) {
      m = null;
      for (const l of this.lists) {
        const h = l.names.size ? l.names.lookup(name) : undefined;
        if (h) {
          m = { ...h, list: l.file, format: l.format };
          break;
        }
      }
      if (this.nameCache.size >= CACHE) this.nameCache.clear();
      this.nameCache.set(name, m);
    }
    return m ?? undefined;
  }

  matchIp(ip: string): ListMatch | undefined {
    let m = this.ipCache.get(ip);
    if (m === undefined) {
      m = null;
      for (const l of this.lists) {
        const h = l.cidrs.size ? l.cidrs.lookup(ip) : undefined;
        if (h) {
          m = { ...h, list: l.file, format: l.format };
          break;
        }
      }
      if (this.ipCache.size >= CACHE) this.ipCache.clear();
      this.ipCache.set(ip, m);
    }
    return m ?? undefined;
  }

  /** True when some list holds addresses (flows need no address lookups otherwise). */
  hasCidrs(): boolean {
    return this.lists.some((l) => l.cidrs.size > 0);
  }
}

interface Tracked {
  lastMs: number;
  count: number;
}

export class BlocklistDetector implements Detector {
  readonly name = 'blocklist';
  private readonly o: BlocklistOptions;
  private readonly tracked: LruMap<string, Tracked>;

  constructor(
    readonly lists: Blocklists,
    opts: Partial<BlocklistOptions> = {},
    /** Addresses of this node's pods: a pod's lookups and connections are reported by its own node. */
    private readonly isLocalIp: (ip: string) => boolean = () => true,
  ) {
    this.o = { updateMs: opts.updateMs ?? BLOCKLIST_DEFAULTS.updateMs, maxTracked: opts.maxTracked ?? BLOCKLIST_DEFAULTS.maxTracked };
    this.tracked = new LruMap(this.o.maxTracked);
  }

  stateSize(): number {
    return this.tracked.size;
  }

  stateEvicted(): number {
    return this.tracked.evicted;
  }

  close(): void {
    this.lists.stop();
  }

  observe(flow: Flow, nowMs: number): Finding[] | undefined {
    if (this.lists.files.length === 0) return undefined;
    if (flow.Type === FlowType.L7) return this.dns(flow, nowMs);
    if (flow.Type === FlowType.L3_L4 && this.lists.hasCidrs()) return this.connection(flow, nowMs);
    return undefined;
  }

  private dns(flow: Flow, nowMs: number): Finding[] | undefined {
    const l7 = flow.l7;
    const dns = l7?.dns;
    if (!dns?.query) return undefined;
    const request = l7!.type === L7FlowType.REQUEST;
    if (!ownedHere(flow, request ? 'source' : 'destination', this.isLocalIp)) return undefined;
    let name = dns.query;
    let where = request ? 'query' : 'answer';
    let m = this.lists.matchName(name);
    if (!m && !request) {
      for (const c of dns.cnames ?? []) {
        if ((m = this.lists.matchName(c))) {
          name = c;
          where = `CNAME in the answer for ${dns.query}`;
          break;
        }
      }
    }
    if (!m) return undefined;
    const client = peerOf(flow, request ? 'source' : 'destination');
    const server = peerOf(flow, request ? 'destination' : 'source');
    const bare = name.endsWith('.') ? name.slice(0, -1) : name;
    return this.found('blocklisted-domain', client, server, bare, m, nowMs, (n) =>
      `${describePeer(client)} looked up blocklisted ${bare} (${m!.entry} in ${m!.list})${n > 1 ? `, ${n} times` : ''}`,
    { name: bare, matched_in: where });
  }

  private connection(flow: Flow, nowMs: number): Finding[] | undefined {
    const src = flow.IP?.source, dst = flow.IP?.destination;
    if (!src || !dst) return undefined;
    // The side that opened the connection is the source, whichever way this packet went.
    const reply = flow.is_reply === true;
    const opener = reply ? dst : src, peerIp = reply ? src : dst;
    let m = this.lists.matchIp(peerIp);
    let listed = peerIp, way = 'to';
    if (!m) {
      m = this.lists.matchIp(opener);
      listed = opener;
      way = 'from';
      if (!m) return undefined;
    }
    const openerSide = reply ? 'destination' : 'source', peerSide = reply ? 'source' : 'destination';
    if (!ownedHere(flow, way === 'to' ? openerSide : peerSide, this.isLocalIp)) return undefined;
    const source = peerOf(flow, openerSide), destination = peerOf(flow, peerSide);
    const l4 = flow.l4;
    const port = l4?.TCP?.destination_port ?? l4?.UDP?.destination_port ?? l4?.SCTP?.destination_port;
    const portOf = reply ? (l4?.TCP?.source_port ?? l4?.UDP?.source_port ?? l4?.SCTP?.source_port) : port;
    const other = describePeer(way === 'to' ? source : destination);
    return this.found('blocklisted-ip', source, destination, listed, m, nowMs, (n) =>
      `connection ${way} blocklisted ${listed}${portOf ? ` port ${portOf}` : ''} (${m!.entry} in ${m!.list}) ${way === 'to' ? 'from' : 'to'} ${other}` +
      (n > 1 ? `, ${n} flows` : ''),
    { address: listed, direction: way === 'to' ? 'outbound' : 'inbound', ...(portOf ? { port: portOf } : {}) });
  }

  private found(kind: AlertKind, source: AlertPeer, destination: AlertPeer | undefined, target: string, m: ListMatch, nowMs: number,
    summary: (count: number) => string, extra: Record<string, unknown>): Finding[] | undefined {
    const key = `${kind}|${source.ip}|${target}`;
    const t = this.tracked.getOrCreate(key, () => ({ lastMs: -Infinity, count: 0 }));
    t.count++;
    if (nowMs - t.lastMs < this.o.updateMs) return undefined;
    t.lastMs = nowMs;
    return [{
      kind,
      severity: 'high',
      source,
      ...(destination && { destination }),
      target,
      summary: summary(t.count),
      evidence: { list: m.list, format: m.format, entry: m.entry, ...(m.ref && { ref: m.ref }), ...extra, count: t.count },
    }];
  }
}

/** Bytes read at a time: a list is parsed as it is read, never held whole. */
const CHUNK = 1 << 20;
/** Characters parsed between two looks at the clock (a few dozen lines: a few index growths at most). */
const PIECE = 2 << 10;
/** Parsing time between two yields of a reload (the agent's event loop waits at most about this). */
const SLICE_MS = 5;

function cannotRead(e: unknown): string {
  return `cannot read: ${(e as NodeJS.ErrnoException).code ?? String(e)}`;
}

/** A list file parsed line by line as it is read, in one go (at start-up, before flows flow). */
function readListSync(file: string, bad: BadLine): ParsedList {
  const fd = openSync(file, 'r');
  try {
    const p = new ListParser(bad);
    const buf = Buffer.allocUnsafe(CHUNK);
    for (let n; (n = readSync(fd, buf, 0, CHUNK, null)) > 0; ) p.write(buf.toString('latin1', 0, n));
    return p.end();
  } finally {
    closeSync(fd);
  }
}

/** The same, giving the event loop back every SLICE_MS of parsing (a reload while flows flow). */
async function readList(file: string, bad: BadLine): Promise<ParsedList> {
  const fh = await open(file, 'r');
  try {
    const p = new ListParser(bad);
    const buf = Buffer.allocUnsafe(CHUNK);
    let sliceStart = performance.now();
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, CHUNK, null);
      if (bytesRead === 0) break;
      const text = buf.toString('latin1', 0, bytesRead);
      // Lines, in pieces cut at newlines, each piece small enough to parse within a slice.
      for (let at = 0; at < text.length; ) {
        const end = Math.min(text.length, at + PIECE);
        const nl = end === text.length ? end : text.indexOf('\n', end);
        const stop = nl < 0 ? text.length : nl + 1;
        p.write(text.slice(at, stop));
        at = stop;
        if (performance.now() - sliceStart >= SLICE_MS) {
          await new Promise((r) => setImmediate(r));
          sliceStart = performance.now();
        }
      }
    }
    return p.end();
  } finally {
    await fh.close();
  }
}

const quiet: Logger = { info: () => {}, warn: () => {}, error: () => {} };

export const blocklist: DetectorSpec = {
  name: 'blocklist',
  help: 'queries for or answers with listed names, connections to or from listed addresses (--blocklist files)',
  options: {
    files: { kind: 'strings', default: [], help: 'lists loaded besides those of --blocklist (hosts, domains, IPs/CIDRs, Spamhaus DROP JSON, URLhaus CSV)' },
    'reload-interval': { kind: 'duration', default: BLOCKLIST_DEFAULTS.reloadMs, help: 'how often the files are checked for changes' },
    'update-interval': { kind: 'duration', default: BLOCKLIST_DEFAULTS.updateMs, help: "least time between two updates of one source's alert for one entry" },
    'max-tracked': { kind: 'count', default: BLOCKLIST_DEFAULTS.maxTracked, help: '(kind, source, entry) alerts tracked for those updates; the least recently seen is forgotten first' },
  },
  create: (c: SectionValues, ctx: DetectContext) => {
    const lists = new Blocklists([...(ctx.blocklistFiles ?? []), ...(c.files as string[])], ctx.log?.('blocklist') ?? quiet, ctx.blocklistLoaded);
    lists.load();
    if (lists.files.length) lists.start(c['reload-interval'] as number);
    return new BlocklistDetector(lists, { updateMs: c['update-interval'] as number, maxTracked: c['max-tracked'] as number }, ctx.isLocalIp);
  },
};
