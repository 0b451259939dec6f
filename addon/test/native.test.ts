// The loader's failure mode: without a built .node, one clear error naming every path tried.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { addonDir } from './helpers.js';

describe('native addon loader', () => {
  it('throws one error listing the paths tried when the addon is not built', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fcl-loader-'));
    try {
      cpSync(join(addonDir, 'lib'), join(dir, 'lib'), { recursive: true });
      writeFileSync(join(dir, 'package.json'), '{"type":"module"}');
      const script = `import(${JSON.stringify(join(dir, 'lib', 'index.ts'))}).then((m) => {
        try { m.probeFeatures(); console.log('loaded?!'); } catch (e) { console.log(e.message); }
      });`;
      const out = execFileSync(process.execPath, ['--import', 'tsx', '-e', script], {
        cwd: join(addonDir, '..'),
        encoding: 'utf8',
        env: { ...process.env, FLOWCTL_BPF_ADDON: '' },
      });
      expect(out).toContain('bpf-loader: native addon not built; tried');
      expect(out).toContain(join(dir, 'build', 'Release', 'bpf_loader.node'));
      expect(out).toContain(join(dir, 'build', 'Debug', 'bpf_loader.node'));
      expect(out).toContain('make addon');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
