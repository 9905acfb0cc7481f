/*
 * Our commands inside MULTI/EXEC (docs/protocol.md, "Our commands in
 * transactions") through the transaction APIs of the three client libraries
 * users have: redis-py's default pipeline() (a MULTI/EXEC), ioredis's and
 * node-redis's multi(), in both upstream modes: +QUEUED, run at EXEC in their
 * places with their replies in EXEC's array, DISCARD and WATCH respected,
 * and a refusal at queue time failing EXEC as it would for a plain command.
 */
import { Redis } from 'ioredis';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runProcess } from '../helpers/proc.js';
import { cmd, RawClient, request } from '../helpers/raw.js';
import {
  type RedisHandle,
  type SemanticProxyHandle,
  startRedis,
  startSemanticProxy,
} from '../helpers/servers.js';

const modes = [
  { name: 'shared upstream (--multiplex 1)', multiplex: 1 },
  { name: 'own upstream per client (--multiplex 0)', multiplex: 0 },
] as const;

/** Run a redis-py script against `port` (Debian's python3-redis); its last line, as JSON. */
async function python(port: number, body: string): Promise<unknown> {
  const script = `
import json, redis
r = redis.Redis(host='127.0.0.1', port=${port}, decode_responses=True)
def out(x): print(json.dumps(x, default=str))
${body}
`;
  const res = await runProcess('/usr/bin/python3', ['-c', script]);
  if (res.code !== 0) throw new Error(`python failed: ${res.stderr}`);
  return JSON.parse(res.stdout.trim().split('\n').pop()!);
}

