/*
 * Losing the upstream with many commands in flight, in both upstream modes:
 * no command waits forever (more than 32 in flight pins a client to its own
 * connection, so a client can have commands on the shared connection and on
 * its own at once), a command answered with an error is never run later, and
 * a client whose own connection is closed by the server (CLIENT KILL, Redis
 * died) is closed at once, as Redis closes it: earlier replies are written,
 * commands in flight get nothing. docs/protocol.md, "Upstream failures".
 */
import { describe, expect, it } from 'vitest';
import { freePort } from '../../src/embedded-redis.js';
import { stopAfterEach } from '../helpers/cleanup.js';
import { sleep } from '../helpers/proc.js';
import { cmd, RawClient, request, splitReplies } from '../helpers/raw.js';
import { type ProxyHandle, type RedisHandle, startProxy, startRedis } from '../helpers/servers.js';
import { testCommands } from '../helpers/test-commands.js';

const cleanups = stopAfterEach();

async function redisOn(port?: number, args: string[] = []): Promise<RedisHandle> {
  const r = await startRedis(args, port);
  cleanups.push(() => r.stop());
  return r;
}

async function proxyTo(port: number, multiplex: number): Promise<ProxyHandle> {
  const p = await startProxy(port, { multiplex }, testCommands);
  cleanups.push(() => p.stop());
  return p;
}

async function client(port: number): Promise<RawClient> {
  const c = await RawClient.open(port);
  cleanups.push(() => c.close());
  return c;
}

const texts = (b: Buffer | string) =>
  splitReplies(Buffer.isBuffer(b) ? b : Buffer.from(b, 'latin1')).replies.map((r) =>
    r.toString('latin1'),
  );
const unreachable = /^-ERR semcache: upstream 127\.0\.0\.1:\d+ unreachable \([^\r\n]+\)\r\n$/;
const lostOrUnreachable =
  /^-ERR semcache: (connection to upstream 127\.0\.0\.1:\d+ lost|upstream 127\.0\.0\.1:\d+ unreachable) \([^\r\n]+\)\r\n$/;

const modes = [
  { name: '--multiplex 1', multiplex: 1 },
  { name: '--multiplex 0', multiplex: 0 },
] as const;

describe.each(modes)('upstream unreachable, $name', ({ multiplex }) => {
  it('33 pipelined commands then one more: every one answered; works once redis is there', async () => {
    const port = await freePort();
    const proxy = await proxyTo(port, multiplex);
    const c = await client(proxy.port);
    // 32 fit on the shared connection; the 33rd pins the client to its own.
    const first = await request(
      c,
      Buffer.concat(Array.from({ length: 33 }, () => cmd('PING'))),
      33,
    );
    const replies = texts(first);
    expect(replies).toHaveLength(33);
    for (const r of replies) expect(r).toMatch(unreachable);
    expect(texts(await request(c, cmd('PING'), 1, 3000))).toEqual([
      expect.stringMatching(unreachable),
    ]);
    await redisOn(port);
    expect(await request(c, cmd('PING'))).toBe('+PONG\r\n');
    expect(c.closed).toBe(false);
  });

  it('a command answered "unreachable" is never run later, nor does its reply turn up', async () => {
    const port = await freePort();
    const proxy = await proxyTo(port, multiplex);
    const c = await client(proxy.port);
    // SELECT pins the client; INCR waits behind the slow local TESTECHO while
    // the connection attempt fails, so it was answered before it was sent.
    c.write(Buffer.concat([cmd('SELECT', '0'), cmd('TESTECHO', 'a', '300'), cmd('INCR', 'ctr')]));
    await sleep(100);
    await redisOn(port);
    await sleep(400);
    const out = await request(c, cmd('GET', 'ctr'), 1, 3000);
    const all = texts(c.received);
    expect(all.slice(0, 3)).toEqual([
      expect.stringMatching(unreachable),
      '$1\r\na\r\n',
      expect.stringMatching(unreachable),
    ]);
    expect(out).toBe('$-1\r\n');
    expect(all).toHaveLength(4);
  });
});

