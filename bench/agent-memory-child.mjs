// Child of bench/agent-memory.ts: one agent, empty or with a full ring, prints its memory as JSON.
// Plain JS so that, against the compiled agent, nothing but the agent is in the process.
//   node --expose-gc bench/agent-memory-child.mjs <empty|full> <agent dir> <.js|.ts>
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const RING = 65535;
const PODS = 200;
const [, , modeArg, src, ext] = process.argv;
const podIp = (i) => `10.206.${70 + (i >> 8)}.${(i & 255) + 1}`;

async function child(mode) {
  const { Agent } = await import(join(src, `agent${ext}`));
  const { FakeDatapath } = await import(join(src, `datapath/fake${ext}`));
  const { flowEvent } = await import(join(src, `parser/fixtures${ext}`));
  const dir = mkdtempSync(join(tmpdir(), 'fcb-mem-'));
  const apps = ['frontend', 'cart', 'checkout', 'payment', 'catalog', 'search', 'user', 'order', 'shipping', 'email'];
  let yaml = 'endpoints:\n';
  for (let i = 0; i < PODS; i++) {
    const app = apps[i % apps.length];
    yaml += `  - name: ${app}-7d9f8b6c5-${String(i).padStart(5, 'x').replace(/[0-9]/g, (d) => 'bcdfghjklm'[Number(d)])}\n` +
      `    namespace: ns-${i % 8}\n    node: ${i < 20 ? 'bench-node' : 'other'}\n    labels: { app: ${app}, tier: t${i % 3} }\n    ips: [${podIp(i)}]\n`;
  }
  writeFileSync(join(dir, 'endpoints.yaml'), yaml);
  const dp = new FakeDatapath();
  const agent = new Agent({
    nodeName: 'bench-node', endpointsFile: join(dir, 'endpoints.yaml'), unixSocket: join(dir, 'h.sock'), listenAddress: '',
    ringCapacity: RING, datapath: dp, log: { info() {}, warn() {}, error() {} },
  });
  await agent.start();
  let rnd = 12345;
  const rand = (n) => ((rnd = (rnd * 1103515245 + 12345) & 0x7fffffff) % n);
  const dnsQ = (id, name, resp) => {
    const labels = Buffer.concat([...name.split('.').map((p) => Buffer.concat([Buffer.from([p.length]), Buffer.from(p)])), Buffer.from([0])]);
    const h = Buffer.alloc(12);
    h.writeUInt16BE(id, 0);
    h.writeUInt16BE(resp ? 0x8180 : 0x0100, 2);
    h.writeUInt16BE(1, 4);
    h.writeUInt16BE(resp ? 1 : 0, 6);
    const q = Buffer.concat([labels, Buffer.from([0, 1, 0, 1])]);
    const a = resp ? Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 10, 206, 70, rand(200) + 1]) : Buffer.alloc(0);
    return Buffer.concat([h, q, a]);
  };
  let ts = process.hrtime.bigint();
  let port = 20000;
  while (mode === 'full' && agent.observer.seenFlows < RING + 5000) {
    const batch = [];
    for (let k = 0; k < 64; k++) {
      const a = rand(20);
      const b = rand(PODS);
      const src = podIp(a);
      const dst = rand(10) === 0 ? `203.0.113.${rand(250)}` : podIp(b);
      const sport = (port = port >= 60000 ? 20000 : port + 1);
      const kind = rand(10);
      ts += 1000n;
      if (kind < 6) {
        for (const [flags, reply] of [[0x02, false], [0x12, true], [0x10, false], [0x11, false], [0x11, true]]) {
          for (const obs of [1, 2]) {
            batch.push(reply
              ? flowEvent({ tsNs: ts, obsPoint: obs, srcIp: dst, dstIp: src, srcPort: 8080, dstPort: sport, tcpFlags: flags, isReply: true, ifindex: 10 + a })
              : flowEvent({ tsNs: ts, obsPoint: obs, srcIp: src, dstIp: dst, srcPort: sport, dstPort: 8080, tcpFlags: flags, isReply: false, ifindex: 10 + a }));
          }
        }
      } else if (kind < 8) {
        const name = `svc-${rand(50)}.ns-${rand(8)}.svc.cluster.local`;
        const id = rand(65535);
        batch.push(flowEvent({ tsNs: ts, proto: 17, srcIp: src, dstIp: podIp(0), srcPort: sport, dstPort: 53, tcpFlags: 0, l7: 1, reason: 7, payload: dnsQ(id, name, false), payloadLen: 0 }));
        batch.push(flowEvent({ tsNs: ts + 500000n, proto: 17, srcIp: podIp(0), dstIp: src, srcPort: 53, dstPort: sport, tcpFlags: 0, l7: 1, reason: 7, isReply: true, payload: dnsQ(id, name, true), payloadLen: 0 }));
      } else {
        const path = `/api/v1/items/${rand(1000)}?page=${rand(10)}`;
        const req = Buffer.from(`GET ${path} HTTP/1.1\r\nHost: ${apps[b % 10]}:8080\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n`);
        const resp = Buffer.from(`HTTP/1.1 ${[200, 200, 200, 404, 500][rand(5)]} OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}`);
        // The message streams start at the SYNs: payload byte 1 follows each side's initial sequence number.
        batch.push(flowEvent({ tsNs: ts, srcIp: src, dstIp: dst, srcPort: sport, dstPort: 8080, tcpFlags: 0x02, tcpSeq: 999 }));
        batch.push(flowEvent({ tsNs: ts, srcIp: dst, dstIp: src, srcPort: 8080, dstPort: sport, tcpFlags: 0x12, isReply: true, tcpSeq: 4999 }));
        batch.push(flowEvent({ tsNs: ts, srcIp: src, dstIp: dst, srcPort: sport, dstPort: 8080, tcpFlags: 0x18, l7: 2, reason: 7, payload: req, payloadLen: req.length, tcpSeq: 1000 }));
        batch.push(flowEvent({ tsNs: ts + 2_000_000n, srcIp: dst, dstIp: src, srcPort: 8080, dstPort: sport, tcpFlags: 0x18, isReply: true, l7: 2, reason: 7, payload: resp, payloadLen: resp.length, tcpSeq: 5000 }));
      }
    }
    for (const e of batch) e.payloadLen = e.payload.length;
    dp.emit(batch);
    await new Promise((r) => setImmediate(r));
    while (agent.consumer.queueLength > 0) await new Promise((r) => setImmediate(r));
  }
  for (let i = 0; i < 3; i++) {
    globalThis.gc?.();
    await new Promise((r) => setTimeout(r, 50));
  }
  const m = process.memoryUsage();
  let l7 = 0;
  if (mode === 'full') for (let s = agent.observer.ring.tail; s < agent.observer.ring.head; s++) if (agent.observer.ring.read(s)?.flow?.l7) l7++;
  process.stdout.write(JSON.stringify({ rss: m.rss, heapUsed: m.heapUsed, flows: agent.observer.ring.length, l7 }) + '\n');
  await agent.stop();
  rmSync(dir, { recursive: true, force: true });
}

await child(modeArg === 'full' ? 'full' : 'empty');
