/*
 * One client's request never breaks another's: a request Redis would answer
 * by closing the connection (over proto-max-bulk-len, over the limits for
 * unauthenticated clients, past client-query-buffer-limit) costs its own
 * client the connection, exactly as on a direct connection, and nothing else,
 * even on a shared upstream connection. src/proxy/request-limits.ts,
 * src/upstream/limits.ts, src/upstream/shared-upstream.ts; docs/protocol.md.
 */
import { describe, expect, it } from 'vitest';
import type { Config } from '../../src/config.js';
import { stopAfterEach } from '../helpers/cleanup.js';
import { sleep } from '../helpers/proc.js';
import { cmd, RawClient, request, splitReplies } from '../helpers/raw.js';
import { type ProxyHandle, type RedisHandle, startProxy, startRedis } from '../helpers/servers.js';

const cleanups = stopAfterEach();

async function redisWith(args: string[]): Promise<RedisHandle> {
  const r = await startRedis(args);
  cleanups.push(() => r.stop());
  return r;
}

async function proxyTo(port: number, overrides: Partial<Config> = {}): Promise<ProxyHandle> {
  const p = await startProxy(port, { multiplex: 1, ...overrides });
  cleanups.push(() => p.stop());
  return p;
}

async function client(port: number): Promise<RawClient> {
  const c = await RawClient.open(port);
  cleanups.push(() => c.close());
  return c;
}

const MB = 1024 * 1024;
const INVALID_BULK = '-ERR Protocol error: invalid bulk length\r\n';

/** A SET whose value announces `size` bytes; without the value unless `body`. */
function bigSet(size: number, body: boolean): Buffer {
  const head = Buffer.from(`*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$${size}\r\n`);
  return body ? Buffer.concat([head, Buffer.alloc(size, 0x78), Buffer.from('\r\n')]) : head;
}

/**
 * Four other clients keep 32 GETs each in flight on the shared connection
 * while `offend` runs; returns their replies that were not the value.
 */
async function othersDuring(proxyPort: number, offend: () => Promise<void>): Promise<string[]> {
  const others = await Promise.all(Array.from({ length: 4 }, () => client(proxyPort)));
  for (const [i, o] of others.entries()) {
    expect(await request(o, cmd('SET', `other:${i}`, `v${i}`))).toBe('+OK\r\n');
  }
  let stop = false;
  const wrong: string[] = [];
  const loops = others.map(async (o, i) => {
    const want = `$${`v${i}`.length}\r\nv${i}\r\n`;
    while (!stop) {
      const out = await request(
        o,
        Buffer.concat(Array.from({ length: 32 }, () => cmd('GET', `other:${i}`))),
        32,
      );
      const replies = splitReplies(Buffer.from(out, 'latin1')).replies.map((r) => r.toString());
      if (replies.length < 32) wrong.push(`client ${i}: ${replies.length}/32 replies`);
      for (const r of replies) if (r !== want) wrong.push(`client ${i}: ${JSON.stringify(r)}`);
      if (o.closed) wrong.push(`client ${i} closed`);
      if (o.closed || replies.length < 32) return;
    }
  });
  await sleep(50);
  await offend();
  await sleep(100);
  stop = true;
  await Promise.all(loops);
  return wrong;
}

/** Send `bytes` to `port`; what comes back before the connection closes (bounded). */
async function transcript(port: number, bytes: Buffer): Promise<{ out: string; closed: boolean }> {
  const c = await client(port);
  c.write(bytes);
  const out = await c.until(() => false, 2000);
  return { out: out.toString('latin1'), closed: c.closed };
}

