// A fast reader for the common case of well-formed YAML, with the `yaml` package kept as the
// reference. The `yaml` package builds a full document tree with source ranges, most of a large
// reload's time; js-yaml reads the same text into plain values much faster. Callers use `fastLoadAll` first and fall back to the `yaml` document API
// whenever it returns undefined or validation fails, so every error a user sees still comes from
// the reference reader with its line and document numbers.
//
// The fast reader must never accept a text with a different meaning than the reference gives it.
// Where the two differ, it declines instead:
// - scalars resolve with the `yaml` package's YAML 1.2 core schema regexes (js-yaml's own core
//   schema also reads `0b101` and `-0x10` as numbers, which the reference keeps as strings);
// - anchors/aliases: the reference caps alias expansion (maxAliasCount), js-yaml shares objects;
// - keys that are not strings after reading: the reference stringifies a null key as "" and a
//   collection key as YAML text, js-yaml as "null" and "a,b";
// - anything js-yaml rejects (duplicate keys, unknown tags, syntax) goes to the reference, which
//   either accepts it with its own meaning or reports the error.
import jsyaml from 'js-yaml';

const intDec = /^[-+]?[0-9]+$/;
const intOct = /^0o[0-7]+$/;
const intHex = /^0x[0-9a-fA-F]+$/;
const floatNaN = /^(?:[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN)$/;
const floatExp = /^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+$/;
const floatDec = /^[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*)$/;

const CORE_12 = jsyaml.FAILSAFE_SCHEMA.extend({
  implicit: [
    new jsyaml.Type('tag:yaml.org,2002:null', {
      kind: 'scalar',
      resolve: (s: string) => /^(?:~|[Nn]ull|NULL)?$/.test(s),
      construct: () => null,
    }),
    new jsyaml.Type('tag:yaml.org,2002:bool', {
      kind: 'scalar',
      resolve: (s: string) => /^(?:[Tt]rue|TRUE|[Ff]alse|FALSE)$/.test(s),
      construct: (s: string) => s[0] === 't' || s[0] === 'T',
    }),
    new jsyaml.Type('tag:yaml.org,2002:int', {
      kind: 'scalar',
      resolve: (s: string) => intDec.test(s) || intOct.test(s) || intHex.test(s),
      construct: (s: string) => (intOct.test(s) ? parseInt(s.slice(2), 8) : intHex.test(s) ? parseInt(s.slice(2), 16) : parseInt(s, 10)),
    }),
    new jsyaml.Type('tag:yaml.org,2002:float', {
      kind: 'scalar',
      resolve: (s: string) => floatNaN.test(s) || floatExp.test(s) || floatDec.test(s),
      construct: (s: string) =>
        floatNaN.test(s) ? (s.slice(-3).toLowerCase() === 'nan' ? NaN : s[0] === '-' ? -Infinity : Infinity) : parseFloat(s),
    }),
  ],
});

// `? key` (explicit key) or `]:`/`}:` (a flow collection as an implicit key, also JSON-like with
// no space after the colon: `{ [app]:a }`). Also matches inside
// quoted text now and then, which only costs the slow path.
const COMPLEX_KEY = /(?:^|[\s,[{])\?(?:\s|$)|[\]}]\s*:/m;
// Line breaks and control characters other than LF, CRLF and tab: the readers split lines and
// reject non-printable characters differently (a lone CR is a line break to one, not the other).
const ODD_CHARS = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]|\r(?!\n)|(?!^)\ufeff/;

/**
 * True unless every flow collection (`[...]`, `{...}`) and quoted scalar closes on the line it
 * opens on, and no comment touches a closing quote or bracket. The reference requires continuation
 * lines of those to be indented deeper than their block parent and js-yaml does not; rather than
 * mirror that rule, texts that need it take the reference path. Errs towards declining: a quote
 * or bracket inside a plain scalar can only make it decline.
 */
function needsReference(text: string): boolean {
  let depth = 0;
  let quote = 0; // the open quote character, 0 outside quotes
  let prev = 10; // the character before, as if a line had just begun
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (quote !== 0) {
      if (c === 10) return true;
      if (c === 92 /* \ */ && quote === 34) i++;
      else if (c === quote) quote = 0;
      prev = c;
      continue;
    }
    switch (c) {
      case 10:
        if (depth !== 0) return true;
        break;
      case 34: // "
      case 39: // '
        if (prev === 32 || prev === 9 || prev === 10 || prev === 13 || prev === 91 || prev === 123 || prev === 44 || prev === 58) quote = c;
        break;
      case 91: // [
      case 123: // {
        depth++;
        break;
      case 93: // ]
      case 125: // }
        if (--depth < 0) return true;
        break;
      case 35: // #
        if (prev === 34 || prev === 39 || prev === 93 || prev === 125) return true;
        if (prev === 32 || prev === 9 || prev === 10 || prev === 13) {
          while (i + 1 < text.length && text.charCodeAt(i + 1) !== 10) i++;
        }
        break;
    }
    prev = c;
  }
  return depth !== 0 || quote !== 0;
}

/** True when some mapping key read back as "null" (a null key in js-yaml, "" in the reference). */
function hasNullKey(v: unknown): boolean {
  if (typeof v !== 'object' || v === null) return false;
  if (Array.isArray(v)) {
    for (const x of v) if (hasNullKey(x)) return true;
    return false;
  }
  for (const k in v) {
    if (k === 'null') return true;
    if (hasNullKey((v as Record<string, unknown>)[k])) return true;
  }
  return false;
}

/**
 * Every document of `text` as plain values (empty documents as null), or undefined when the text
 * needs the reference reader: a syntax error, or a construct the two readers give different meanings.
 */
export function fastLoadAll(text: string): unknown[] | undefined {
  if (text.includes('&') || COMPLEX_KEY.test(text) || ODD_CHARS.test(text) || needsReference(text)) return undefined;
  let docs: unknown[];
  try {
    docs = jsyaml.loadAll(text, undefined, { schema: CORE_12 });
  } catch {
    return undefined;
  }
  for (const d of docs) if (hasNullKey(d)) return undefined;
  return docs;
}
