/*
 * Shared upstream connections: stateless commands of many clients share one
 * connection; a client is pinned to its own connection by its first stateful
 * command, after its shared requests have been answered.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cmd, RawClient } from '../helpers/raw.js';
import { type ProxyHandle, type RedisHandle, startProxy, startRedis } from '../helpers/servers.js';

let redis: RedisHandle;
let proxy: ProxyHandle;
let admin: Redis;

beforeAll(async () => {
  redis = await startRedis();
  proxy = await startProxy(redis.port, { multiplex: 1 });
  admin = new Redis({ port: redis.port });
});

afterAll(async () => {
  admin?.disconnect();
  await proxy?.stop();
  await redis?.stop();
});

/** Upstream connections carrying client traffic: not admin, not semcache's own (CONFIG GET of the limits). */
async function upstreamClients(): Promise<number> {
  const list = (await admin.client('LIST')) as string;
  return list
    .split('\n')
    .filter((l) => l.includes('cmd=') && !/cmd=(client\|list|config\|get) /.test(l)).length;
}

describe('shared upstream', () => {
  it('20 clients with stateless commands use one upstream connection', async () => {
    const clients = await Promise.all(
      Array.from({ length: 20 }, async () => RawClient.open(proxy.port)),
    );
    for (const [i, c] of clients.entries()) {
      c.write(Buffer.concat([cmd('SET', `mx${i}`, `v${i}`), cmd('GET', `mx${i}`)]));
    }
    for (const [i, c] of clients.entries()) {
      const out = await c.until((b) => b.toString().endsWith(`v${i}\r\n`));
      expect(out.toString()).toBe(`+OK\r\n$${`v${i}`.length}\r\nv${i}\r\n`);
    }
    expect(await upstreamClients()).toBe(1);
    for (const c of clients) c.close();
  });

  it('a stateful command pins the client; its earlier shared writes are visible', async () => {
    const c = await RawClient.open(proxy.port);
    const reqs = [cmd('DEL', 'pin')];
    for (let i = 0; i < 30; i++) reqs.push(cmd('INCR', 'pin'));
    // SELECT pins; then the read runs on the client's own connection and must
    // see all 30 increments sent before it over the shared one.
    reqs.push(cmd('SELECT', '0'), cmd('GET', 'pin'), cmd('CLIENT', 'SETNAME', 'pinned'));
    c.write(Buffer.concat(reqs));
    const out = await c.until((b) => b.toString().endsWith('$2\r\n30\r\n+OK\r\n'));
    expect(out.toString().endsWith('+OK\r\n$2\r\n30\r\n+OK\r\n')).toBe(true);
    const list = (await admin.client('LIST')) as string;
    expect(list).toContain('name=pinned');
    c.close();
  });

  it('a client with more than 32 commands in flight is pinned and keeps order', async () => {
    const c = await RawClient.open(proxy.port);
    const reqs: Buffer[] = [];
    for (let i = 0; i < 200; i++) reqs.push(cmd('ECHO', `m${i}`));
    c.write(Buffer.concat(reqs));
    const expected = Array.from({ length: 200 }, (_, i) => `$${`m${i}`.length}\r\nm${i}\r\n`).join(
      '',
    );
    const out = await c.until((b) => b.length >= expected.length);
    expect(out.toString()).toBe(expected);
    c.close();
  });

  it('the shared connection dying answers with an error, the clients stay usable', async () => {
    const client = new Redis({ port: proxy.port, maxRetriesPerRequest: 0 });
    expect(await client.set('sd', '1')).toBe('OK');
    // Kill the shared upstream connection from Redis's side.
    const list = (await admin.client('LIST')) as string;
    const ids = [...list.matchAll(/id=(\d+) .*?cmd=(\S+)/g)]
      .filter((m) => m[2] !== 'client|list')
      .map((m) => m[1]!);
    for (const id of ids) await admin.client('KILL', 'ID', id);
    // The next command opens a new shared connection.
    let value: string | null = null;
    for (let i = 0; i < 5 && value === null; i++) {
      value = await client.get('sd').catch(() => null);
    }
    expect(value).toBe('1');
    client.disconnect();
  });
});
