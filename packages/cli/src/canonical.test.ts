import { readFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import * as json from '@flowctl/flow/json';
import { makeCorpus } from '@flowctl/flow/testing';
import { CanonicalLines, ENUM_FIELDS } from './canonical.js';
import { observeFile, type InputFileStats, type InputItem } from './input-file.js';
import { ROOT } from './e2e/helpers.js';

// The messages (by simple name) and enums of the flow, observer and relay protos.
function readProtos() {
  const text = ['flow/flow.proto', 'observer/observer.proto', 'relay/relay.proto']
    .map((f) => readFileSync(join(ROOT, 'proto', f), 'utf8').replace(/\/\/.*$/gm, ''))
    .join('\n');
  const enums = new Set([...text.matchAll(/\benum\s+(\w+)\s*\{/g)].map((m) => m[1]!));
  const fields = new Map<string, { type: string; fullType: string; name: string }[]>();
  const stack: (string | null)[] = [];
  for (const line of text.split('\n')) {
    let m = /^\s*(message|enum|oneof)\s+(\w+)\s*\{/.exec(line);
    if (m) {
      if (m[1] === 'message') {
        stack.push(m[2]!);
        if (!fields.has(m[2]!)) fields.set(m[2]!, []);
      } else stack.push(m[1] === 'oneof' ? (stack.at(-1) ?? null) : null);
      continue;
    }
    if (/^\s*\}/.test(line)) {
      stack.pop();
      continue;
    }
    const cur = stack.at(-1);
    m = /^\s*(?:repeated\s+|optional\s+)?([\w.]+)\s+(\w+)\s*=\s*\d+/.exec(line);
    if (cur && m) fields.get(cur)!.push({ type: m[1]!.split('.').pop()!, fullType: m[1]!, name: m[2]! });
  }
  return { enums, fields };
}

// `parent.field` for every enum field, derived from the .proto files the way ENUM_FIELDS was.
function enumFieldsFromProto(): string[] {
  const camel = (n: string) => n.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
  const { enums, fields } = readProtos();
  const out = new Set<string>();
  for (const [msg, fs] of fields) {
    for (const f of fs) {
      if (!enums.has(f.type)) continue;
      const parents = new Set<string>(msg === 'GetFlowsResponse' ? [''] : []);
      for (const [, gs] of fields) for (const g of gs) if (g.type === msg) parents.add(g.name).add(camel(g.name));
      for (const p of parents) for (const k of [f.name, camel(f.name)]) out.add(`${p}.${k}`);
    }
  }
  return [...out].sort();
}

const roundTrip = (line: string): string | undefined => {
  try {
    const r = json.decodeResponse(line);
    return r.flow && !r.lost_events && !r.node_status ? json.encodeResponse(r) : undefined;
  } catch {
    return undefined;
  }
};

const corpus = makeCorpus(3000, 7, { clusterPrefix: true })
  .filter((r) => r.flow)
  .map((r) => json.encodeResponse(r));

// Each edit turns a canonical line into one that decodes to the same or a nearby flow, often in
// a shape already seen: the shortcut must never accept one that does not re-encode to itself.
const EDITS: ((l: string) => string)[] = [
  (l) => l.replace('"verdict":"FORWARDED"', '"verdict":"VERDICT_UNKNOWN"'),
  (l) => l.replace('"verdict":"FORWARDED"', '"verdict":1'),
  (l) => l.replace('"verdict":"FORWARDED"', '"verdict":"DROPPED"'),
  (l) => l.replace('"verdict":"DROPPED"', '"verdict":"BOGUS"'),
  (l) => l.replace(/"identity":(\d+)/, '"identity":0'),
  (l) => l.replace(/"identity":(\d+)/, '"identity":"$1"'),
  (l) => l.replace(/"identity":(\d+)/, '"identity":$1.0'),
  (l) => l.replace(/"identity":(\d+)/, '"identity":-$1'),
  (l) => l.replace(/"identity":(\d+)/, '"identity":0$1'),
  (l) => l.replace(/"ID":(\d+)/, '"ID":12345678901'),
  (l) => l.replace(/"source_port":(\d+)/, '"source_port": $1'),
  (l) => l.replace(/"source_port":(\d+)/, '"sourcePort":$1'),
  (l) => l.replace(/"time":"([^"]+)\.(\d+)Z"/, '"time":"$1.$2000Z"'),
  (l) => l.replace(/"time":"([^"]+)\.(\d+)Z"/, '"time":"$1.000Z"'),
  (l) => l.replace(/"time":"([^"]+)\.(\d+)Z"/, '"time":"$1.$2+00:00"'),
  (l) => l.replace(/"time":"(\d{4})-\d\d-\d\d/, '"time":"$1-02-30'),
  (l) => l.replace(/"time":"(\d{4})-\d\d-\d\dT\d\d/, '"time":"$1-05-01T24'),
  (l) => l.replace('"namespace":"s', '"namespace":"\\u0073'),
  (l) => l.replace(/"namespace":"([a-z]+)"/, '"namespace":"$1\\/x"'),
  (l) => l.replace(/"namespace":"([a-z]+)"/, '"namespace":"$1<x"'),
  (l) => l.replace(/"namespace":"([a-z]+)"/, '"namespace":"$1\\u003cx"'),
  (l) => l.replace(/"namespace":"([a-z]+)"/, '"namespace":"$1\\u003Cx"'),
  (l) => l.replace(/"namespace":"([a-z]+)"/, '"namespace":"$1\\u00e9"'),
  (l) => l.replace(/"namespace":"([a-z]+)"/, '"namespace":"$1é"'),
  (l) => l.replace(/"namespace":"([a-z]+)"/, '"namespace":"$1\u2028"'),
  (l) => l.replace(/"namespace":"([a-z]+)"/, '"namespace":"$1\\u2028"'),
  (l) => l.replace(/"namespace":"([a-z]+)"/, '"namespace":"$1\\t"'),
  (l) => l.replace(/"namespace":"([a-z]+)"/, '"namespace":"$1\t"'),
  (l) => l.replace(/"namespace":"([a-z]+)"/, '"namespace":""'),
  (l) => l.replace(/"namespace":"([a-z]+)"/, '"namespace":null'),
  (l) => l.replace(/"namespace":"([a-z]+)"/, '"namespace":"$1","namespace":"x"'),
  (l) => l.replace(/"namespace":"([a-z]+)"/, '"namespace":"$1","nonsense":"x"'),
  (l) => l.replace(/"namespace":"([a-z]+)"/, '"namespace":"$1","@type":"x"'),
  (l) => l.replace('"is_reply":false', '"is_reply":true'),
  (l) => l.replace('"is_reply":false', '"is_reply":null'),
  (l) => l.replace('"Type":"L3_L4"', '"Type":"L7"'),
  (l) => l.replace('"Type":"L3_L4"', '"Type":2'),
  (l) => l.replace('"ipVersion":"IPv4"', '"ipVersion":"IP_NOT_USED"'),
  (l) => l.replace('"ipVersion":"IPv4"', '"ip_version":"IPv4"'),
  (l) => l.replace(/"type":(\d+)\}/, '"type":0}'),
  (l) => l.replace(/"latency_ns":"(\d+)"/, '"latency_ns":$1'),
  (l) => l.replace(/"latency_ns":"(\d+)"/, '"latency_ns":"0"'),
  (l) => l.replace(/"latency_ns":"(\d+)"/, '"latency_ns":"-$1"'),
  (l) => l.replace(/"latency_ns":"(\d+)"/, '"latency_ns":"0$1"'),
  (l) => l.replace(/"latency_ns":"(\d+)"/, '"latency_ns":"18446744073709551616"'),
  (l) => l.replace(/"labels":\[/, '"labels":["",'),
  (l) => l.replace(/"labels":\["[^"]*",?/, '"labels":['),
  (l) => l.replace(/\{"flow":/, '{"lost_events":{"num_events_lost":"1"},"flow":'),
  (l) => l.replace(/,"time":"[^"]+"\}$/, '}'),
  (l) => l.replace(/\}$/, ' }'),
  (l) => l.replace(/\}$/, '}\r'),
  (l) => l.replace(/\}$/, '}}'),
  (l) => l.slice(0, -1),
];

