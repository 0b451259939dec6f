// A second, independent reading of our .proto files: @grpc/proto-loader (protobufjs underneath)
// loads proto/ as a grpc-js client built from the files would, and must decode what ts-proto's
// generated code encodes to the same values (and the reverse) — for the test corpus and for every
// message type, filled with non-default values. The generated code could drift from the files.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import type { PackageDefinition, MethodDefinition } from '@grpc/proto-loader';
import type * as Pb from 'protobufjs';
import { decodeBatch, encodeBatch } from './batch.js';
import * as flowGen from './gen/flow/flow.js';
import * as observerGen from './gen/observer/observer.js';
import * as relayGen from './gen/relay/relay.js';
import * as peerGen from './gen/peer/peer.js';
import * as healthGen from './gen/grpc/health/v1/health.js';
import * as serviceMapGen from './gen/flowctl/servicemap.js';
import { makeCorpus } from './testing/corpus.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const require = createRequire(import.meta.url);
const protoLoader = require('@grpc/proto-loader') as typeof import('@grpc/proto-loader');
const protobuf = require('protobufjs') as typeof import('protobufjs');

const FILES = ['flow/flow.proto', 'observer/observer.proto', 'relay/relay.proto', 'peer/peer.proto', 'grpc/health/v1/health.proto', 'flowctl/servicemap.proto', 'flowctl/batch.proto'];
const INCLUDE = [join(repo, 'proto'), '/usr/include'];
/** What a grpc-js client built from the .proto files would see. */
const LOADER = { keepCase: true, longs: String, enums: String, bytes: String, defaults: false, oneofs: false } as const;

interface Codec {
  encode(m: unknown): { finish(): Uint8Array };
  decode(b: Uint8Array): unknown;
}
/** ts-proto's codec of each package's messages (nested messages are Parent_Child). */
const GENERATED: Record<string, Record<string, unknown>> = {
  flow: flowGen, observer: observerGen, relay: relayGen, peer: peerGen, 'grpc.health.v1': healthGen, 'flowctl.servicemap.v1': serviceMapGen,
};
/** FlowBatch has no generated code: batch.ts writes it. */
const HAND_WRITTEN: Record<string, Codec> = {
  'flowctl.observer.FlowBatch': {
    encode: (m) => ({ finish: () => encodeBatch(((m as { responses?: unknown[] }).responses ?? []).map((r) => observerGen.GetFlowsResponse.encode(r as observerGen.GetFlowsResponse).finish())) }),
    decode: (b) => ({ responses: decodeBatch(b).map((r) => observerGen.GetFlowsResponse.decode(r)) }),
  },
};

// protobufjs's reflection of the same files: which fields, types, oneofs and enums there are.
const root = new protobuf.Root();
root.resolvePath = (_o: string, t: string) => (t.startsWith('google/protobuf/') ? join('/usr/include', t) : join(repo, 'proto', t));
root.loadSync(FILES, { keepCase: true });
root.resolveAll();

function messageTypes(ns: Pb.NamespaceBase, out: Pb.Type[] = []): Pb.Type[] {
  for (const n of ns.nestedArray) {
    if (n instanceof protobuf.Type) out.push(n);
    if (n instanceof protobuf.Namespace || n instanceof protobuf.Type) messageTypes(n as Pb.NamespaceBase, out);
  }
  return out;
}
const OURS = messageTypes(root).filter((t) => !t.fullName.startsWith('.google.') && !t.options?.map_entry);

function codecOf(t: Pb.Type): Codec | undefined {
  const full = t.fullName.slice(1);
  if (HAND_WRITTEN[full]) return HAND_WRITTEN[full];
  let pkg = t.parent;
  const names = [t.name];
  while (pkg instanceof protobuf.Type) {
    names.unshift(pkg.name);
    pkg = pkg.parent;
  }
  const mod = GENERATED[pkg!.fullName.slice(1)];
  return mod?.[names.join('_')] as Codec | undefined;
}

