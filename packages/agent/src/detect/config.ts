// --detect-config: one YAML file, one section per detector (plus `alerts` for the store), each
// option declared once with its default and help, so the defaults documented in docs/alerts.md,
// the validation and the values detectors read come from the same table. Errors name file and line.
import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument, isMap, isScalar, type Node, type Pair } from 'yaml';
import { FlowctlError } from '../errors.js';

export type OptionKind = 'duration' | 'count' | 'number' | 'boolean' | 'strings';
export type OptionValue = number | boolean | string[];

export interface OptionSpec {
  kind: OptionKind;
  default: OptionValue;
  help: string;
  /** Least value of a count or number. */
  min?: number;
}

export interface SectionSpec {
  /** The section's key in the file (a detector's name, or `alerts`). */
  name: string;
  help: string;
  options: Record<string, OptionSpec>;
}

/** Option values of one section: durations in milliseconds. */
export type SectionValues = Record<string, OptionValue> & { enabled?: boolean };

export type DetectConfig = Map<string, SectionValues>;

const ENABLED: OptionSpec = { kind: 'boolean', default: true, help: 'run this detector' };

/** Every section's defaults (what runs without --detect-config). */
export function defaultConfig(sections: readonly SectionSpec[]): DetectConfig {
  const cfg: DetectConfig = new Map();
  for (const s of sections) {
    const v: SectionValues = { enabled: true };
    for (const [k, o] of Object.entries(s.options)) v[k] = o.default;
    cfg.set(s.name, v);
  }
  return cfg;
}

/** Reads and validates a config file; throws a CONFIG FlowctlError "FILE:LINE: what is wrong". */
export function loadDetectConfig(file: string, sections: readonly SectionSpec[]): DetectConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new FlowctlError('CONFIG', `--detect-config ${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
  return parseDetectConfig(text, file, sections);
}

export function parseDetectConfig(text: string, file: string, sections: readonly SectionSpec[]): DetectConfig {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  const fail = (node: Node | Pair | undefined | null, msg: string): never => {
    const offset = node && 'range' in node && node.range ? node.range[0] : node && 'key' in node && isScalar(node.key) && node.key.range ? node.key.range[0] : 0;
    throw new FlowctlError('CONFIG', `${file}:${lines.linePos(offset).line}: ${msg}`);
  };
  const err = doc.errors[0];
  if (err) throw new FlowctlError('CONFIG', `${file}:${lines.linePos(err.pos[0]).line}: ${err.message.split('\n')[0]}`);
  const cfg = defaultConfig(sections);
  if (doc.contents === null || (isScalar(doc.contents) && doc.contents.value === null)) return cfg;
  if (!isMap(doc.contents)) fail(doc.contents, 'want a map of detector sections');
  const byName = new Map(sections.map((s) => [s.name, s]));
  for (const pair of (doc.contents as { items: Pair[] }).items) {
    const name = isScalar(pair.key) ? String(pair.key.value) : '';
    const spec = byName.get(name);
    if (!spec) fail(pair, `unknown section "${name}": want one of ${sections.map((s) => s.name).join(', ')}`);
    const values = cfg.get(name)!;
    const body = pair.value as Node | null;
    if (body === null || (isScalar(body) && body.value === null)) continue;
    if (!isMap(body)) fail(body, `${name}: want a map of options`);
    for (const opt of (body as unknown as { items: Pair[] }).items) {
      const key = isScalar(opt.key) ? String(opt.key.value) : '';
      const o = key === 'enabled' ? ENABLED : spec!.options[key];
      if (!o) fail(opt, `${name}: unknown option "${key}": want one of enabled, ${Object.keys(spec!.options).join(', ')}`);
      values[key] = optionValue(o!, opt.value as Node | null, `${name}.${key}`, (n, m) => fail(n ?? opt, m));
    }
  }
  return cfg;
}

function optionValue(o: OptionSpec, node: Node | null, path: string, fail: (n: Node | null, m: string) => never): OptionValue {
  const raw: unknown = node && isScalar(node) ? node.value : node?.toJSON();
  const shown = JSON.stringify(raw);
  switch (o.kind) {
    case 'boolean':
      if (typeof raw !== 'boolean') fail(node, `${path}: want true or false, got ${shown}`);
      return raw as boolean;
    case 'duration': {
      const ms = typeof raw === 'string' ? parseDuration(raw) : undefined;
      if (ms === undefined || ms <= 0) fail(node, `${path}: want a duration such as 500ms, 10s or 5m, got ${shown}`);
      return ms!;
    }
    case 'count':
    case 'number': {
      const min = o.min ?? (o.kind === 'count' ? 1 : 0);
      if (typeof raw !== 'number' || (o.kind === 'count' && !Number.isInteger(raw)) || raw < min) {
        fail(node, `${path}: want ${o.kind === 'count' ? 'a whole number' : 'a number'} of at least ${min}, got ${shown}`);
      }
      return raw as number;
    }
    case 'strings':
      if (!Array.isArray(raw) || raw.some((s) => typeof s !== 'string')) fail(node, `${path}: want a list of strings, got ${shown}`);
      return raw as string[];
  }
}

/** "500ms", "10s", "5m", "1h", "1m30s" → milliseconds; undefined when not a duration. */
export function parseDuration(s: string): number | undefined {
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/y;
  const unit: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let total = 0;
  let pos = 0;
  while (pos < s.length) {
    re.lastIndex = pos;
    const m = re.exec(s);
    if (!m) return undefined;
    total += Number(m[1]) * unit[m[2]!]!;
    pos = re.lastIndex;
  }
  return pos === 0 ? undefined : total;
}

/** "5m", "1s", "250ms": how docs/alerts.md and error messages print a default duration. */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}
