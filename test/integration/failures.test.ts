/*
 * Failures and limits: an upstream that is not there, one that dies (SIGKILL)
 * or restarts under load, many clients at once, --max-clients, a client that
 * does not read its replies, and a pipeline far beyond --max-pending. The rules
 * are in docs/protocol.md ("Upstream failures", "Limits and memory").
 */
import { connect, type Socket } from 'node:net';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { freePort } from '../../src/embedded-redis.js';
import { stopAfterEach } from '../helpers/cleanup.js';
import { sleep, waitFor } from '../helpers/proc.js';
import { cmd, RawClient, request, splitReplies } from '../helpers/raw.js';
import { type ProxyHandle, type RedisHandle, startProxy, startRedis } from '../helpers/servers.js';

/** Everything a test started, stopped after it whatever happened. */
const cleanups = stopAfterEach();

async function redisOn(port?: number, args: string[] = []): Promise<RedisHandle> {
  const r = await startRedis(args, port);
  cleanups.push(() => r.stop());
  return r;
}

async function proxyTo(port: number, overrides = {}): Promise<ProxyHandle> {
  const p = await startProxy(port, overrides);
  cleanups.push(() => p.stop());
  return p;
}

async function client(port: number): Promise<RawClient> {
  const c = await RawClient.open(port);
  cleanups.push(() => c.close());
  return c;
}

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

const modes = [
  { name: 'shared upstream (--multiplex 1)', multiplex: 1 },
  { name: 'own upstream per client (--multiplex 0)', multiplex: 0 },
] as const;

describe.each(modes)('upstream unreachable, $name', ({ multiplex }) => {
  it('answers -ERR naming the address promptly, stays open, recovers when redis appears', async () => {
    const port = await freePort();
    const proxy = await proxyTo(port, { multiplex });
    const c = await client(proxy.port);
    let t = Date.now();
    const first = await request(c, cmd('PING'), 1, 3000);
    expect(Date.now() - t).toBeLessThan(2000);
    expect(first).toMatch(
      new RegExp(
        `^-ERR semcache: upstream ${esc(`127.0.0.1:${port}`)} unreachable \\([^\\r\\n]*ECONNREFUSED[^\\r\\n]*\\)\\r\\n$`,
      ),
    );
    expect(c.closed).toBe(false);

    // A pipeline: every command gets the error, in order, and the client stays.
    t = Date.now();
    const three = await request(
      c,
      Buffer.concat([cmd('SET', 'a', '1'), cmd('GET', 'a'), cmd('PING')]),
      3,
      3000,
    );
    expect(Date.now() - t).toBeLessThan(2000);
    const lines = three.split('\r\n').filter(Boolean);
    expect(lines).toHaveLength(3);
    for (const l of lines)
      expect(l).toMatch(/^-ERR semcache: upstream 127\.0\.0\.1:\d+ unreachable/);
    // A stateful command too (it needs a connection of its own).
    expect(await request(c, cmd('SELECT', '0'), 1, 3000)).toMatch(
      /^-ERR semcache: upstream .* unreachable/,
    );
    expect(c.closed).toBe(false);

    // Redis comes up on that port: the next command connects and works.
    await redisOn(port);
    expect(await request(c, cmd('PING'))).toBe('+PONG\r\n');
    expect(await request(c, Buffer.concat([cmd('SET', 'a', '1'), cmd('GET', 'a')]), 2)).toBe(
      '+OK\r\n$1\r\n1\r\n',
    );
    expect(await request(c, Buffer.concat([cmd('SELECT', '2'), cmd('GET', 'a')]), 2)).toBe(
      '+OK\r\n$-1\r\n',
    );
    const fresh = await client(proxy.port);
    expect(await request(fresh, cmd('GET', 'a'))).toBe('$1\r\n1\r\n');
  });
});

