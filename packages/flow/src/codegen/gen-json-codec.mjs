// Generates src/json-codec.gen.ts: one specialised protojson encoder and decoder per message of
// proto/{flow,observer,relay,peer}, so the -o json hot path never reflects over field
// descriptors. Field order, names and kinds come from the .proto files themselves (protobufjs
// keeps declaration order, which is protojson's key order).
//
//   node packages/flow/src/codegen/gen-json-codec.mjs
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '..', '..', '..', '..');
const require = createRequire(join(repo, 'package.json'));
const protobuf = require('protobufjs');

const root = new protobuf.Root();
root.resolvePath = (_origin, target) =>
  target.startsWith('google/protobuf/') ? join('/usr/include', target) : join(repo, 'proto', target);
root.loadSync(['flow/flow.proto', 'observer/observer.proto', 'relay/relay.proto', 'peer/peer.proto'], { keepCase: true });
root.resolveAll();

const PACKAGES = ['flow', 'observer', 'relay', 'peer'];
const modPath = (pkg) => `./gen/${pkg}/${pkg}.js`;

/** @returns {{pkg: string, ts: string, id: string}} */
function naming(t) {
  const full = t.fullName.slice(1); // ".flow.FlowFilter.Experimental"
  const pkg = full.split('.')[0];
  const ts = full.slice(pkg.length + 1).replace(/\./g, '_');
  return { pkg, ts, id: `${pkg}_${ts}`, full };
}

const messages = [];
const enums = [];
function walk(ns) {
  for (const n of ns.nestedArray) {
    if (n instanceof protobuf.Type) {
      messages.push(n);
      walk(n);
    } else if (n instanceof protobuf.Enum) enums.push(n);
    else if (n instanceof protobuf.Namespace) walk(n);
  }
}
for (const p of PACKAGES) walk(root.lookup(p));

// JSON name as protoc derives it (no json_name options exist in these protos).
const jsonName = (name) => name.replace(/_([a-z])/g, (_m, c) => c.toUpperCase());

const WRAPPERS = {
  'google.protobuf.BoolValue': 'bool', 'google.protobuf.UInt32Value': 'uint32', 'google.protobuf.Int32Value': 'int32',
  'google.protobuf.StringValue': 'string', 'google.protobuf.DoubleValue': 'double', 'google.protobuf.FloatValue': 'float',
  'google.protobuf.UInt64Value': 'uint64', 'google.protobuf.Int64Value': 'int64', 'google.protobuf.BytesValue': 'bytes',
};
// zero: when a field without presence is printed; wr: how a value x is written at p (an
// expression returning the new position).
const SCALAR = {
  string: { zero: "v !== ''", wr: (x) => `wStr(o, p, ${x})`, dec: 'dStr' },
  bool: { zero: 'v === true', wr: (x) => `wBool(o, p, ${x})`, dec: 'dBool', presence: true },
  uint32: { zero: 'v !== 0', wr: (x) => `wNum(o, p, ${x})`, dec: 'dU32' },
  fixed32: { zero: 'v !== 0', wr: (x) => `wNum(o, p, ${x})`, dec: 'dU32' },
  int32: { zero: 'v !== 0', wr: (x) => `wNum(o, p, ${x})`, dec: 'dI32' },
  sint32: { zero: 'v !== 0', wr: (x) => `wNum(o, p, ${x})`, dec: 'dI32' },
  sfixed32: { zero: 'v !== 0', wr: (x) => `wNum(o, p, ${x})`, dec: 'dI32' },
  double: { zero: 'v !== 0', wr: (x) => `wLit(o, p, dbl(${x}))`, dec: 'dDbl' },
  float: { zero: 'v !== 0', wr: (x) => `wLit(o, p, dbl(${x}))`, dec: 'dDbl' },
  uint64: { zero: 'v != 0', wr: (x) => `wI64(o, p, ${x})`, dec: 'dU64' },
  fixed64: { zero: 'v != 0', wr: (x) => `wI64(o, p, ${x})`, dec: 'dU64' },
  int64: { zero: 'v != 0', wr: (x) => `wI64(o, p, ${x})`, dec: 'dI64' },
  sint64: { zero: 'v != 0', wr: (x) => `wI64(o, p, ${x})`, dec: 'dI64' },
  sfixed64: { zero: 'v != 0', wr: (x) => `wI64(o, p, ${x})`, dec: 'dI64' },
  bytes: { zero: 'v.length !== 0', wr: (x) => `wLit(o, p, bytes(${x}))`, dec: 'dBytes' },
};

