// --replay: serves flows from a `hubble observe -o json` file at a fixed rate instead of the
// kernel, for load tests of the server, relay and CLI. Never touches the addon.
import { readFileSync } from 'node:fs';
import type { Flow } from '@flowctl/flow';
import { decodeResponse } from '@flowctl/flow/json';
import { FlowctlError } from '../errors.js';
import { msToTimestamp } from '../observer/timestamp.js';

export function loadReplayFile(path: string): Flow[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new FlowctlError('CONFIG', `${path}: cannot read replay file: ${(e as Error).message}`);
  }
  const flows: Flow[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (!line) continue;
    let r;
    try {
      r = decodeResponse(line, `${path}:${i + 1}`);
    } catch (e) {
      throw new FlowctlError('CONFIG', (e as Error).message);
    }
    if (r.flow) flows.push(r.flow);
  }
  if (flows.length === 0) throw new FlowctlError('CONFIG', `${path}: no flows to replay`);
  return flows;
}

/** Writes the file's flows in a loop, `rate` per second, stamped with the current time and this node. */
export class ReplaySource {
  private timer: NodeJS.Timeout | undefined;
  private next = 0;
  private carry = 0;
  replayed = 0;

  constructor(
    private readonly flows: Flow[],
    private readonly rate: number,
    private readonly nodeName: string,
    private readonly write: (f: Flow) => void,
    private readonly newUuid: () => string,
  ) {}

  start(): void {
    const tickMs = 10;
    let last = performance.now();
    this.timer = setInterval(() => {
      const now = performance.now();
      this.carry += ((now - last) / 1000) * this.rate;
      last = now;
      const n = Math.floor(this.carry);
      this.carry -= n;
      const time = msToTimestamp(Date.now());
      for (let i = 0; i < n; i++) {
        const src = this.flows[this.next]!;
        this.next = (this.next + 1) % this.flows.length;
        this.write({ ...src, time, uuid: this.newUuid(), node_name: this.nodeName });
        this.replayed++;
      }
    }, tickMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