describe.each(modes)('upstream killed (SIGKILL) under load, $name', ({ multiplex }) => {
  it('pending commands get an error or the connection closes; the proxy survives', async () => {
    const redis = await redisOn();
    const port = redis.port;
    const proxy = await proxyTo(port, { multiplex });
    // Errors a worker may see (shared mode only: a client whose own connection
    // dies is closed and gets nothing more, as from Redis): its pending
    // commands lose the shared connection, later ones may find no upstream.
    const errRe = new RegExp(
      `^-ERR semcache: (connection to upstream 127\\.0\\.0\\.1:${port} lost|upstream 127\\.0\\.0\\.1:${port} unreachable) \\([^\\r\\n]*\\)$`,
    );

    const blocker = await client(proxy.port);
    blocker.write(cmd('BLPOP', 'kill:never', '0'));

    // 20 clients, each looping SET+GET on its own key until the first failure or 3 s.
    const deadline = Date.now() + 3000;
    const workers = await Promise.all(Array.from({ length: 20 }, () => client(proxy.port)));
    const okRounds: number[] = workers.map(() => 0);
    const endings: string[] = workers.map(() => 'deadline');
    const loops = workers.map(async (c, w) => {
      for (let i = 0; Date.now() < deadline && !c.closed; i++) {
        const val = `w${w}-${i}`;
        const t = Date.now();
        const out = await request(
          c,
          Buffer.concat([cmd('SET', `kill:${w}`, val), cmd('GET', `kill:${w}`)]),
          2,
          2500,
        );
        if (out === `+OK\r\n$${val.length}\r\n${val}\r\n`) okRounds[w]!++;
        else {
          endings[w] = c.closed
            ? 'closed'
            : splitReplies(Buffer.from(out, 'latin1')).replies.length >= 2
              ? 'errors'
              : `HUNG after ${Date.now() - t} ms: ${JSON.stringify(out)}`;
          return;
        }
      }
    });
    await sleep(300);
    expect(blocker.received.length).toBe(0);
    await redis.kill();
    await Promise.all(loops);

    for (const [w, c] of workers.entries()) {
      expect(okRounds[w], `worker ${w} made progress`).toBeGreaterThan(0);
      expect(['closed', 'errors'], `worker ${w}`).toContain(endings[w]);
      // Replies well-formed: correct until the kill, then only errors.
      const { replies, rest } = splitReplies(c.received);
      expect(rest.length, `worker ${w}: no partial reply`).toBe(0);
      const texts = replies.map((r) => r.toString());
      const firstErr = texts.findIndex((t) => t.startsWith('-'));
      const good = firstErr === -1 ? texts : texts.slice(0, firstErr);
      for (const [i, t] of good.entries()) {
        if (i % 2 === 0) expect(t).toBe('+OK\r\n');
        else expect(t).toMatch(new RegExp(`^\\$\\d+\\r\\nw${w}-\\d+\\r\\n$`));
      }
      if (multiplex === 0) expect(firstErr, `worker ${w}: no error reply`).toBe(-1);
      if (firstErr !== -1) {
        for (const t of texts.slice(firstErr)) expect(t.trimEnd()).toMatch(errRe);
      }
    }
    if (multiplex === 0) {
      // Each had its own connection, whose state is gone: closed.
      for (const c of workers) await c.until(() => false, 1000);
      expect(workers.filter((c) => !c.closed)).toHaveLength(0);
    }
    // The blocked client (always on its own connection) is closed, as Redis's
    // own clients are when it dies: its BLPOP gets nothing.
    await blocker.until(() => false, 1000);
    expect(blocker.closed).toBe(true);
    expect(blocker.received.toString()).toBe('');

    // The proxy is still up; a new client is told the upstream is unreachable
    // and stays connected.
    const during = await client(proxy.port);
    expect(await request(during, cmd('PING'), 1, 3000)).toMatch(
      /^-ERR semcache: upstream .* unreachable/,
    );
    expect(during.closed).toBe(false);

    // Redis back on the same port: new clients work, and so do the connected ones.
    await redisOn(port);
    const after = await client(proxy.port);
    expect(await request(after, Buffer.concat([cmd('SET', 'k', 'v'), cmd('GET', 'k')]), 2)).toBe(
      '+OK\r\n$1\r\nv\r\n',
    );
    expect(await request(during, cmd('PING'))).toBe('+PONG\r\n');
    for (const [w, c] of workers.entries()) {
      if (c.closed) continue;
      expect(await request(c, cmd('ECHO', `back${w}`))).toBe(
        `$${`back${w}`.length}\r\nback${w}\r\n`,
      );
    }
    const live = 2 + workers.filter((c) => !c.closed).length;
    await waitFor(() => proxy.server.stats().clients === live, 2000);
    expect(proxy.server.stats().clients).toBe(live);
  });

  it('ioredis clients in a loop: every promise settles, none hangs', async () => {
    const redis = await redisOn();
    const proxy = await proxyTo(redis.port, { multiplex });
    const clients = Array.from({ length: 10 }, () => {
      const c = new Redis({
        port: proxy.port,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
        autoResendUnfulfilledCommands: false,
      });
      c.on('error', () => {});
      cleanups.push(() => c.disconnect());
      return c;
    });
    await Promise.all(clients.map((c) => c.ping()));
    const outcomes: string[] = [];
    const deadline = Date.now() + 2500;
    const loops = clients.map(async (c, w) => {
      for (let i = 0; Date.now() < deadline; i++) {
        const settled = await Promise.race([
          c
            .pipeline()
            .set(`io:${w}`, String(i))
            .get(`io:${w}`)
            .exec()
            .then(
              (res) =>
                res?.every(([e]) => e === null) ? 'ok' : `err ${res?.find(([e]) => e)?.[0]}`,
              (e: Error) => `rejected ${e.message}`,
            ),
          sleep(2000).then(() => 'HUNG'),
        ]);
        if (settled !== 'ok') {
          outcomes.push(settled);
          return;
        }
      }
      outcomes.push('deadline');
    });
    await sleep(200);
    await redis.kill();
    await Promise.all(loops);
    expect(outcomes).toHaveLength(10);
    for (const o of outcomes) {
      expect(o).toMatch(
        /semcache: connection to upstream .* lost|semcache: upstream .* unreachable|Connection is closed/,
      );
    }
  });
});

