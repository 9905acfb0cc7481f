/*
 * Recall that keeps its promise (docs/index.md, "How many hits a search
 * returns"): over an HNSW index built in the background, with the hash
 * embedder and a real redis-server,
 * - SEMSEARCH TEXT finds the entry stored under that very text, first;
 * - COUNT k returns k entries whenever k pass THRESHOLD and FILTER, also when
 *   k is far beyond the graph's efSearch (FAISS's HNSW stops early: 1439 of
 *   5000 before) and when a FILTER rejects nearly everything.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type RedisHandle,
  type SemanticProxyHandle,
  startRedis,
  startSemanticProxy,
} from '../helpers/servers.js';

const N = 6000;
/** Every RARE-th entry carries the attribute the selective FILTER asks for. */
const RARE = 300;

let redis: RedisHandle;
let proxy: SemanticProxyHandle;
let c: Redis;

/**
 * FAQ-like texts that differ in a word or a number: the near-duplicates that
 * real caches hold, and that lead an HNSW walk astray (with efSearch 64,
 * 381 of 9000 such texts did not find themselves).
 */
function texts(n: number): string[] {
  const verbs = ['reset', 'change', 'find', 'update'];
  const nouns = ['password', 'email', 'address', 'plan', 'card'];
  return Array.from(
    { length: n },
    (_, i) => `how do i ${verbs[i % 4]} my ${nouns[i % 5]} number ${i}`,
  );
}

const all = texts(N);

beforeAll(async () => {
  redis = await startRedis();
  proxy = await startSemanticProxy(redis.port, { index: 'hnsw' });
  c = new Redis({ port: proxy.port });
  for (let at = 0; at < N; at += 500) {
    const p = c.pipeline();
    for (let i = at; i < Math.min(N, at + 500); i++) {
      const attrs = JSON.stringify({ rare: i % RARE === 0, i });
      p.call('SEMSET', `r:${i}`, all[i]!, `v${i}`, 'NS', 'recall', 'ATTRS', attrs);
    }
    await p.exec();
  }
  const index = proxy.engine.namespace('recall').index!;
  await index.settled();
  expect(index.kind).toBe('hnsw');
  expect(index.size).toBe(N);
}, 120_000);

afterAll(async () => {
  c?.disconnect();
  await proxy?.stop();
  await redis?.stop();
});

describe('SEMSEARCH over an HNSW index', () => {
  it('finds the entry stored under the very text asked, first, for every entry tried', async () => {
    const missed: number[] = [];
    for (let i = 0; i < N; i += 7) {
      const keys = (await c.call(
        'SEMSEARCH',
        'TEXT',
        all[i]!,
        'NS',
        'recall',
        'COUNT',
        '1',
      )) as string[];
      if (keys[0] !== `r:${i}`) missed.push(i);
    }
    expect(missed).toEqual([]);
  });

  it('COUNT k returns k entries when k exist, far beyond efSearch', async () => {
    const keys = (await c.call(
      'SEMSEARCH',
      'TEXT',
      'how do i find my card',
      'NS',
      'recall',
      'COUNT',
      '10000',
    )) as string[];
    expect(keys.length).toBe(N);
    expect(new Set(keys).size).toBe(N);
  });

  it('returns the same entries in the same order as an exact scan', async () => {
    const r = (await c.call(
      'SEMSEARCH',
      'TEXT',
      all[5]!,
      'NS',
      'recall',
      'COUNT',
      '3000',
      'WITHSCORES',
    )) as string[][];
    const [query] = await proxy.engine.opts.embedder.embed([all[5]!]);
    const space = proxy.engine.namespace('recall');
    const exact = await space.index!.scan(query!, 3000);
    expect(r.length).toBe(3000);
    // Position by position the same scores (ties may come in either order),
    // and the same entries above the last score.
    const scores = r.map((m) => Number(m[m.indexOf('score') + 1]));
    for (const [i, h] of exact.entries()) expect(scores[i]).toBeCloseTo(h.score, 5);
    const last = exact.at(-1)!.score + 1e-6;
    const above = (keys: string[], sc: number[]) => keys.filter((_, i) => sc[i]! > last).sort();
    expect(
      above(
        r.map((m) => m[1]!),
        scores,
      ),
    ).toEqual(
      above(
        exact.map((h) => space.entries.get(h.id)!.key.toString()),
        exact.map((h) => h.score),
      ),
    );
    expect(r[0]![1]).toBe('r:5');
  });

  it('a FILTER that rejects nearly everything still gets every entry it passes', async () => {
    const want = N / RARE;
    const keys = (await c.call(
      'SEMSEARCH',
      'TEXT',
      'change my email',
      'NS',
      'recall',
      'COUNT',
      String(want),
      'FILTER',
      '.rare',
    )) as string[];
    expect(keys.sort()).toEqual(Array.from({ length: want }, (_, j) => `r:${j * RARE}`).sort());
  });

  it('a THRESHOLD still ends the answer early: no scan for what cannot pass', async () => {
    const before = await scans();
    const keys = (await c.call(
      'SEMSEARCH',
      'TEXT',
      all[9]!,
      'NS',
      'recall',
      'COUNT',
      '100',
      'THRESHOLD',
      '0.99',
    )) as string[];
    expect(keys).toEqual(['r:9']);
    expect(await scans()).toBe(before);
  });
});

async function scans(): Promise<number> {
  const info = (await c.call('SEMINFO', 'NS', 'recall')) as unknown[];
  return Number(info[info.indexOf('exact_scans') + 1]);
}
