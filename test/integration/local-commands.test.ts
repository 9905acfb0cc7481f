/*
 * Our own commands inside the proxy: reply order in mixed pipelines, encoding
 * per protocol, the MULTI and subscribed-mode rules, COMMAND introspection.
 * Uses test-double commands (TESTECHO with a delay) against a real redis-server.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cmd, RawClient } from '../helpers/raw.js';
import { type ProxyHandle, type RedisHandle, startProxy, startRedis } from '../helpers/servers.js';
import { testCommands } from '../helpers/test-commands.js';

let redis: RedisHandle;
let proxy: ProxyHandle;

beforeAll(async () => {
  redis = await startRedis();
  proxy = await startProxy(redis.port, {}, testCommands);
});

afterAll(async () => {
  await proxy?.stop();
  await redis?.stop();
});

async function exchange(steps: Buffer[], expectEnd: string): Promise<string> {
  const c = await RawClient.open(proxy.port);
  c.write(Buffer.concat(steps));
  const out = await c.until((b) => b.toString('latin1').endsWith(expectEnd));
  c.close();
  return out.toString('latin1');
}

describe('reply order', () => {
  it('a slow local command holds back later forwarded replies', async () => {
    const out = await exchange(
      [
        cmd('SET', 'o', '1'),
        cmd('TESTECHO', 'slow', '80'),
        cmd('GET', 'o'),
        cmd('TESTECHO', 'fast'),
        cmd('INCR', 'o'),
        cmd('TESTECHO', 'last', '10'),
      ],
      '$4\r\nlast\r\n',
    );
    expect(out).toBe('+OK\r\n$4\r\nslow\r\n$1\r\n1\r\n$4\r\nfast\r\n:2\r\n$4\r\nlast\r\n');
  });

  it('a local command waits for a blocking command before it', async () => {
    const c = await RawClient.open(proxy.port);
    c.write(Buffer.concat([cmd('BLPOP', 'bl', '0'), cmd('TESTECHO', 'after')]));
    await new Promise((r) => setTimeout(r, 100));
    expect(c.received.length).toBe(0);
    const pusher = await RawClient.open(redis.port);
    pusher.write(cmd('RPUSH', 'bl', 'x'));
    const out = await c.until((b) => b.toString().endsWith('after\r\n'));
    expect(out.toString()).toBe('*2\r\n$2\r\nbl\r\n$1\r\nx\r\n$5\r\nafter\r\n');
    c.close();
    pusher.close();
  });

  it('random mixed pipelines keep order (ioredis, 500 commands)', async () => {
    const client = new Redis({ port: proxy.port, lazyConnect: true });
    await client.connect();
    const pipe = client.pipeline();
    const expected: unknown[] = [];
    for (let i = 0; i < 500; i++) {
      const r = (i * 7919) % 5;
      if (r === 0) {
        pipe.call('TESTECHO', `e${i}`, String(i % 3));
        expected.push(`e${i}`);
      } else if (r === 1) {
        pipe.set(`p${i}`, `v${i}`);
        expected.push('OK');
      } else if (r === 2) {
        pipe.get(`p${i - 1}`);
        expected.push((i - 1) % 5 === 1 ? `v${i - 1}` : null);
      } else if (r === 3) {
        pipe.call('TESTECHO', `x${i}`);
        expected.push(`x${i}`);
      } else {
        pipe.echo(`r${i}`);
        expected.push(`r${i}`);
      }
    }
    const results = await pipe.exec();
    expect(results!.map(([err, v]) => err ?? v)).toEqual(expected);
    client.disconnect();
  });
});

describe('encoding for the client protocol', () => {
  it('RESP2 flat array, RESP3 map, switched by HELLO in the same pipeline', async () => {
    const out = await exchange(
      [cmd('TESTMAP'), cmd('HELLO', '3'), cmd('TESTMAP'), cmd('HELLO', '2'), cmd('TESTMAP')],
      '*0\r\n*4\r\n$1\r\na\r\n:1\r\n$1\r\nb\r\n*2\r\n$1\r\nx\r\n$-1\r\n',
    );
    expect(out.startsWith('*4\r\n$1\r\na\r\n:1\r\n$1\r\nb\r\n*2\r\n$1\r\nx\r\n$-1\r\n%')).toBe(
      true,
    );
    expect(out).toContain('%2\r\n$1\r\na\r\n:1\r\n$1\r\nb\r\n*2\r\n$1\r\nx\r\n_\r\n');
  });

  it('ioredis in RESP3 and RESP2 gets the same values', async () => {
    for (const protocol of [2, 3] as const) {
      const client = new Redis({ port: proxy.port, protocol });
      expect(await client.call('TESTECHO', 'hi')).toBe('hi');
      const map = await client.call('TESTMAP');
      expect(protocol === 3 ? map : map).toBeTruthy();
      client.disconnect();
    }
  });
});

describe('errors of our commands', () => {
  it('wrong arity in Redis words, a throwing command answers -ERR', async () => {
    const out = await exchange(
      [cmd('TESTECHO'), cmd('testmap', 'x'), cmd('TESTFAIL'), cmd('PING')],
      '+PONG\r\n',
    );
    expect(out).toBe(
      "-ERR wrong number of arguments for 'testecho' command\r\n" +
        "-ERR wrong number of arguments for 'testmap' command\r\n" +
        '-ERR semcache internal error: boom\r\n+PONG\r\n',
    );
  });

  it('inside MULTI: +QUEUED, and the reply in its place in the EXEC array', async () => {
    const out = await exchange(
      [cmd('MULTI'), cmd('SET', 'm', '1'), cmd('TESTECHO', 'x'), cmd('EXEC'), cmd('GET', 'm')],
      '$1\r\n1\r\n',
    );
    expect(out).toBe('+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n+OK\r\n$1\r\nx\r\n$1\r\n1\r\n');
  });

  it("inside MULTI: a command's own requests run in the transaction, in order", async () => {
    const out = await exchange(
      [
        cmd('MULTI'),
        cmd('SET', 'mt', '1'),
        cmd('TESTGET', 'mt', 'none'),
        cmd('INCR', 'mt'),
        cmd('TESTGET', 'mt'),
        cmd('EXEC'),
      ],
      '*1\r\n$5\r\n$1\r\n2\r\n',
    );
    expect(out).toBe(
      '+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n' +
        '*4\r\n+OK\r\n*2\r\n$5\r\n$1\r\n1\r\n$3\r\n$-1\r\n:2\r\n*1\r\n$5\r\n$1\r\n2\r\n',
    );
  });

  it('inside MULTI: DISCARD drops our queued commands with the rest', async () => {
    const out = await exchange(
      [cmd('MULTI'), cmd('TESTGET', 'md'), cmd('DISCARD'), cmd('TESTECHO', 'after')],
      '$5\r\nafter\r\n',
    );
    expect(out).toBe('+OK\r\n+QUEUED\r\n+OK\r\n$5\r\nafter\r\n');
  });

  it('inside MULTI: a no-multi command is refused, and EXEC aborts as in Redis', async () => {
    const out = await exchange(
      [cmd('MULTI'), cmd('SET', 'm2', '1'), cmd('TESTNOMULTI'), cmd('EXEC'), cmd('GET', 'm2')],
      '$-1\r\n',
    );
    expect(out).toBe(
      '+OK\r\n+QUEUED\r\n-ERR Command not allowed inside a transaction\r\n' +
        '-EXECABORT Transaction discarded because of previous errors.\r\n$-1\r\n',
    );
  });

  it('inside MULTI: a wrong number of arguments is refused at once and aborts EXEC', async () => {
    const out = await exchange([cmd('MULTI'), cmd('TESTMAP', 'extra'), cmd('EXEC')], 'errors.\r\n');
    expect(out).toBe(
      "+OK\r\n-ERR wrong number of arguments for 'testmap' command\r\n" +
        '-EXECABORT Transaction discarded because of previous errors.\r\n',
    );
  });

  it('RESP2 subscribed mode: Redis context error; RESP3: allowed', async () => {
    const out2 = await exchange(
      [cmd('SUBSCRIBE', 'ch'), cmd('TESTECHO', 'x'), cmd('UNSUBSCRIBE'), cmd('TESTECHO', 'y')],
      '$1\r\ny\r\n',
    );
    expect(out2).toContain(
      "-ERR Can't execute 'testecho': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n",
    );
    const out3 = await exchange(
      [cmd('HELLO', '3'), cmd('SUBSCRIBE', 'ch'), cmd('TESTECHO', 'x')],
      '$1\r\nx\r\n',
    );
    expect(out3).toContain('>3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n$1\r\nx\r\n');
  });

  it('CLIENT REPLY OFF silences our replies too', async () => {
    const out = await exchange(
      [
        cmd('CLIENT', 'REPLY', 'OFF'),
        cmd('TESTECHO', 'hidden'),
        cmd('CLIENT', 'REPLY', 'ON'),
        cmd('TESTECHO', 'shown'),
      ],
      'shown\r\n',
    );
    expect(out).toBe('+OK\r\n$5\r\nshown\r\n');
  });

  it("CLIENT REPLY OFF: a command's own requests still get their replies", async () => {
    const out = await exchange(
      [
        cmd('SET', 'ro', 'x'),
        cmd('CLIENT', 'REPLY', 'OFF'),
        cmd('TESTGET', 'ro'),
        cmd('SET', 'ro2', 'y'),
        cmd('TESTGET', 'ro2'),
        cmd('CLIENT', 'REPLY', 'ON'),
        cmd('TESTGET', 'ro', 'ro2'),
      ],
      '$1\r\ny\r\n',
    );
    expect(out).toBe('+OK\r\n+OK\r\n*2\r\n$5\r\n$1\r\nx\r\n$5\r\n$1\r\ny\r\n');
  });

  it('CLIENT REPLY SKIP on one of ours: Redis skips no reply of anything after it', async () => {
    const out = await exchange(
      [
        cmd('SET', 'rs', 'x'),
        cmd('CLIENT', 'REPLY', 'SKIP'),
        cmd('TESTECHO', 'skipped'),
        cmd('PING'),
        cmd('CLIENT', 'REPLY', 'SKIP'),
        cmd('TESTGET', 'rs'),
        cmd('GET', 'rs'),
      ],
      '$1\r\nx\r\n',
    );
    expect(out).toBe('+OK\r\n+PONG\r\n$1\r\nx\r\n');
  });
});

describe('COMMAND introspection lists our commands', () => {
  it('COUNT, INFO, DOCS, LIST and COMMAND itself', async () => {
    const direct = new Redis({ port: redis.port });
    const client = new Redis({ port: proxy.port });
    const base = (await direct.call('COMMAND', 'COUNT')) as number;
    expect(await client.call('COMMAND', 'COUNT')).toBe(base + testCommands.length);
    const all = (await client.call('COMMAND')) as unknown[][];
    expect(all.length).toBe(base + testCommands.length);
    expect(all.map((c) => c[0])).toContain('testecho');
    const info = (await client.call('COMMAND', 'INFO', 'get', 'testecho', 'nosuch')) as unknown[];
    expect((info[0] as unknown[])[0]).toBe('get');
    expect((info[1] as unknown[]).slice(0, 2)).toEqual(['testecho', -2]);
    expect(info[2]).toBeNull();
    const docs = (await client.call('COMMAND', 'DOCS', 'testecho', 'get')) as unknown[];
    expect(docs).toContain('testecho');
    expect(docs).toContain('get');
    const list = (await client.call('COMMAND', 'LIST')) as string[];
    expect(list).toContain('testmap');
    expect(list).toContain('get');
    direct.disconnect();
    client.disconnect();
  });

  it('RESP3 COMMAND DOCS is a map with our entries', async () => {
    const client = new Redis({ port: proxy.port, protocol: 3 });
    const docs = (await client.call('COMMAND', 'DOCS', 'testecho')) as unknown;
    expect(JSON.stringify(docs)).toContain('Echo a message');
    client.disconnect();
  });
});