describe.each(modes)('SEM commands in transactions, $name', ({ multiplex }) => {
  let redis: RedisHandle;
  let proxy: SemanticProxyHandle;
  const opened: { disconnect(): void }[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    proxy = await startSemanticProxy(redis.port, { multiplex });
  });

  afterAll(async () => {
    for (const c of opened) c.disconnect();
    await proxy?.stop();
    await redis?.stop();
  });

  it("redis-py's default pipeline (MULTI/EXEC): SEMSET and SEMGET in their places", async () => {
    const res = await python(
      proxy.port,
      `
p = r.pipeline()
p.set('py:a', '1')
p.execute_command('SEMSET', 'py:s', 'a python text', 'from python', 'EX', '100')
p.incr('py:a')
p.execute_command('SEMGET', 'nothing close to it at all')
out(p.execute())
`,
    );
    expect(res).toEqual([true, 'OK', 2, null]);
    const after = (await python(
      proxy.port,
      `
p = r.pipeline()
p.execute_command('SEMGET', 'a python text')
p.get('py:s')
p.ttl('py:s')
out(p.execute())
`,
    )) as [string, string, number];
    expect(after.slice(0, 2)).toEqual(['from python', 'from python']);
    expect(after[2]).toBeGreaterThan(90);
  });

  it('redis-py: WATCH aborts the transaction, SEMSET included (nothing written or indexed)', async () => {
    const res = await python(
      proxy.port,
      `
other = redis.Redis(host='127.0.0.1', port=${proxy.port}, decode_responses=True)
p = r.pipeline()
p.watch('py:w')
other.set('py:w', 'changed')
p.multi()
p.execute_command('SEMSET', 'py:ws', 'a watched text', 'v')
try:
    p.execute()
    out('executed')
except redis.WatchError:
    out([r.exists('py:ws'), r.execute_command('SEMGET', 'a watched text')])
`,
    );
    expect(res).toEqual([0, null]);
  });

  describe.each([2, 3] as const)('ioredis, RESP%i', (protocol) => {
    const k = (s: string) => `io${protocol}:${s}`;
    function io(): Redis {
      const c = new Redis({ port: proxy.port, protocol, maxRetriesPerRequest: 1 });
      opened.push(c);
      return c;
    }

    it('multi(): replies in EXEC order, SEMGET finds what an earlier transaction set', async () => {
      const c = io();
      const res = await c
        .multi()
        .set(k('a'), '1')
        .call('SEMSET', k('s'), `ioredis text ${protocol}`, 'io value')
        .incr(k('a'))
        .exec();
      expect(res).toEqual([
        [null, 'OK'],
        [null, 'OK'],
        [null, 2],
      ]);
      const res2 = await c
        .multi()
        .call('SEMGET', `ioredis text ${protocol}`)
        .call('SEMGET', `ioredis text ${protocol}`, 'WITHSCORE')
        .get(k('s'))
        .exec();
      expect(res2![0]).toEqual([null, 'io value']);
      expect(JSON.stringify(res2![1])).toContain('io value');
      expect(res2![2]).toEqual([null, 'io value']);
    });

    it('DISCARD drops a queued SEMSET: nothing written, nothing indexed', async () => {
      const c = io();
      expect(await c.multi({ pipeline: false })).toBe('OK');
      expect(await c.call('SEMSET', k('d'), 'a discarded text', 'v')).toBe('QUEUED');
      expect(await c.discard()).toBe('OK');
      expect(await c.exists(k('d'))).toBe(0);
      expect(await c.call('SEMGET', 'a discarded text')).toBeNull();
    });

    it('a SEM error inside the transaction is its element, the others still run', async () => {
      const c = io();
      const res = await c
        .multi()
        .set(k('e'), 'x')
        .call('SEMGET', 'x', 'NS', 'no-such-namespace')
        .get(k('e'))
        .exec();
      expect(res![0]).toEqual([null, 'OK']);
      expect(String(res![1]![0])).toContain("unknown namespace 'no-such-namespace'");
      expect(res![2]).toEqual([null, 'x']);
    });
  });

  describe.each([2, 3] as const)('node-redis, RESP%i', (RESP) => {
    it('multi().addCommand(): SEMSET, SEMGET, SEMDEL in their places', async () => {
      const c = createClient({
        socket: { host: '127.0.0.1', port: proxy.port, reconnectStrategy: false },
        RESP,
      });
      c.on('error', () => {});
      opened.push({ disconnect: () => c.destroy() });
      await c.connect();
      const k = (s: string) => `nr${RESP}:${s}`;
      const res = await c
        .multi()
        .set(k('a'), '1')
        .addCommand(['SEMSET', k('s'), `node redis text ${RESP}`, 'nr value'])
        .addCommand(['SEMGET', 'nothing like it whatsoever'])
        .exec();
      expect(res).toEqual(['OK', 'OK', null]);
      const res2 = await c
        .multi()
        .addCommand(['SEMGET', `node redis text ${RESP}`])
        .addCommand(['SEMDEL', k('s')])
        .exists(k('s'))
        .exec();
      expect(res2).toEqual(['nr value', 1, 0]);
    });
  });

  it('SEMNS SET checks with a MULTI of its own: refused while WATCHing, so the watch survives', async () => {
    const c = await RawClient.open(proxy.port);
    try {
      expect(await request(c, cmd('SEMSET', 'w:1', 'a watched entry', 'v'))).toBe('+OK\r\n');
      expect(await request(c, cmd('WATCH', 'w:key'))).toBe('+OK\r\n');
      expect(await request(c, cmd('SEMNS', 'SET', 'default', 'THRESHOLD', '0.8'))).toMatch(
        /^-ERR semcache: this command checks permissions with MULTI\/DISCARD, which would UNWATCH/,
      );
      const admin = new Redis({ port: redis.port });
      opened.push(admin);
      await admin.set('w:key', 'changed');
      // The watch is still there: the transaction aborts.
      const out = await request(
        c,
        Buffer.concat([cmd('MULTI'), cmd('SET', 'w:key', 'mine'), cmd('EXEC')]),
        3,
      );
      expect(out).toBe('+OK\r\n+QUEUED\r\n*-1\r\n');
      expect(await request(c, cmd('SEMNS', 'SET', 'default', 'THRESHOLD', '0.8'))).toBe('+OK\r\n');
    } finally {
      c.close();
    }
  });

  it('raw: a refusal at queue time (NOPERM) is answered then, and EXEC aborts', async () => {
    const admin = new Redis({ port: redis.port });
    opened.push(admin);
    await admin.call('ACL', 'SETUSER', 'txapp', 'on', '>pw', '~app:*', '+@all');
    const c = await RawClient.open(proxy.port);
    try {
      await request(c, cmd('AUTH', 'txapp', 'pw'));
      const out = await request(
        c,
        Buffer.concat([
          cmd('MULTI'),
          cmd('SET', 'app:x', '1'),
          cmd('SEMSET', 'other:x', 'a text', 'v'),
          cmd('EXEC'),
        ]),
        4,
      );
      expect(out).toBe(
        '+OK\r\n+QUEUED\r\n' +
          '-NOPERM this user has no permissions to access one of the keys used as arguments\r\n' +
          '-EXECABORT Transaction discarded because of previous errors.\r\n',
      );
      expect(await admin.exists('app:x', 'other:x')).toBe(0);
    } finally {
      c.close();
    }
  });
});
