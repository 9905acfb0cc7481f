/*
 * Upstream connection losses and recoveries in the log, against a real
 * redis-server: each once, with its cause, and a mass loss of clients' own
 * connections as one line (then a summary, see test/unit/link-log.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { defaultConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { SemcacheServer } from '../../src/server.js';
import { stopAfterEach } from '../helpers/cleanup.js';
import { sleep, waitFor } from '../helpers/proc.js';
import { cmd, RawClient, request } from '../helpers/raw.js';
import { type RedisHandle, startRedis } from '../helpers/servers.js';

const cleanups = stopAfterEach();

async function redisOn(port?: number, args: string[] = []): Promise<RedisHandle> {
  const r = await startRedis(args, port);
  cleanups.push(() => r.stop());
  return r;
}

async function client(port: number): Promise<RawClient> {
  const c = await RawClient.open(port);
  cleanups.push(() => c.close());
  return c;
}

/** A semcache in front of `port` whose log lines (without pid and time) land in `lines`. */
async function proxyLogging(port: number, multiplex: number, upstreamMaxBulkLen = 0) {
  const lines: string[] = [];
  const logger = createLogger('info', (l) =>
    lines.push(l.replace(/^\d+:P \d\d \w{3} \d{4} [\d:.]+ /, '').trimEnd()),
  );
  const server = await SemcacheServer.start({
    config: defaultConfig({
      port: 0,
      upstream: `redis://127.0.0.1:${port}`,
      multiplex,
      upstreamMaxBulkLen,
    }),
    logger,
    semantic: false,
  });
  cleanups.push(() => server.close());
  return { server, lines, about: (re: RegExp) => lines.filter((l) => re.test(l)) };
}

describe('upstream log lines', () => {
  it('a shared connection killed: its loss and its recovery, once each, with the cause', async () => {
    const redis = await redisOn();
    const { server, about } = await proxyLogging(redis.port, 1);
    const c = await client(server.port);
    const admin = await client(redis.port);
    expect(await request(c, cmd('LASTSAVE'))).toMatch(/^:\d+\r\n$/);
    const list = await request(admin, cmd('CLIENT', 'LIST'));
    const shared = /id=(\d+) [^\n]*cmd=lastsave/.exec(list)![1]!;
    expect(await request(admin, cmd('CLIENT', 'KILL', 'ID', shared))).toBe(':1\r\n');
    await waitFor(() => about(/shared/).length > 0, 2000);
    expect(await request(c, cmd('PING'))).toBe('+PONG\r\n');
    expect(await request(c, cmd('PING'))).toBe('+PONG\r\n');
    const addr = `127.0.0.1:${redis.port}`;
    expect(about(/shared/)).toEqual([
      `# shared upstream connection 1: connection to upstream ${addr} lost (connection closed by upstream)`,
      `* shared upstream connection 1: connected to upstream ${addr} again`,
    ]);
  });

  it.each([1, 0])(
    'redis killed under 30 clients with their own connections (--multiplex %i): a few lines, not 30',
    async (multiplex) => {
      let redis = await redisOn();
      const port = redis.port;
      const addr = `127.0.0.1:${port}`;
      const { server, lines, about } = await proxyLogging(port, multiplex);
      const clients = await Promise.all(Array.from({ length: 30 }, () => client(server.port)));
      // SELECT gives each its own connection in both modes.
      for (const c of clients) expect(await request(c, cmd('SELECT', '0'))).toBe('+OK\r\n');
      const plain = await client(server.port);
      expect(await request(plain, cmd('PING'))).toBe('+PONG\r\n');
      await redis.kill();
      await waitFor(() => clients.every((c) => c.closed), 3000);
      await sleep(200);
      const lost = about(/ lost /);
      // One line for all 30 clients' own connections (the rest are summed up later).
      expect(about(/^# client \d+: connection to upstream .* lost/)).toHaveLength(1);
      if (multiplex === 1) {
        // semcache's own connection (it reads the limits) and the shared one.
        expect(lost).toContain(
          `# semcache connection: connection to upstream ${addr} lost (connection closed by upstream)`,
        );
        expect(lost).toContain(
          `# shared upstream connection 1: connection to upstream ${addr} lost (connection closed by upstream)`,
        );
      }
      expect(lost.length).toBeLessThanOrEqual(3);
      // Unreachable while down: logged once, however often clients try.
      const during = await client(server.port);
      for (let i = 0; i < 5; i++) expect(await request(during, cmd('PING'))).toMatch(/unreachable/);
      expect(about(/unreachable/).length).toBeLessThanOrEqual(2);
      redis = await redisOn(port);
      const after = await client(server.port);
      expect(await request(after, cmd('SELECT', '0'))).toBe('+OK\r\n');
      expect(await request(during, cmd('PING'))).toBe('+PONG\r\n');
      await server.limits.refresh();
      const again = about(/ again/);
      // (Clients connecting again within the interval are summed up with the losses.)
      if (multiplex === 1) {
        expect(again).toContain(`* semcache connection: connected to upstream ${addr} again`);
        expect(again).toContainEqual(
          expect.stringMatching(
            /^\* shared upstream connection 1: connected to upstream .* again after \d+ failed attempt\(s\)$/,
          ),
        );
      }
      expect(lines.length).toBeLessThan(12);
    },
  );

  it('a request over the limit closes the shared connection: explained once', async () => {
    const redis = await redisOn(undefined, [
      '--proto-max-bulk-len',
      '1mb',
      '--rename-command',
      'CONFIG',
      '',
    ]);
    const { server, about } = await proxyLogging(redis.port, 1, 512 * 1024 * 1024);
    expect(about(/proto-max-bulk-len/)).toEqual([
      expect.stringMatching(
        /^# cannot read the upstream's proto-max-bulk-len \(ERR unknown command 'CONFIG'.*\); assuming 536870912 \(--upstream-max-bulk-len\)$/,
      ),
    ]);
    // Writes paused: Redis reads the whole request before it reaches it, so
    // nothing is being written when it closes (see request-limits.test.ts).
    const admin = await client(redis.port);
    const gate = await client(server.port);
    expect(await request(admin, cmd('CLIENT', 'PAUSE', '10000', 'WRITE'))).toBe('+OK\r\n');
    gate.write(cmd('SET', 'gate', '1'));
    await sleep(100);
    const offender = await client(server.port);
    offender.write(cmd('SET', 'big', Buffer.alloc(2 * 1024 * 1024, 0x61)));
    await sleep(300);
    expect(await request(admin, cmd('CLIENT', 'UNPAUSE'))).toBe('+OK\r\n');
    await offender.until(() => false, 3000);
    expect(offender.received.toString()).toBe('-ERR Protocol error: invalid bulk length\r\n');
    const other = await client(server.port);
    expect(await request(other, cmd('PING'))).toBe('+PONG\r\n');
    expect(about(/shared/)).toEqual([
      expect.stringMatching(
        /^# shared upstream connection 1: connection to upstream .* lost \(closed by Redis after a protocol error in one client's request; that client was closed, 0 request\(s\) of others sent again\)$/,
      ),
      expect.stringMatching(/^\* shared upstream connection 1: connected to upstream .* again$/),
    ]);
  });
});
