// Blocking on alert: the `respond` section of --detect-config says, per alert kind, whether the
// source of a raised alert goes into the drop list (block-source, with a TTL). Nothing is blocked
// unless configured; the node's own addresses and the never-block list are never blocked. The
// alert reports what was done in its `action` field.
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
    'never-block': { kind: 'strings', default: [], help: "addresses or CIDRs never blocked (e.g. the DNS server); the node's own addresses always are" },
  },
};

export class Responder {
  private readonly blockKinds: ReadonlySet<string>;
  private readonly ttlMs: number;
  private readonly neverBlock: Prefix[];

  /** Throws CONFIG for an unknown alert kind or a bad never-block entry. */
  constructor(
    values: SectionValues,
    private readonly blocks: BlockList,
    hostIps: readonly string[],
  ) {
    const kinds = values['block-source'] as string[];
    for (const k of kinds) {
      if (!(ALERT_KINDS as readonly string[]).includes(k)) {
        throw new FlowctlError('CONFIG', `--detect-config: respond.block-source: unknown alert kind "${k}": want one of ${ALERT_KINDS.join(', ')}`);
      }
    }
    this.blockKinds = new Set(kinds);
    this.ttlMs = values['block-ttl'] as number;
    this.neverBlock = [...(values['never-block'] as string[]), ...hostIps].map((s) => {
      const p = parsePrefix(s);
      if (!p) throw new FlowctlError('CONFIG', `--detect-config: respond.never-block: "${s}" is not an address or CIDR`);
      return p;
    });
  }

  /** Acts on a raised alert and says what was done ("none" when nothing is configured for its kind). */
  act(f: Finding): string {
    if (!this.blockKinds.has(f.kind)) return 'none';
    const ip = parsePrefix(f.source.ip);
    if (!ip) return 'none: the source is not an address';
    if (this.neverBlock.some((p) => prefixContains(p, ip))) return `none: ${f.source.ip} is never blocked`;
    try {
      const e = this.blocks.add(f.source.ip, { ttlMs: this.ttlMs, reason: f.summary, origin: `alert:${f.kind}` });
      return `block-source ${e.cidr} for ${formatDuration(this.ttlMs)}`;
    } catch (e) {
      return `none: block failed: ${(e as Error).message}`;
    }
  }
}
