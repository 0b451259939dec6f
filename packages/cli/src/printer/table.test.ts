import { expect, it } from 'vitest';
import { NodeState } from '@flowctl/flow/gen/relay/relay';
import { nodesTable } from '../commands/list.js';
import { statusTable } from '../commands/status.js';
import { renderTable } from './table.js';

it('renderTable: columns three spaces apart, no borders, no trailing blanks', () => {
  expect(renderTable(['NAME', 'NS', 'NOTE'], [['a', '', 'x'], ['bbbbbb', 'ns-1', ''], ['ünï', 'n', 'y']])).toBe(
    'NAME     NS     NOTE\n' + 'a               x\n' + 'bbbbbb   ns-1\n' + 'ünï      n      y\n',
  );
});

it('status -o table', () => {
  expect(
    statusTable({ num_flows: 2771n, max_flows: 8190n, seen_flows: 12345n, uptime_ns: 301_515_181_665n, num_connected_nodes: 2, num_unavailable_nodes: 1, version: 'flowctl-relay v0.1.0', flows_rate: 23.456 }),
  ).toBe(
    'NUM FLOWS   MAX FLOWS   SEEN FLOWS   FLOWS PER SECOND   UPTIME           NUM CONNECTED NODES   NUM UNAVAILABLE NODES   VERSION\n' +
      '2,771       8,190       12,345       23.46              5m1.515181665s   2                     1                       flowctl-relay v0.1.0\n',
  );
});

it('list nodes -o wide', () => {
  const nodes = [
    { name: 'node-2', state: NodeState.NODE_UNAVAILABLE, address: '10.0.0.2:4244' },
    { name: 'node-1', state: NodeState.NODE_CONNECTED, uptime_ns: 61_000_000_000n, seen_flows: 610n, num_flows: 100n, max_flows: 4095n, version: 'v0.1.0', address: '10.0.0.1:4244', tls: { enabled: true, server_name: '' } },
  ];
  expect(nodesTable(nodes, true)).toBe(
    'NAME     STATUS        AGE    FLOWS/S   CURRENT/MAX-FLOWS   VERSION   ADDRESS         TLS\n' +
      'node-1   Connected     1m1s   10.00     100/4,095 (2.44%)   v0.1.0    10.0.0.1:4244   Enabled\n' +
      'node-2   Unavailable   N/A    N/A       N/A                           10.0.0.2:4244   Disabled\n',
  );
});
