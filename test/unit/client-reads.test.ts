/*
 * Client sockets read into one shared buffer (src/proxy/client-reads.ts,
 * src/util/read-buffer.ts), against real sockets on loopback: the switch
 * happens on the Node the tests run on (it relies on Node internals, so an
 * upgrade that breaks it fails here), 'end', pause() and resume() still
 * work, a socket that already holds data keeps 'data' events, and the
 * buffer really is reused, which the poison every test runs with catches.
 */
import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { readClient } from '../../src/proxy/client-reads.js';
import { isVolatile, poisonReads, readBuffer, stable } from '../../src/util/read-buffer.js';

const servers: Server[] = [];
const sockets: Socket[] = [];

afterEach(() => {
  for (const s of sockets.splice(0)) s.destroy();
  for (const s of servers.splice(0)) s.close();
  poisonReads(0xa5); // as test/helpers/setup.ts left it
});

/** A server on a free port; `accepted` resolves with its first socket. */
async function serve(opts: { allowHalfOpen?: boolean } = {}) {
  const server = createServer(opts);
  servers.push(server);
  const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  const client = connect(port, '127.0.0.1');
  sockets.push(client);
  await once(client, 'connect');
  const socket = await accepted;
  sockets.push(socket);
  return { client, socket };
}

/** Resolves once `n` chunks have come through `readClient`, with copies of them. */
function collect(socket: Socket, n: number, onChunk?: (chunk: Buffer) => void) {
  const got: Buffer[] = [];
  let done: (v: Buffer[]) => void = () => {};
  const all = new Promise<Buffer[]>((resolve) => (done = resolve));
  const shared = readClient(socket, (chunk) => {
    onChunk?.(chunk);
    got.push(Buffer.from(chunk));
    if (got.length === n) done(got);
  });
  return { shared, all };
}

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('client reads into the shared buffer', () => {
  it('an accepted plain socket switches to it on this Node; chunks are views of it', async () => {
    const { client, socket } = await serve();
    const views: boolean[] = [];
    const { shared, all } = collect(socket, 2, (chunk) => views.push(isVolatile(chunk)));
    expect(shared).toBe(true);
    client.write('PING\r\n');
    await tick(20);
    client.write('ECHO hello\r\n');
    expect((await all).map(String)).toEqual(['PING\r\n', 'ECHO hello\r\n']);
    expect(views).toEqual([true, true]);
  });

  it("a half-close still ends in 'end' (allowHalfOpen), and the socket can answer", async () => {
    const { client, socket } = await serve({ allowHalfOpen: true });
    const { all } = collect(socket, 1);
    client.end('QUIT\r\n');
    await all;
    await once(socket, 'end');
    socket.end('+OK\r\n');
    const [reply] = await once(client, 'data');
    expect(String(reply)).toBe('+OK\r\n');
  });

  it('pause() stops the reads until resume()', async () => {
    const { client, socket } = await serve();
    const { all } = collect(socket, 2);
    client.write('A\r\n');
    await tick(20);
    socket.pause();
    let late = false;
    void all.then(() => (late = true));
    client.write('B\r\n');
    await tick(50);
    expect(late).toBe(false);
    socket.resume();
    expect((await all).map(String)).toEqual(['A\r\n', 'B\r\n']);
  });

  it("a socket that has already read data keeps 'data' events, and gets that data", async () => {
    const { client, socket } = await serve();
    client.write('EARLY\r\n');
    for (let i = 0; i < 50 && socket.readableLength === 0; i++) await tick(10);
    expect(socket.readableLength).toBeGreaterThan(0);
    const views: boolean[] = [];
    const { shared, all } = collect(socket, 2, (chunk) => views.push(isVolatile(chunk)));
    expect(shared).toBe(false);
    client.write('LATE\r\n');
    expect(Buffer.concat(await all).toString()).toBe('EARLY\r\nLATE\r\n');
    expect(views).toEqual([false, false]);
  });

  it('the buffer is reused: a view kept past its read changes, a stable() copy does not', async () => {
    const { client, socket } = await serve();
    poisonReads(undefined);
    let kept: Buffer | undefined;
    let copy: Buffer | undefined;
    const { all } = collect(socket, 2, (chunk) => {
      if (kept !== undefined) return;
      kept = chunk;
      copy = stable(chunk);
    });
    client.write('first\r\n');
    await tick(20);
    client.write('SECOND\r\n');
    await all;
    expect(copy?.toString()).toBe('first\r\n');
    expect(isVolatile(copy!)).toBe(false);
    expect(kept?.toString()).toBe('SECOND\r'); // overwritten by the next read
    expect(readBuffer.subarray(0, 8).toString()).toBe('SECOND\r\n');
  });

  it('with the poison on, a kept view reads as poison once its handler returned', async () => {
    const { client, socket } = await serve();
    poisonReads(0xa5);
    let kept: Buffer | undefined;
    const { all } = collect(socket, 1, (chunk) => {
      kept = chunk;
      expect(chunk.toString()).toBe('GET k\r\n'); // intact during the handler
    });
    client.write('GET k\r\n');
    await all;
    expect([...kept!]).toEqual(new Array(7).fill(0xa5));
  });
});
