// The HTTP side of `flowctl ui`: the static page and two JSON endpoints over the gRPC connection.
//   GET /api/map?since=5m[&until=T][&<observe filter>...]           → {window, nodes, edges}
//   GET /api/flows?[last=N|since=T][&follow=true][&node=ID|&from=ID&to=ID][&<observe filter>...]
//       → JSON lines, the same as `flowctl observe -o json` prints, streamed while following.
// Filters are the `flowctl observe` flag names (`namespace=shop&verdict=DROPPED&not=&label=...`),
// applied in order through the same flag table, so the page and the CLI cannot disagree.
import { createReadStream } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FlowFilter } from '@flowctl/flow/gen/flow/flow';
import type { GetFlowsRequest, GetFlowsResponse } from '@flowctl/flow/gen/observer/observer';
import { CliError } from '../errors.js';
import { FILTER_FLAG_BY_NAME } from '../options/filter-flags.js';
import { FlowFilterBuilder } from '../options/flow-filter.js';
import { parseTimeFlag } from '../options/time.js';
import { buildRequest, parseUint64, type Selectors } from '../request.js';
import { classify } from '@flowctl/flow/servicemap/classify';
import { DEFAULT_MAP_SINCE } from '../map/query.js';
import type { ServiceMap } from '../map/model.js';
import { uiAssets, type Asset } from './assets.js';
import { parseListen } from './listen.js';

/** What /api/map asks for: the window as `flowctl map --since/--until` takes it, and filters. */
export interface UiMapQuery {
  since: string;
  until?: string;
  whitelist: FlowFilter[];
  blacklist: FlowFilter[];
}

export interface UiBackend {
  /** Resolves once the gRPC server answers; a CliError('server') otherwise. */
  ready(): Promise<void>;
  getFlows(req: GetFlowsRequest, signal?: AbortSignal): AsyncIterable<GetFlowsResponse>;
  map(q: UiMapQuery): Promise<ServiceMap>;
}

export interface UiServerOptions {
  /** host:port; port 0 picks a free one. */
  listen: string;
  backend: UiBackend;
  encodeResponse(r: GetFlowsResponse): string;
  now?: () => number;
}

class BadRequest extends Error {}

const SELECTORS = new Set(['last', 'first', 'all', 'follow', 'since', 'until']);
const FLOW_SCOPE = new Set(['node', 'from', 'to']);