describe.each(modes)('upstream restarted, $name', ({ multiplex }) => {
  it('clients with connection state are closed; the others and new clients work', async () => {
    let redis = await redisOn();
    const port = redis.port;
    const proxy = await proxyTo(port, { multiplex });
    // SELECT gives these server-side state.
    const stateful = await Promise.all([client(proxy.port), client(proxy.port)]);
    for (const [i, c] of stateful.entries()) {
      expect(await request(c, cmd('SELECT', String(i + 1)))).toBe('+OK\r\n');
    }
    // This one has only sent stateless commands.
    const plain = await client(proxy.port);
    expect(await request(plain, cmd('SET', 'restart:k', 'before'))).toBe('+OK\r\n');
    // ioredis with its default reconnect comes back by itself either way.
    const io = new Redis({ port: proxy.port });
    io.on('error', () => {});
    cleanups.push(() => io.disconnect());
    expect(await io.set('restart:io', 'before')).toBe('OK');

    await redis.stop();
    redis = await redisOn(port);
    for (const c of stateful) {
      await c.until(() => false, 2000);
      expect(c.closed).toBe(true);
      // Nothing was pending: closed without a reply.
      expect(c.received.toString()).toBe('+OK\r\n');
    }
    if (multiplex === 1) {
      // No server-side state: it stays connected and carries on.
      await sleep(100);
      expect(plain.closed).toBe(false);
      expect(await request(plain, cmd('GET', 'restart:k'))).toBe('$-1\r\n');
    } else {
      await plain.until(() => false, 2000);
      expect(plain.closed).toBe(true);
    }
    const fresh = await client(proxy.port);
    expect(await request(fresh, cmd('GET', 'restart:io'))).toBe('$-1\r\n');
    const got = await Promise.race([io.set('restart:io', 'after'), sleep(5000).then(() => 'HUNG')]);
    expect(got).toBe('OK');
    expect(await request(fresh, cmd('GET', 'restart:io'))).toBe('$5\r\nafter\r\n');
  });
});