describe('a request over the upstream proto-max-bulk-len', () => {
  it('is refused for its client alone, as redis refuses it; others on the shared connection carry on', async () => {
    const redis = await redisWith(['--proto-max-bulk-len', '1mb']);
    const proxy = await proxyTo(redis.port);
    expect(proxy.server.limits.maxBulkLength).toBe(MB);
    const offender = Buffer.concat([cmd('PING'), bigSet(2 * MB, false)]);
    const direct = await transcript(redis.port, offender);
    expect(direct).toEqual({ out: `+PONG\r\n${INVALID_BULK}`, closed: true });
    let proxied: { out: string; closed: boolean } | undefined;
    const wrong = await othersDuring(proxy.port, async () => {
      proxied = await transcript(proxy.port, offender);
    });
    expect(proxied).toEqual(direct);
    expect(wrong).toEqual([]);
  });

  it('a limit changed at runtime is learned on the next refresh', async () => {
    const redis = await redisWith([]);
    const proxy = await proxyTo(redis.port);
    expect(proxy.server.limits.maxBulkLength).toBe(512 * MB);
    const admin = await client(redis.port);
    expect(await request(admin, cmd('CONFIG', 'SET', 'proto-max-bulk-len', '1mb'))).toBe('+OK\r\n');
    await proxy.server.limits.refresh();
    expect(await transcript(proxy.port, bigSet(2 * MB, false))).toEqual({
      out: INVALID_BULK,
      closed: true,
    });
  });

  it('CONFIG not allowed: --upstream-max-bulk-len is the limit', async () => {
    const redis = await redisWith([
      '--proto-max-bulk-len',
      '1mb',
      '--rename-command',
      'CONFIG',
      '',
    ]);
    const proxy = await proxyTo(redis.port, { upstreamMaxBulkLen: MB });
    expect(proxy.server.limits.learned).toBe(false);
    expect(await transcript(proxy.port, bigSet(2 * MB, false))).toEqual({
      out: INVALID_BULK,
      closed: true,
    });
  });

  it('CONFIG not allowed, no flag: a bulk over 512 KB goes on its own connection; only its client is closed', async () => {
    const redis = await redisWith([
      '--proto-max-bulk-len',
      '1mb',
      '--rename-command',
      'CONFIG',
      '',
    ]);
    const proxy = await proxyTo(redis.port);
    expect(proxy.server.limits.known).toBe(false);
    const admin = await client(redis.port);
    // The connection carrying the others' GETs.
    const shared = async () =>
      /id=(\d+) [^\n]*cmd=get/.exec(await request(admin, cmd('CLIENT', 'LIST')))?.[1];
    let before: string | undefined;
    let proxied: { out: string; closed: boolean } | undefined;
    const wrong = await othersDuring(proxy.port, async () => {
      before = await shared();
      proxied = await transcript(proxy.port, Buffer.concat([cmd('PING'), bigSet(2 * MB, true)]));
    });
    expect(wrong).toEqual([]);
    // Redis refuses it on the client's own connection and closes it. (Its
    // error reply may be lost to the reset: Redis closes while the request is
    // still being written, as a client connected directly may see too.)
    expect(proxied!.closed).toBe(true);
    expect(proxied!.out).toMatch(/^\+PONG\r\n(-ERR Protocol error: invalid bulk length\r\n)?$/);
    // The shared connection was never lost.
    expect(before).toBeDefined();
    expect(await shared()).toBe(before);
  });

  it('a limit semcache has wrong: redis closes the shared connection, the requests behind are sent again', async () => {
    // CONFIG is not allowed and the flag says 512 MB: the request reaches Redis.
    const redis = await redisWith([
      '--proto-max-bulk-len',
      '1mb',
      '--rename-command',
      'CONFIG',
      '',
    ]);
    const proxy = await proxyTo(redis.port, { upstreamMaxBulkLen: 512 * MB });
    expect(proxy.server.limits.maxBulkLength).toBe(512 * MB);
    const admin = await client(redis.port);
    const gate = await client(proxy.port);
    const others = await Promise.all(Array.from({ length: 4 }, () => client(proxy.port)));
    for (const [i, o] of others.entries()) {
      expect(await request(o, cmd('SET', `other:${i}`, `v${i}`))).toBe('+OK\r\n');
    }
    // With writes paused, Redis stops reading the shared connection at the
    // gate's SET: the offender's request and the others' GETs behind it are all
    // in flight when Redis reaches it, and nothing is written after it closes.
    expect(await request(admin, cmd('CLIENT', 'PAUSE', '10000', 'WRITE'))).toBe('+OK\r\n');
    gate.write(cmd('SET', 'gate', '1'));
    await sleep(100);
    const offender = await client(proxy.port);
    offender.write(Buffer.concat([cmd('PING'), bigSet(2 * MB, true)]));
    await sleep(300);
    for (const [i, o] of others.entries()) {
      o.write(Buffer.concat(Array.from({ length: 32 }, () => cmd('GET', `other:${i}`))));
    }
    await sleep(100);
    expect(await request(admin, cmd('CLIENT', 'UNPAUSE'))).toBe('+OK\r\n');
    await offender.until(() => false, 3000);
    expect({ out: offender.received.toString(), closed: offender.closed }).toEqual({
      out: `+PONG\r\n${INVALID_BULK}`,
      closed: true,
    });
    expect((await gate.until((b) => b.length >= 5)).toString()).toBe('+OK\r\n');
    for (const [i, o] of others.entries()) {
      const want = `$${`v${i}`.length}\r\nv${i}\r\n`;
      const out = await o.until((b) => b.length >= 5 + 32 * want.length);
      expect(out.toString(), `client ${i}`).toBe(`+OK\r\n${want.repeat(32)}`);
      expect(o.closed).toBe(false);
    }
  });
});

