// The detectors' and the alert store's metrics, read at scrape time: alerts raised by kind and
// severity, updates, and how much state each detector holds and had to forget.
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Detection } from '../detect/index.js';
import { BlocklistDetector } from '../detect/blocklist.js';

export function registerDetectMetrics(registry: Registry, detection: () => Detection | undefined): void {
  const registers = [registry];
  const seen = new Map<string, number>();
  const delta = (key: string, v: number): number => {
    const d = v - (seen.get(key) ?? 0);
    seen.set(key, v);
    return Math.max(0, d);
  };
  new Counter({
    name: 'flowctl_alerts_total', help: 'Alerts raised (not counting updates), by kind and severity at raise', labelNames: ['kind', 'severity'], registers,
    collect() {
      for (const [k, n] of detection()?.store.stats.raised ?? []) {
        const [kind, severity] = k.split('/') as [string, string];
        this.inc({ kind, severity }, delta(`raised:${k}`, n));
      }
    },
  });
  new Counter({
    name: 'flowctl_alert_updates_total', help: 'Updates of open alerts (a finding for an alert already raised)', registers,
    collect() {
      this.inc(delta('updated', detection()?.store.stats.updated ?? 0));
    },
  });
  new Counter({
    name: 'flowctl_alerts_evicted_total', help: 'Open alerts forgotten to stay within the store bound (alerts.max-alerts)', registers,
    collect() {
      this.inc(delta('evicted', detection()?.store.stats.evicted ?? 0));
    },
  });
  new Gauge({
    name: 'flowctl_alerts_held', help: 'Alerts the agent holds (open or closed, until forgotten)', registers,
    collect() {
      this.set(detection()?.store.size ?? 0);
    },
  });
  new Gauge({
    name: 'flowctl_detect_state_entries', help: "Entries of state per detector (sources, destinations), bounded by the detector's limits", labelNames: ['detector'], registers,
    collect() {
      for (const d of detection()?.detectors ?? []) this.set({ detector: d.name }, d.stateSize());
    },
  });
  new Counter({
    name: 'flowctl_detect_state_evicted_total', help: 'Entries of detector state forgotten (least recently used first) to stay within bounds', labelNames: ['detector'], registers,
    collect() {
      for (const d of detection()?.detectors ?? []) this.inc({ detector: d.name }, delta(`state:${d.name}`, d.stateEvicted?.() ?? 0));
    },
  });
  const lists = () => (detection()?.detectors.find((d) => d instanceof BlocklistDetector) as BlocklistDetector | undefined)?.lists;
  new Gauge({
    name: 'flowctl_blocklist_entries', help: 'Names and address prefixes loaded from the --blocklist files', registers,
    collect() {
      this.set(lists()?.size ?? 0);
    },
  });
  new Counter({
    name: 'flowctl_blocklist_bad_lines_total', help: 'Lines of --blocklist files skipped as neither comment nor entry (each logged with file and line)', registers,
    collect() {
      this.inc(delta('badLines', lists()?.badLines ?? 0));
    },
  });
  new Counter({
    name: 'flowctl_detect_errors_total', help: 'Flows a detector failed on (a bug; the flow still reached the other detectors)', registers,
    collect() {
      this.inc(delta('errors', detection()?.errors ?? 0));
    },
  });
}