/** How one field (or one element of a repeated field) is encoded/decoded. */
function fieldKind(f) {
  const rt = f.resolvedType;
  if (rt instanceof protobuf.Enum) {
    const { id, full } = naming(rt);
    return { wr: (x) => `wEnum(o, p, Q_${id}, ${x})`, zero: 'v !== 0', dec: `de_${id}`, enumFull: full };
  }
  if (rt instanceof protobuf.Type) {
    const full = rt.fullName.slice(1);
    if (full === 'google.protobuf.Timestamp') return { wr: (x) => `wTs(o, p, ${x})`, dec: 'dTs', message: true };
    if (full === 'google.protobuf.FieldMask') return { wr: (x) => `wRaw(o, p, fieldMask(${x}))`, dec: 'dFieldMask', message: true };
    if (full === 'google.protobuf.Any') return { wr: (x) => `wAny(${x}, o, p)`, dec: 'dAny', message: true };
    if (WRAPPERS[full]) {
      const s = SCALAR[WRAPPERS[full]];
      return { wr: s.wr, dec: s.dec, message: true };
    }
    if (full.startsWith('google.')) throw new Error(`unsupported well-known type ${full}`);
    const { id } = naming(rt);
    return { wr: (x) => `w_${id}(${x}, o, p)`, dec: `d_${id}`, message: true };
  }
  const s = SCALAR[f.type];
  if (!s) throw new Error(`unsupported field type ${f.type} in ${f.fullName}`);
  return s;
}

/** Straight-line stores of constant ASCII text at p, then p advanced past it. */
function stores(text) {
  const codes = [...Buffer.from(text, 'latin1')];
  return codes.map((c, i) => `b[p${i ? ` + ${i}` : ''}] = ${c};`).join(' ') + ` p += ${codes.length};`;
}

// Messages with at least this many fields get the key-walking writer for sparse objects (Flow,
// FlowFilter). Choosing costs one `in` test per message, which measured a net loss on the small
// messages a flow holds.
const SPARSE_MIN_FIELDS = 20;

const out = [];
const w = (s) => out.push(s);
w('// @generated by src/codegen/gen-json-codec.mjs from proto/{flow,observer,relay,peer}. Do not edit;');
w('// rerun `node packages/flow/src/codegen/gen-json-codec.mjs` after changing a .proto.');
w('/* eslint-disable */');
for (const p of PACKAGES) w(`import * as ${p} from '${modPath(p)}';`);
w(`import { Struct } from './gen/google/protobuf/struct.js';`);
w(`import * as P from './json-primitives.js';
import type { JsonBuffer, Writer } from './json-primitives.js';

// Module constants rather than imported bindings: a loader that compiles ESM to CommonJS (tsx,
// vitest) turns every use of an import into a getter call, too costly per field.
const {
  FieldError, bytes, dArr, dBool, dBytes, dDbl, dEnum, dFieldMask, dI32, dI64, dObj, dStr, dTs, dU32, dU64, dbl,
  fieldMask, str, wBool, wEnum, wI64, wLit, wNum, wRaw, wStr, wTs,
} = P;`);
w('');
w('type AnyMessage = { type_url?: string | undefined; value?: Uint8Array | undefined };');
w('function pathOf(e: unknown, f: string): unknown {');
w("  if (e instanceof FieldError) e.path = e.path === '' ? f : e.path.startsWith('[') ? f + e.path : f + '.' + e.path;");
w('  return e;');
w('}');
w('');

for (const en of enums) {
  const { id, full } = naming(en);
  const byNum = [];
  for (const [name, num] of Object.entries(en.values)) if (byNum[num] === undefined) byNum[num] = name;
  // Quoted names indexed by number; holes print as numbers, as protojson does for unnamed values.
  const arr = [];
  for (let i = 0; i < byNum.length; i++) arr.push(byNum[i] === undefined ? '' : `'"${byNum[i]}"'`);
  w(`const Q_${id}: (string | undefined)[] = [${arr.join(', ')}];`);
  w(`const V_${id}: Record<string, number> = Object.assign(Object.create(null), ${JSON.stringify(en.values)});`);
  w(`function de_${id}(v: unknown): number { return dEnum(v, V_${id}, '${full}'); }`);
}
w('');