describe.each(modes)('upstream killed under pipelined load, $name', ({ multiplex }) => {
  it('every batch is answered in full or its client closed; all work again after a restart', async () => {
    const redis = await redisOn();
    const port = redis.port;
    const proxy = await proxyTo(port, multiplex);
    let redisBack = false;
    const start = Date.now();
    // Half the workers send 40 commands per batch (past 32: the first batch is
    // split between the shared and the client's own connection), half 20.
    const workers = Array.from({ length: 16 }, (_, w) => ({
      batch: w % 2 === 0 ? 40 : 20,
      problems: [] as string[],
      closes: 0,
      errors: 0,
      okAfterRestart: 0,
    }));
    const loops = workers.map(async (worker, w) => {
      let c = await client(proxy.port);
      for (let round = 0; Date.now() - start < 10_000; round++) {
        if (redisBack && worker.okAfterRestart > 0) return;
        const wasBack = redisBack;
        const tags = Array.from({ length: worker.batch }, (_, j) => `w${w}-${round}-${j}`);
        const before = c.received.length;
        c.write(Buffer.concat(tags.map((t) => cmd('ECHO', t))));
        await c.until((b) => splitReplies(b.subarray(before)).replies.length >= tags.length, 5000);
        const { replies, rest } = splitReplies(c.received.subarray(before));
        const got = replies.map((r) => r.toString('latin1'));
        if (got.length < tags.length && !c.closed) {
          worker.problems.push(`HUNG: ${got.length}/${tags.length} replies`);
          return;
        }
        // Correct echoes, then only errors (a closed client may stop anywhere).
        const firstErr = got.findIndex((t) => t.startsWith('-'));
        for (const [j, t] of got.entries()) {
          const want = `$${tags[j]!.length}\r\n${tags[j]}\r\n`;
          if (firstErr === -1 || j < firstErr) {
            if (t !== want) worker.problems.push(`reply ${j}: ${JSON.stringify(t)}`);
          } else if (!lostOrUnreachable.test(t)) {
            worker.problems.push(`error ${j}: ${JSON.stringify(t)}`);
          } else if (multiplex === 0 && t.includes(' lost ')) {
            // Own connections that die close the client: no "lost" error.
            worker.problems.push(`lost error on its own connection: ${t}`);
          }
        }
        if (!c.closed && rest.length > 0) worker.problems.push('partial reply');
        if (firstErr !== -1) worker.errors++;
        if (c.closed) {
          worker.closes++;
          c = await client(proxy.port);
        } else if (firstErr === -1 && wasBack) worker.okAfterRestart++;
        else if (firstErr !== -1) await sleep(20);
      }
    });
    await sleep(300);
    await redis.kill();
    await sleep(400);
    await redisOn(port);
    redisBack = true;
    await Promise.all(loops);
    for (const [w, worker] of workers.entries()) {
      expect(worker.problems, `worker ${w}`).toEqual([]);
      expect(worker.okAfterRestart, `worker ${w} works after the restart`).toBeGreaterThan(0);
    }
    // The kill hit every worker: closed (own connection) or answered with errors.
    for (const [w, worker] of workers.entries()) {
      expect(worker.closes + worker.errors, `worker ${w}`).toBeGreaterThan(0);
    }
    // Clients pinned by a 40-command batch were closed when their own connection died.
    expect(workers.filter((wk) => wk.batch === 40 && wk.closes > 0).length).toBeGreaterThan(0);
  });
});

