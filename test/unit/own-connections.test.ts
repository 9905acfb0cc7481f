/*
 * OwnConnections: which MONITOR lines are semcache's own housekeeping. Real
 * sockets (their local address is what Redis prints); the integration side is
 * in test/integration/stateful.test.ts (MONITOR).
 */

import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OwnConnections } from '../../src/upstream/own-connections.js';

let server: Server;
const sockets: Socket[] = [];

beforeAll(async () => {
  server = createServer((s) => sockets.push(s)).listen(0, '127.0.0.1');
  await once(server, 'listening');
});

afterAll(async () => {
  for (const s of sockets) s.destroy();
  await new Promise((r) => server.close(r));
});

async function open(): Promise<Socket> {
  const port = (server.address() as { port: number }).port;
  const s = connect(port, '127.0.0.1');
  sockets.push(s);
  await once(s, 'connect');
  return s;
}

const line = (addr: string, args: string) =>
  Buffer.from(`+1796456025.588753 [0 ${addr}] ${args}\r\n`, 'latin1');

describe('OwnConnections', () => {
  it("hides only a bare RESET of a shared connection, everything of the probe's", async () => {
    const own = new OwnConnections();
    const shared = await open();
    const probe = await open();
    const client = await open();
    own.add(shared, 'reset');
    own.add(probe, 'all');
    const at = (s: Socket) => `127.0.0.1:${s.localPort}`;
    expect(own.hides(line(at(shared), '"RESET"'))).toBe(true);
    expect(own.hides(line(at(shared), '"PING"'))).toBe(false);
    expect(own.hides(line(at(shared), '"RESET" "x"'))).toBe(false);
    expect(own.hides(line(at(shared), '"SET" "k" "] \\"RESET\\""'))).toBe(false);
    expect(own.hides(line(at(probe), '"PING"'))).toBe(true);
    expect(own.hides(line(at(probe), '"RESET"'))).toBe(true);
    expect(own.hides(line(at(client), '"RESET"'))).toBe(false);
    // Another database, a Lua line, garbage: only the address decides.
    expect(own.hides(Buffer.from(`+1.2 [3 ${at(shared)}] "RESET"\r\n`))).toBe(true);
    expect(own.hides(line('lua', '"RESET"'))).toBe(false);
    expect(own.hides(Buffer.from('+1.2 no brackets\r\n'))).toBe(false);
    expect(own.hides(Buffer.from('-ERR [0 x] "RESET"\r\n'))).toBe(false);
  });

  it('forgets a connection when its socket closes', async () => {
    const own = new OwnConnections();
    const s = await open();
    own.add(s, 'all');
    const addr = `127.0.0.1:${s.localPort}`;
    expect(own.size).toBe(1);
    s.destroy();
    await once(s, 'close');
    expect(own.size).toBe(0);
    expect(own.hides(line(addr, '"PING"'))).toBe(false);
  });
});
