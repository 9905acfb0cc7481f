/*
 * Real clients through the proxy: ioredis and node-redis in RESP2 and RESP3,
 * redis-cli (commands, stdin, --pipe, --no-raw) and redis-benchmark. Whatever
 * a client does against Redis must work the same through semcache.
 */

import { Redis } from 'ioredis';
import { createClient } from 'redis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runProcess, waitFor } from '../helpers/proc.js';
import { cmd, RawClient, request } from '../helpers/raw.js';
import { type ProxyHandle, type RedisHandle, startProxy, startRedis } from '../helpers/servers.js';

let redis: RedisHandle;
/** The proxy the current block tests: one per upstream mode. */
let proxy: ProxyHandle;
const proxies: ProxyHandle[] = [];

const modes = [
  { name: 'shared upstream (--multiplex 1)', multiplex: 1 },
  { name: 'own upstream per client (--multiplex 0)', multiplex: 0 },
] as const;

beforeAll(async () => {
  redis = await startRedis();
});

afterAll(async () => {
  for (const p of proxies) await p.stop();
  await redis?.stop();
});

/** Clients opened by a test, closed after it whatever happened. */
const opened: { disconnect(): unknown }[] = [];
afterEach(async () => {
  for (const c of opened.splice(0)) {
    try {
      await c.disconnect();
    } catch {
      // already closed
    }
  }
});

