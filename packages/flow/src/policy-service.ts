// flowctl.policy.v1.PolicyService: the policies in force on a node, as the agent loaded them, so
// `flowctl policy list|check` can work against a running agent (or a relay that fans the call
// out) with the same compiler the agent uses. Hand-written with a JSON codec rather than
// generated: the payload is small, read by people and scripts, and carries YAML source text.
//
//   List(ListPoliciesRequest) → ListPoliciesResponse { nodes: NodePolicies[] }
//   ListLearnedFqdns(ListLearnedFqdnsRequest) → ListLearnedFqdnsResponse { nodes: NodeLearnedFqdns[] }
//     what endpoints learned from DNS answers for toFQDNs: which addresses a name allowed them.
//
// An agent answers with its own node; a relay answers with one entry per connected node (nodes it
// could not ask carry `error`).
import { makeGenericClientConstructor } from '@grpc/grpc-js';
import type { CallOptions, ChannelCredentials, Client, ClientOptions, ClientUnaryCall, handleUnaryCall, Metadata, ServiceDefinition, ServiceError, UntypedServiceImplementation } from '@grpc/grpc-js';
import { FlowctlError } from './errors.js';

export const POLICY_SERVICE_NAME = 'flowctl.policy.v1.PolicyService';
export const POLICY_LIST_PATH = `/${POLICY_SERVICE_NAME}/List`;
export const POLICY_LEARNED_PATH = `/${POLICY_SERVICE_NAME}/ListLearnedFqdns`;

/** One policy document in force (the summary; the compiler reads `files`). */
export interface PolicyInForce {
  kind: string;
  name: string;
  namespace: string;
  labels: string[];
  file: string;
  /** 1-based document number within `file` */
  document: number;
}

export interface PolicySourceFile {
  file: string;
  /** The file's text exactly as the agent parsed it. */
  text: string;
}

export interface NodePolicies {
  node: string;
  /** CompiledPolicy.revision of what the datapath enforces (0: no policy loaded). */
  revision: number;
  /** --policy-audit: denials are reported as AUDIT, not dropped. */
  audit: boolean;
  policy_dir: string;
  policies: PolicyInForce[];
  files: PolicySourceFile[];
  endpoints_file: string;
  /** The endpoints file's text as last loaded ('' without --endpoints). */
  endpoints_yaml: string;
  /** This node's own addresses (reserved:host). */
  host_ips: string[];
  /** Why the newest policy directory contents were rejected, while the previous policy stays in force. */
  rejected?: string;
  /** Set by a relay for a node it could not ask; the other fields are then empty. */
  error?: string;
}

// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface ListPoliciesRequest {}

export interface ListPoliciesResponse {
  nodes: NodePolicies[];
}

export interface ListLearnedFqdnsRequest {
  /** Only what was learned for this DNS name (any case, trailing dot or not); unset: every name. */
  name?: string;
  /** Only what the endpoint with this address learned; unset: every endpoint. */
  endpoint_ip?: string;
}

/** One address an endpoint learned from a DNS answer (toFQDNs), in force until it expires. */
export interface LearnedFqdn {
  /** The endpoint's address the answer went to, and its "namespace/name" ('' when unknown). */
  endpoint_ip: string;
  endpoint: string;
  /** The question name; '' when the agent did not see the answer (the kernel keeps a hash only). */
  name: string;
  address: string;
  /** Seconds until it expires. */
  expires_in_s: number;
  /** The toFQDNs selectors (matchName or matchPattern) it was learned through. */
  selectors: string[];
}

export interface NodeLearnedFqdns {
  node: string;
  learned: LearnedFqdn[];
  /** Set by a relay for a node it could not ask. */
  error?: string;
}

export interface ListLearnedFqdnsResponse {
  nodes: NodeLearnedFqdns[];
}

const isStr = (v: unknown): v is string => typeof v === 'string';

function check(cond: boolean, where: string, what: string): void {
  if (!cond) throw new FlowctlError('MALFORMED', `${where}: ${what}`);
}

/** Validates a decoded response so the CLI can trust every field it reads. */
export function validateListResponse(v: unknown, where = 'ListPoliciesResponse'): ListPoliciesResponse {
  check(typeof v === 'object' && v !== null && Array.isArray((v as ListPoliciesResponse).nodes), where, 'expected {nodes: [...]}');
  const nodes = (v as ListPoliciesResponse).nodes;
  nodes.forEach((n, i) => {
    const w = `${where}: nodes[${i}]`;
    check(typeof n === 'object' && n !== null, w, 'not an object');
    check(isStr(n.node), w, 'node is not a string');
    if (n.error !== undefined) {
      check(isStr(n.error), w, 'error is not a string');
      return;
    }
    check(typeof n.revision === 'number' && typeof n.audit === 'boolean', w, 'revision/audit missing');
    check(isStr(n.policy_dir) && isStr(n.endpoints_file) && isStr(n.endpoints_yaml), w, 'policy_dir/endpoints_file/endpoints_yaml missing');
    check(Array.isArray(n.host_ips) && n.host_ips.every(isStr), w, 'host_ips is not a list of strings');
    check(Array.isArray(n.files) && n.files.every((f) => isStr(f?.file) && isStr(f?.text)), w, 'files is not a list of {file, text}');
    check(
      Array.isArray(n.policies) && n.policies.every((p) => isStr(p?.kind) && isStr(p?.name) && isStr(p?.namespace) && isStr(p?.file) && typeof p?.document === 'number' && Array.isArray(p?.labels)),
      w,
      'policies is not a list of {kind, name, namespace, labels, file, document}',
    );
    check(n.rejected === undefined || isStr(n.rejected), w, 'rejected is not a string');
  });
  return v as ListPoliciesResponse;
}

