// `flowctl ui` end to end (issue 24): the demo cluster (real agents, kernel programs, traffic and
// relay), `flowctl ui` as a process against the relay, the page in Debian's headless chromium.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, type Browser } from './chromium.js';
import { waitFor } from '../policy/lab.js';
import { ROOT, DEMO, FLOWCTL } from './paths.js';

const run = promisify(execFile);
const RELAY = '127.0.0.1:14248';
// Its own prefix: the default (fcx) is the user's `make demo-up`, which `demo.sh up` would tear down.
const env = { ...process.env, FLOWCTL_DEMO_PREFIX: 'fcu', FLOWCTL_DEMO_DIR: '/run/flowctl-ui-e2e', FLOWCTL_DEMO_RELAY: RELAY, FLOWCTL_SERVER: RELAY };

interface Resp { flow?: Record<string, any> }
interface MapEdge { source: string; destination: string; port: number; protocol: string; flows: number; drops: number; drop_reasons: Record<string, number>; http_errors: number }
interface ServiceMap { nodes: { id: string; namespace?: string }[]; edges: MapEdge[] }

async function observe(...args: string[]): Promise<string[]> {
  const { stdout } = await run(FLOWCTL, ['observe', '-o', 'json', ...args], { env, maxBuffer: 256 << 20, timeout: 60_000 });
  return stdout.split('\n').filter((l) => l.trim() !== '');
}

/** Polls every half second (each poll runs the CLI) until `fn` gives a value. */
const eventually = <T>(what: string, fn: () => Promise<T | undefined>, ms = 30_000): Promise<T> =>
  waitFor(what, async () => {
    const v = await fn();
    if (v === undefined) await new Promise((r) => setTimeout(r, 500));
    return v;
  }, ms);

const isRoot = process.getuid?.() === 0;
const built = existsSync(join(ROOT, 'packages', 'agent', 'dist', 'main.js')) && existsSync(join(ROOT, 'packages', 'cli', 'dist', 'bin.js'));

const INTRUDER = 'default/intruder';
const ORDER = 'shop/order-service';
const GATEWAY = 'shop/api-gateway';
const COREDNS = 'kube-system/coredns';

