// Child-process entry of the fake agent: prints one JSON line {"port": N} on stdout when serving.
import { parseArgs } from 'node:util';
import { startFakeAgent } from './fake-agent.js';

const { values } = parseArgs({
  options: {
    'node-name': { type: 'string', default: 'fake-node' },
    listen: { type: 'string', default: '127.0.0.1:0' },
    backlog: { type: 'string', default: '0' },
    rate: { type: 'string', default: '0' },
    'no-batch': { type: 'boolean', default: false },
    'batch-max': { type: 'string', default: '256' },
    'tick-ms': { type: 'string', default: '5' },
    hang: { type: 'boolean', default: false },
    peer: { type: 'string', multiple: true, default: [] },
    'no-peer-service': { type: 'boolean', default: false },
    stall: { type: 'boolean', default: false },
    seed: { type: 'string', default: '1' },
    'tls-cert-file': { type: 'string' },
    'tls-key-file': { type: 'string' },
    'tls-client-ca-files': { type: 'string' },
  },
});
const agent = await startFakeAgent({
  nodeName: values['node-name']!,
  listen: values.listen!,
  backlog: Number(values.backlog),
  rate: Number(values.rate),
  batch: !values['no-batch'],
  batchMax: Number(values['batch-max']),
  tickMs: Number(values['tick-ms']),
  hang: values.hang!,
  seed: Number(values.seed),
  peerService: !values['no-peer-service'],
  stall: values.stall!,
  ...(values['tls-cert-file'] && {
    tls: {
      cert: { flag: '--tls-cert-file', path: values['tls-cert-file'] },
      key: { flag: '--tls-key-file', path: values['tls-key-file']! },
      clientCAs: (values['tls-client-ca-files'] ?? '').split(',').filter(Boolean).map((path) => ({ flag: '--tls-client-ca-files', path })),
    },
  }),
  ...(values.peer!.length > 0 && {
    peers: values.peer!.map((p) => {
      const i = p.indexOf('=');
      return { name: p.slice(0, i), address: p.slice(i + 1) };
    }),
  }),
});
process.stdout.write(`${JSON.stringify({ port: agent.port })}\n`);
const stop = () => void agent.close().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