/** Validates a decoded ListLearnedFqdnsResponse (as validateListResponse). */
export function validateLearnedResponse(v: unknown, where = 'ListLearnedFqdnsResponse'): ListLearnedFqdnsResponse {
  check(typeof v === 'object' && v !== null && Array.isArray((v as ListLearnedFqdnsResponse).nodes), where, 'expected {nodes: [...]}');
  (v as ListLearnedFqdnsResponse).nodes.forEach((n, i) => {
    const w = `${where}: nodes[${i}]`;
    check(typeof n === 'object' && n !== null && isStr(n.node), w, 'node is not a string');
    check(n.error === undefined || isStr(n.error), w, 'error is not a string');
    check(
      Array.isArray(n.learned) && n.learned.every((l) => isStr(l?.endpoint_ip) && isStr(l.endpoint) && isStr(l.name) && isStr(l.address) &&
        typeof l.expires_in_s === 'number' && Array.isArray(l.selectors) && l.selectors.every(isStr)),
      w,
      'learned is not a list of {endpoint_ip, endpoint, name, address, expires_in_s, selectors}',
    );
  });
  return v as ListLearnedFqdnsResponse;
}

function encode(v: unknown): Buffer {
  return Buffer.from(JSON.stringify(v), 'utf8');
}

function decodeJson(b: Buffer, what: string): unknown {
  try {
    return JSON.parse(b.toString('utf8')) as unknown;
  } catch (e) {
    throw new FlowctlError('MALFORMED', `${what}: not JSON: ${(e as Error).message}`);
  }
}

export const PolicyService = {
  list: {
    path: POLICY_LIST_PATH,
    requestStream: false,
    responseStream: false,
    requestSerialize: (r: ListPoliciesRequest): Buffer => encode(r),
    requestDeserialize: (b: Buffer): ListPoliciesRequest => {
      const v = b.length ? decodeJson(b, 'ListPoliciesRequest') : {};
      if (typeof v !== 'object' || v === null) throw new FlowctlError('MALFORMED', 'ListPoliciesRequest: expected an object');
      return v as ListPoliciesRequest;
    },
    responseSerialize: (r: ListPoliciesResponse): Buffer => encode(r),
    responseDeserialize: (b: Buffer): ListPoliciesResponse => validateListResponse(decodeJson(b, 'ListPoliciesResponse')),
  },
  listLearnedFqdns: {
    path: POLICY_LEARNED_PATH,
    requestStream: false,
    responseStream: false,
    requestSerialize: (r: ListLearnedFqdnsRequest): Buffer => encode(r),
    requestDeserialize: (b: Buffer): ListLearnedFqdnsRequest => {
      const v = b.length ? decodeJson(b, 'ListLearnedFqdnsRequest') : {};
      const r = v as ListLearnedFqdnsRequest;
      if (typeof v !== 'object' || v === null || (r.name !== undefined && !isStr(r.name)) || (r.endpoint_ip !== undefined && !isStr(r.endpoint_ip))) {
        throw new FlowctlError('INVALID_ARGUMENT', 'ListLearnedFqdnsRequest: expected {name?: string, endpoint_ip?: string}');
      }
      return r;
    },
    responseSerialize: (r: ListLearnedFqdnsResponse): Buffer => encode(r),
    responseDeserialize: (b: Buffer): ListLearnedFqdnsResponse => validateLearnedResponse(decodeJson(b, 'ListLearnedFqdnsResponse')),
  },
} as const satisfies ServiceDefinition;

export interface PolicyServer extends UntypedServiceImplementation {
  list: handleUnaryCall<ListPoliciesRequest, ListPoliciesResponse>;
  listLearnedFqdns: handleUnaryCall<ListLearnedFqdnsRequest, ListLearnedFqdnsResponse>;
}

export interface PolicyClient extends Client {
  list(request: ListPoliciesRequest, callback: (error: ServiceError | null, response: ListPoliciesResponse) => void): ClientUnaryCall;
  list(request: ListPoliciesRequest, metadata: Metadata, options: Partial<CallOptions>, callback: (error: ServiceError | null, response: ListPoliciesResponse) => void): ClientUnaryCall;
  listLearnedFqdns(request: ListLearnedFqdnsRequest, callback: (error: ServiceError | null, response: ListLearnedFqdnsResponse) => void): ClientUnaryCall;
}

export const PolicyClient = makeGenericClientConstructor(PolicyService, POLICY_SERVICE_NAME) as unknown as {
  new (address: string, credentials: ChannelCredentials, options?: Partial<ClientOptions>): PolicyClient;
  service: typeof PolicyService;
  serviceName: string;
};