function bool(name: string, v: string): boolean {
  if (v === '' || v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  throw new BadRequest(`invalid value "${v}" for "${name}": expected true or false`);
}

/** Query parameters → filters (observe flag names, in order) and the other parameters by name. */
function parseQuery(params: URLSearchParams, allowed: ReadonlySet<string>): { filters: ReturnType<FlowFilterBuilder['finish']>; other: Map<string, string> } {
  const builder = new FlowFilterBuilder();
  const other = new Map<string, string>();
  for (const [name, value] of params) {
    const flag = FILTER_FLAG_BY_NAME.get(name);
    if (flag) {
      if (name === 'not') builder.not();
      else if (flag.boolean) {
        if (bool(name, value)) builder.set(name, flag.setter, flag.boolean.value);
      } else builder.set(name, flag.setter, value);
    } else if (allowed.has(name)) {
      if (other.has(name)) throw new BadRequest(`parameter "${name}" given twice`);
      other.set(name, value);
    } else throw new BadRequest(`unknown parameter "${name}"`);
  }
  return { filters: builder.finish(), other };
}

function flowsRequest(params: URLSearchParams, nowMs: number): { req: GetFlowsRequest; keep: (r: GetFlowsResponse) => boolean } {
  const { filters, other } = parseQuery(params, new Set([...SELECTORS, ...FLOW_SCOPE]));
  const sel: Selectors = {};
  if (other.has('last')) sel.last = parseUint64('last', other.get('last')!);
  if (other.has('first')) sel.first = parseUint64('first', other.get('first')!);
  if (other.has('all')) sel.all = bool('all', other.get('all')!);
  if (other.has('follow')) sel.follow = bool('follow', other.get('follow')!);
  if (other.has('since')) sel.since = other.get('since')!;
  if (other.has('until')) sel.until = other.get('until')!;
  const req = buildRequest(sel, filters.whitelist, filters.blacklist, nowMs);
  const node = other.get('node');
  const from = other.get('from');
  const to = other.get('to');
  if (node !== undefined && (from !== undefined || to !== undefined)) throw new BadRequest('"node" cannot be combined with "from" or "to"');
  if ((from === undefined) !== (to === undefined)) throw new BadRequest('"from" and "to" go together: the two ends of an edge');
  for (const [k, v] of [['node', node], ['from', from], ['to', to]] as const) if (v === '') throw new BadRequest(`"${k}" must not be empty`);
  let keep = (_r: GetFlowsResponse): boolean => true;
  // Map nodes are workloads, reserved identities and address groups, which no FlowFilter field
  // names: flows are matched against the map's own client → server classification.
  if (node !== undefined) {
    keep = (r) => {
      const c = r.flow && classify(r.flow);
      return !!c && (c.client.node === node || c.server.node === node);
    };
  } else if (from !== undefined) {
    keep = (r) => {
      const c = r.flow && classify(r.flow);
      return !!c && c.client.node === from && c.server.node === to;
    };
  }
  return { req, keep };
}

function mapQuery(params: URLSearchParams, nowMs: number): UiMapQuery {
  const { filters, other } = parseQuery(params, new Set(['since', 'until']));
  const q: UiMapQuery = { since: other.get('since') ?? DEFAULT_MAP_SINCE, whitelist: filters.whitelist, blacklist: filters.blacklist };
  if (!parseTimeFlag(q.since, nowMs)) throw new BadRequest(`invalid value "${q.since}" for "since": expected a duration like 5m or an RFC3339 time`);
  const until = other.get('until');
  if (until !== undefined) {
    if (!parseTimeFlag(until, nowMs)) throw new BadRequest(`invalid value "${until}" for "until": expected a duration like 1m or an RFC3339 time`);
    q.until = until;
  }
  return q;
}

function oneLine(res: ServerResponse, code: number, msg: string): void {
  res.writeHead(code, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
  res.end(`${msg.replace(/\s*\n\s*/g, ' ')}\n`);
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|localhost|::1)$/;

export class UiServer {
  private readonly server: Server;
  private readonly assets: Map<string, Asset>;
  private readonly streams = new Set<AbortController>();
  private allowedHosts: Set<string> | undefined;

  constructor(private readonly opts: UiServerOptions) {
    this.assets = uiAssets();
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((e: unknown) => {
        if (!res.headersSent) oneLine(res, 500, `internal error: ${(e as Error).message}`);
        else res.destroy();
      });
    });
  }

  /** Starts listening; resolves with the page's URL. */
  async start(): Promise<string> {
    const { host, port } = parseListen(this.opts.listen);
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', (e: NodeJS.ErrnoException) =>
        reject(new CliError('usage', `--listen ${this.opts.listen}: ${e.code === 'EADDRINUSE' ? 'address already in use' : e.message}`)),
      );
      this.server.listen(port, host, () => resolve());
    });
    const bound = (this.server.address() as AddressInfo).port;
    const shown = host.includes(':') ? `[${host}]` : host;
    // Bound to loopback, a page from another origin must not reach the API through a rebound DNS name.
    if (LOOPBACK.test(host)) this.allowedHosts = new Set([`127.0.0.1:${bound}`, `localhost:${bound}`, `[::1]:${bound}`, `${shown}:${bound}`]);
    return `http://${shown}:${bound}/`;
  }

  async close(): Promise<void> {
    for (const c of this.streams) c.abort();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (this.allowedHosts && !this.allowedHosts.has(req.headers.host ?? '')) return oneLine(res, 403, `host "${req.headers.host ?? ''}" not allowed`);
    if (req.method !== 'GET' && req.method !== 'HEAD') return oneLine(res, 405, `method ${req.method} not allowed`);
    const url = new URL(req.url ?? '/', 'http://ui');
    const asset = this.assets.get(url.pathname === '/index.html' ? '/' : url.pathname);
    if (asset) {
      res.writeHead(200, { 'content-type': asset.type, 'cache-control': 'no-cache' });
      if (req.method === 'HEAD') return void res.end();
      createReadStream(asset.file).on('error', () => res.destroy()).pipe(res);
      return;
    }
    const now = this.opts.now?.() ?? Date.now();
    try {
      if (url.pathname === '/api/map') return await this.map(mapQuery(url.searchParams, now), res);
      if (url.pathname === '/api/flows') return await this.flows(flowsRequest(url.searchParams, now), res);
    } catch (e) {
      if (e instanceof BadRequest || (e instanceof CliError && e.code !== 'server')) return oneLine(res, 400, e.message);
      if (e instanceof CliError) return oneLine(res, 502, e.message);
      throw e;
    }
    oneLine(res, 404, `no such page: ${url.pathname}`);
  }

  private abortOnClose(res: ServerResponse): AbortController {
    const c = new AbortController();
    this.streams.add(c);
    res.on('close', () => {
      c.abort();
      this.streams.delete(c);
    });
    return c;
  }

  private async map(q: UiMapQuery, res: ServerResponse): Promise<void> {
    const m = await this.opts.backend.map(q);
    const body = JSON.stringify(m);
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
    res.end(body);
  }

  private async flows(x: { req: GetFlowsRequest; keep: (r: GetFlowsResponse) => boolean }, res: ServerResponse): Promise<void> {
    await this.opts.backend.ready();
    const c = this.abortOnClose(res);
    const it = this.opts.backend.getFlows(x.req, c.signal)[Symbol.asyncIterator]();
    res.writeHead(200, { 'content-type': 'application/x-ndjson; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
    res.flushHeaders();
    try {
      let next = await it.next();
      while (!next.done && !c.signal.aborted) {
        if (x.keep(next.value) && !res.write(this.opts.encodeResponse(next.value) + '\n')) {
          await new Promise<void>((resolve) => {
            res.once('drain', resolve);
            res.once('close', resolve);
          });
        }
        next = await it.next();
      }
    } catch {
      // Headers are out: a cut stream is all that can tell the page the server went away.
      return void res.destroy();
    } finally {
      await it.return?.();
    }
    res.end();
  }
}
