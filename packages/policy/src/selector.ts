// Label selectors as Kubernetes and Cilium write them. Keys are kept without a `k8s:`/`any:`
// source prefix: all our labels come from Kubernetes-style sources, so both mean the same here.
export type Operator = 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
export interface Requirement {
  key: string;
  op: Operator;
  values: string[];
}
/** All requirements must hold; no requirements selects everything. */
export interface Selector {
  requirements: Requirement[];
}

export type Labels = ReadonlyMap<string, string>;

export function matchRequirement(r: Requirement, labels: Labels): boolean {
  const v = labels.get(r.key);
  switch (r.op) {
    case 'In':
      return v !== undefined && r.values.includes(v);
    case 'NotIn':
      return v === undefined || !r.values.includes(v);
    case 'Exists':
      return v !== undefined;
    case 'DoesNotExist':
      return v === undefined;
  }
}

export function matchSelector(s: Selector, labels: Labels): boolean {
  for (const r of s.requirements) if (!matchRequirement(r, labels)) return false;
  return true;
}

export function selectorKey(s: Selector): string {
  return s.requirements
    .map((r) => `${r.key}\u0000${r.op}\u0000${[...r.values].sort().join('\u0001')}`)
    .sort()
    .join('\u0002');
}

/** `app=a,tier in (x,y)`-like text for humans (list and check output). */
export function formatSelector(s: Selector): string {
  if (s.requirements.length === 0) return '{}';
  return s.requirements
    .map((r) => {
      switch (r.op) {
        case 'In':
          return r.values.length === 1 ? `${r.key}=${r.values[0]}` : `${r.key} in (${r.values.join(',')})`;
        case 'NotIn':
          return `${r.key} notin (${r.values.join(',')})`;
        case 'Exists':
          return r.key;
        case 'DoesNotExist':
          return `!${r.key}`;
      }
    })
    .join(',');
}

/** Parses a label list (`k8s:app=x` or `app=x`) into the label map selectors see. */
export function labelsFromList(list: readonly string[]): Map<string, string> {
  const m = new Map<string, string>();
  for (const l of list) {
    const colon = l.indexOf(':');
    const eq = l.indexOf('=');
    const body = colon >= 0 && (eq < 0 || colon < eq) ? l.slice(colon + 1) : l;
    const i = body.indexOf('=');
    if (i < 0) m.set(body, '');
    else m.set(body.slice(0, i), body.slice(i + 1));
  }
  return m;
}