describe('shared connection lost with commands pending on it', () => {
  it('they get the error, the clients stay connected and carry on', async () => {
    const redis = await redisOn();
    const proxy = await proxyTo(redis.port, { multiplex: 1 });
    const admin = await client(redis.port);
    const users = await Promise.all(Array.from({ length: 3 }, () => client(proxy.port)));
    // Find the shared connection: the one that ran LASTSAVE.
    expect(await request(users[0]!, cmd('LASTSAVE'))).toMatch(/^:\d+\r\n$/);
    const list = await request(admin, cmd('CLIENT', 'LIST'));
    const sharedIds = [...list.matchAll(/id=(\d+) [^\n]*cmd=lastsave/g)].map((m) => m[1]!);
    expect(sharedIds).toHaveLength(1);
    // Writes block while clients are paused: the users' SETs wait on the shared connection.
    expect(await request(admin, cmd('CLIENT', 'PAUSE', '5000', 'WRITE'))).toBe('+OK\r\n');
    const marks = users.map((u) => u.received.length);
    for (const [i, u] of users.entries()) u.write(cmd('SET', `paused:${i}`, 'x'));
    await sleep(100);
    for (const [i, u] of users.entries()) expect(u.received.length).toBe(marks[i]);
    expect(await request(admin, cmd('CLIENT', 'KILL', 'ID', sharedIds[0]!))).toBe(':1\r\n');
    for (const [i, u] of users.entries()) {
      const out = await u.until((b) => b.toString().includes('lost'), 2000);
      expect(out.subarray(marks[i]).toString()).toMatch(
        /^-ERR semcache: connection to upstream 127\.0\.0\.1:\d+ lost \([^\r\n]*\)\r\n$/,
      );
      expect(u.closed).toBe(false);
    }
    expect(await request(admin, cmd('CLIENT', 'UNPAUSE'))).toBe('+OK\r\n');
    for (const [i, u] of users.entries()) {
      expect(
        await request(
          u,
          Buffer.concat([cmd('SET', `paused:${i}`, 'y'), cmd('GET', `paused:${i}`)]),
          2,
        ),
      ).toBe('+OK\r\n$1\r\ny\r\n');
    }
  });
});