describe.skipIf(!isRoot)('flowctl ui in a real browser, against the demo cluster', () => {
  let ui: ChildProcess | undefined;
  let url = '';
  let browser: Browser | undefined;
  let page: Page;

  /** The rows of the flow table once the (non-live) stream has ended. */
  async function tableRows(): Promise<string[][]> {
    await page.waitForFunction(() => (window as any).flowctlUi.flowsDone === true, null, { timeout: 30_000 });
    return page.$$eval('#flows-table tbody tr', (trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((c) => c.textContent ?? '')));
  }

  beforeAll(async () => {
    if (!built) throw new Error('flowctl is not built: run `make build` (make test does) before the e2e tests');
    await run(DEMO, ['up'], { env, timeout: 120_000 });
    // The intruder's attempts are the slowest signal (one every 2 s), the 500s come every few requests.
    await eventually('a dropped intruder flow through the relay', async () =>
      (await observe('--verdict', 'DROPPED', '--from-pod', 'default/intruder', '--last', '1')).length ? true : undefined, 90_000);
    await eventually('an HTTP 500 through the relay', async () => ((await observe('--http-status', '500', '--last', '1')).length ? true : undefined), 60_000);
    ui = spawn(FLOWCTL, ['ui', '--server', RELAY, '--listen', '127.0.0.1:0'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    url = await new Promise<string>((res, rej) => {
      let out = '';
      ui!.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /serving (http:\/\/\S+)/.exec(out);
        if (m) res(m[1]!);
      });
      ui!.on('close', (code) => rej(new Error(`flowctl ui exited with ${code}`)));
    });
    browser = await launchChromium();
    page = await browser.context.newPage();
    await page.goto(url);
  }, 330_000);

  afterAll(async () => {
    await browser?.close();
    ui?.kill('SIGINT');
    await run(DEMO, ['down'], { env, timeout: 60_000 }).catch((err: unknown) => {
      process.stderr.write(`demo down failed: ${String(err)}\n`);
    });
  }, 90_000);

  it('draws the services of every namespace, grouped by namespace, and lists them in tables', async () => {
    // The first map may predate the first 500 or drop: refresh until both edges are there.
    const map = await eventually('the map with the denied and the failing edges', async () => {
      await page.click('#refresh');
      const m = (await page.evaluate(async () => (await fetch('/api/map?since=5m')).json())) as ServiceMap;
      const denied = m.edges.find((e) => e.source === INTRUDER && e.destination === ORDER && e.port === 8080);
      const failing = m.edges.find((e) => e.source === GATEWAY && e.destination === ORDER && e.http_errors > 0);
      return denied?.drops && failing ? m : undefined;
    });
    await page.waitForFunction((n) => (window as any).flowctlUi.state.map?.edges.length >= n && (window as any).flowctlUi.renders > 0, map.edges.length);
    const drawn = await page.evaluate(() => {
      const cy = (window as any).flowctlUi.cy;
      return {
        nodes: cy.nodes().map((n: any) => ({ id: n.id(), parent: n.data('parent') ?? null, classes: n.classes().join(' ') })),
        edges: cy.edges().map((e: any) => ({ from: e.data('from'), to: e.data('to'), kind: e.data('kind'), color: e.style('line-color') })),
      };
    });
    const parentOf = (id: string) => drawn.nodes.find((n: { id: string }) => n.id === id)?.parent;
    for (const id of [GATEWAY, ORDER]) expect(parentOf(id)).toBe('ns\u0000shop');
    expect(drawn.nodes.some((n: { id: string; parent: string }) => n.id.startsWith('shop/payment-service') && n.parent === 'ns\u0000shop')).toBe(true);
    expect(parentOf(COREDNS)).toBe('ns\u0000kube-system');
    expect(parentOf(INTRUDER)).toBe('ns\u0000default');
    const denied = drawn.edges.find((e: { from: string; to: string }) => e.from === INTRUDER && e.to === ORDER);
    expect(denied).toMatchObject({ kind: 'drops', color: 'rgb(209,36,47)' });
    expect(drawn.edges.find((e: { from: string; to: string }) => e.from === GATEWAY && e.to === ORDER)?.kind).toBe('errors');

    // The tables list the same nodes and every edge of the map.
    const rows = await page.$$eval('#nodes-table tbody tr', (trs) => trs.map((tr) => (tr as HTMLElement).dataset.id));
    const state = (await page.evaluate(() => (window as any).flowctlUi.state.map)) as ServiceMap;
    expect(rows).toEqual(state.nodes.map((n) => n.id));
    expect(drawn.nodes.filter((n: { classes: string }) => n.classes !== 'namespace').map((n: { id: string }) => n.id).sort()).toEqual([...rows].sort());
    const edgeRows = await page.$$eval('#edges-table tbody tr', (trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((c) => c.textContent)));
    expect(edgeRows).toHaveLength(state.edges.length);
    const deniedRow = edgeRows.find((r) => r[0] === INTRUDER && r[1] === ORDER && r[2] === '8080');
    expect(deniedRow![3]).toBe('TCP');
    expect(Number(deniedRow![8])).toBeGreaterThan(0);
    expect(deniedRow![9]).toMatch(/^POLICY_DENIED: \d+$/);
  });

  it('a click on an edge shows that edge\'s flows, a click on a node the node\'s', async () => {
    await page.uncheck('#live');
    const clickAt = async (what: 'edge' | 'node', from: string, to?: string) => {
      const p = await page.evaluate(([w, a, b]) => {
        const cy = (window as any).flowctlUi.cy;
        const el = w === 'edge' ? cy.edges().filter((e: any) => e.data('from') === a && e.data('to') === b)[0] : cy.$id(a);
        return w === 'edge' ? el.renderedMidpoint() : el.renderedPosition();
      }, [what, from, to] as const);
      const box = (await page.locator('#map').boundingBox())!;
      await page.mouse.click(box.x + p.x, box.y + p.y);
    };
    await clickAt('edge', INTRUDER, ORDER);
    await expect.poll(() => page.textContent('#scope')).toContain(`from ${INTRUDER} to ${ORDER}`);
    const rows = await tableRows();
    expect(rows.length).toBeGreaterThan(0);
    for (const r of rows) {
      const ends = [r[2], r[3]];
      expect(ends.some((x) => x!.startsWith('default/intruder-'))).toBe(true);
      expect(ends.some((x) => x!.startsWith('shop/order-service-'))).toBe(true);
    }
    expect(rows.some((r) => r[4] === 'DROPPED')).toBe(true);

    await clickAt('node', COREDNS);
    await expect.poll(() => page.textContent('#scope')).toContain(`of ${COREDNS}`);
    const dnsRows = await tableRows();
    expect(dnsRows.length).toBeGreaterThan(0);
    for (const r of dnsRows) expect([r[2], r[3]].some((x) => x!.startsWith('kube-system/coredns-'))).toBe(true);
    await page.click('#scope button');
    await expect.poll(() => page.textContent('#scope')).toBe('');
  });

  it('a filter narrows the table, and the download is the JSON of `flowctl observe -o json`', async () => {
    const all = await tableRows();
    expect(all.length).toBeGreaterThan(0);
    await page.selectOption('#flow-filters select[name=verdict]', 'DROPPED');
    await expect.poll(async () => (await tableRows()).every((r) => r[4] === 'DROPPED')).toBe(true);
    const dropped = await tableRows();
    expect(dropped.length).toBeGreaterThan(0);
    expect(dropped.length).toBeLessThan(all.length);
    expect(all.filter((r) => r[4] !== 'DROPPED').length).toBeGreaterThan(0);

    // Filters that cannot go together are refused with the CLI's one-line message.
    await page.fill('#flow-filters input[name=namespace]', 'shop');
    await page.fill('#flow-filters input[name=pod]', 'default/intruder');
    await page.click('#flow-filters button[type=submit]');
    await expect.poll(() => page.textContent('#flows-status')).toBe('flows: invalid argument "default/intruder" for "--pod" flag: filters --namespace and --pod cannot be combined');
    await page.fill('#flow-filters input[name=namespace]', '');
    await page.click('#flow-filters button[type=submit]');
    await expect.poll(async () => (await tableRows()).every((r) => r[2]!.startsWith('default/intruder-') && r[4] === 'DROPPED')).toBe(true);
    const shown = await tableRows();
    expect(shown.length).toBeGreaterThan(0);

    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
    expect(download.suggestedFilename()).toBe('flows.jsonl');
    const text = readFileSync((await download.path())!, 'utf8');
    const lines = text.split('\n').filter(Boolean);
    expect(text.endsWith('\n')).toBe(true);
    expect(lines).toHaveLength(shown.length);
    // The same flows, byte for byte, as the CLI prints them with the same filters.
    const cli = await observe('--verdict', 'DROPPED', '--pod', 'default/intruder', '--last', '2000');
    const byUuid = new Map(cli.map((l) => [(JSON.parse(l) as Resp).flow!.uuid as string, l]));
    for (const l of lines) {
      const uuid = (JSON.parse(l) as Resp).flow!.uuid as string;
      expect(byUuid.get(uuid)).toBe(l);
    }
  });

  it('hides a node from the map and shows it again', async () => {
    await page.click('#refresh');
    const box = page.locator(`#nodes-table tr[data-id="${COREDNS}"] input[type=checkbox]`);
    await box.uncheck();
    await expect.poll(() => page.evaluate((id) => (window as any).flowctlUi.cy.$id(id).length, COREDNS)).toBe(0);
    expect(await page.evaluate((id) => (window as any).flowctlUi.cy.edges().filter((e: any) => e.data('to') === id).length, COREDNS)).toBe(0);
    await expect.poll(() => page.textContent('#hidden-list')).toContain(COREDNS);
    await page.click(`#hidden-list button`);
    await expect.poll(() => page.evaluate((id) => (window as any).flowctlUi.cy.$id(id).length, COREDNS)).toBe(1);
  });
});