for (const t of messages) {
  const { pkg, ts: tsName, id } = naming(t);
  for (const f of t.fieldsArray) if (f.map) throw new Error(`map fields are not supported: ${f.fullName}`);
  // ---- encoder: a writer into a JsonBuffer
  const fields = t.fieldsArray;
  if (fields.length === 0) {
    w(`export function w_${id}(m: ${pkg}.${tsName}, o: JsonBuffer, p: number): number {`);
    w('  const b = o.b; b[p] = 123; b[p + 1] = 125; return p + 2;');
    w('}');
  } else {
    // The code writing field i from v; s is the position after '{': a field written anywhere
    // else needs a comma before it.
    const fieldCode = (f, comma) => {
      const k = fieldKind(f);
      const head = `${comma ? 'if (p !== s) b[p++] = 44; ' : ''}${stores(`"${f.name}":`)}`;
      if (f.repeated) {
        return `if (v != null && v.length !== 0) { ${head} b[p++] = 91; p = ${k.wr('v[0]')}; ` +
          `for (let i = 1; i < v.length; i++) { b[p++] = 44; p = ${k.wr('v[i]')}; } b[p++] = 93; }`;
      }
      // Messages and oneof members have presence: a present zero value is printed.
      if (k.message || f.partOf) return `if (v != null) { ${head} p = ${k.wr('v')}; }`;
      if (f.type === 'bool') return `if (v === true) { ${head} ${stores('true')} }`;
      return `if (v != null && ${k.zero}) { ${head} p = ${k.wr('v')}; }`;
    };
    const sparse = fields.length >= SPARSE_MIN_FIELDS;
    const last = fields[fields.length - 1].name;
    if (sparse) {
      // Messages from ts-proto's decoder and from ours hold every field; messages built in code
      // (the agent) hold only the set ones, in many hidden classes, where reading each declared
      // field by name goes megamorphic (measured: 3 µs per Flow). Those are walked by their own
      // keys instead, merged against the declaration order.
      w(`const K_${id} = ${JSON.stringify(fields.map((f) => f.name))};`);
      w(`export function w_${id}(m: ${pkg}.${tsName}, o: JsonBuffer, p: number): number {`);
      w(`  return '${last}' in m ? wd_${id}(m, o, p) : ws_${id}(m, o, p);`);
      w('}');
      w(`function ws_${id}(m: ${pkg}.${tsName}, o: JsonBuffer, p: number): number {`);
      w('  const x = m as any; const b = o.b; const p0 = p; let j = 0;');
      w('  b[p] = 123; const s = ++p;');
      w('  for (const k in x) {');
      w(`    while (j < ${fields.length} && K_${id}[j] !== k) j++;`);
      w(`    // A key out of declaration order or not a field: the field-by-field writer decides.`);
      w(`    if (j === ${fields.length}) return wd_${id}(m, o, p0);`);
      w('    const v = x[k];');
      w('    switch (j++) {');
      fields.forEach((f, i) => w(`      case ${i}: ${fieldCode(f, true)} break;`));
      w('    }');
      w('  }');
      w('  b[p] = 125; return p + 1;');
      w('}');
    }
    w(`${sparse ? 'function wd_' : 'export function w_'}${id}(m: ${pkg}.${tsName}, o: JsonBuffer, p: number): number {`);
    w('  const x = m as any; const b = o.b; let v: any;');
    w('  b[p] = 123; const s = ++p;');
    fields.forEach((f, i) => {
      w(`  v = x.${f.name};`);
      w(`  ${fieldCode(f, i > 0)}`);
    });
    w('  b[p] = 125; return p + 1;');
    w('}');
  }
  // ---- decoder
  w(`export function d_${id}(j: unknown): ${pkg}.${tsName} {`);
  // Every field present (undefined until set) in declaration order: decoded messages then share
  // one hidden class, so the encoder and the filters reading them stay monomorphic.
  const shape = `{ ${t.fieldsArray.map((f) => `${f.name}: undefined`).join(', ')} }`;
  w(t.fieldsArray.length ? `  const o = dObj(j); const m: any = ${shape}; let f = '';` : '  dObj(j); const m: any = {};');
  if (t.fieldsArray.length > 0) {
    w('  try {');
    w('    for (const k in o) {');
    w('      const v = o[k];');
    w('      if (v === null) continue;');
    w('      switch (k) {');
    for (const f of t.fieldsArray) {
      const k = fieldKind(f);
      const jn = jsonName(f.name);
      const cases = jn === f.name ? `case '${f.name}':` : `case '${f.name}': case '${jn}':`;
      const dec = f.repeated ? `dArr(v, ${k.dec})` : `${k.dec}(v)`;
      w(`        ${cases} f = '${f.name}'; m.${f.name} = ${dec}; break;`);
    }
    w('        default: break; // unknown fields are skipped, like protojson with DiscardUnknown');
    w('      }');
    w('    }');
    w('  } catch (e) { throw pathOf(e, f); }');
  }
  w('  return m;');
  w('}');
}
w('');

