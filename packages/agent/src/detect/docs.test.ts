// docs/alerts.md documents every --detect-config option with the default the code uses, and
// docs/alerts.rules.yml is valid for Prometheus and fires on a raised alert.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { formatDuration } from './config.js';
import { CONFIG_SECTIONS } from './index.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');
const RULES = join(ROOT, 'docs', 'alerts.rules.yml');

describe('docs/alerts.md and docs/alerts.rules.yml', () => {
  it('lists every detect-config option with its default', () => {
    const doc = readFileSync(join(ROOT, 'docs', 'alerts.md'), 'utf8');
    for (const s of CONFIG_SECTIONS) {
      for (const [name, o] of Object.entries(s.options)) {
        const shown = o.kind === 'duration' ? formatDuration(o.default as number) : String(o.default);
        expect(doc, `${s.name}.${name}`).toContain(`| \`${s.name}\` | \`${name}\` | \`${shown}\` | ${o.help} |`);
      }
    }
  });

  it('has rules promtool accepts, which fire on a port-scan alert', () => {
    expect(execFileSync('promtool', ['check', 'rules', RULES], { encoding: 'utf8' })).toMatch(/SUCCESS: \d+ rules found/);
    const dir = mkdtempSync(join(tmpdir(), 'flowctl-rules-'));
    try {
      writeFileSync(join(dir, 'test.yml'), `rule_files: [${JSON.stringify(RULES)}]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'flowctl_alerts_total{instance="node-1",kind="port-scan",severity="high"}'
        values: '0 0 1 1 1 1 1 1 1 1'
      - series: 'flowctl_alerts_total{instance="node-1",kind="syn-flood",severity="high"}'
        values: '0 0 0 0 0 0 0 0 0 0'
    alert_rule_test:
      - eval_time: 3m
        alertname: FlowctlPortScan
        exp_alerts:
          - exp_labels: { instance: node-1, severity: warning }
            exp_annotations:
              summary: "Port scan seen by flowctl on node-1"
              description: "1 port-scan alert(s) (high) in the last 5 minutes. See \`flowctl alerts --kind port-scan --since 10m\`."
      - eval_time: 3m
        alertname: FlowctlSynFlood
        exp_alerts: []
`);
      expect(execFileSync('promtool', ['test', 'rules', join(dir, 'test.yml')], { encoding: 'utf8' })).toMatch(/SUCCESS/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