// proto-loader's reading: one generated service with a method per message type gives a
// (de)serializer for each, exactly as grpc-js would use them.
const dir = mkdtempSync(join(tmpdir(), 'flowctl-proto-loader-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
writeFileSync(
  join(dir, 'every_message.proto'),
  ['syntax = "proto3";', 'package flowctl_test;', ...FILES.map((f) => `import "${f}";`), 'service EveryMessage {',
    ...OURS.map((t, i) => `  rpc M${i}(${t.fullName}) returns (${t.fullName});`), '}', ''].join('\n'),
);
const defs: PackageDefinition = protoLoader.loadSync(['every_message.proto', ...FILES], { ...LOADER, includeDirs: [dir, ...INCLUDE] });
const every = defs['flowctl_test.EveryMessage'] as Record<string, MethodDefinition<object, object>>;
const methodOf = (t: Pb.Type) => every[`M${OURS.indexOf(t)}`]!;

// ---- values in ts-proto's shape -----------------------------------------------------------------

const WRAPPED: Record<string, (n: number) => unknown> = {
  '.google.protobuf.Int32Value': (n) => -3 - n,
  '.google.protobuf.UInt32Value': (n) => 42 + n,
  '.google.protobuf.BoolValue': () => true,
  '.google.protobuf.Int64Value': (n) => -(2n ** 40n) - BigInt(n),
  '.google.protobuf.UInt64Value': (n) => 2n ** 63n + BigInt(n),
  '.google.protobuf.StringValue': (n) => `s${n}`,
  '.google.protobuf.DoubleValue': (n) => 0.25 + n,
};

function scalar(type: string, n: number, name: string): unknown {
  switch (type) {
    case 'string': return `${name}-${n} ü<&>`;
    case 'bool': return true;
    case 'int32': case 'sint32': case 'sfixed32': return -7 - n;
    case 'uint32': case 'fixed32': return 4_000_000_000 + n;
    case 'int64': case 'sint64': case 'sfixed64': return -(2n ** 53n) - BigInt(n);
    case 'uint64': case 'fixed64': return 2n ** 64n - 1n - BigInt(n);
    case 'double': return 1.5 + n;
    case 'float': return 0.5 + n;
    case 'bytes': return Buffer.from([0, 1, 2, 0xff, n & 0xff]);
    default: throw new Error(`no value for ${type}`);
  }
}

/** A value of `t` in ts-proto's shape with every field set (one member per oneof), `depth` levels deep. */
function fill(t: Pb.Type, depth: number, n = 0): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const oneofTaken = new Set<Pb.OneOf>();
  for (const f of t.fieldsArray) {
    const oneof = f.partOf && f.partOf.fieldsArray.length > 1 ? f.partOf : undefined;
    if (oneof) {
      if (oneofTaken.has(oneof)) continue;
      oneofTaken.add(oneof);
    }
    const one = (i: number): unknown => valueOf(f, depth, n + i);
    if (f instanceof protobuf.MapField) {
      const v = valueOf(f, depth, n);
      if (v !== undefined) out[f.name] = { a: v, 'b/c': valueOf(f, depth, n + 1) };
    } else if (f.repeated) {
      const vs = [one(0), one(1)].filter((v) => v !== undefined);
      if (vs.length) out[f.name] = vs;
    } else {
      const v = one(0);
      if (v !== undefined) out[f.name] = v;
    }
  }
  return out;
}

function valueOf(f: Pb.Field, depth: number, n: number): unknown {
  const rt = f.resolvedType;
  if (rt instanceof protobuf.Enum) {
    const nonZero = Object.values(rt.values).filter((v) => v !== 0);
    return nonZero[n % nonZero.length];
  }
  if (rt instanceof protobuf.Type) {
    const w = WRAPPED[rt.fullName];
    if (w) return w(n);
    if (rt.fullName === '.google.protobuf.Timestamp') return { seconds: 1_714_564_800n + BigInt(n), nanos: 123_456_789 };
    if (rt.fullName === '.google.protobuf.FieldMask') return ['source.pod_name', `destination.labels${n}`];
    if (rt.fullName === '.google.protobuf.Any') return { type_url: 'type.googleapis.com/flow.Workload', value: Buffer.from(flowGen.Workload.encode({ name: `w${n}`, kind: 'Deployment' }).finish()) };
    return depth > 0 ? fill(rt, depth - 1, n) : undefined;
  }
  return scalar(f.type, n, f.name);
}

// ---- ts-proto's shape → proto-loader's (LOADER options) -----------------------------------------

function isDefault(v: unknown): boolean {
  return v === undefined || v === '' || v === 0 || v === 0n || v === false || (Array.isArray(v) && v.length === 0) || (v instanceof Uint8Array && v.length === 0);
}

function loaderScalar(f: Pb.Field, v: unknown): unknown {
  const rt = f.resolvedType;
  if (rt instanceof protobuf.Enum) return rt.valuesById[v as number] ?? v;
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof Uint8Array) return Buffer.from(v).toString('base64');
  return v;
}

