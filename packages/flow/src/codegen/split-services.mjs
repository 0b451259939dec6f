// Splits each ts-proto output file that defines gRPC services into its messages (`x.ts`, no
// @grpc/grpc-js import) and its services and clients (`x.grpc.ts`, which imports the messages it
// names from `./x.js`). Run by scripts/gen-proto.sh after protoc. Without the split, anything that
// only needs the messages (the JSON codec, so `flowctl observe --input-file`) loaded grpc-js too.
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';

const root = new URL('../gen/', import.meta.url).pathname;

function walk(dir) {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? walk(p) : p.endsWith('.ts') && !p.endsWith('.grpc.ts') ? [p] : [];
  });
}

/** The grpc-js import statement: `import {\n ... \n} from "@grpc/grpc-js";\n`. */
const GRPC_IMPORT = /^import \{[^}]*\} from "@grpc\/grpc-js";\n/m;

for (const file of walk(root)) {
  const src = readFileSync(file, 'utf8');
  const grpcImport = GRPC_IMPORT.exec(src);
  if (!grpcImport) continue;
  // The service block: from the first `export type XService = typeof XService;` to the end of
  // the last `export const XClient = makeGenericClientConstructor(...) as unknown as {...};`.
  const start = src.search(/^export type \w+Service = typeof \w+Service;$/m);
  const lastClient = [...src.matchAll(/^export const \w+Client = makeGenericClientConstructor\(/gm)].at(-1);
  if (start < 0 || !lastClient) throw new Error(`${file}: imports @grpc/grpc-js but has no service block`);
  const end = src.indexOf('\n};\n', lastClient.index) + '\n};\n'.length;
  if (end < lastClient.index || end <= start) throw new Error(`${file}: cannot find the end of the service block`);
  const block = src.slice(start, end);
  const messages = src.slice(0, start) + src.slice(end);

  // The message file's exports that the block names (a ts-proto message is both an interface and
  // a const of the same name).
  const exported = new Set([...messages.matchAll(/^export (?:const|function|interface|type|enum) (\w+)/gm)].map((m) => m[1]));
  const used = [...new Set([...block.matchAll(/\b[A-Z]\w*\b/g)].map((m) => m[0]))].filter((n) => exported.has(n)).sort();
  const header = src.slice(0, src.indexOf('/* eslint-disable */'));
  const base = basename(file, '.ts');
  const grpcFile =
    `${header}/* eslint-disable */\n` +
    '// The services and clients of the messages in ' +
    `${base}.ts (split off by packages/flow/src/codegen/split-services.mjs).\n` +
    grpcImport[0] +
    `import { ${used.join(', ')} } from "./${base}.js";\n\n` +
    block;
  writeFileSync(file, messages.replace(GRPC_IMPORT, ''));
  writeFileSync(file.replace(/\.ts$/, '.grpc.ts'), grpcFile);
}
