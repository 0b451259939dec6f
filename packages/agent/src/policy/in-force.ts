// PolicyService/List for one node: exactly the inputs of the policy in force (the same bytes the
// agent parsed), and why the newest policy was rejected, if it was.
import type { CompiledPolicy, PolicyDoc } from '@flowctl/policy';
import type { NodePolicies, PolicyServer } from '@flowctl/flow/policy-service';
import { grpcStatusOf } from '@flowctl/flow/grpc-status';
import type { ServiceError } from '@grpc/grpc-js';
import { listLearned, type LearnedSources } from './fqdn-learned.js';
import type { PolicySource } from './sources.js';

export interface PoliciesInForceOptions {
  node: string;
  audit: boolean;
  policyDir: string;
  endpointsFile: string;
  hostIps: readonly string[];
}

export class PoliciesInForce {
  private docs: PolicyDoc[] = [];
  private sources: PolicySource[] = [];
  private endpointsText = '';
  private revision = 0;
  private rejected: string | undefined;

  constructor(private readonly opts: PoliciesInForceOptions) {}

  /** The policy now enforced and the documents and files it was compiled from. */
  applied(policy: CompiledPolicy, docs: PolicyDoc[], sources: PolicySource[]): void {
    this.revision = policy.revision;
    this.docs = docs;
    this.sources = sources;
    this.rejected = undefined;
  }

  /** The policy was recompiled (endpoints changed) from the same documents. */
  recompiled(policy: CompiledPolicy): void {
    this.revision = policy.revision;
  }

  /** The newest policy was not applied; the previous one stays in force. */
  reject(reason: string): void {
    this.rejected = reason;
  }

  endpointsLoaded(text: string): void {
    this.endpointsText = text;
  }

  /** The documents in force, to compile again when the endpoints change. */
  get documents(): PolicyDoc[] {
    return this.docs;
  }

  list(): NodePolicies {
    const o = this.opts;
    const n: NodePolicies = {
      node: o.node,
      revision: this.revision,
      audit: o.audit,
      policy_dir: o.policyDir,
      policies: this.docs.map((d) => ({ kind: d.kind, name: d.name, namespace: d.namespace, labels: d.labels, file: d.file, document: d.document })),
      files: this.sources.map((s) => ({ file: s.file, text: s.text })),
      endpoints_file: o.endpointsFile,
      endpoints_yaml: this.endpointsText,
      host_ips: [...o.hostIps],
    };
    if (this.rejected !== undefined) n.rejected = this.rejected;
    return n;
  }

  /** The PolicyService implementation for this node; `learned`: what its endpoints learned for toFQDNs. */
  server(learned: LearnedSources): PolicyServer {
    return {
      list: (_call, cb) => cb(null, { nodes: [this.list()] }),
      listLearnedFqdns: (call, cb) => {
        try {
          cb(null, { nodes: [{ node: this.opts.node, learned: listLearned(call.request, learned) }] });
        } catch (e) {
          cb(grpcStatusOf(e) as ServiceError);
        }
      },
    };
  }
}