// Registry for google.protobuf.Any and for callers that pick a codec by message name.
w('export interface MessageJsonCodec<T = any> {');
w('  /** Writes m at p into a JsonBuffer, returns the position after it. */');
w('  write: Writer<T>;');
w('  decode(j: unknown): T;');
w('  binary: { encode(m: T): { finish(): Uint8Array }; decode(b: Uint8Array): T };');
w('}');
w('export const jsonCodecs: Record<string, MessageJsonCodec> = {');
for (const t of messages) {
  const { pkg, ts: tsName, id, full } = naming(t);
  w(`  '${full}': { write: w_${id}, decode: d_${id}, binary: ${pkg}.${tsName} },`);
}
w('};');
w(`
function anyType(url: string): MessageJsonCodec {
  const c = jsonCodecs[url.slice(url.lastIndexOf('/') + 1)];
  if (c === undefined) throw new FieldError('', \`google.protobuf.Any of unknown type \${JSON.stringify(url)}\`);
  return c;
}
const STRUCT_URL_SUFFIX = '/google.protobuf.Struct';
// protojson prints a Struct as a plain JSON object, keys in sorted order, numbers as doubles.
function structValue(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'number') return dbl(v);
  if (typeof v === 'string') return str(v);
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (Array.isArray(v)) return '[' + v.map(structValue).join(',') + ']';
  const o = v as Record<string, unknown>;
  return '{' + Object.keys(o).sort().map((k) => str(k) + ':' + structValue(o[k])).join(',') + '}';
}
function wAny(a: AnyMessage, o: JsonBuffer, p: number): number {
  const url = a.type_url ?? '';
  if (url.endsWith(STRUCT_URL_SUFFIX)) {
    const value = structValue(Struct.unwrap(Struct.decode(a.value ?? new Uint8Array(0))));
    return wRaw(o, p, '{"@type":' + str(url) + ',"value":' + value + '}');
  }
  const c = anyType(url);
  // The buffer is busy with the outer message: the inner one gets its own.
  const inner = o.nested(c.write, c.binary.decode(a.value ?? new Uint8Array(0)));
  return wRaw(o, p, '{"@type":' + str(url) + (inner === '{}' ? '}' : ',' + inner.slice(1)));
}
function dAny(j: unknown): AnyMessage {
  const o = dObj(j);
  const url = o['@type'];
  if (typeof url !== 'string') throw new FieldError('', 'google.protobuf.Any without a string "@type"');
  if (url.endsWith(STRUCT_URL_SUFFIX)) {
    const v = o['value'];
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new FieldError('value', 'google.protobuf.Struct must be a JSON object');
    return { type_url: url, value: Buffer.from(Struct.encode(Struct.wrap(v as Record<string, unknown>)).finish()) };
  }
  const c = anyType(url);
  return { type_url: url, value: Buffer.from(c.binary.encode(c.decode(o)).finish()) };
}`);

const target = join(here, '..', 'json-codec.gen.ts');
writeFileSync(target, out.join('\n') + '\n');
console.log(`wrote ${target}: ${messages.length} messages, ${enums.length} enums`);
