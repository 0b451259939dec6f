import { describe, expect, it } from 'vitest';
import { DEFAULT_AGENT_PORT, parsePeerAddress } from './address.js';

describe('parsePeerAddress', () => {
  it.each([
    ['10.0.0.1:4000', '10.0.0.1:4000'],
    ['10.0.0.1', `10.0.0.1:${DEFAULT_AGENT_PORT}`],
    ['node-1.example.com', `node-1.example.com:${DEFAULT_AGENT_PORT}`],
    ['localhost:1', 'localhost:1'],
    ['[fd00::1]:4244', '[fd00::1]:4244'],
    ['[fd00::1]', `[fd00::1]:${DEFAULT_AGENT_PORT}`],
    ['fd00::1', `[fd00::1]:${DEFAULT_AGENT_PORT}`],
    ['unix:///run/flowctl/node-1.sock', 'unix:///run/flowctl/node-1.sock'],
    ['/var/run/cilium/hubble.sock', 'unix:///var/run/cilium/hubble.sock'],
    ['  10.0.0.2:4244 ', '10.0.0.2:4244'],
  ])('%s dials %s', (given, target) => {
    expect(parsePeerAddress(given)).toEqual({ target, given });
  });

  it.each([
    ['', 'empty'],
    ['garbage::peer', 'bad'],
    ['unix://relative.sock', 'unix socket path must be absolute'],
    ['http://10.0.0.1:4244', 'only unix:// URLs are supported'],
    ['10.0.0.1:70000', 'bad port "70000"'],
    ['10.0.0.1:0', 'bad port "0"'],
    ['[zz::1]:4244', 'bad IPv6 literal'],
    ['bad_host!:4244', 'bad host "bad_host!"'],
  ])('rejects %j naming the address (%s)', (given, why) => {
    expect(() => parsePeerAddress(given)).toThrow(`invalid peer address "${given}": `);
    expect(() => parsePeerAddress(given)).toThrow(why);
  });
});
