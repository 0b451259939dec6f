import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { hubbleCli } from '@flowctl/flow/testing';
import { buildProgram, type Io } from '../program.js';
import { StringSink } from '../printer/terminal.js';

async function run(args: string[]): Promise<{ out: string; err: string; error?: Error }> {
  const out = new StringSink();
  const err = new StringSink();
  const io: Io = { out, err, isTTY: false, closed: () => false, exitCode: 0 };
  try {
    await buildProgram(io, {}).parseAsync(['node', 'flowctl', ...args]);
    return { out: out.text, err: err.text };
  } catch (e) {
    return { out: out.text, err: err.text, error: e as Error };
  }
}

const raw = async (...args: string[]) => {
  const r = await run(['observe', '--print-raw-filters', ...args]);
  if (r.error) throw r.error;
  return r.out;
};

describe('filter flags on real argv arrays', () => {
  it('repeated flags OR, different flags AND, from/to pair into one filter', async () => {
    expect(await raw('--from-ip', '1.2.3.4', '--from-ip', '5.6.7.8', '--not', '--to-ip', '5.5.5.5', '--verdict', 'DROPPED', '-t', 'l7')).toBe(
      "allowlist:\n    - '{\"source_ip\":[\"1.2.3.4\",\"5.6.7.8\"],\"verdict\":[\"DROPPED\"],\"event_type\":[{\"type\":129}]}'\n" +
        "denylist:\n    - '{\"destination_ip\":[\"5.5.5.5\"]}'\n",
    );
  });

  it('either-side flags split into left (source) and right (destination)', async () => {
    expect(await raw('--namespace', 'foo')).toBe(
      "allowlist:\n    - '{\"source_pod\":[\"foo/\"]}'\n    - '{\"destination_pod\":[\"foo/\"]}'\n",
    );
    expect(await raw('--not', '--pod', 'deathstar', '--not', '--http-status', '200')).toBe(
      "denylist:\n    - '{\"source_pod\":[\"deathstar\"],\"http_status_code\":[\"200\"]}'\n" +
        "    - '{\"destination_pod\":[\"deathstar\"],\"http_status_code\":[\"200\"]}'\n",
    );
  });

  it('no filter prints {}', async () => {
    expect(await raw()).toBe('{}\n');
  });

  it.each([
    [['--namespace', 'a', '--pod', 'b'], 'invalid argument "b" for "--pod" flag: filters --namespace and --pod cannot be combined'],
    [['--verdict', 'BOGUS'], 'invalid argument "BOGUS" for "--verdict" flag: invalid --verdict value: BOGUS'],
    [['--not'], 'trailing --not found in the arguments'],
    [['--not', '--not', '--ip', '1.1.1.1'], 'consecutive --not statements'],
    [['--http-status', '6xx'], 'invalid http status code "6xx"'],
    [['--tcp-flags', 'syn,xx'], 'unknown tcp flag: xx'],
    [['--traffic-direction', 'up'], 'up: invalid traffic direction, expected ingress or egress'],
    [['--identity', 'bogus'], 'invalid security identity'],
    [['-t', 'bogus'], "unable to parse type 'bogus'"],
    [['--first', '1', '--last', '2'], 'cannot set both --first and --last'],
    [['--since', 'yesterday-ish'], 'failed to parse the since time: failed to convert yesterday-ish to time'],
    [['--allowlist', '{"bogus":1}'], 'unknown FlowFilter field "bogus"'],
  ])('%j fails with one clear message', async (args, msg) => {
    const r = await run(['observe', '--print-raw-filters', ...args]);
    if (args[0] === '--first' || args[0] === '--since') {
      // selectors are checked when the request is built, i.e. not by --print-raw-filters
      const r2 = await run(['observe', '--input-file', '/nonexistent', ...args]);
      expect(r2.error?.message).toContain(msg);
      return;
    }
    expect(r.error?.message).toContain(msg);
    expect(r.error?.message).not.toContain('\n');
  });

  it('--allowlist accepts proto and camelCase names', async () => {
    expect(await raw('--allowlist', '{"sourcePod":["x"],"reply":[true]}', '--denylist', '{"dns_query":["a"]}')).toBe(
      "allowlist:\n    - '{\"source_pod\":[\"x\"],\"reply\":[true]}'\ndenylist:\n    - '{\"dns_query\":[\"a\"]}'\n",
    );
  });
});