describe('limits', () => {
  it.each(modes)(
    '1,000 concurrent clients, each SET+GET of its own key, $name',
    async ({ multiplex }) => {
      const redis = await redisOn();
      const proxy = await proxyTo(redis.port, { multiplex });
      const N = 1000;
      const clients: RawClient[] = [];
      // Connect in batches, so the listen backlog never overflows.
      for (let b = 0; b < N; b += 200) {
        const batch = await Promise.all(
          Array.from({ length: Math.min(200, N - b) }, () => client(proxy.port)),
        );
        clients.push(...batch);
      }
      await waitFor(() => proxy.server.stats().clients === N, 5000);
      expect(proxy.server.stats().clients).toBe(N);
      const results = await Promise.all(
        clients.map((c, i) =>
          request(
            c,
            Buffer.concat([cmd('SET', `many:${i}`, `value-${i}`), cmd('GET', `many:${i}`)]),
            2,
            15_000,
          ),
        ),
      );
      for (const [i, r] of results.entries()) {
        const v = `value-${i}`;
        expect(r, `client ${i}`).toBe(`+OK\r\n$${v.length}\r\n${v}\r\n`);
      }
      // Per client: each has its own upstream connection; shared: a handful.
      const side = await client(redis.port);
      const info = await request(side, cmd('INFO', 'clients'));
      const upstreams = Number(/connected_clients:(\d+)/.exec(info)?.[1]) - 1;
      if (multiplex === 0) expect(upstreams).toBeGreaterThanOrEqual(N);
      else expect(upstreams).toBeLessThanOrEqual(multiplex + 1);
      for (const c of clients) c.close();
      await waitFor(() => proxy.server.stats().clients === 0, 5000);
      expect(proxy.server.stats().clients).toBe(0);
    },
  );

  it('max clients: the 6th connection gets the Redis error and is closed', async () => {
    const redis = await redisOn();
    const proxy = await proxyTo(redis.port, { maxClients: 5 });
    const five = await Promise.all(Array.from({ length: 5 }, () => client(proxy.port)));
    for (const c of five) expect(await request(c, cmd('PING'))).toBe('+PONG\r\n');
    const sixth = await client(proxy.port);
    const out = await sixth.until(() => false, 2000);
    expect(out.toString()).toBe('-ERR max number of clients reached\r\n');
    expect(sixth.closed).toBe(true);
    // The five are unaffected.
    for (const c of five) expect(await request(c, cmd('PING'))).toBe('+PONG\r\n');
    // A slot frees up: a new client is accepted.
    five[0]!.close();
    await waitFor(() => proxy.server.stats().clients === 4, 2000);
    const again = await client(proxy.port);
    expect(await request(again, cmd('PING'))).toBe('+PONG\r\n');
    // The same text redis itself sends.
    const limited = await redisOn(undefined, ['--maxclients', '1']);
    const first = await client(limited.port);
    expect(await request(first, cmd('PING'))).toBe('+PONG\r\n');
    const second = await client(limited.port);
    expect((await second.until(() => false, 2000)).toString()).toBe(out.toString());
  });

  it.each(modes)(
    'slow reader: 200 GETs of a 1 MB value, memory bounded, replies intact, $name',
    async ({ multiplex }) => {
      const redis = await redisOn();
      const proxy = await proxyTo(redis.port, { multiplex });
      const size = 1024 * 1024;
      const value = Buffer.alloc(size);
      for (let i = 0; i < size; i += 4) value.writeUInt32LE(i, i);
      const setter = await client(proxy.port);
      expect(await request(setter, cmd('SET', 'big', value))).toBe('+OK\r\n');
      setter.close();

      const reply = Buffer.concat([Buffer.from(`$${size}\r\n`), value, Buffer.from('\r\n')]);
      const N = 200;
      const socket: Socket = connect({ host: '127.0.0.1', port: proxy.port });
      cleanups.push(() => socket.destroy());
      await new Promise<void>((resolve, reject) => {
        socket.once('connect', resolve);
        socket.once('error', reject);
      });
      socket.pause();
      socket.write(Buffer.concat(Array.from({ length: N }, () => cmd('GET', 'big'))));

      // Not reading for a second: sample what the proxy holds.
      let maxBuffered = 0;
      let maxPending = 0;
      const until = Date.now() + 1000;
      while (Date.now() < until) {
        const s = proxy.server.stats();
        maxBuffered = Math.max(maxBuffered, s.bufferedBytes);
        maxPending = Math.max(maxPending, s.pendingCommands);
        await sleep(25);
      }
      expect(maxPending).toBeGreaterThan(0);
      // Own connection: semcache stops reading it, the replies wait in Redis and
      // semcache holds about a socket buffer. Shared: the replies already on the
      // shared connection (at most 32 per client, docs/protocol.md) cannot be left
      // in Redis, so up to 32 x 1 MB is held here before the client is pinned.
      const bound = multiplex === 0 ? 4 * 1024 * 1024 : (32 + 4) * 1024 * 1024;
      expect(maxBuffered).toBeLessThan(bound);

      // Now read everything, comparing as it streams in.
      let offset = 0;
      let mismatch = -1;
      const total = N * reply.length;
      const done = new Promise<void>((resolve) => {
        const check = (chunk: Buffer) => {
          let i = 0;
          while (i < chunk.length && mismatch < 0) {
            const pos = offset % reply.length;
            const n = Math.min(chunk.length - i, reply.length - pos);
            if (!chunk.subarray(i, i + n).equals(reply.subarray(pos, pos + n))) mismatch = offset;
            i += n;
            offset += n;
          }
          if (offset >= total || mismatch >= 0) resolve();
        };
        socket.on('data', check);
        socket.on('close', () => resolve());
      });
      socket.resume();
      await Promise.race([done, sleep(20_000)]);
      expect(mismatch).toBe(-1);
      expect(offset).toBe(total);
      await sleep(50);
      expect(offset).toBe(total);
      socket.destroy();
    },
  );

  it.each(modes)(
    'a pipeline of 5000 commands with maxPending 100: all replies, in order, $name',
    async ({ multiplex }) => {
      const redis = await redisOn();
      const proxy = await proxyTo(redis.port, { maxPending: 100, multiplex });
      const c = await client(proxy.port);
      const N = 5000;
      const reqs: Buffer[] = [];
      const expected: string[] = [];
      for (let i = 0; i < N; i++) {
        if (i % 3 === 0) {
          reqs.push(cmd('INCR', 'pending:ctr'));
          expected.push(`:${i / 3 + 1}\r\n`);
        } else {
          reqs.push(cmd('ECHO', `m${i}`));
          expected.push(`$${`m${i}`.length}\r\nm${i}\r\n`);
        }
      }
      const want = expected.join('');
      c.write(Buffer.concat(reqs));
      const out = await c.until((b) => b.length >= want.length, 15_000);
      expect(out.length).toBe(want.length);
      expect(out.toString() === want).toBe(true);
      expect(c.closed).toBe(false);
      expect(await request(c, cmd('PING'))).toBe('+PONG\r\n');
    },
  );
});
