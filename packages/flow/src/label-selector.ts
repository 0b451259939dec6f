// Kubernetes label selectors over Cilium label lists (`k8s:app=foo`, `reserved:world`), as
// Hubble's label filters use them: the k8s selector grammar, where a key may carry a Cilium
// source (`k8s:app`); a key without one matches labels of any source (`any:`).
import { FlowctlError } from './errors.js';

export interface ParsedLabel {
  source: string;
  key: string;
  value: string;
}

/** `k8s:app=foo` → {source k8s, key app, value foo}; `reserved:world` → value ''. */
export function parseCiliumLabel(s: string): ParsedLabel {
  const eq = s.indexOf('=');
  const kv = eq >= 0 ? s.slice(0, eq) : s;
  const value = eq >= 0 ? s.slice(eq + 1) : '';
  const colon = kv.indexOf(':');
  if (colon < 0) return { source: 'unspec', key: kv, value };
  return { source: kv.slice(0, colon), key: kv.slice(colon + 1), value };
}

type Op = 'exists' | '!' | '=' | '!=' | 'in' | 'notin' | '>' | '<';
interface Requirement {
  source: string; // 'any' matches every source
  key: string;
  op: Op;
  values: string[];
}


// k8s validation: a qualified name with an optional DNS-subdomain prefix, values up to 63 chars.
const NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const PREFIX = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$/;

function checkKey(raw: string): { source: string; key: string } {
  let source = 'any';
  let key = raw;
  const colon = raw.indexOf(':');
  if (colon >= 0) {
    source = raw.slice(0, colon);
    key = raw.slice(colon + 1);
    if (!/^[A-Za-z0-9-]+$/.test(source)) throw new FlowctlError('INVALID_ARGUMENT', `invalid label source in key "${raw}"`);
  }
  const slash = key.lastIndexOf('/');
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  if (!NAME.test(name) || (prefix !== undefined && (prefix.length > 253 || !PREFIX.test(prefix)))) {
    throw new FlowctlError('INVALID_ARGUMENT', `invalid label key "${raw}"`);
  }
  return { source, key };
}

function checkValue(v: string): string {
  if (!VALUE.test(v)) throw new FlowctlError('INVALID_ARGUMENT', `invalid label value "${v}"`);
  return v;
}

/** Splits on commas that are not inside `( … )`. */
function splitRequirements(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === ',' && depth === 0) {
      out.push(s.slice(start, i));
      start = i + 1;
    }
  }
  out.push(s.slice(start));
  return out;
}

function parseRequirement(text: string): Requirement {
  const t = text.trim();
  if (t === '') throw new FlowctlError('INVALID_ARGUMENT', 'empty requirement');
  let m = /^!\s*([^\s=!<>(),]+)$/.exec(t);
  if (m) return { ...checkKey(m[1]!), op: '!', values: [] };
  m = /^([^\s=!<>(),]+)\s+(in|notin)\s*\(([^()]*)\)$/.exec(t);
  if (m) {
    const values = m[3]!.split(',').map((v) => checkValue(v.trim()));
    return { ...checkKey(m[1]!), op: m[2] as Op, values };
  }
  m = /^([^\s=!<>(),]+)\s*(==|=|!=|>|<)\s*([^\s,()]*)$/.exec(t);
  if (m) {
    const op = m[2] === '==' ? '=' : (m[2] as Op);
    if ((op === '>' || op === '<') && !/^-?\d+$/.test(m[3]!)) {
      throw new FlowctlError('INVALID_ARGUMENT', `"${t}": ${op} needs an integer value`);
    }
    return { ...checkKey(m[1]!), op, values: [op === '>' || op === '<' ? m[3]! : checkValue(m[3]!)] };
  }
  m = /^([^\s=!<>(),]+)$/.exec(t);
  if (m) return { ...checkKey(m[1]!), op: 'exists', values: [] };
  throw new FlowctlError('INVALID_ARGUMENT', `cannot parse requirement "${t}"`);
}

export type LabelMatcher = (labels: readonly string[] | undefined) => boolean;

/** Compiles one selector (requirements ANDed). The empty selector matches everything. */
export function compileLabelSelector(selector: string): LabelMatcher {
  if (selector.trim() === '') return () => true;
  const reqs = splitRequirements(selector).map(parseRequirement);
  return (labels) => {
    const parsed = (labels ?? []).map(parseCiliumLabel);
    const get = (r: Requirement): string | undefined => {
      for (const l of parsed) if (l.key === r.key && (r.source === 'any' || l.source === r.source)) return l.value;
      return undefined;
    };
    for (const r of reqs) {
      const v = get(r);
      switch (r.op) {
        case 'exists': if (v === undefined) return false; break;
        case '!': if (v !== undefined) return false; break;
        case '=': case 'in': if (v === undefined || !r.values.includes(v)) return false; break;
        case '!=': case 'notin': if (v !== undefined && r.values.includes(v)) return false; break;
        case '>': case '<': {
          if (v === undefined || !/^-?\d+$/.test(v)) return false;
          const a = BigInt(v), b = BigInt(r.values[0]!);
          if (r.op === '>' ? !(a > b) : !(a < b)) return false;
          break;
        }
      }
    }
    return true;
  };
}