describe('a client with commands on the shared connection and then its own', () => {
  it('its own connection killed: the shared replies are written, then it is closed', async () => {
    const redis = await redisOn();
    const proxy = await proxyTo(redis.port, 1);
    const admin = await client(redis.port);
    const c = await client(proxy.port);
    expect(await request(admin, cmd('CLIENT', 'PAUSE', '5000', 'WRITE'))).toBe('+OK\r\n');
    // Five SETs wait on the shared connection (writes paused); CLIENT pins the
    // client, and its own connection opens, but CLIENT waits for the SETs.
    c.write(
      Buffer.concat([
        ...Array.from({ length: 5 }, (_, i) => cmd('SET', `mixed:${i}`, 'v')),
        cmd('CLIENT', 'SETNAME', 'late'),
      ]),
    );
    await sleep(200);
    const list = await request(admin, cmd('CLIENT', 'LIST'));
    // The client's own connection is the newest one; nothing ran on it yet.
    const ids = [...list.matchAll(/id=(\d+) [^\n]*cmd=NULL/g)].map((m) => Number(m[1]));
    expect(ids.length).toBeGreaterThan(0);
    const own = Math.max(...ids);
    expect(await request(admin, cmd('CLIENT', 'KILL', 'ID', String(own)))).toBe(':1\r\n');
    await sleep(100);
    expect(c.closed).toBe(false);
    expect(await request(admin, cmd('CLIENT', 'UNPAUSE'))).toBe('+OK\r\n');
    await c.until(() => false, 2000);
    expect(c.closed).toBe(true);
    expect(c.received.toString()).toBe('+OK\r\n'.repeat(5));
    expect(await request(admin, cmd('CLIENT', 'LIST'))).not.toContain('name=late');
  });
});

describe.each(modes)("CLIENT KILL of a client's own connection, $name", ({ multiplex }) => {
  /** What `target` receives, and whether it is closed, compared with redis directly. */
  async function both(
    redisPort: number,
    proxyPort: number,
    run: (c: RawClient, admin: RawClient) => Promise<void>,
  ) {
    const out: { bytes: string; closed: boolean }[] = [];
    for (const port of [redisPort, proxyPort]) {
      const admin = await client(redisPort);
      const c = await client(port);
      await run(c, admin);
      await c.until(() => false, 1000);
      out.push({ bytes: c.received.toString('latin1'), closed: c.closed });
    }
    return { direct: out[0]!, proxied: out[1]! };
  }

  it('CLIENT KILL ID of its own connection: the reply, then closed; what follows gets nothing', async () => {
    const redis = await redisOn();
    const proxy = await proxyTo(redis.port, multiplex);
    const { direct, proxied } = await both(redis.port, proxy.port, async (c) => {
      expect(await request(c, cmd('SET', 'k', 'v'))).toBe('+OK\r\n');
      const id = (await request(c, cmd('CLIENT', 'ID'))).slice(1, -2);
      c.write(
        Buffer.concat([
          cmd('CLIENT', 'KILL', 'ID', id, 'SKIPME', 'no'),
          cmd('GET', 'k'),
          cmd('PING'),
        ]),
      );
    });
    // The same replies (but for the ids), then closed.
    const same = (b: string) => texts(b).map((t, i) => (i === 1 ? t.replace(/\d+/, 'ID') : t));
    expect(direct.closed).toBe(true);
    expect(proxied.closed).toBe(true);
    expect(same(proxied.bytes)).toEqual(same(direct.bytes));
    expect(same(direct.bytes)).toEqual(['+OK\r\n', ':ID\r\n', ':1\r\n']);
  });

  it('killed by another client while blocked, with commands behind: closed at once, nothing sent', async () => {
    const redis = await redisOn();
    const proxy = await proxyTo(redis.port, multiplex);
    const { direct, proxied } = await both(redis.port, proxy.port, async (c, admin) => {
      const id = (await request(c, cmd('CLIENT', 'ID'))).slice(1, -2);
      c.write(Buffer.concat([cmd('BLPOP', 'never', '0'), cmd('GET', 'k'), cmd('PING')]));
      await sleep(100);
      expect(await request(admin, cmd('CLIENT', 'KILL', 'ID', id))).toBe(':1\r\n');
      await c.until(() => false, 2000);
      expect(c.closed).toBe(true);
    });
    expect(direct).toEqual({ bytes: expect.stringMatching(/^:\d+\r\n$/), closed: true });
    expect(proxied).toEqual({ bytes: expect.stringMatching(/^:\d+\r\n$/), closed: true });
  });
});