describe('limits for unauthenticated clients (redis with a password)', () => {
  it.each([
    [
      'a bulk over 16 KB',
      cmd('SET', 'k', Buffer.alloc(20_000, 0x61)),
      'unauthenticated bulk length',
    ],
    [
      'more than 10 arguments',
      cmd('MSET', ...Array.from({ length: 12 }, (_, i) => `a${i}`)),
      'unauthenticated multibulk length',
    ],
  ])(
    '%s: the client is refused and closed as redis does it; the others get their -NOAUTH',
    async (_name, req, text) => {
      const redis = await redisWith([]);
      const proxy = await proxyTo(redis.port);
      const admin = await client(redis.port);
      expect(await request(admin, cmd('CONFIG', 'SET', 'requirepass', 'pw'))).toBe('+OK\r\n');
      const offender = Buffer.concat([cmd('PING'), req]);
      const noauth = '-NOAUTH Authentication required.\r\n';
      const direct = await transcript(redis.port, offender);
      expect(direct).toEqual({ out: `${noauth}-ERR Protocol error: ${text}\r\n`, closed: true });
      const others = await Promise.all(Array.from({ length: 4 }, () => client(proxy.port)));
      let stop = false;
      const wrong: string[] = [];
      const loops = others.map(async (o) => {
        while (!stop && !o.closed) {
          const out = await request(
            o,
            Buffer.concat(Array.from({ length: 32 }, () => cmd('GET', 'x'))),
            32,
          );
          if (out !== noauth.repeat(32)) wrong.push(JSON.stringify(out.slice(0, 200)));
        }
        if (o.closed) wrong.push('closed');
      });
      await sleep(50);
      const connections = async () =>
        /total_connections_received:(\d+)/.exec(await request(admin, cmd('INFO', 'stats')))![1];
      const before = await connections();
      const proxied = await transcript(proxy.port, offender);
      await sleep(100);
      stop = true;
      await Promise.all(loops);
      expect(proxied).toEqual(direct);
      expect(wrong).toEqual([]);
      // Refused by semcache (it saw the others' -NOAUTH): the shared connection was never lost.
      expect(await connections()).toBe(before);
    },
  );
});

describe('a request past the upstream client-query-buffer-limit', () => {
  it('goes on the client own connection: redis closes it alone, as it would directly', async () => {
    const redis = await redisWith([
      '--client-query-buffer-limit',
      '1mb',
      '--proto-max-bulk-len',
      '8mb',
    ]);
    const proxy = await proxyTo(redis.port);
    expect(proxy.server.limits.queryBufferLimit).toBe(MB);
    const offender = Buffer.concat([cmd('PING'), bigSet(2 * MB, true)]);
    const direct = await transcript(redis.port, offender);
    expect(direct).toEqual({ out: '+PONG\r\n', closed: true });
    let proxied: { out: string; closed: boolean } | undefined;
    const wrong = await othersDuring(proxy.port, async () => {
      proxied = await transcript(proxy.port, offender);
    });
    expect(proxied).toEqual(direct);
    expect(wrong).toEqual([]);
  });
});
