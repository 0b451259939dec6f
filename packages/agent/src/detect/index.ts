// The detectors the agent runs, in one list: a new detector is one line here (its options then
// appear in --detect-config and docs/alerts.md through its DetectorSpec).
import type { Flow } from '@flowctl/flow';
import { defaultConfig, type DetectConfig, type SectionSpec } from './config.js';
import type { DetectContext, Detector, DetectorSpec } from './detector.js';
import { connectionRate } from './connection-rate.js';
import { portScan } from './port-scan.js';
import { synFlood } from './syn-flood.js';
import { dnsTunnel } from './dns-tunnel.js';
import { blocklist } from './blocklist.js';
import { AlertStore, DEFAULT_ALERT_STORE } from './store.js';
import { RESPOND_SECTION } from '../respond/responder.js';

const TICK_MS = 1000;

export const DETECTORS: readonly DetectorSpec[] = [portScan, synFlood, connectionRate, dnsTunnel, blocklist];

/** The store's own section of --detect-config. */
export const ALERTS_SECTION: SectionSpec = {
  name: 'alerts',
  help: 'how findings become alerts',
  options: {
    window: { kind: 'duration', default: DEFAULT_ALERT_STORE.windowMs, help: 'an alert is updated, not raised again, while findings come closer than this' },
    'max-alerts': { kind: 'count', default: DEFAULT_ALERT_STORE.maxAlerts, help: 'alerts held; the least recently updated is forgotten first' },
    'publish-interval': { kind: 'duration', default: DEFAULT_ALERT_STORE.publishIntervalMs, help: "followers get an alert's updates at most this often" },
  },
};

export const CONFIG_SECTIONS: readonly SectionSpec[] = [ALERTS_SECTION, ...DETECTORS, RESPOND_SECTION];

/** The enabled detectors feeding one alert store. */
export class Detection {
  readonly store: AlertStore;
  readonly detectors: Detector[] = [];
  /** Flows a detector threw on (a detector bug; the flow still reaches the others). */
  errors = 0;
  private readonly ticker: NodeJS.Timeout;

  constructor(ctx: DetectContext, config: DetectConfig = defaultConfig(CONFIG_SECTIONS), specs: readonly DetectorSpec[] = DETECTORS, now?: () => number) {
    const a = config.get('alerts') ?? defaultConfig([ALERTS_SECTION]).get('alerts')!;
    this.store = new AlertStore({
      nodeName: ctx.nodeName,
      windowMs: a.window as number,
      maxAlerts: a['max-alerts'] as number,
      publishIntervalMs: a['publish-interval'] as number,
      ...(now && { now }),
    });
    for (const spec of specs) {
      const c = config.get(spec.name) ?? defaultConfig([spec]).get(spec.name)!;
      if (c.enabled !== false) this.detectors.push(spec.create(c, ctx));
    }
    this.ticker = setInterval(() => this.tick((now ?? Date.now)()), TICK_MS).unref();
  }

  /** Lets detectors send the updates their intervals held back (a scan that stopped, a flood's last second). */
  tick(nowMs: number): void {
    for (const d of this.detectors) {
      let found;
      try {
        found = d.tick?.(nowMs);
      } catch {
        this.errors++;
        continue;
      }
      if (found) for (const f of found) this.store.record(f, nowMs);
    }
  }

  observe(flow: Flow, nowMs: number): void {
    const ds = this.detectors;
    for (let i = 0; i < ds.length; i++) {
      let found;
      try {
        found = ds[i]!.observe(flow, nowMs);
      } catch {
        this.errors++;
        continue;
      }
      if (found) for (const f of found) this.store.record(f, nowMs);
    }
  }

  close(): void {
    clearInterval(this.ticker);
    for (const d of this.detectors) d.close?.();
    this.store.close();
  }
}
