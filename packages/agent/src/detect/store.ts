// Findings become alerts here: one alert per (kind, source, target) and window. A finding for an
// open alert updates it (latest summary, evidence and severity) instead of raising another; an
// alert closes when no finding has touched it for the window, and the next one raises a new alert.
// Followers hear of an alert when it is raised and, at most once per publish interval, when updated.
import { createHash } from 'node:crypto';
import type { Alert } from '@flowctl/flow/gen/flowctl/alerts';
import { msToTimestamp } from '../observer/timestamp.js';
import type { AlertKind, Finding, Severity } from './detector.js';
import { wirePeer } from './peer.js';

export interface AlertStoreOptions {
  nodeName: string;
  /** An alert stays open (updated, not raised again) while findings come closer than this. */
  windowMs: number;
  /** Alerts held; past it the least recently updated one is forgotten (counted in stats.evicted). */
  maxAlerts: number;
  /** Followers get an alert's updates at most this often (every raise at once). */
  publishIntervalMs: number;
  now?: () => number;
}

export const DEFAULT_ALERT_STORE = { windowMs: 5 * 60_000, maxAlerts: 10_000, publishIntervalMs: 1000 };

interface Held {
  key: string;
  id: string;
  finding: Finding;
  raisedMs: number;
  updatedMs: number;
  updates: number;
  /** When followers last heard of it; an update due before then waits in `pending`. */
  publishedMs: number;
  /** What was done when it was raised (the responder's answer; "none" without one). */
  action: string;
}

export type AlertListener = (alert: Alert, raised: boolean) => void;

export interface AlertStoreStats {
  /** Alerts raised, by "kind/severity" at raise time. */
  raised: Map<string, number>;
  updated: number;
  /** Alerts forgotten to stay within maxAlerts. */
  evicted: number;
}

export class AlertStore {
  /** Every alert by id, least recently updated first (a Map keeps insertion order; an update re-inserts). */
  private readonly held = new Map<string, Held>();
  /** The latest alert of each (kind, source, target), open or closed. */
  private readonly latest = new Map<string, Held>();
  private readonly pending = new Set<Held>();
  private readonly listeners = new Set<AlertListener>();
  private timer: NodeJS.Timeout | undefined;
  private readonly now: () => number;
  private respond: ((f: Finding) => string) | undefined;
  readonly stats: AlertStoreStats = { raised: new Map(), updated: 0, evicted: 0 };

  constructor(private readonly opts: AlertStoreOptions) {
    this.now = opts.now ?? Date.now;
  }

  get size(): number {
    return this.held.size;
  }

  /** Called with every alert as it is raised; its answer is the alert's `action`. */
  respondWith(fn: (f: Finding) => string): void {
    this.respond = fn;
  }

  record(f: Finding, nowMs = this.now()): void {
    const key = `${f.kind}\0${f.source.ip}\0${f.target}`;
    let h = this.latest.get(key);
    if (h && nowMs - h.updatedMs > this.opts.windowMs) h = undefined;
    if (!h) {
      h = {
        key,
        id: alertId(this.opts.nodeName, f.kind, f.source.ip, f.target, nowMs),
        finding: f,
        raisedMs: nowMs,
        updatedMs: nowMs,
        updates: 0,
        publishedMs: nowMs,
        action: this.respond?.(f) ?? 'none',
      };
      this.held.set(h.id, h);
      this.latest.set(key, h);
      this.evict();
      const sk = `${f.kind}/${f.severity}`;
      this.stats.raised.set(sk, (this.stats.raised.get(sk) ?? 0) + 1);
      this.publish(h, true);
      return;
    }
    h.finding = f;
    h.updatedMs = nowMs;
    h.updates++;
    this.stats.updated++;
    this.held.delete(h.id);
    this.held.set(h.id, h);
    if (nowMs - h.publishedMs >= this.opts.publishIntervalMs) {
      this.pending.delete(h);
      h.publishedMs = nowMs;
      this.publish(h, false);
    } else {
      this.pending.add(h);
      this.timer ??= setTimeout(() => this.flush(), this.opts.publishIntervalMs).unref();
    }
  }

  /** Alerts updated at or after sinceMs (all without it), oldest update first, in their latest state. */
  list(sinceMs?: number, kinds?: ReadonlySet<string>): Alert[] {
    const out: Alert[] = [];
    for (const h of this.held.values()) {
      if (sinceMs !== undefined && h.updatedMs < sinceMs) continue;
      if (kinds?.size && !kinds.has(h.finding.kind)) continue;
      out.push(this.toAlert(h));
    }
    return out;
  }

  /** Calls `fn` for every alert raised and every update published from now on; returns the unsubscribe. */
  subscribe(fn: AlertListener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.pending.clear();
    this.listeners.clear();
  }

  private flush(): void {
    this.timer = undefined;
    const now = this.now();
    for (const h of [...this.pending]) {
      this.pending.delete(h);
      if (this.held.get(h.id) !== h) continue;
      h.publishedMs = now;
      this.publish(h, false);
    }
  }

  private publish(h: Held, raised: boolean): void {
    if (!this.listeners.size) return;
    const a = this.toAlert(h);
    for (const fn of this.listeners) fn(a, raised);
  }

  private evict(): void {
    while (this.held.size > this.opts.maxAlerts) {
      const oldest = this.held.values().next().value as Held;
      this.held.delete(oldest.id);
      if (this.latest.get(oldest.key) === oldest) this.latest.delete(oldest.key);
      this.pending.delete(oldest);
      this.stats.evicted++;
    }
  }

  private toAlert(h: Held): Alert {
    const f = h.finding;
    const a: Alert = {
      id: h.id,
      kind: f.kind,
      severity: f.severity,
      source: wirePeer(f.source),
      target: f.target,
      summary: f.summary,
      evidence: f.evidence,
      action: h.action,
      raised: msToTimestamp(h.raisedMs),
      updated: msToTimestamp(h.updatedMs),
      updates: h.updates,
      node: this.opts.nodeName,
    };
    if (f.destination) a.destination = wirePeer(f.destination);
    return a;
  }
}

function alertId(node: string, kind: AlertKind, source: string, target: string, ms: number): string {
  return createHash('sha256').update(`${node}\0${kind}\0${source}\0${target}\0${ms}`).digest('hex').slice(0, 16);
}

export const SEVERITIES: readonly Severity[] = ['low', 'medium', 'high', 'critical'];
