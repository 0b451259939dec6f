// The bench-only BPF objects (bpf/test/nop.bpf.c: an empty TC program; pad.bpf.c: one that only
// spends time), built on demand: `make build` does not build them.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const BPF_DIR = fileURLToPath(new URL('../../bpf/', import.meta.url));

/** Builds the bench objects if needed and returns the path of `name`.bpf.o. */
export function benchObject(name: 'nop' | 'pad'): string {
  execFileSync('make', ['-s', '-C', BPF_DIR, 'bench-objs'], { stdio: 'inherit' });
  return `${BPF_DIR}.output/${name}.bpf.o`;
}