function loaderValue(f: Pb.Field, v: unknown): unknown {
  const rt = f.resolvedType;
  if (!(rt instanceof protobuf.Type)) return loaderScalar(f, v);
  if (WRAPPED[rt.fullName]) return isDefault(v) ? {} : { value: loaderScalar(rt.fields.value!, v) };
  if (rt.fullName === '.google.protobuf.FieldMask') return (v as string[]).length ? { paths: v } : {};
  return toLoader(rt, v as Record<string, unknown>);
}

/** What proto-loader decodes from ts-proto's encoding of `m`: defaults left out, as on the wire. */
function toLoader(t: Pb.Type, m: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of t.fieldsArray) {
    const v = m[f.name];
    if (f instanceof protobuf.MapField) {
      const entries = Object.entries((v ?? {}) as Record<string, unknown>);
      if (entries.length) out[f.name] = Object.fromEntries(entries.map(([k, x]) => [k, loaderValue(f, x)]));
    } else if (f.repeated) {
      if (Array.isArray(v) && v.length) out[f.name] = v.map((x) => loaderValue(f, x));
    } else if (f.resolvedType instanceof protobuf.Type ? v !== undefined : !isDefault(v)) {
      out[f.name] = loaderValue(f, v);
    }
  }
  return out;
}

describe('proto-loader reads our .proto files as ts-proto writes them', () => {
  it('knows every message type of our protos, and each has an encoder', () => {
    const loaderTypes = Object.entries(defs)
      .filter(([name, d]) => 'format' in d && d.format === 'Protocol Buffer 3 DescriptorProto' && !name.startsWith('google.') && !name.endsWith('Entry'))
      .map(([name]) => name);
    // proto-loader lists top-level messages; our reflection also has the nested ones.
    const ours = OURS.map((t) => t.fullName.slice(1));
    expect(loaderTypes.filter((n) => !ours.includes(n))).toEqual([]);
    expect(ours.length).toBeGreaterThanOrEqual(loaderTypes.length);
    expect(OURS.filter((t) => !codecOf(t)).map((t) => t.fullName)).toEqual([]);
  });

  it('the test corpus: GetFlows responses decode to the same values through the Observer service definition', () => {
    const getFlows = (defs['observer.Observer'] as Record<string, MethodDefinition<object, object>>).GetFlows!;
    const Response = root.lookupType('observer.GetFlowsResponse');
    const corpus = [...makeCorpus(1500, 91), ...makeCorpus(300, 92, { clusterPrefix: true })];
    for (const r of corpus) {
      const bytes = observerGen.GetFlowsResponse.encode(r).finish();
      expect(getFlows.responseDeserialize(Buffer.from(bytes))).toEqual(toLoader(Response, r as Record<string, unknown>));
      const back = getFlows.responseSerialize(getFlows.responseDeserialize(Buffer.from(bytes)));
      expect(observerGen.GetFlowsResponse.decode(back)).toEqual(observerGen.GetFlowsResponse.decode(bytes));
    }
  });

  it.each(OURS.map((t) => [t.fullName.slice(1), t] as const))('%s with non-default values, both ways', (_name, t) => {
    const codec = codecOf(t)!;
    const m = methodOf(t);
    for (const depth of [0, 3]) {
      const value = fill(t, depth);
      const bytes = Buffer.from(codec.encode(value).finish());
      expect(m.requestDeserialize(bytes)).toEqual(toLoader(t, value));
      const again = m.requestSerialize(m.requestDeserialize(bytes));
      expect(Buffer.from(codec.encode(codec.decode(again)).finish())).toEqual(bytes);
    }
  });
});