describe('CanonicalLines', () => {
  it('ENUM_FIELDS names every enum field of the protos', () => {
    expect([...ENUM_FIELDS].sort()).toEqual(enumFieldsFromProto());
  });

  it('relies on no field type outside its value classes (no float, bytes, Duration, FieldMask, Struct)', () => {
    const { enums, fields } = readProtos();
    const scalars = new Set(['int32', 'uint32', 'sint32', 'fixed32', 'sfixed32', 'int64', 'uint64', 'sint64', 'fixed64', 'sfixed64', 'bool', 'string']);
    const wellKnown = new Set(['Timestamp', 'Any', 'BoolValue', 'Int32Value', 'UInt32Value', 'Int64Value', 'UInt64Value', 'StringValue']);
    const seen = new Set<string>();
    const bad: string[] = [];
    const visit = (msg: string) => {
      if (seen.has(msg)) return;
      seen.add(msg);
      for (const f of fields.get(msg)!) {
        if (fields.has(f.type)) visit(f.type);
        else if (!scalars.has(f.fullType) && !enums.has(f.type) && !(f.fullType.startsWith('google.protobuf.') && wellKnown.has(f.type))) {
          bad.push(`${msg}.${f.name}: ${f.fullType}`);
        }
      }
    };
    visit('GetFlowsResponse');
    expect(seen.size).toBeGreaterThan(20);
    expect(bad).toEqual([]);
  });

  it('accepts the encoder output, checking few shapes with the codec', () => {
    const c = new CanonicalLines(json);
    for (const l of corpus) expect(c.isCanonical(Buffer.from(l + '\n'), 0, Buffer.byteLength(l))).toBe(true);
    expect(c.misses).toBeLessThan(corpus.length / 3);
  });

  it('never accepts a line that decode + encode would change, whatever shapes it saw before', () => {
    const c = new CanonicalLines(json);
    for (const l of corpus) c.isCanonical(Buffer.from(l), 0, Buffer.byteLength(l));
    let accepted = 0;
    let changed = 0;
    for (const edit of EDITS) {
      for (const l of corpus.slice(0, 300)) {
        const m = edit(l);
        if (m === l) continue;
        const want = roundTrip(m) === m;
        const got = c.isCanonical(Buffer.from(m), 0, Buffer.byteLength(m));
        if (got !== want) expect({ edit: edit.toString(), line: m, got }).toEqual({ edit: edit.toString(), line: m, got: want });
        if (got) accepted++;
        else changed++;
      }
    }
    // The edits produce both kinds: accepted (another valid flow) and refused ones.
    expect(accepted).toBeGreaterThan(100);
    expect(changed).toBeGreaterThan(1000);
  });

  it('refuses invalid UTF-8 and bytes after the line', () => {
    const c = new CanonicalLines(json);
    const l = corpus[0]!;
    expect(c.isCanonical(Buffer.from(l), 0, Buffer.byteLength(l))).toBe(true);
    // Only the line counts, whatever follows it in the buffer.
    const b = Buffer.from(l.slice(0, -1) + '}}');
    expect(c.isCanonical(b, 0, b.length - 2)).toBe(false);
  });
});

