// Reading YAML with positions: both input files must report errors at the line a user can find.
import { LineCounter, isMap, isScalar, isSeq, parseAllDocuments, parseDocument } from 'yaml';
import type { Document, Node, Pair, YAMLMap, YAMLSeq } from 'yaml';

export type YNode = Node | null | undefined;

// logLevel 'error': yaml would print a process warning (e.g. for a collection used as a key) on
// stderr; what matters in such input is reported as a file:line error instead.
const OPTIONS = { uniqueKeys: true, prettyErrors: false, logLevel: 'error' } as const;

export class YamlSource {
  readonly lines = new LineCounter();
  constructor(readonly file: string) {}

  line(node: YNode | Pair): number {
    const range = node && 'range' in node ? node.range : node && 'key' in node ? (node.key as Node | null)?.range : undefined;
    return range ? this.lines.linePos(range[0]).line : 1;
  }

  parseOne(text: string): Document.Parsed {
    return parseDocument(text, { ...OPTIONS, lineCounter: this.lines });
  }

  parseAll(text: string): Document.Parsed[] {
    const docs = parseAllDocuments(text, { ...OPTIONS, lineCounter: this.lines });
    return Array.isArray(docs) ? docs : [];
  }

  errorLine(offset: number): number {
    return this.lines.linePos(offset).line;
  }
}

export { isMap, isScalar, isSeq };
export type { YAMLMap, YAMLSeq, Pair, Node };

/** A map's entries as [key text, value node, pair]; keys that are not scalars are reported by the caller. */
export function mapEntries(map: YAMLMap): { key: string; value: YNode; pair: Pair; keyNode: YNode }[] {
  return map.items.map((pair) => {
    const k = pair.key as YNode;
    const key = isScalar(k) ? String(k.value) : '';
    return { key, value: pair.value as YNode, pair, keyNode: k };
  });
}

/** The text of a scalar as a string (numbers and booleans as written), undefined for other nodes. */
export function scalarText(node: YNode): string | undefined {
  if (!isScalar(node)) return undefined;
  if (node.value === null) return undefined;
  if (typeof node.value === 'string') return node.value;
  return node.source !== undefined ? String(node.source) : String(node.value);
}
