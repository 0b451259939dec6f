// The C layouts of bpf/flowctl.h and conn.bpf.h as the compiler lays them out: abi_layout.c built
// for the host and run once. The host compiler lays them out as clang -target bpf does: both are
// LP64 little-endian with natural alignment, and the headers have explicit padding.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface CLayout {
  [struct: string]: Record<string, number>;
}

let cached: { layout: CLayout; sample: Buffer } | undefined;

/** Every struct's sizeof/offsetof, `constants`, `conn_state` (FLOWCTL_STATE_* bits) and a sample flow_event. */
export function cLayout(): { layout: CLayout; sample: Buffer } {
  if (cached) return cached;
  const dir = mkdtempSync(join(tmpdir(), 'fcd-abi-'));
  try {
    const exe = join(dir, 'abi_layout');
    execFileSync('cc', ['-Wall', '-Werror', '-o', exe, fileURLToPath(new URL('./abi_layout.c', import.meta.url))]);
    const out = JSON.parse(execFileSync(exe, { encoding: 'utf8' })) as CLayout & { sample: string };
    const sample = Buffer.from(out.sample as unknown as string, 'hex');
    cached = { layout: out, sample };
    return cached;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
