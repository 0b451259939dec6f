// Ring-buffer delivery rate into JavaScript, against libbpf's own C consumer in the same run.
// A writer program emits EVENTS_PER_RUN events per BPF_PROG_TEST_RUN (repeat R) into a paused
// ring; then the ring is drained (a) by ring_buffer__consume() with a counting C callback and no
// JS (the baseline), (b) by the addon's uv_poll path delivering packed batches to a JS callback,
// (c) the same with the JS callback reading every record. Median of ROUNDS rounds each.
//   pnpm exec tsx bench/ringbuf.ts
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BpfObject, forEachRecord, probeFeatures } from '../addon/lib/index.js';
import { median, progress, writeSection } from './lib/report.js';

const here = dirname(fileURLToPath(import.meta.url));
const object = join(here, '..', 'addon', 'build', 'bpf', 'loader_test.bpf.o');
const EVENTS_PER_RUN = 4000;
const REPEAT = 500;
const N = EVENTS_PER_RUN * REPEAT; // 2 M events of 16 bytes (24 in the ring)
const RING_BYTES = 64 << 20;
const ROUNDS = 7;
const PKT = Buffer.alloc(64);

const f = probeFeatures();
if (!f.privileged) {
  console.error(`*** bench/ringbuf.ts skipped: kernel refuses BPF (${f.privilegeError ?? 'unprivileged'}) ***`);
  process.exit(0);
}

const obj = BpfObject.open(object)
  .setRodata('events_per_run', EVENTS_PER_RUN)
  .setMaxEntries('events', RING_BYTES);
obj.load();
const writer = obj.program('writer');
const lost = (): bigint => obj.map('stats').lookup(Buffer.alloc(4))!.readBigUInt64LE();

type Mode = 'count' | 'iterate';
let onBatch: (batch: Buffer, count: number) => void = () => {};
const rb = obj.ringBuffer('events', (b, c) => onBatch(b, c));
rb.pause();

function fill(): number {
  const lost0 = lost();
  const t0 = process.hrtime.bigint();
  writer.testRun({ data: PKT, repeat: REPEAT });
  const dt = Number(process.hrtime.bigint() - t0) / 1e9;
  if (lost() !== lost0) throw new Error(`ring too small: ${lost() - lost0} events lost while filling`);
  return N / dt;
}

function drainC(): number {
  fill();
  const t0 = process.hrtime.bigint();
  const n = rb.discard();
  const dt = Number(process.hrtime.bigint() - t0) / 1e9;
  if (n !== N) throw new Error(`C drain got ${n} of ${N}`);
  return N / dt;
}

function drainJs(mode: Mode): Promise<{ rate: number; calls: number }> {
  fill();
  return new Promise((resolve) => {
    let got = 0;
    let calls = 0;
    let sum = 0;
    const t0 = process.hrtime.bigint();
    onBatch = (batch, count) => {
      calls++;
      if (mode === 'iterate') forEachRecord(batch, count, (b, off) => (sum += b.readUInt32LE(off)));
      got += count;
      if (got >= N) {
        const dt = Number(process.hrtime.bigint() - t0) / 1e9;
        rb.pause();
        if (got !== N) throw new Error(`JS drain got ${got} of ${N}`);
        void sum;
        resolve({ rate: N / dt, calls });
      }
    };
    rb.resume();
  });
}

const c: number[] = [], js: number[] = [], jsIter: number[] = [], callsPerEvent: number[] = [], prod: number[] = [];
for (let i = 0; i < ROUNDS; i++) {
  prod.push(fill());
  rb.discard();
  c.push(drainC());
  const a = await drainJs('count');
  js.push(a.rate);
  callsPerEvent.push(a.calls / N);
  jsIter.push((await drainJs('iterate')).rate);
  progress(`round ${i + 1}/${ROUNDS}: C ${(c.at(-1)! / 1e6).toFixed(1)} M/s, JS ${(a.rate / 1e6).toFixed(1)} M/s, JS+iterate ${(jsIter.at(-1)! / 1e6).toFixed(1)} M/s`);
}
obj.close();

const M = (x: number): string => `${(x / 1e6).toFixed(2)} M/s`;
const mc = median(c), mjs = median(js), mit = median(jsIter);
const md = `## Ring buffer → JavaScript delivery

${(N / 1e6).toFixed(1)} M events of 16 bytes, written by \`writer\` (\`addon/test/bpf/loader_test.bpf.c\`, ${EVENTS_PER_RUN} events per BPF_PROG_TEST_RUN, repeat ${REPEAT}) into a paused ${RING_BYTES >> 20} MiB ring, then drained on one core. Median of ${ROUNDS} rounds.

| consumer | events/s (median) | vs libbpf C consumer | JS calls per event |
|---|---|---|---|
| libbpf \`ring_buffer__consume()\`, counting C callback, no JS (baseline) | ${M(mc)} | 1.00 | 0 |
| addon: uv_poll wake-up → packed batch → one JS call | ${M(mjs)} | ${(mjs / mc).toFixed(2)} | ${median(callsPerEvent).toExponential(1)} |
| same, JS reads every record (\`forEachRecord\`) | ${M(mit)} | ${(mit / mc).toFixed(2)} | ${median(callsPerEvent).toExponential(1)} |

Producer (the BPF program filling the ring inside test_run): ${M(median(prod))}. Goal: ≥ 2 M events/s delivered to JS in batches (${mjs >= 2e6 ? 'met' : 'NOT met'}; with per-record reads in JS ${mit >= 2e6 ? 'met' : 'not met'}).

Reproduce: \`pnpm exec tsx bench/ringbuf.ts\` (root; needs \`make addon\`).`;
writeSection('ringbuf', md);
console.log(md);