// The reference CLI decides: for each combination, flowctl prints the same raw filters (or the
// same error) as hubble v0.12.3.
const COMBOS: string[][] = [
  ['--namespace', 'foo', '--pod', 'bar'],
  ['--from-namespace', 'a', '--to-pod', 'b'],
  ['--namespace', 'a', '--service', 'b'],
  ['--ip', '1.1.1.1', '--from-label', 'a'],
  ['--fqdn', 'a', '--from-namespace', 'b'],
  ['--from-ip', '1.1.1.1', '--to-ip', '2.2.2.2'],
  ['--pod', 'a', '--to-ip', '1.1.1.1'],
  ['--label', 'a', '--from-label', 'b'],
  ['--port', '1', '--to-port', '2'],
  ['--identity', '1', '--from-identity', '2'],
  ['--workload', 'a', '--to-workload', 'b'],
  ['--verdict', 'DROPPED', '--verdict', 'FORWARDED'],
  ['--not', '--verdict', 'DROPPED', '--verdict', 'FORWARDED'],
  ['--ip', '1.1.1.1', '--not', '--ip', '2.2.2.2'],
  ['--ip', '10.0.0.0/8', '--port', '80', '--protocol', 'tcp', '--http-method', 'GET'],
  ['-n', 'shop', '-l', 'app=web', '--to-port', '8080', '--http-status', '5+', '--http-path', '/api/.*'],
  ['--tcp-flags', 'syn,ack', '--tcp-flags', 'fin', '-t', 'trace:to-endpoint', '-t', 'l7', '--identity', 'world', '-4', '--ip-version', 'v6'],
  ['--traffic-direction', 'INGRESS', '--workload', 'deploy/foo', '--workload', 'bar', '--node-name', 'k8s*'],
  ['-6', '--from-fqdn', '*.cilium.io', '--to-service', 'kube-system/dns', '--uuid', 'x', '--trace-id', 'y'],
  ['--from-pod', 'shop/front', '--to-namespace', 'db', '--not', '--to-port', '5432', '--not', '-t', 'drop'],
  ['--verdict', 'BOGUS'],
  ['--identity', 'bogus'],
  ['--traffic-direction', 'up'],
  ['--tcp-flags', 'syn,xx'],
  ['--not', '--not', '--ip', '1.1.1.1'],
  ['--from-service', 'a', '--to-service', 'b', '--from-namespace', 'x', '--to-namespace', 'y'],
];
const FLAGS = ['fqdn', 'from-fqdn', 'to-fqdn', 'ip', 'from-ip', 'to-ip', 'pod', 'from-pod', 'to-pod', 'namespace', 'from-namespace',
  'to-namespace', 'service', 'from-service', 'to-service', 'label', 'from-label', 'to-label', 'port', 'from-port', 'to-port',
  'identity', 'from-identity', 'to-identity', 'workload', 'from-workload', 'to-workload', 'verdict'];
const VALUE: Record<string, string> = { verdict: 'DROPPED' };
const val = (f: string) => VALUE[f] ?? (/port|identity/.test(f) ? '1' : /ip$/.test(f) ? '1.1.1.1' : 'a');

describe('--print-raw-filters equals hubble v0.12.3', { tags: ['hubble'] }, () => {
  const hubble = (args: string[]) => {
    const r = spawnSync(hubbleCli(), ['observe', '--print-raw-filters', ...args], { encoding: 'utf8' });
    return { out: r.stdout, err: r.stderr.trim(), status: r.status };
  };

  it.each(COMBOS.map((c) => [c.join(' '), c]))('%s', async (_name, args) => {
    const want = hubble(args as string[]);
    const got = await run(['observe', '--print-raw-filters', ...(args as string[])]);
    if (want.status === 0) {
      expect(got.error).toBeUndefined();
      expect(got.out).toBe(want.out);
    } else {
      expect(got.error?.message).toBe(want.err);
    }
  });

  it('every pair of endpoint flags conflicts (or not) exactly as hubble does', async () => {
    const mismatches: string[] = [];
    for (const a of FLAGS) {
      for (const b of FLAGS) {
        if (a === b) continue;
        const args = [`--${a}`, val(a), `--${b}`, val(b)];
        const want = hubble(args);
        const got = await run(['observe', '--print-raw-filters', ...args]);
        const g = got.error ? got.error.message : got.out;
        const w = want.status === 0 ? want.out : want.err;
        if (g !== w) mismatches.push(`${args.join(' ')}:\n  hubble: ${w}\n  flowctl: ${g}`);
      }
    }
    expect(mismatches).toEqual([]);
  }, 300_000); // 756 hubble processes: minutes on a loaded 2-core machine
});