function ioredis(protocol: 2 | 3, enableReadyCheck = true): Redis {
  const client = new Redis({
    host: '127.0.0.1',
    port: proxy.port,
    protocol,
    enableReadyCheck,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  client.on('error', () => {});
  opened.push(client);
  return client;
}

describe.each(modes)('$name', ({ multiplex }) => {
  beforeAll(async () => {
    proxy = await startProxy(redis.port, { multiplex });
    proxies.push(proxy);
    // Each mode starts from an empty database.
    const admin = await RawClient.open(redis.port);
    await request(admin, cmd('FLUSHALL'));
    admin.close();
  });

  // ioredis sends HELLO 3 (RESP3) or INFO (its ready check) when it connects,
  // which gives it a connection of its own; without the ready check a RESP2
  // client starts out on the shared connection and is pinned by its first
  // stateful command.
  describe.each([
    { label: 'RESP2', protocol: 2, readyCheck: true },
    { label: 'RESP3', protocol: 3, readyCheck: true },
    { label: 'RESP2 without ready check', protocol: 2, readyCheck: false },
  ] as const)('ioredis, $label', ({ label, protocol, readyCheck }) => {
    const p = (key: string) => `io-${label}:${key}`;
    const ioredisClient = () => ioredis(protocol, readyCheck);

    it('negotiated the protocol it asked for', async () => {
      const c = ioredisClient();
      await c.connect();
      const hello = (await c.call('HELLO', String(protocol))) as unknown[];
      const i = hello.indexOf('proto');
      expect(hello[i + 1]).toBe(protocol);
    });

    it('strings, hashes, lists, sorted sets', async () => {
      const c = ioredisClient();
      await c.connect();
      expect(await c.set(p('s'), 'hello')).toBe('OK');
      expect(await c.get(p('s'))).toBe('hello');
      expect(await c.get(p('missing'))).toBeNull();
      expect(await c.incrby(p('n'), 5)).toBe(5);
      expect(await c.append(p('s'), ' world')).toBe(11);
      expect(await c.getrange(p('s'), 0, 4)).toBe('hello');

      expect(await c.hset(p('h'), { a: '1', b: '2', c: '3' })).toBe(3);
      expect(await c.hgetall(p('h'))).toEqual({ a: '1', b: '2', c: '3' });
      expect(await c.hincrby(p('h'), 'a', 10)).toBe(11);
      expect(await c.hmget(p('h'), 'a', 'zz')).toEqual(['11', null]);

      expect(await c.rpush(p('l'), 'a', 'b', 'c')).toBe(3);
      expect(await c.lpush(p('l'), 'z')).toBe(4);
      expect(await c.lrange(p('l'), 0, -1)).toEqual(['z', 'a', 'b', 'c']);
      expect(await c.lpop(p('l'))).toBe('z');
      expect(await c.llen(p('l'))).toBe(3);

      expect(await c.zadd(p('z'), 3, 'c', 1, 'a', 2.5, 'b')).toBe(3);
      expect(await c.zrange(p('z'), '0', '-1')).toEqual(['a', 'b', 'c']);
      expect(await c.zrange(p('z'), '0', '-1', 'WITHSCORES')).toEqual([
        'a',
        '1',
        'b',
        '2.5',
        'c',
        '3',
      ]);
      expect(await c.zscore(p('z'), 'b')).toBe('2.5');
      expect(await c.zincrby(p('z'), 1, 'a')).toBe('2');
      expect(await c.zrank(p('z'), 'c')).toBe(2);

      expect(await c.sadd(p('set'), 'x', 'y')).toBe(2);
      expect((await c.smembers(p('set'))).sort()).toEqual(['x', 'y']);
      await expect(c.incr(p('s'))).rejects.toThrow(/not an integer/);
      await expect(c.lpush(p('s'), 'x')).rejects.toThrow(/WRONGTYPE/);
    });

    it('pipeline of 1000 commands, with errors in the middle', async () => {
      const c = ioredisClient();
      await c.connect();
      const pipe = c.pipeline();
      for (let i = 0; i < 500; i++) {
        pipe.set(p(`k${i}`), `v${i}`);
        if (i === 250) pipe.lpush(p(`k${i}`), 'x');
        else pipe.get(p(`k${i}`));
      }
      const res = (await pipe.exec())!;
      expect(res).toHaveLength(1000);
      for (let i = 0; i < 500; i++) {
        expect(res[2 * i]).toEqual([null, 'OK']);
        if (i === 250) expect(String(res[2 * i + 1]![0])).toMatch(/WRONGTYPE/);
        else expect(res[2 * i + 1]).toEqual([null, `v${i}`]);
      }
    });

    it('MULTI/EXEC, queued errors, DISCARD', async () => {
      const c = ioredisClient();
      await c.connect();
      const res = await c.multi().set(p('m'), '1').incr(p('m')).get(p('m')).exec();
      expect(res).toEqual([
        [null, 'OK'],
        [null, 2],
        [null, '2'],
      ]);
      // A runtime error inside the transaction: the others still run.
      const res2 = (await c.multi().set(p('m2'), 'x').incr(p('m2')).get(p('m2')).exec())!;
      expect(res2[0]).toEqual([null, 'OK']);
      expect(String(res2[1]![0])).toMatch(/not an integer/);
      expect(res2[2]).toEqual([null, 'x']);
      // A queueing error aborts the whole transaction.
      await expect(c.multi().set(p('m3'), 'x').call('SET', p('m3')).exec()).rejects.toThrow(
        /EXECABORT/,
      );
      expect(await c.get(p('m3'))).toBeNull();
      // DISCARD with a raw MULTI.
      expect(await c.call('MULTI')).toBe('OK');
      expect(await c.call('SET', p('m4'), 'x')).toBe('QUEUED');
      expect(await c.call('DISCARD')).toBe('OK');
      expect(await c.get(p('m4'))).toBeNull();
    });

    it('WATCH: a write from a second client aborts the transaction', async () => {
      const a = ioredisClient();
      const b = ioredisClient();
      await Promise.all([a.connect(), b.connect()]);
      await a.set(p('w'), '0');
      expect(await a.watch(p('w'))).toBe('OK');
      expect(await b.set(p('w'), 'other')).toBe('OK');
      expect(await a.multi().set(p('w'), 'mine').exec()).toBeNull();
      expect(await a.get(p('w'))).toBe('other');
      // Without interference the same sequence commits.
      expect(await a.watch(p('w'))).toBe('OK');
      expect(await a.multi().set(p('w'), 'mine').exec()).toEqual([[null, 'OK']]);
      expect(await b.get(p('w'))).toBe('mine');
    });

    it('pub/sub: SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE and delivery', async () => {
      const sub = ioredisClient();
      const pub = ioredisClient();
      await Promise.all([sub.connect(), pub.connect()]);
      const got: string[] = [];
      sub.on('message', (ch: string, msg: string) => got.push(`message ${ch} ${msg}`));
      sub.on('pmessage', (pat: string, ch: string, msg: string) =>
        got.push(`pmessage ${pat} ${ch} ${msg}`),
      );
      sub.on('smessage', (ch: string, msg: string) => got.push(`smessage ${ch} ${msg}`));
      expect(await sub.subscribe(p('c1'), p('c2'))).toBe(2);
      expect(await sub.psubscribe(p('news.*'))).toBe(3);
      expect(await sub.ssubscribe(p('shard'))).toBe(1);

      expect(await pub.publish(p('c1'), 'one')).toBe(1);
      expect(await pub.publish(p('c2'), 'two')).toBe(1);
      expect(await pub.publish(p('news.x'), 'three')).toBe(1);
      expect(await pub.spublish(p('shard'), 'four')).toBe(1);
      expect(await pub.publish(p('nobody'), 'lost')).toBe(0);
      await waitFor(() => got.length >= 4, 3000);
      expect(got).toEqual([
        `message ${p('c1')} one`,
        `message ${p('c2')} two`,
        `pmessage ${p('news.*')} ${p('news.x')} three`,
        `smessage ${p('shard')} four`,
      ]);

      // PING is allowed while subscribed, in both protocols.
      expect(await sub.ping()).toBeTruthy();
      await sub.unsubscribe(p('c1'));
      expect(await pub.publish(p('c1'), 'gone')).toBe(0);
      expect(await pub.publish(p('c2'), 'still')).toBe(1);
      await waitFor(() => got.length >= 5, 3000);
      expect(got[4]).toBe(`message ${p('c2')} still`);
      // Named channels: ioredis 6 never resolves UNSUBSCRIBE without arguments,
      // not even against redis-server directly (the raw form is covered by the
      // differential tests).
      expect(await sub.unsubscribe(p('c2'))).toBe(1);
      expect(await sub.punsubscribe(p('news.*'))).toBe(0);
      expect(await sub.sunsubscribe(p('shard'))).toBe(0);
      // Out of subscribed mode: ordinary commands again.
      expect(await sub.set(p('after'), 'ok')).toBe('OK');
      expect(await sub.get(p('after'))).toBe('ok');
    });

    it('Lua: defineCommand, EVALSHA, SCRIPT LOAD/EXISTS, script errors', async () => {
      const c = ioredisClient();
      await c.connect();
      c.defineCommand('incrTwice', {
        numberOfKeys: 1,
        lua: "redis.call('INCRBY', KEYS[1], ARGV[1]); return redis.call('INCRBY', KEYS[1], ARGV[1])",
      });
      await c.call('SCRIPT', 'FLUSH');
      // First call: EVALSHA fails with NOSCRIPT and ioredis falls back to EVAL.
      const incrTwice = (c as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>)
        .incrTwice!;
      expect(await incrTwice.call(c, p('lua'), 3)).toBe(6);
      expect(await incrTwice.call(c, p('lua'), 1)).toBe(8);

      const sha = (await c.script('LOAD', 'return {KEYS[1], ARGV[1], 42}')) as string;
      expect(sha).toMatch(/^[0-9a-f]{40}$/);
      expect(await c.script('EXISTS', sha, '0'.repeat(40))).toEqual([1, 0]);
      expect(await c.evalsha(sha, 1, 'k', 'a')).toEqual(['k', 'a', 42]);
      await expect(c.evalsha('0'.repeat(40), 0)).rejects.toThrow(/NOSCRIPT/);
      await expect(c.eval("return redis.error_reply('my error')", 0)).rejects.toThrow(/my error/);
    });

    it('binary Buffer values survive intact', async () => {
      const c = ioredisClient();
      await c.connect();
      const all = Buffer.alloc(256);
      for (let i = 0; i < 256; i++) all[i] = i;
      const tricky = Buffer.concat([Buffer.from('\r\n$5\r\n*1\r\n'), all, Buffer.from('\0\r')]);
      const key = Buffer.concat([Buffer.from(p('bin-')), Buffer.from([0, 13, 10, 255])]);
      expect(await c.set(key, tricky)).toBe('OK');
      expect((await c.getBuffer(key))!.equals(tricky)).toBe(true);
      await c.hset(p('binh'), all.subarray(0, 16), all.subarray(200));
      const h = (await c.hgetallBuffer(p('binh'))) as Record<string, Buffer>;
      expect(Object.values(h)[0]!.equals(all.subarray(200))).toBe(true);
      await c.rpush(p('binl'), tricky, all);
      const l = await c.lrangeBuffer(p('binl'), 0, -1);
      expect(l[0]!.equals(tricky)).toBe(true);
      expect(l[1]!.equals(all)).toBe(true);
    });

    it('a 10 MB value', async () => {
      const c = ioredisClient();
      await c.connect();
      const big = Buffer.alloc(10 * 1024 * 1024);
      for (let i = 0; i < big.length; i += 4096) big.writeUInt32LE(i, i);
      expect(await c.set(p('big'), big)).toBe('OK');
      expect(await c.strlen(p('big'))).toBe(big.length);
      const back = await c.getBuffer(p('big'));
      expect(back!.length).toBe(big.length);
      expect(back!.equals(big)).toBe(true);
      // And with small commands pipelined around it.
      const res = await c.pipeline().get(p('s0')).getBuffer(p('big')).ping().exec();
      const piped = res![1]![1] as Buffer;
      expect(res![1]![0]).toBeNull();
      expect(Buffer.isBuffer(piped) && piped.equals(big)).toBe(true);
      expect(res![2]).toEqual([null, 'PONG']);
    });
  });

  describe.each([2, 3] as const)('node-redis, RESP%i', (RESP) => {
    const p = (key: string) => `nr${RESP}:${key}`;

    function nodeRedis() {
      const client = createClient({
        socket: { host: '127.0.0.1', port: proxy.port, reconnectStrategy: false },
        RESP,
      });
      client.on('error', () => {});
      opened.push({ disconnect: () => client.destroy() });
      return client;
    }

    it('basic commands', async () => {
      const c = await nodeRedis().connect();
      expect(await c.set(p('s'), 'v')).toBe('OK');
      expect(await c.get(p('s'))).toBe('v');
      expect(await c.get(p('missing'))).toBeNull();
      expect(await c.incr(p('n'))).toBe(1);
      expect(await c.hSet(p('h'), { a: '1', b: '2' })).toBe(2);
      const h = await c.hGetAll(p('h'));
      expect({ ...h }).toEqual({ a: '1', b: '2' });
      expect(await c.rPush(p('l'), ['x', 'y'])).toBe(2);
      expect(await c.lRange(p('l'), 0, -1)).toEqual(['x', 'y']);
      expect(
        await c.zAdd(p('z'), [
          { score: 2, value: 'b' },
          { score: 1, value: 'a' },
        ]),
      ).toBe(2);
      expect(await c.zRange(p('z'), 0, -1)).toEqual(['a', 'b']);
      expect(await c.ping()).toBe('PONG');
      const hello = (await c.sendCommand(['HELLO'])) as unknown;
      // The reply shape differs per protocol (map vs flat array); both name the proto.
      expect(JSON.stringify(hello)).toContain(`"proto"`);
      await expect(c.sendCommand(['NOSUCHCOMMAND'])).rejects.toThrow(/unknown command/);
    });

    it('MULTI/EXEC and a failing command inside', async () => {
      const c = await nodeRedis().connect();
      const res = await c.multi().set(p('m'), '1').incr(p('m')).get(p('m')).exec();
      expect(res).toEqual(['OK', 2, '2']);
      // A runtime error inside the transaction: node-redis rejects with every reply attached.
      const err = await c
        .multi()
        .set(p('m2'), 'x')
        .incr(p('m2'))
        .get(p('m2'))
        .exec()
        .then(
          () => undefined,
          (e: { replies?: unknown[]; errorIndexes?: number[] }) => e,
        );
      expect(err?.errorIndexes).toEqual([1]);
      expect(err?.replies?.[0]).toBe('OK');
      expect(String(err?.replies?.[1])).toMatch(/not an integer/);
      expect(err?.replies?.[2]).toBe('x');
      // WATCH conflict from a second client: exec() resolves to null... or rejects
      // with a WatchError in node-redis; either way nothing was written.
      const other = await nodeRedis().connect();
      await c.watch(p('w'));
      await other.set(p('w'), 'other');
      await expect(c.multi().set(p('w'), 'mine').exec()).rejects.toThrow(/WATCH|watch/);
      expect(await c.get(p('w'))).toBe('other');
    });

    it('pub/sub with a duplicated subscriber client', async () => {
      const c = await nodeRedis().connect();
      const sub = c.duplicate();
      sub.on('error', () => {});
      opened.push({ disconnect: () => sub.destroy() });
      await sub.connect();
      const got: string[] = [];
      await sub.subscribe(p('ch'), (msg, ch) => got.push(`${ch} ${msg}`));
      await sub.pSubscribe(p('pat.*'), (msg, ch) => got.push(`p ${ch} ${msg}`));
      expect(await c.publish(p('ch'), 'hello')).toBe(1);
      expect(await c.publish(p('pat.1'), 'world')).toBe(1);
      await waitFor(() => got.length >= 2, 3000);
      expect(got).toEqual([`${p('ch')} hello`, `p ${p('pat.1')} world`]);
      await sub.unsubscribe(p('ch'));
      expect(await c.publish(p('ch'), 'gone')).toBe(0);
      await sub.pUnsubscribe();
      expect(await c.publish(p('pat.2'), 'gone')).toBe(0);
    });
  });

  describe('redis-cli', () => {
    const cli = (port: number, args: string[], input?: string) =>
      runProcess('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], {
        input,
        timeoutMs: 20_000,
      });

    it('ordinary commands', async () => {
      expect((await cli(proxy.port, ['SET', 'cli:a', 'hello world'])).stdout).toBe('OK\n');
      expect((await cli(proxy.port, ['GET', 'cli:a'])).stdout).toBe('hello world\n');
      expect((await cli(proxy.port, ['RPUSH', 'cli:l', 'x', 'y'])).stdout).toBe('2\n');
      expect((await cli(proxy.port, ['LRANGE', 'cli:l', '0', '-1'])).stdout).toBe('x\ny\n');
      const err = await cli(proxy.port, ['INCR', 'cli:a']);
      expect(err.stdout).toMatch(/ERR value is not an integer/);
      // -x: the last argument from stdin.
      const x = await cli(proxy.port, ['-x', 'SET', 'cli:x'], 'from stdin');
      expect(x.stdout).toBe('OK\n');
      expect((await cli(proxy.port, ['GET', 'cli:x'])).stdout).toBe('from stdin\n');
    });

    it('commands read line by line from stdin, same output as direct', async () => {
      const input = [
        'SET cli:in "two words"',
        'GET cli:in',
        'INCR cli:counter',
        'INCR cli:counter',
        'HSET cli:h f v',
        'HGETALL cli:h',
        'NOSUCHCMD x',
        'DEL cli:in cli:counter cli:h',
        '',
      ].join('\n');
      const viaProxy = await cli(proxy.port, [], input);
      const direct = await cli(redis.port, [], input);
      expect(viaProxy.code).toBe(0);
      expect(viaProxy.stdout).toBe(direct.stdout);
      expect(viaProxy.stdout).toContain('two words\n1\n2\n1\nf\nv\n');
    });

    it('--pipe with 10,000 commands', async () => {
      const lines: string[] = [];
      for (let i = 0; i < 10_000; i++) {
        const key = `cli:pipe:${i}`;
        const val = `v${i}`;
        lines.push(`*3\r\n$3\r\nSET\r\n$${key.length}\r\n${key}\r\n$${val.length}\r\n${val}\r\n`);
      }
      const res = await cli(proxy.port, ['--pipe'], lines.join(''));
      expect(res.code).toBe(0);
      expect(res.stdout).toMatch(/errors: 0, replies: 10000/);
      expect((await cli(proxy.port, ['GET', 'cli:pipe:9999'])).stdout).toBe('v9999\n');
      expect((await cli(proxy.port, ['DBSIZE'])).stdout.trim()).not.toBe('0');
    });

    it('--no-raw formats replies exactly as against redis', async () => {
      await cli(redis.port, ['DEL', 'cli:nr', 'cli:nrl', 'cli:nrz']);
      await cli(redis.port, ['RPUSH', 'cli:nrl', 'a', 'b b', '']);
      await cli(redis.port, ['ZADD', 'cli:nrz', '1.5', 'm']);
      for (const args of [
        ['SET', 'cli:nr', 'va"l\nue'],
        ['GET', 'cli:nr'],
        ['GET', 'cli:missing'],
        ['LRANGE', 'cli:nrl', '0', '-1'],
        ['LRANGE', 'cli:empty', '0', '-1'],
        ['ZRANGE', 'cli:nrz', '0', '-1', 'WITHSCORES'],
        ['INCR', 'cli:nr'],
        ['STRLEN', 'cli:nr'],
        ['-3', 'HELLO', '3'],
      ]) {
        const viaProxy = await cli(proxy.port, ['--no-raw', ...args]);
        const direct = await cli(redis.port, ['--no-raw', ...args]);
        // HELLO reports the connection id, which differs between two connections.
        const strip = (s: string) => s.replace(/("id" => \(integer\) )\d+/, '$1N');
        expect(strip(viaProxy.stdout), args.join(' ')).toBe(strip(direct.stdout));
      }
      expect((await cli(proxy.port, ['--no-raw', 'GET', 'cli:nr'])).stdout).toBe('"va\\"l\\nue"\n');
      expect((await cli(proxy.port, ['--no-raw', 'STRLEN', 'cli:nr'])).stdout).toBe(
        '(integer) 7\n',
      );
    });
  });

  describe('redis-benchmark', () => {
    it('-c 10 -n 2000 -t set,get,lpush,lpop -P 4 --csv', async () => {
      const res = await runProcess(
        'redis-benchmark',
        [
          '-h',
          '127.0.0.1',
          '-p',
          String(proxy.port),
          '-c',
          '10',
          '-n',
          '2000',
          '-t',
          'set,get,lpush,lpop',
          '-P',
          '4',
          '--csv',
        ],
        { timeoutMs: 30_000 },
      );
      expect(res.code, res.stderr).toBe(0);
      const rows = res.stdout
        .trim()
        .split('\n')
        .map((l) => l.split(',').map((f) => f.replace(/^"|"$/g, '')));
      expect(rows[0]![0]).toBe('test');
      const data = rows.slice(1);
      expect(data.map((r) => r[0]).sort()).toEqual(['GET', 'LPOP', 'LPUSH', 'SET']);
      for (const r of data) expect(Number(r[1]), r.join(',')).toBeGreaterThan(0);
      // Every benchmark client closed again.
      await waitFor(() => proxy.server.stats().clients === 0, 3000);
      expect(proxy.server.stats().clients).toBe(0);
    });
  });
});
