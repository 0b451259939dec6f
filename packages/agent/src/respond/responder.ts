// Blocking on alert: the `respond` section of --detect-config says, per alert kind, whether the
// source of a raised alert goes into the drop list (block-source, with a TTL) or, when it is a local
// pod, is isolated (isolate: its egress denied but DNS, until removed or isolate-ttl). Nothing is
// blocked unless configured; the node's own addresses and the never-block list are never blocked.
// The alert reports what was done in its `action` field.
import { parsePrefix, prefixContains, type Prefix } from '@flowctl/flow/ip';
import { FlowctlError } from '../errors.js';
import type { SectionSpec, SectionValues } from '../detect/config.js';
import { formatDuration } from '../detect/config.js';
import type { Finding } from '../detect/detector.js';
import type { BlockList } from './block-list.js';

import { ALERT_KINDS } from '@flowctl/flow/alerts';

export const RESPOND_SECTION: SectionSpec = {
  name: 'respond',
  help: 'what is done about an alert when it is raised',
  options: {
    'block-source': { kind: 'strings', default: [], help: "alert kinds whose source address goes into the drop list (flowctl block), e.g. [port-scan]" },
    'block-ttl': { kind: 'duration', default: 10 * 60_000, help: 'how long such a block lasts' },
    isolate: { kind: 'strings', default: [], help: 'alert kinds whose source, a pod of this node, loses all egress but DNS (flowctl block list shows it), e.g. [port-scan]' },
    'isolate-ttl': { kind: 'duration', default: 0, help: 'how long an isolation lasts; 0s: until `flowctl block remove POD`' },
    'never-block': { kind: 'strings', default: [], help: "addresses or CIDRs never blocked (e.g. the DNS server); the node's own addresses always are" },
  },
};

/** The local pod ("namespace/name") with address `ip`, if any. */
export type LocalPod = (ip: string) => string | undefined;

export class Responder {
  private readonly blockKinds: ReadonlySet<string>;
  private readonly isolateKinds: ReadonlySet<string>;
  private readonly isolateTtlMs: number;
  private readonly ttlMs: number;
  private readonly neverBlock: Prefix[];

  /** Throws CONFIG for an unknown alert kind or a bad never-block entry. */
  constructor(
    values: SectionValues,
    private readonly blocks: BlockList,
    hostIps: readonly string[],
    private readonly localPod: LocalPod = () => undefined,
  ) {
    this.blockKinds = new Set(alertKinds(values, 'block-source'));
    this.isolateKinds = new Set(alertKinds(values, 'isolate'));
    for (const k of this.isolateKinds) {
      if (this.blockKinds.has(k)) throw new FlowctlError('CONFIG', `--detect-config: respond: "${k}" is under both block-source and isolate: pick one`);
    }
    this.isolateTtlMs = values['isolate-ttl'] as number;
    this.ttlMs = values['block-ttl'] as number;
    this.neverBlock = [...(values['never-block'] as string[]), ...hostIps].map((s) => {
      const p = parsePrefix(s);
      if (!p) throw new FlowctlError('CONFIG', `--detect-config: respond.never-block: "${s}" is not an address or CIDR`);
      return p;
    });
  }

  /** Acts on a raised alert and says what was done ("none" when nothing is configured for its kind). */
  act(f: Finding): string {
    const isolate = this.isolateKinds.has(f.kind);
    if (!isolate && !this.blockKinds.has(f.kind)) return 'none';
    const ip = parsePrefix(f.source.ip);
    if (!ip) return 'none: the source is not an address';
    if (this.neverBlock.some((p) => prefixContains(p, ip))) return `none: ${f.source.ip} is never blocked`;
    if (isolate) return this.isolate(f);
    try {
      const e = this.blocks.add(f.source.ip, { ttlMs: this.ttlMs, reason: f.summary, origin: `alert:${f.kind}` });
      return `block-source ${e.cidr} for ${formatDuration(this.ttlMs)}`;
    } catch (e) {
      return `none: block failed: ${(e as Error).message}`;
    }
  }

  /** isolate: a local pod loses its egress but DNS; any other source is left alone. */
  private isolate(f: Finding): string {
    const pod = this.localPod(f.source.ip);
    if (!pod) return `none: ${f.source.ip} is not a pod of this node`;
    const ttl = this.isolateTtlMs > 0 ? this.isolateTtlMs : undefined;
    try {
      this.blocks.add(f.source.ip, { ...(ttl !== undefined && { ttlMs: ttl }), reason: f.summary, origin: `alert:${f.kind}`, isolate: pod });
      return `isolate ${pod} (${f.source.ip}) ${ttl !== undefined ? `for ${formatDuration(ttl)}` : 'until removed'}`;
    } catch (e) {
      return `none: isolate failed: ${(e as Error).message}`;
    }
  }
}

/** The alert kinds of option `name`; CONFIG for an unknown one. */
function alertKinds(values: SectionValues, name: string): string[] {
  const kinds = values[name] as string[];
  for (const k of kinds) {
    if (!(ALERT_KINDS as readonly string[]).includes(k)) {
      throw new FlowctlError('CONFIG', `--detect-config: respond.${name}: unknown alert kind "${k}": want one of ${ALERT_KINDS.join(', ')}`);
    }
  }
  return kinds;
}
