import { Writable } from 'node:stream';
import { expect, it } from 'vitest';
import { BufferedSink } from './terminal.js';

// A stdout stand-in that writes each chunk at once, like a file, or later, like a full pipe: it
// keeps the chunks by reference and reads them at the end, so a reused buffer would show.
function target(later: boolean) {
  const chunks: Buffer[] = [];
  const copies: Buffer[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk);
      copies.push(Buffer.from(chunk));
      if (later) setImmediate(cb);
      else cb();
    },
  });
  return { stream, text: () => Buffer.concat(later ? chunks : copies).toString('utf8') };
}

it.each([false, true])('writes strings and runs of lines of any size in order (written later: %s)', async (later) => {
  const t = target(later);
  const sink = new BufferedSink(t.stream, 16);
  const run = Buffer.from('x{"a":1}\n{"b":"é"}\n{"c":3}y');
  let want = '';
  for (let i = 0; i < 20; i++) {
    const s = `line ${i} ü\n`;
    sink.write(s);
    want += s;
    // Every sub-run, from empty to longer than the buffer.
    const a = i % 5, b = run.length - 1 - (i % 3) * 4;
    sink.writeLine(run, a, b);
    want += run.toString('utf8', a, b) + '\n';
  }
  sink.write('x'.repeat(40));
  want += 'x'.repeat(40);
  sink.flush();
  await new Promise<void>((r) => t.stream.end(r));
  expect(t.text()).toBe(want);
});
