/*
 * SEMNS: namespace settings (default threshold, index kind), persisted in
 * Redis and applied after a restart.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type RedisHandle,
  type SemanticProxyHandle,
  startRedis,
  startSemanticProxy,
} from '../helpers/servers.js';

let redis: RedisHandle;
let proxy: SemanticProxyHandle;
let c: Redis;

beforeAll(async () => {
  redis = await startRedis();
  proxy = await startSemanticProxy(redis.port);
  c = new Redis({ port: proxy.port });
});

afterAll(async () => {
  c?.disconnect();
  await proxy?.stop();
  await redis?.stop();
});

describe('SEMNS', () => {
  it('a namespace threshold applies to SEMGET without THRESHOLD, and survives a restart', async () => {
    expect(await c.call('SEMNS', 'SET', 'loose', 'THRESHOLD', '0.4')).toBe('OK');
    await c.call('SEMSET', 'ns:k1', 'house near ostsee', 'v1', 'NS', 'loose');
    // The default threshold (0.9) would miss this near match; the namespace's 0.4 hits.
    expect(await c.call('SEMGET', 'a house near the ostsee', 'NS', 'loose')).toBe('v1');
    await c.call('SEMSET', 'ns:k2', 'house near ostsee', 'v2');
    expect(await c.call('SEMGET', 'a house near the ostsee')).toBeNull();
    expect(await c.call('SEMNS', 'GET', 'loose')).toEqual([
      'namespace',
      'loose',
      'threshold',
      '0.40000000000000002',
      'index',
      'auto',
      'quant',
      'fp32',
      'entries',
      1,
    ]);
    await proxy.stop();
    c.disconnect();
    proxy = await startSemanticProxy(redis.port);
    c = new Redis({ port: proxy.port });
    expect(await c.call('SEMGET', 'a house near the ostsee', 'NS', 'loose')).toBe('v1');
    expect(await c.call('SEMNS', 'LIST')).toEqual(expect.arrayContaining(['default', 'loose']));
  });

  it('INDEX sets the kind of an empty namespace and refuses to change a full one', async () => {
    expect(await c.call('SEMNS', 'SET', 'graph', 'INDEX', 'hnsw')).toBe('OK');
    await c.call('SEMSET', 'ns:g1', 'some text', 'g', 'NS', 'graph');
    // The graph is built in a worker thread; the flat tail answers meanwhile.
    let info: unknown[] = [];
    for (let i = 0; i < 100; i++) {
      info = (await c.call('SEMINFO', 'NS', 'graph')) as unknown[];
      if (info[info.indexOf('index_building') + 1] === 0) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(info[info.indexOf('index') + 1]).toBe('hnsw');
    expect(info[info.indexOf('index_tail') + 1]).toBe(0);
    expect(await c.call('SEMGET', 'some text', 'NS', 'graph')).toBe('g');
    await expect(c.call('SEMNS', 'SET', 'graph', 'INDEX', 'flat')).rejects.toThrow(
      "cannot change the INDEX of namespace 'graph' while it has entries",
    );
  });

  it('QUANT q8: the graph holds 8-bit codes and answers near texts; a full namespace keeps its QUANT', async () => {
    expect(await c.call('SEMNS', 'SET', 'small', 'INDEX', 'HNSW', 'QUANT', 'Q8')).toBe('OK');
    const texts = ['house near ostsee', 'how to bake bread', 'stock market crash', 'cheap flights'];
    for (const [i, t] of texts.entries())
      await c.call('SEMSET', `ns:q${i}`, t, `v${i}`, 'NS', 'small');
    let info: unknown[] = [];
    for (let i = 0; i < 100; i++) {
      info = (await c.call('SEMINFO', 'NS', 'small')) as unknown[];
      if (info[info.indexOf('index_building') + 1] === 0) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const field = (name: string) => info[info.indexOf(name) + 1];
    // The graph was built from the first entry; the other three wait in the (float) tail.
    expect([field('index'), field('quant'), field('index_tail')]).toEqual(['hnsw', 'q8', 3]);
    // Near, not exact: answered by the SQ8 graph, with a score a little off the float one.
    const near = (await c.call(
      'SEMGET',
      'a house near the ostsee',
      'NS',
      'small',
      'THRESHOLD',
      '0.5',
      'WITHSCORE',
    )) as string[];
    expect(near[near.indexOf('value') + 1]).toBe('v0');
    const score = Number(near[near.indexOf('score') + 1]);
    expect(score).toBeGreaterThan(0.5);
    expect(score).toBeLessThan(1);
    await expect(c.call('SEMNS', 'SET', 'small', 'QUANT', 'FP32')).rejects.toThrow(
      "cannot change the QUANT of namespace 'small' while it has entries",
    );
    expect(await c.call('SEMNS', 'SET', 'small', 'QUANT', 'q8', 'THRESHOLD', '0.6')).toBe('OK');
    expect(await c.call('SEMFLUSH', 'NS', 'small')).toBe(4);
    expect(await c.call('SEMNS', 'SET', 'small', 'QUANT', 'FP32')).toBe('OK');
    const got = (await c.call('SEMNS', 'GET', 'small')) as unknown[];
    expect(got.slice(got.indexOf('quant'), got.indexOf('quant') + 2)).toEqual(['quant', 'fp32']);
  });

  it('errors in Redis style', async () => {
    await expect(c.call('SEMNS', 'GET', 'nosuch')).rejects.toThrow(
      "ERR unknown namespace 'nosuch'",
    );
    await expect(c.call('SEMNS', 'SET', 'x', 'INDEX', 'ivfpq')).rejects.toThrow(
      "ERR syntax error near 'ivfpq'",
    );
    await expect(c.call('SEMNS', 'SET', 'x', 'QUANT', 'q4')).rejects.toThrow(
      "ERR syntax error near 'q4'",
    );
    await expect(c.call('SEMNS', 'SET', 'x', 'THRESHOLD', '2')).rejects.toThrow(
      'ERR THRESHOLD must be between -1 and 1',
    );
    await expect(c.call('SEMNS', 'BOGUS')).rejects.toThrow("ERR syntax error near 'BOGUS'");
    await expect(c.call('SEMNS')).rejects.toThrow(
      "ERR wrong number of arguments for 'semns' command",
    );
  });

  it('SEMFLUSH NS deletes the entries and keeps the settings, also across a restart', async () => {
    const direct = new Redis({ port: redis.port });
    try {
      await c.call('SEMNS', 'SET', 'kept', 'THRESHOLD', '0.5', 'INDEX', 'FLAT', 'QUANT', 'Q8');
      await c.call('SEMSET', 'ns:kept1', 't one', 'v', 'NS', 'kept');
      await c.call('SEMSET', 'ns:kept2', 't two', 'v', 'NS', 'kept');
      expect(await c.call('SEMFLUSH', 'NS', 'kept')).toBe(2);
      expect(await direct.exists('ns:kept1', 'ns:kept2')).toBe(0);
      const settings = [
        'namespace',
        'kept',
        'threshold',
        '0.5',
        'index',
        'flat',
        'quant',
        'q8',
        'entries',
        0,
      ];
      expect(await c.call('SEMNS', 'GET', 'kept')).toEqual(settings);
      // SEMFLUSH of every namespace keeps every namespace's settings too.
      await c.call('SEMSET', 'ns:kept3', 't three', 'v', 'NS', 'kept');
      await c.call('SEMSET', 'ns:implicit', 't', 'v', 'NS', 'implicit');
      expect(await c.call('SEMFLUSH')).toBeGreaterThanOrEqual(2);
      expect(await c.call('SEMNS', 'GET', 'kept')).toEqual(settings);
      // A namespace that only existed through its entries goes with them.
      await expect(c.call('SEMNS', 'GET', 'implicit')).rejects.toThrow(
        "unknown namespace 'implicit'",
      );
      const again = await startSemanticProxy(redis.port);
      const c2 = new Redis({ port: again.port });
      try {
        expect(await c2.call('SEMNS', 'GET', 'kept')).toEqual(settings);
      } finally {
        c2.disconnect();
        await again.stop();
      }
    } finally {
      direct.disconnect();
    }
  });

  it('a start finds settings by the set of namespaces, and by a walk where an earlier version wrote them', async () => {
    const direct = new Redis({ port: redis.port });
    try {
      await c.call('SEMNS', 'SET', 'listed', 'THRESHOLD', '0.35');
      // The settings script names it in the set, in the same step.
      expect(await direct.sismember('semcache:namespaces', 'listed')).toBe(1);
      // Settings as an earlier version wrote them: the hash alone, named nowhere.
      await direct.del('semcache:namespaces');
      await direct.hset('semcache:ns:older', 'threshold', '0.25');
      const restart = async () => {
        await proxy.stop();
        c.disconnect();
        proxy = await startSemanticProxy(redis.port);
        c = new Redis({ port: proxy.port });
      };
      await restart();
      const threshold = async (ns: string) => {
        const got = (await c.call('SEMNS', 'GET', ns)) as unknown[];
        return Number(got[got.indexOf('threshold') + 1]);
      };
      // Found by the walk, which then made the set complete ('' says so).
      expect([await threshold('older'), await threshold('listed')]).toEqual([0.25, 0.35]);
      expect((await direct.smembers('semcache:namespaces')).sort()).toEqual(
        expect.arrayContaining(['', 'listed', 'older']),
      );
      // From now on the set is read, not the keyspace: it must be exact.
      expect(await c.call('SEMNS', 'DEL', 'older')).toBe(0);
      expect(await direct.sismember('semcache:namespaces', 'older')).toBe(0);
      await c.call('SEMNS', 'SET', 'later', 'THRESHOLD', '0.45');
      await restart();
      expect([await threshold('listed'), await threshold('later')]).toEqual([0.35, 0.45]);
      await expect(c.call('SEMNS', 'GET', 'older')).rejects.toThrow("unknown namespace 'older'");
    } finally {
      direct.disconnect();
    }
  });

  it('SEMNS DEL drops a namespace and its settings; with entries only with FLUSH', async () => {
    const direct = new Redis({ port: redis.port });
    try {
      await c.call('SEMNS', 'SET', 'gone', 'THRESHOLD', '0.5');
      await c.call('SEMSET', 'ns:gone1', 't', 'v', 'NS', 'gone');
      await expect(c.call('SEMNS', 'DEL', 'gone')).rejects.toThrow(
        "ERR namespace 'gone' has 1 entry (SEMNS DEL gone FLUSH deletes it too)",
      );
      expect(await direct.get('ns:gone1')).toBe('v');
      await expect(c.call('SEMNS', 'DEL', 'gone', 'NOW')).rejects.toThrow(
        "ERR syntax error near 'NOW'",
      );
      await expect(c.call('SEMNS', 'DEL', 'gone', 'FLUSH', 'x')).rejects.toThrow(
        /^ERR syntax error/,
      );
      expect(await c.call('SEMNS', 'DEL', 'gone', 'FLUSH')).toBe(1);
      expect(await direct.exists('ns:gone1', 'semcache:ns:gone')).toBe(0);
      await expect(c.call('SEMNS', 'GET', 'gone')).rejects.toThrow("unknown namespace 'gone'");
      await expect(c.call('SEMNS', 'DEL', 'gone')).rejects.toThrow("unknown namespace 'gone'");
      // An empty one needs no FLUSH; a new SEMSET into it starts from the defaults.
      await c.call('SEMNS', 'SET', 'empty', 'THRESHOLD', '0.3');
      expect(await c.call('SEMNS', 'DEL', 'empty')).toBe(0);
      await c.call('SEMSET', 'ns:empty1', 't', 'v', 'NS', 'empty');
      expect(await c.call('SEMNS', 'GET', 'empty')).toEqual([
        'namespace',
        'empty',
        'threshold',
        '0.90000000000000002', // the default 0.9, as a RESP2 double (%.17g)
        'index',
        'auto',
        'quant',
        'fp32',
        'entries',
        1,
      ]);
      await c.call('SEMDEL', 'ns:empty1');
    } finally {
      direct.disconnect();
    }
  });
});
