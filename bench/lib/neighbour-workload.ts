// The policy workload shared by bench/bpf-cost.ts and bench/policy-compile.ts (set B): apps in
// namespaces, each allowing ingress from and egress to its neighbour app and egress to the world
// on 443 — 1,000 policies over 10,000 endpoints at the default size.
import type { EndpointSpec } from '../../packages/policy/src/index.js';

export interface NeighbourWorkload {
  specs: EndpointSpec[];
  /** Every policy as one multi-document YAML text. */
  yaml: string;
}

export function neighbourWorkload(opts: { namespaces: number; apps: number; podsPerApp: number; ip: (n: number) => string }): NeighbourWorkload {
  const specs: EndpointSpec[] = [];
  let n = 0;
  for (let ns = 0; ns < opts.namespaces; ns++)
    for (let app = 0; app < opts.apps; app++)
      for (let p = 0; p < opts.podsPerApp; p++, n++)
        specs.push({ name: `app${app}-${p}`, namespace: `ns${ns}`, node: 'n1', labels: { app: `app${app}` }, ips: [opts.ip(n)] });
  const docs: string[] = [];
  for (let ns = 0; ns < opts.namespaces; ns++)
    for (let app = 0; app < opts.apps; app++) {
      const peer = (app + 1) % opts.apps;
      docs.push(`apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: app${app}, namespace: ns${ns} }
spec:
  endpointSelector: { matchLabels: { app: app${app} } }
  ingress:
    - fromEndpoints: [ { matchLabels: { app: app${peer} } } ]
      toPorts: [ { ports: [ { port: "8080", protocol: TCP }, { port: "9000", endPort: 9003 } ] } ]
  egress:
    - toEndpoints: [ { matchLabels: { app: app${peer} } } ]
      toPorts: [ { ports: [ { port: "8080", protocol: TCP } ] } ]
    - toEntities: [ world ]
      toPorts: [ { ports: [ { port: "443", protocol: TCP } ] } ]
`);
    }
  return { specs, yaml: docs.join('---\n') };
}
