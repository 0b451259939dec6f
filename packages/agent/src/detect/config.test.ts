import { describe, expect, it } from 'vitest';
import { parseDetectConfig, parseDuration } from './config.js';
import { CONFIG_SECTIONS } from './index.js';

const parse = (text: string) => parseDetectConfig(text, 'detect.yaml', CONFIG_SECTIONS);

describe('--detect-config', () => {
  it('starts from the documented defaults and takes what the file sets', () => {
    const c = parse('port-scan:\n  ports: 30\n  window: 2m\nsyn-flood:\n  enabled: false\n');
    expect(c.get('port-scan')).toMatchObject({ ports: 30, window: 120_000, hosts: 25, enabled: true });
    expect(c.get('syn-flood')!.enabled).toBe(false);
    expect(c.get('alerts')).toMatchObject({ window: 300_000 });
    expect(parse('').get('connection-rate')).toMatchObject({ rate: 100, window: 10_000 });
  });

  it.each([
    ['port-scn:\n  ports: 3\n', /^detect\.yaml:1: unknown section "port-scn": want one of alerts, port-scan/],
    ['port-scan:\n  ports: 3\n  prots: 4\n', /^detect\.yaml:3: port-scan: unknown option "prots"/],
    ['port-scan:\n  ports: 1.5\n', /^detect\.yaml:2: port-scan\.ports: want a whole number of at least 1, got 1\.5$/],
    ['alerts:\n\n  window: soon\n', /^detect\.yaml:3: alerts\.window: want a duration such as 500ms, 10s or 5m, got "soon"$/],
    ['syn-flood:\n  enabled: yes please\n', /^detect\.yaml:2: syn-flood\.enabled: want true or false/],
    ['- port-scan\n', /^detect\.yaml:1: want a map of detector sections$/],
    ['port-scan: [1\n', /^detect\.yaml:\d+: /],
  ])('refuses %j with file and line', (text, msg) => {
    expect(() => parse(text)).toThrow(msg);
  });

  it('reads durations as Go writes them', () => {
    expect(parseDuration('1m30s')).toBe(90_000);
    expect(parseDuration('250ms')).toBe(250);
    expect(parseDuration('5')).toBeUndefined();
    expect(parseDuration('')).toBeUndefined();
  });
});