describe('observeFile with the pass-through', () => {
  const dir = mkdtempSync(join(tmpdir(), 'flowctl-canonical-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  async function run(text: string | Buffer, number: bigint, first = false) {
    const file = join(dir, 'f.json');
    writeFileSync(file, text);
    const warnings: string[] = [];
    const c = new CanonicalLines(json);
    const print = (items: InputItem[]) =>
      items.map((r) => (Buffer.isBuffer(r) ? r.toString('utf8') : json.encodeResponse(r)) + '\n').join('');
    const stats: InputFileStats = { lines: 0, invalid: 0, passedThrough: 0 };
    let fast = '';
    for await (const b of observeFile(file, { number, first }, json, () => true, (m) => warnings.push(m), {
      stats,
      passthrough: (buf, s, e) => c.isCanonical(buf, s, e),
    })) {
      fast += print(b);
    }
    let slow = '';
    const slowWarnings: string[] = [];
    for await (const b of observeFile(file, { number, first }, json, () => true, (m) => slowWarnings.push(m))) slow += print(b);
    return { fast, slow, warnings, slowWarnings, stats };
  }

  it('prints what decode + encode prints, for canonical, other, blank, invalid and lost-event lines', async () => {
    const lines = corpus.slice(0, 400).map((l, i) => (i % 7 === 3 ? EDITS[i % EDITS.length]!(l) : l));
    lines.splice(10, 0, '', '   ', '{"flow":', '{"lost_events":{"num_events_lost":"3"}}');
    const text = Buffer.concat([Buffer.from(lines.join('\n') + '\n'), Buffer.from([0x7b, 0xff, 0x7d, 0x0a]), Buffer.from(corpus[5]!)]);
    for (const [number, first] of [[2n ** 64n - 1n, false], [20n, false], [50n, true]] as const) {
      const r = await run(text, number, first);
      expect(r.fast).toBe(r.slow);
      expect(r.warnings).toEqual(r.slowWarnings);
      expect(r.stats.passedThrough).toBeGreaterThan(0);
    }
    const all = await run(text, 2n ** 64n - 1n);
    expect(all.warnings.length).toBeGreaterThan(1);
    expect(all.stats.passedThrough).toBeGreaterThan(300);
  });
});
