/*
 * The SEM* commands (docs/commands.md, docs/storage.md) through the proxy
 * against a real redis-server, with ioredis in RESP2 and RESP3 and raw bytes
 * where the encoding matters. The embedder is the lexical hash embedder behind
 * a counting wrapper, so "answered without calling the model" is observable.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHashEmbedder } from '../../src/semantic/embedders/hash.js';
import { exactKey } from '../../src/semantic/normalize.js';
import type { Embedder } from '../../src/semantic/types.js';
import { cmd, RawClient, request, splitReplies } from '../helpers/raw.js';
import {
  type RedisHandle,
  type SemanticProxyHandle,
  startRedis,
  startSemanticProxy,
} from '../helpers/servers.js';

const PREFIX = 'semcache:';
const DIM = 384;

type Proto = 2 | 3;

/** The hash embedder, counting calls and texts that reach it (below the LRU and the batcher). */
class CountingEmbedder implements Embedder {
  calls = 0;
  texts: string[] = [];
  private readonly inner: Embedder;
  constructor(dim = DIM) {
    this.inner = createHashEmbedder({ dim });
  }
  get kind() {
    return this.inner.kind;
  }
  get model() {
    return this.inner.model;
  }
  get dim() {
    return this.inner.dim;
  }
  load() {
    return this.inner.load();
  }
  embed(texts: string[]) {
    this.calls++;
    this.texts.push(...texts);
    return this.inner.embed(texts);
  }
}

function client(port: number, p: Proto): Redis {
  return new Redis({
    port,
    protocol: p,
    ...(p === 3 ? { replyMapping: 'resp3' as const } : {}),
    maxRetriesPerRequest: 1,
  });
}

/** The error message of a rejected call (fails the test if it resolved). */
async function errorOf(p: Promise<unknown>): Promise<string> {
  try {
    const v = await p;
    throw new Error(`expected an error reply, got ${JSON.stringify(v)}`);
  } catch (err) {
    const msg = (err as Error).message;
    if (msg.startsWith('expected an error reply')) throw err;
    return msg;
  }
}

/** A map reply: RESP2 a flat array of name/value pairs, RESP3 a map (an object with replyMapping resp3). */
function asMap(p: Proto, reply: unknown): Record<string, unknown> {
  if (p === 2) {
    expect(Array.isArray(reply)).toBe(true);
    const a = reply as unknown[];
    expect(a.length % 2).toBe(0);
    const o: Record<string, unknown> = {};
    for (let i = 0; i < a.length; i += 2) {
      expect(typeof a[i]).toBe('string');
      o[a[i] as string] = a[i + 1];
    }
    return o;
  }
  expect(reply).not.toBeNull();
  expect(typeof reply).toBe('object');
  expect(Array.isArray(reply)).toBe(false);
  return reply as Record<string, unknown>;
}

/** A double: RESP2 a bulk string, RESP3 a double. */
function dbl(p: Proto, v: unknown): number {
  expect(typeof v).toBe(p === 2 ? 'string' : 'number');
  const n = Number(v);
  expect(Number.isFinite(n)).toBe(true);
  return n;
}

async function waitFor(pred: () => Promise<boolean> | boolean, timeoutMs = 3000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await pred()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** `p`, or a rejection after `ms` (a hung reply fails the test instead of timing it out). */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function fp32(v: ArrayLike<number>): Buffer {
  const b = Buffer.alloc(v.length * 4);
  for (let i = 0; i < v.length; i++) b.writeFloatLE(v[i]!, i * 4);
  return b;
}

interface Env {
  redis: RedisHandle;
  proxy: SemanticProxyHandle;
  embedder: CountingEmbedder;
  /** Straight to redis-server, bypassing the proxy: the "legacy application". */
  direct: Redis;
}

/** A redis-server and a semcache (hash embedder behind a counter, sweep every 200 ms) in front. */
async function startEnv(): Promise<Env> {
  const redis = await startRedis();
  const embedder = new CountingEmbedder();
  const proxy = await startSemanticProxy(
    redis.port,
    { sweepInterval: 200, shutdownTimeout: 500 },
    embedder,
  );
  const direct = new Redis({ port: redis.port, maxRetriesPerRequest: 1 });
  return { redis, proxy, embedder, direct };
}

async function stopEnv(env: Env | undefined): Promise<void> {
  env?.direct.disconnect();
  await env?.proxy.stop();
  await env?.redis.stop();
}

// The environment of the tests outside the per-protocol blocks.
let redis: RedisHandle;
let proxy: SemanticProxyHandle;
let direct: Redis;
let shared: Env | undefined;

beforeAll(async () => {
  shared = await startEnv();
  ({ redis, proxy, direct } = shared);
});

afterAll(() => stopEnv(shared));

describe.each([2, 3] as const)('RESP%i', (p) => {
  // Each protocol gets its own redis and proxy, so the embedding cache and
  // the model-call counter start clean.
  let env: Env | undefined;
  let proxy: SemanticProxyHandle;
  let embedder: CountingEmbedder;
  let direct: Redis;
  let c: Redis;
  const ns = (name: string) => `${name}-r${p}`;
  const key = (name: string) => `r${p}:${name}`;

  beforeAll(async () => {
    env = await startEnv();
    ({ proxy, embedder, direct } = env);
    c = client(proxy.port, p);
    await c.ping();
  });
  afterAll(async () => {
    c?.disconnect();
    await stopEnv(env);
  });

  describe('SEMGET', () => {
    it('an exact hit (same text, or differing only in case, spaces, edge punctuation, NFKC) never calls the model', async () => {
      const n = ns('exact');
      expect(await c.call('SEMSET', key('ex1'), 'house near ostsee', 'v-ex1', 'NS', n)).toBe('OK');
      const before = embedder.calls;
      for (const text of [
        'house near ostsee',
        '  HOUSE   near\tOstsee?! ',
        '¿house near ostsee...',
        'ｈｏｕｓｅ near ostsee', // full-width letters: NFKC
      ]) {
        expect(await c.call('SEMGET', text, 'NS', n)).toBe('v-ex1');
      }
      const detail = asMap(p, await c.call('SEMGET', ' House Near Ostsee. ', 'NS', n, 'WITHSCORE'));
      expect(detail).toEqual({
        value: 'v-ex1',
        key: key('ex1'),
        score: p === 2 ? '1' : 1,
        text: 'house near ostsee',
      });
      expect(embedder.calls).toBe(before);
      const info = asMap(p, await c.call('SEMINFO', 'NS', n));
      expect(info.hits).toBe(5);
      expect(info.exact_hits).toBe(5);
      expect(info.misses).toBe(0);
      // inner punctuation is not stripped: not an exact match, so the model is asked
      await c.call('SEMGET', 'house, near ostsee', 'NS', n);
      expect(embedder.calls).toBe(before + 1);
    });

    it('a near hit at THRESHOLD 0.5, not at the default 0.9; a miss is nil', async () => {
      const n = ns('near');
      await c.call('SEMSET', key('near1'), 'house near ostsee', 'v-near1', 'NS', n);
      await c.call(
        'SEMSET',
        key('near2'),
        'quantum chromodynamics lecture notes',
        'v-near2',
        'NS',
        n,
      );
      const before = embedder.calls;
      const scored = asMap(
        p,
        await c.call('SEMGET', 'a house near the ostsee', 'NS', n, 'THRESHOLD', '-1', 'WITHSCORE'),
      );
      expect(embedder.calls).toBe(before + 1);
      expect(scored.key).toBe(key('near1'));
      const score = dbl(p, scored.score);
      expect(score).toBeGreaterThanOrEqual(0.5);
      expect(score).toBeLessThan(0.9);
      expect(await c.call('SEMGET', 'a house near the ostsee', 'NS', n)).toBeNull();
      expect(await c.call('SEMGET', 'a house near the ostsee', 'NS', n, 'THRESHOLD', '0.5')).toBe(
        'v-near1',
      );
      expect(await c.call('SEMGET', 'a house near the ostsee', 'NS', n, 'threshold', '0.5')).toBe(
        'v-near1',
      );
      expect(
        await c.call('SEMGET', 'quarterly tax report', 'NS', n, 'THRESHOLD', '0.5'),
      ).toBeNull();
      expect(
        await c.call('SEMGET', 'quarterly tax report', 'NS', n, 'THRESHOLD', '0.5', 'WITHSCORE'),
      ).toBeNull();
      const info = asMap(p, await c.call('SEMINFO', 'NS', n));
      expect(info.misses).toBe(3);
      expect(info.hits).toBe(3);
      expect(info.exact_hits).toBe(0);
    });

    it('WITHSCORE / WITHKEY: value, key, score in [-1, 1], text, in any order and case', async () => {
      const n = ns('with');
      await c.call('SEMSET', key('with1'), 'house near ostsee', 'v-with1', 'NS', n);
      for (const flags of [['WITHSCORE'], ['WITHKEY'], ['withkey', 'WithScore']]) {
        const m = asMap(
          p,
          await c.call('SEMGET', 'a house near the ostsee', ...flags, 'THRESHOLD', '0.5', 'NS', n),
        );
        expect(Object.keys(m)).toEqual(['value', 'key', 'score', 'text']);
        expect(m.value).toBe('v-with1');
        expect(m.key).toBe(key('with1'));
        expect(m.text).toBe('house near ostsee');
        const s = dbl(p, m.score);
        expect(s).toBeGreaterThanOrEqual(-1);
        expect(s).toBeLessThanOrEqual(1);
      }
    });

    it('raw bytes: nil is $-1 (RESP2) or _ (RESP3); the detail reply is an array or a map', async () => {
      const n = ns('raw');
      await c.call('SEMSET', key('raw1'), 'house near ostsee', 'v-raw1', 'NS', n);
      const r = await RawClient.open(proxy.port);
      try {
        if (p === 3) await request(r, cmd('HELLO', '3'));
        expect(await request(r, cmd('SEMGET', 'quarterly tax report', 'NS', n))).toBe(
          p === 2 ? '$-1\r\n' : '_\r\n',
        );
        expect(await request(r, cmd('SEMGET', 'quarterly tax report', 'NS', n, 'WITHKEY'))).toBe(
          p === 2 ? '$-1\r\n' : '_\r\n',
        );
        const out = await request(r, cmd('SEMGET', 'house near ostsee', 'NS', n, 'WITHKEY'));
        const key1 = key('raw1');
        expect(out).toBe(
          p === 2
            ? `*8\r\n$5\r\nvalue\r\n$6\r\nv-raw1\r\n$3\r\nkey\r\n$${key1.length}\r\n${key1}\r\n$5\r\nscore\r\n$1\r\n1\r\n$4\r\ntext\r\n$17\r\nhouse near ostsee\r\n`
            : `%4\r\n$5\r\nvalue\r\n$6\r\nv-raw1\r\n$3\r\nkey\r\n$${key1.length}\r\n${key1}\r\n$5\r\nscore\r\n,1\r\n$4\r\ntext\r\n$17\r\nhouse near ostsee\r\n`,
        );
      } finally {
        r.close();
      }
    });

    it('the best candidate deleted by a plain client: the next live candidate answers', async () => {
      const n = ns('next');
      await c.call('SEMSET', key('next1'), 'house near ostsee', 'v-next1', 'NS', n);
      await c.call('SEMSET', key('next2'), 'a house near the ostsee', 'v-next2', 'NS', n);
      const q = 'the house near the ostsee';
      const best = asMap(p, await c.call('SEMGET', q, 'NS', n, 'THRESHOLD', '0.3', 'WITHKEY'));
      expect(best.key).toBe(key('next2'));
      await direct.del(key('next2'));
      // docs/storage.md: "drops an entry whose key is gone ... and tries the next candidate"
      expect(await c.call('SEMGET', q, 'NS', n, 'THRESHOLD', '0.3')).toBe('v-next1');
    });
  });

  describe('the value is a normal Redis key', () => {
    it('GET, TTL by a plain client; EX, PX, KEEPTTL; record and exact key share the TTL', async () => {
      const n = ns('ttl');
      const k = key('ttl1');
      const rec = `${PREFIX}rec:${k}`;
      const ex = `${PREFIX}exact:${n}:${exactKey('ttl text one')}`;
      await c.call('SEMSET', k, 'ttl text one', 'Try Warnemünde', 'EX', '3600', 'NS', n);
      expect(await direct.get(k)).toBe('Try Warnemünde');
      expect(await direct.ttl(k)).toBeGreaterThan(3590);
      expect(await direct.ttl(k)).toBeLessThanOrEqual(3600);
      expect(await direct.ttl(rec)).toBeGreaterThan(3590);
      expect(await direct.ttl(ex)).toBeGreaterThan(3590);
      expect(await direct.get(ex)).toBe(k);
      const fields = await direct.hgetallBuffer(rec);
      expect(Object.keys(fields).sort()).toEqual([
        'exact',
        'model',
        'ns',
        'text',
        'ts',
        'vec',
        'ver',
      ]);
      // The record's version is the id of its change in the feed (other
      // tests' background drops may have appended events after it).
      const ver = fields.ver!.toString();
      const events = (await direct.xrange(`${PREFIX}feed`, ver, ver)) as [string, string[]][];
      expect(events.length).toBe(1);
      expect(events[0]![1].slice(0, 4)).toEqual(['op', 's', 'key', k]);
      expect(fields.ns!.toString()).toBe(n);
      expect(fields.text!.toString()).toBe('ttl text one');
      expect(fields.vec!.length).toBe(DIM * 4);
      expect(fields.model!.toString()).toBe(`hash:hash-v1-${DIM}:${DIM}`);
      expect(fields.exact!.toString()).toBe(ex);
      expect(Math.abs(Number(fields.ts!.toString()) - Date.now())).toBeLessThan(60_000);

      // KEEPTTL keeps the TTL the key has
      await c.call('SEMSET', k, 'ttl text one', 'v2', 'KEEPTTL', 'NS', n);
      expect(await direct.get(k)).toBe('v2');
      expect(await direct.ttl(k)).toBeGreaterThan(3590);
      expect(await direct.ttl(rec)).toBeGreaterThan(3590);
      // PX
      await c.call('SEMSET', k, 'ttl text one', 'v3', 'PX', '50000', 'NS', n);
      expect(await direct.pttl(k)).toBeGreaterThan(45_000);
      expect(await direct.pttl(k)).toBeLessThanOrEqual(50_000);
      expect(await direct.pttl(rec)).toBeLessThanOrEqual(50_000);
      // no option: like SET, the TTL is cleared, on all three
      await c.call('SEMSET', k, 'ttl text one', 'v4', 'NS', n);
      expect(await direct.ttl(k)).toBe(-1);
      expect(await direct.ttl(rec)).toBe(-1);
      expect(await direct.ttl(ex)).toBe(-1);
      // KEEPTTL on a key without TTL: stays without
      await c.call('SEMSET', k, 'ttl text one', 'v5', 'KEEPTTL', 'NS', n);
      expect(await direct.ttl(k)).toBe(-1);
      expect(await c.call('SEMGET', 'ttl text one', 'NS', n)).toBe('v5');
      // overwritten by a plain SET: SEMGET returns the new value
      await direct.set(k, 'overwritten');
      expect(await c.call('SEMGET', 'ttl text one', 'NS', n)).toBe('overwritten');
    });

    it('an expire time SET accepts is accepted (EX 1e14 s)', async () => {
      const n = ns('farttl');
      const k = key('far1');
      expect(await direct.set(key('far-plain'), 'x', 'EX', 100_000_000_000_000)).toBe('OK');
      const reply = await c
        .call('SEMSET', k, 'far future answer', 'v', 'EX', '100000000000000', 'NS', n)
        .catch((e: Error) => e.message);
      expect(reply).toBe('OK');
      expect(await direct.ttl(k)).toBeGreaterThan(99_999_999_999_000);
      expect(await direct.ttl(`${PREFIX}rec:${k}`)).toBeGreaterThan(99_999_999_999_000);
      expect(await c.call('SEMGET', 'far future answer', 'NS', n)).toBe('v');
    });

    it('an empty value is a value, not nil', async () => {
      const n = ns('empty');
      await c.call('SEMSET', key('empty1'), 'the empty answer', '', 'NS', n);
      expect(await c.call('SEMGET', 'the empty answer', 'NS', n)).toBe('');
      expect(await c.call('SEMGET', 'an empty answer', 'NS', n, 'THRESHOLD', '0.3')).toBe('');
    });

    it('a new text for the same key replaces the old exact-match key', async () => {
      const n = ns('retext');
      const k = key('retext1');
      await c.call('SEMSET', k, 'first wording of it', 'v1', 'NS', n);
      await c.call('SEMSET', k, 'entirely different words', 'v2', 'NS', n);
      expect(await direct.exists(`${PREFIX}exact:${n}:${exactKey('first wording of it')}`)).toBe(0);
      expect(await direct.get(`${PREFIX}exact:${n}:${exactKey('entirely different words')}`)).toBe(
        k,
      );
      expect(await c.call('SEMGET', 'entirely different words', 'NS', n)).toBe('v2');
      expect(await c.call('SEMGET', 'first wording of it', 'NS', n)).toBeNull();
      expect(asMap(p, await c.call('SEMINFO', 'NS', n)).entries).toBe(1);
    });

    it('PX 200 then wait: a miss (exact and near), and the records are gone', async () => {
      const n = ns('expire');
      const k = key('exp1');
      await c.call('SEMSET', k, 'short lived answer text', 'v', 'PX', '200', 'NS', n);
      expect(await c.call('SEMGET', 'short lived answer text', 'NS', n)).toBe('v');
      await sleep(300);
      expect(await c.call('SEMGET', 'short lived answer text', 'NS', n)).toBeNull();
      expect(
        await c.call('SEMGET', 'the short lived answer text', 'NS', n, 'THRESHOLD', '-1'),
      ).toBeNull();
      expect(await direct.keys(`${PREFIX}*${k}`)).toEqual([]);
      expect(await direct.keys(`${PREFIX}exact:${n}:*`)).toEqual([]);
    });

    it('DEL by a plain client: a miss, and the index record and exact key are gone', async () => {
      const n = ns('del');
      const k = key('del1');
      await c.call('SEMSET', k, 'deleted by legacy app', 'v', 'NS', n, 'ATTRS', '{"a":1}');
      expect(await direct.exists(`${PREFIX}rec:${k}`)).toBe(1);
      expect(await direct.del(k)).toBe(1);
      expect(await c.call('SEMGET', 'deleted by legacy app', 'NS', n)).toBeNull();
      expect(
        await c.call('SEMGET', 'deleted by a legacy app', 'NS', n, 'THRESHOLD', '-1'),
      ).toBeNull();
      expect(await c.call('SEMSEARCH', 'TEXT', 'deleted by legacy app', 'NS', n)).toEqual([]);
      expect(
        await waitFor(
          async () =>
            (await direct.exists(
              `${PREFIX}rec:${k}`,
              `${PREFIX}exact:${n}:${exactKey('deleted by legacy app')}`,
            )) === 0,
        ),
      ).toBe(true);
      expect(await direct.keys(`${PREFIX}exact:${n}:*`)).toEqual([]);
      expect(asMap(p, await c.call('SEMINFO', 'NS', n)).entries).toBe(0);
    });

    it('EXPIRE by a plain client, then expiry: a miss', async () => {
      const n = ns('pexp');
      const k = key('pexp1');
      await c.call('SEMSET', k, 'expired by legacy app', 'v', 'NS', n);
      expect(await direct.pexpire(k, 150)).toBe(1);
      expect(await c.call('SEMGET', 'expired by legacy app', 'NS', n)).toBe('v');
      await sleep(250);
      expect(await c.call('SEMGET', 'expired by legacy app', 'NS', n)).toBeNull();
      expect(
        await c.call('SEMGET', 'expired by the legacy app', 'NS', n, 'THRESHOLD', '-1'),
      ).toBeNull();
    });

    it('the sweep drops entries whose key is gone without anyone asking', async () => {
      const n = ns('sweep');
      const k = key('sweep1');
      await c.call('SEMSET', k, 'nobody asks for this', 'v', 'NS', n);
      await c.call('SEMSET', key('sweep2'), 'this one stays', 'v2', 'NS', n);
      await direct.del(k);
      expect(
        await waitFor(async () => asMap(p, await c.call('SEMINFO', 'NS', n)).entries === 1),
      ).toBe(true);
      expect(await waitFor(async () => (await direct.exists(`${PREFIX}rec:${k}`)) === 0)).toBe(
        true,
      );
      expect(await direct.exists(`${PREFIX}rec:${key('sweep2')}`)).toBe(1);
    });
  });

  describe('namespaces', () => {
    it('isolate entries: each answers its own, never the other', async () => {
      const a = ns('nsa');
      const b = ns('nsb');
      await c.call('SEMSET', key('na1'), 'shared question text', 'value-a', 'NS', a);
      await c.call('SEMSET', key('nb1'), 'shared question text', 'value-b', 'NS', b);
      await c.call('SEMSET', key('nb2'), 'only namespace b knows this', 'value-b2', 'NS', b);
      expect(await c.call('SEMGET', 'shared question text', 'NS', a)).toBe('value-a');
      expect(await c.call('SEMGET', 'shared question text', 'NS', b)).toBe('value-b');
      expect(await c.call('SEMGET', 'the shared question text', 'NS', a, 'THRESHOLD', '0.3')).toBe(
        'value-a',
      );
      expect(await c.call('SEMGET', 'the shared question text', 'NS', b, 'THRESHOLD', '0.3')).toBe(
        'value-b',
      );
      // b's own text asked in a, with no threshold at all: a's entry or nothing, never b's
      const m = asMap(
        p,
        await c.call(
          'SEMGET',
          'only namespace b knows this',
          'NS',
          a,
          'THRESHOLD',
          '-1',
          'WITHKEY',
        ),
      );
      expect(m.key).toBe(key('na1'));
      expect(
        await c.call('SEMSEARCH', 'TEXT', 'only namespace b knows this', 'NS', a, 'COUNT', '100'),
      ).toEqual([key('na1')]);
      expect(
        (
          (await c.call(
            'SEMSEARCH',
            'TEXT',
            'shared question text',
            'NS',
            b,
            'COUNT',
            '100',
          )) as string[]
        ).sort(),
      ).toEqual([key('nb1'), key('nb2')]);
      // the default namespace does not see them either
      expect(await c.call('SEMGET', 'only namespace b knows this', 'THRESHOLD', '0.9')).toBeNull();
    });

    it('an unknown namespace is an error for SEMGET, SEMSEARCH, SEMFLUSH, SEMINFO', async () => {
      const n = ns('nope');
      const msg = `ERR unknown namespace '${n}'`;
      expect(await errorOf(c.call('SEMGET', 'x', 'NS', n))).toBe(msg);
      expect(await errorOf(c.call('SEMSEARCH', 'TEXT', 'x', 'NS', n))).toBe(msg);
      expect(await errorOf(c.call('SEMFLUSH', 'NS', n))).toBe(msg);
      expect(await errorOf(c.call('SEMINFO', 'NS', n))).toBe(msg);
    });

    it('SEMFLUSH NS a removes only a (entries and values)', async () => {
      const a = ns('fla');
      const b = ns('flb');
      for (let i = 0; i < 3; i++) {
        await c.call('SEMSET', key(`fla${i}`), `flush text number ${i}`, `a${i}`, 'NS', a);
        await c.call('SEMSET', key(`flb${i}`), `flush text number ${i}`, `b${i}`, 'NS', b);
      }
      expect(await c.call('SEMFLUSH', 'NS', a)).toBe(3);
      for (let i = 0; i < 3; i++) {
        expect(await direct.exists(key(`fla${i}`), `${PREFIX}rec:${key(`fla${i}`)}`)).toBe(0);
        expect(await direct.get(key(`flb${i}`))).toBe(`b${i}`);
        expect(await c.call('SEMGET', `flush text number ${i}`, 'NS', b)).toBe(`b${i}`);
      }
      expect(await direct.keys(`${PREFIX}exact:${a}:*`)).toEqual([]);
      expect(await direct.keys(`${PREFIX}exact:${b}:*`)).toHaveLength(3);
      // a namespace flushed is empty (or gone): nothing of a is answered any more
      const after = await c
        .call('SEMGET', 'flush text number 1', 'NS', a)
        .catch((e: Error) => e.message);
      expect([null, `ERR unknown namespace '${a}'`]).toContain(after);
      expect(asMap(p, await c.call('SEMINFO', 'NS', b)).entries).toBe(3);
    });

    it('SEMSET of the same key in another namespace moves it', async () => {
      const a = ns('mva');
      const b = ns('mvb');
      const k = key('mv1');
      await c.call('SEMSET', key('mv0'), 'stays in a', 'v0', 'NS', a);
      await c.call('SEMSET', k, 'moving entry text', 'v1', 'NS', a);
      await c.call('SEMSET', k, 'moving entry text', 'v2', 'NS', b);
      expect(asMap(p, await c.call('SEMINFO', 'NS', a)).entries).toBe(1);
      expect(asMap(p, await c.call('SEMINFO', 'NS', b)).entries).toBe(1);
      expect(await c.call('SEMGET', 'moving entry text', 'NS', b)).toBe('v2');
      const inA = asMap(
        p,
        await c.call('SEMGET', 'moving entry text', 'NS', a, 'THRESHOLD', '-1', 'WITHKEY'),
      );
      expect(inA.key).toBe(key('mv0'));
      expect(await direct.keys(`${PREFIX}exact:${a}:*`)).toHaveLength(1);
      expect(await direct.hget(`${PREFIX}rec:${k}`, 'ns')).toBe(b);
    });
  });

  describe('FILTER and ATTRS', () => {
    const docs: [string, string, string | undefined][] = [
      ['de24', 'wohnung an der ostsee mieten', '{"lang":"de","year":2024}'],
      ['de19', 'wohnung an der ostsee kaufen', '{"lang":"de","year":2019}'],
      ['en24', 'flat at the baltic sea rent', '{"lang":"en","year":2024}'],
      ['fr21', 'appartement mer baltique', '{"lang":"fr","year":2021,"tags":{"kind":"flat"}}'],
      ['none', 'wohnung ostsee ohne attribute', undefined],
    ];
    const n = ns('filter');

    beforeAll(async () => {
      for (const [k, text, attrs] of docs) {
        const args = ['SEMSET', key(`f-${k}`), text, `value-${k}`, 'NS', n];
        if (attrs !== undefined) args.push('ATTRS', attrs);
        await c.call(...(args as [string, ...string[]]));
      }
    });

    const search = async (filter: string) =>
      (
        (await c.call(
          'SEMSEARCH',
          'TEXT',
          'wohnung ostsee',
          'NS',
          n,
          'COUNT',
          '10',
          'FILTER',
          filter,
        )) as string[]
      )
        .map((k) => k.slice(key('f-').length))
        .sort();

    it('SEMSEARCH returns only matching entries', async () => {
      expect(await search('.lang == "de" and .year >= 2020')).toEqual(['de24']);
      expect(await search('.lang == "de" && .year < 2020')).toEqual(['de19']);
      expect(await search('.lang in ["de", "fr"]')).toEqual(['de19', 'de24', 'fr21']);
      expect(await search('.year >= 2021 or .lang == "xx"')).toEqual(['de24', 'en24', 'fr21']);
      expect(await search('(.year - 2000) * 2 > 45')).toEqual(['de24', 'en24']);
      expect(await search('.tags.kind == "flat"')).toEqual(['fr21']);
      expect(await search('.nosuchfield == 1')).toEqual([]);
    });

    it('SEMGET with FILTER answers only from matching entries', async () => {
      const m = asMap(
        p,
        await c.call(
          'SEMGET',
          'wohnung an der ostsee mieten',
          'NS',
          n,
          'FILTER',
          '.year < 2020',
          'THRESHOLD',
          '-1',
          'WITHKEY',
        ),
      );
      expect(m.key).toBe(key('f-de19'));
      // the exact match does not pass the filter: not answered from it
      expect(
        await c.call(
          'SEMGET',
          'wohnung an der ostsee mieten',
          'NS',
          n,
          'FILTER',
          '.lang == "en"',
          'THRESHOLD',
          '0.95',
        ),
      ).toBeNull();
      expect(
        await c.call('SEMGET', 'wohnung an der ostsee mieten', 'NS', n, 'FILTER', '.lang == "de"'),
      ).toBe('value-de24');
    });

    it('WITHATTRIBS returns the JSON given, or nil', async () => {
      const rows = (await c.call(
        'SEMSEARCH',
        'TEXT',
        'wohnung ostsee',
        'NS',
        n,
        'COUNT',
        '10',
        'WITHATTRIBS',
      )) as unknown[];
      expect(rows).toHaveLength(docs.length);
      for (const row of rows) {
        const m = asMap(p, row);
        expect(Object.keys(m)).toEqual(['key', 'text', 'attrs']);
        const doc = docs.find(([k]) => key(`f-${k}`) === m.key)!;
        expect(m.text).toBe(doc[1]);
        expect(m.attrs).toBe(doc[2] ?? null);
      }
    });

    it('a FILTER syntax error names its position (docs/commands.md wording)', async () => {
      expect(await errorOf(c.call('SEMGET', 'x', 'NS', n, 'FILTER', '.lang == "de" and )'))).toBe(
        "ERR syntax error in FILTER expression at position 18 near ')'",
      );
      expect(await errorOf(c.call('SEMSEARCH', 'TEXT', 'x', 'NS', n, 'FILTER', '.a == )'))).toBe(
        "ERR syntax error in FILTER expression at position 6 near ')'",
      );
    });

    it('a FILTER syntax error: position and token, whatever the wording', async () => {
      expect(
        await errorOf(c.call('SEMGET', 'x', 'NS', n, 'FILTER', '.lang == "de" and )')),
      ).toMatch(/^ERR syntax error in FILTER\b.* at position 18 near '\)'$/);
      expect(await errorOf(c.call('SEMSEARCH', 'TEXT', 'x', 'NS', n, 'FILTER', '.a == )'))).toMatch(
        /^ERR syntax error in FILTER\b.* at position 6 near '\)'$/,
      );
      expect(await errorOf(c.call('SEMSEARCH', 'TEXT', 'x', 'NS', n, 'FILTER', '.a ==='))).toMatch(
        /^ERR syntax error in FILTER\b/,
      );
    });

    it('bad ATTRS JSON is refused and nothing is written', async () => {
      const bad = await errorOf(
        c.call('SEMSET', key('f-bad'), 't', 'v', 'NS', n, 'ATTRS', '{"lang":'),
      );
      expect(bad).toMatch(/^ERR invalid JSON in ATTRS: .+/);
      expect(
        await errorOf(c.call('SEMSET', key('f-bad'), 't', 'v', 'NS', n, 'ATTRS', '[1,2]')),
      ).toBe('ERR ATTRS must be a JSON object');
      expect(
        await errorOf(c.call('SEMSET', key('f-bad'), 't', 'v', 'NS', n, 'ATTRS', 'null')),
      ).toBe('ERR ATTRS must be a JSON object');
      expect(await errorOf(c.call('SEMSET', key('f-bad'), 't', 'v', 'NS', n, 'ATTRS', '"s"'))).toBe(
        'ERR ATTRS must be a JSON object',
      );
      expect(await direct.exists(key('f-bad'), `${PREFIX}rec:${key('f-bad')}`)).toBe(0);
      await direct.set(key('f-legacy'), 'x');
      expect(
        await errorOf(c.call('SEMINDEX', key('f-legacy'), 't', 'NS', n, 'ATTRS', '{')),
      ).toMatch(/^ERR invalid JSON in ATTRS: /);
      expect(await direct.exists(`${PREFIX}rec:${key('f-legacy')}`)).toBe(0);
    });
  });

  describe('SEMSEARCH', () => {
    const n = ns('search');
    const texts = [
      'red apples from the market',
      'green apples from the market',
      'apples and pears from the market',
      'the stock market crashed today',
      'how to bake an apple pie',
      'train timetable for hamburg',
    ];

    beforeAll(async () => {
      for (const [i, t] of texts.entries()) {
        await c.call(
          'SEMSET',
          key(`s${i}`),
          t,
          `value-${i}`,
          'NS',
          n,
          'ATTRS',
          JSON.stringify({ i }),
        );
      }
    });

    it('top COUNT by text, best first; the plain form is an array of keys', async () => {
      const keys = (await c.call(
        'SEMSEARCH',
        'TEXT',
        'apples from the market',
        'NS',
        n,
        'COUNT',
        '3',
      )) as string[];
      expect(keys).toHaveLength(3);
      const rows = (
        (await c.call(
          'SEMSEARCH',
          'TEXT',
          'apples from the market',
          'NS',
          n,
          'COUNT',
          '6',
          'WITHSCORES',
        )) as unknown[]
      ).map((r) => asMap(p, r));
      expect(rows).toHaveLength(6);
      expect(rows.map((r) => r.key).slice(0, 3)).toEqual(keys);
      const scores = rows.map((r) => dbl(p, r.score));
      for (const s of scores) {
        expect(s).toBeGreaterThanOrEqual(-1);
        expect(s).toBeLessThanOrEqual(1);
      }
      expect([...scores].sort((x, y) => y - x)).toEqual(scores);
      expect(rows[5]!.key).toBe(key('s5'));
      for (const r of rows) expect(Object.keys(r)).toEqual(['key', 'text', 'score']);
      // default COUNT 10 returns all 6; THRESHOLD cuts below
      expect(
        (await c.call('SEMSEARCH', 'TEXT', 'apples from the market', 'NS', n)) as string[],
      ).toHaveLength(6);
      const cut = scores[2]! - 1e-6;
      expect(
        (await c.call(
          'SEMSEARCH',
          'TEXT',
          'apples from the market',
          'NS',
          n,
          'THRESHOLD',
          String(cut),
        )) as string[],
      ).toEqual(keys);
    });

    it('WITHVALUES / WITHATTRIBS / all three: shapes', async () => {
      const [v] = (await c.call(
        'SEMSEARCH',
        'TEXT',
        texts[5]!,
        'NS',
        n,
        'COUNT',
        '1',
        'WITHVALUES',
      )) as unknown[];
      expect(asMap(p, v)).toEqual({ key: key('s5'), text: texts[5], value: 'value-5' });
      const [a] = (await c.call(
        'SEMSEARCH',
        'TEXT',
        texts[5]!,
        'NS',
        n,
        'COUNT',
        '1',
        'WITHATTRIBS',
      )) as unknown[];
      expect(asMap(p, a)).toEqual({ key: key('s5'), text: texts[5], attrs: '{"i":5}' });
      const [all] = (await c.call(
        'SEMSEARCH',
        'TEXT',
        texts[5]!,
        'NS',
        n,
        'COUNT',
        '1',
        'withattribs',
        'WITHVALUES',
        'WithScores',
      )) as unknown[];
      const m = asMap(p, all);
      expect(Object.keys(m)).toEqual(['key', 'text', 'score', 'value', 'attrs']);
      expect(dbl(p, m.score)).toBeCloseTo(1, 5);
      expect(m.value).toBe('value-5');
    });

    it('by vector: FP32 blob and VALUES of a stored entry find it first with score ~1', async () => {
      const emb = asMap(p, await c.call('SEMEMBED', texts[3]!));
      const vector = (emb.vector as unknown[]).map((x) => dbl(p, x));
      expect(vector).toHaveLength(DIM);
      const byBlob = (
        (await c.call(
          'SEMSEARCH',
          'FP32',
          fp32(vector),
          'NS',
          n,
          'COUNT',
          '3',
          'WITHSCORES',
        )) as unknown[]
      ).map((r) => asMap(p, r));
      expect(byBlob[0]!.key).toBe(key('s3'));
      expect(dbl(p, byBlob[0]!.score)).toBeGreaterThan(0.9999);
      expect(dbl(p, byBlob[0]!.score)).toBeLessThanOrEqual(1.0001);
      // a vector is normalized first: the scaled vector gives the same scores
      const scaled = (
        (await c.call(
          'SEMSEARCH',
          'FP32',
          fp32(vector.map((x) => x * 7.5)),
          'NS',
          n,
          'COUNT',
          '3',
          'WITHSCORES',
        )) as unknown[]
      ).map((r) => asMap(p, r));
      expect(scaled.map((r) => r.key)).toEqual(byBlob.map((r) => r.key));
      expect(dbl(p, scaled[0]!.score)).toBeGreaterThan(0.9999);
      const byValues = (
        (await c.call(
          'SEMSEARCH',
          'VALUES',
          String(DIM),
          ...vector.map(String),
          'NS',
          n,
          'COUNT',
          '3',
          'WITHSCORES',
        )) as unknown[]
      ).map((r) => asMap(p, r));
      expect(byValues.map((r) => r.key)).toEqual(byBlob.map((r) => r.key));
      expect(dbl(p, byValues[0]!.score)).toBeGreaterThan(0.9999);
    });

    it('a vector of the wrong dimension is an error', async () => {
      expect(await errorOf(c.call('SEMSEARCH', 'VALUES', '3', '0.1', '0.2', '0.3', 'NS', n))).toBe(
        `ERR vector has 3 dimensions, the index has ${DIM}`,
      );
      expect(await errorOf(c.call('SEMSEARCH', 'FP32', fp32([1, 2]), 'NS', n))).toBe(
        `ERR vector has 2 dimensions, the index has ${DIM}`,
      );
      expect(
        await errorOf(c.call('SEMSEARCH', 'FP32', fp32(new Array(DIM).fill(0)), 'NS', n)),
      ).toMatch(/^ERR /);
    });

    it('with a selective FILTER over 300 entries, still COUNT matches (fetch-k deepening)', async () => {
      const deep = ns('deep');
      const pipe = c.pipeline();
      for (let i = 0; i < 300; i++) {
        const rare = i % 50 === 7; // 6 of 300, with texts unlike the query: ranked last
        pipe.call(
          'SEMSET',
          key(`deep${i}`),
          rare ? `zebra xylophone quokka ${i}` : `common market report number ${i}`,
          `v${i}`,
          'NS',
          deep,
          'ATTRS',
          JSON.stringify({ rare, i }),
        );
      }
      const res = await pipe.exec();
      expect(res!.every(([err, r]) => err === null && r === 'OK')).toBe(true);
      const want = [7, 57, 107, 157, 207, 257].map((i) => key(`deep${i}`)).sort();
      const top = (await c.call(
        'SEMSEARCH',
        'TEXT',
        'common market report',
        'NS',
        deep,
        'COUNT',
        '5',
        'FILTER',
        '.rare',
      )) as string[];
      expect(top).toHaveLength(5);
      for (const k of top) expect(want).toContain(k);
      const all = (await c.call(
        'SEMSEARCH',
        'TEXT',
        'common market report',
        'NS',
        deep,
        'COUNT',
        '6',
        'FETCHK',
        '10',
        'FILTER',
        '.rare == true',
      )) as string[];
      expect([...all].sort()).toEqual(want);
      // more asked than exist: all that match
      const more = (await c.call(
        'SEMSEARCH',
        'TEXT',
        'common market report',
        'NS',
        deep,
        'COUNT',
        '50',
        'FILTER',
        '.rare',
      )) as string[];
      expect([...more].sort()).toEqual(want);
    });

    it('entries deleted by a plain client do not reduce the COUNT returned', async () => {
      const dn = ns('sdel');
      for (let i = 0; i < 8; i++) {
        await c.call(
          'SEMSET',
          key(`sdel${i}`),
          `lorem ipsum dolor ${'x'.repeat(i + 1)}`,
          `v${i}`,
          'NS',
          dn,
        );
      }
      const first = (await c.call(
        'SEMSEARCH',
        'TEXT',
        'lorem ipsum dolor x',
        'NS',
        dn,
        'COUNT',
        '3',
      )) as string[];
      expect(first).toHaveLength(3);
      await direct.del(first[0]!, first[1]!);
      const again = (await c.call(
        'SEMSEARCH',
        'TEXT',
        'lorem ipsum dolor x',
        'NS',
        dn,
        'COUNT',
        '3',
      )) as string[];
      expect(again).toHaveLength(3);
      expect(again).not.toContain(first[0]);
      expect(again).not.toContain(first[1]);
    });

    it('MMR: COUNT distinct keys, diverse results preferred over near-duplicates', async () => {
      const mn = ns('mmr');
      // with the hash embedder: the duplicates are ~0.72-0.78 similar to the
      // query and ~0.84-1 to one another; the others ~0.57-0.65 to the query,
      // ~0.46-0.53 to the duplicates
      const dups = [
        'best pizza in berlin mitte',
        'best pizza in berlin mitte!',
        'the best pizza in berlin mitte',
        'best pizza in berlin mitte today',
      ];
      const diverse = [
        'pizza delivery open late in berlin',
        'berlin pizza bakery',
        'cheap pizza places berlin',
        'best sushi restaurant in hamburg',
      ];
      for (const [i, t] of dups.entries())
        await c.call('SEMSET', key(`dup${i}`), t, `d${i}`, 'NS', mn);
      for (const [i, t] of diverse.entries())
        await c.call('SEMSET', key(`div${i}`), t, `x${i}`, 'NS', mn);
      // identical text under two more keys: still distinct keys out
      await c.call('SEMSET', key('dup-same-a'), 'best pizza in berlin mitte', 'same-a', 'NS', mn);
      await c.call('SEMSET', key('dup-same-b'), 'best pizza in berlin mitte', 'same-b', 'NS', mn);
      const isDup = (k: string) => k.startsWith(key('dup'));
      const q = 'pizza in berlin';
      const plain = (await c.call('SEMSEARCH', 'TEXT', q, 'NS', mn, 'COUNT', '3')) as string[];
      expect(plain.every(isDup)).toBe(true); // precondition: relevance alone picks duplicates
      const mmr = (await c.call(
        'SEMSEARCH',
        'TEXT',
        q,
        'NS',
        mn,
        'COUNT',
        '3',
        'MMR',
        '0.5',
      )) as string[];
      expect(mmr).toHaveLength(3);
      expect(new Set(mmr).size).toBe(3);
      expect(isDup(mmr[0]!)).toBe(true); // the first pick is the most relevant
      expect(mmr.filter(isDup)).toHaveLength(1);
      const pure = (await c.call(
        'SEMSEARCH',
        'TEXT',
        q,
        'NS',
        mn,
        'COUNT',
        '3',
        'MMR',
        '1',
      )) as string[];
      expect(pure.every(isDup)).toBe(true);
      const many = (await c.call(
        'SEMSEARCH',
        'TEXT',
        q,
        'NS',
        mn,
        'COUNT',
        '10',
        'MMR',
        '0.3',
      )) as string[];
      expect(many).toHaveLength(10); // every entry, each once
      expect(new Set(many).size).toBe(10);
    });
  });

  describe('SEMINDEX, SEMDEL, SEMEMBED, SEMINFO', () => {
    it('SEMINDEX a key written by a plain SET: 1, found, TTL copied; a missing key: 0', async () => {
      const n = ns('index');
      const k = key('legacy1');
      await direct.set(k, 'legacy value', 'EX', 1000);
      expect(
        await c.call(
          'SEMINDEX',
          k,
          'legacy text about trains',
          'NS',
          n,
          'ATTRS',
          '{"src":"legacy"}',
        ),
      ).toBe(1);
      expect(await c.call('SEMGET', 'legacy text about trains', 'NS', n)).toBe('legacy value');
      expect(
        await c.call('SEMGET', 'legacy text about the trains', 'NS', n, 'THRESHOLD', '0.5'),
      ).toBe('legacy value');
      expect(await direct.get(k)).toBe('legacy value');
      expect(await direct.ttl(k)).toBeGreaterThan(990);
      expect(await direct.ttl(`${PREFIX}rec:${k}`)).toBeGreaterThan(990);
      expect(
        await direct.ttl(`${PREFIX}exact:${n}:${exactKey('legacy text about trains')}`),
      ).toBeGreaterThan(990);
      expect(
        await c.call('SEMSEARCH', 'TEXT', 'trains', 'NS', n, 'FILTER', '.src == "legacy"'),
      ).toEqual([k]);

      const missing = key('legacy-missing');
      expect(await c.call('SEMINDEX', missing, 'text of a missing key', 'NS', n)).toBe(0);
      expect(await direct.exists(missing, `${PREFIX}rec:${missing}`)).toBe(0);
      expect(await direct.keys(`${PREFIX}exact:${n}:*`)).toHaveLength(1);
      expect(await c.call('SEMGET', 'text of a missing key', 'NS', n)).toBeNull();
      expect(asMap(p, await c.call('SEMINFO', 'NS', n)).entries).toBe(1);
      // a key without TTL: the record has none either
      await direct.set(key('legacy2'), 'v2');
      expect(await c.call('SEMINDEX', key('legacy2'), 'second legacy text', 'NS', n)).toBe(1);
      expect(await direct.ttl(`${PREFIX}rec:${key('legacy2')}`)).toBe(-1);
    });

    it('SEMDEL: the number of keys that existed; values, records and entries gone', async () => {
      const n = ns('semdel');
      for (let i = 0; i < 3; i++)
        await c.call('SEMSET', key(`sd${i}`), `semdel text ${i}`, `v${i}`, 'NS', n);
      expect(await c.call('SEMDEL', key('sd0'), key('sd1'), key('sd-missing'))).toBe(2);
      expect(
        await direct.exists(
          key('sd0'),
          key('sd1'),
          `${PREFIX}rec:${key('sd0')}`,
          `${PREFIX}rec:${key('sd1')}`,
        ),
      ).toBe(0);
      expect(await c.call('SEMGET', 'semdel text 0', 'NS', n)).toBeNull();
      expect(await c.call('SEMGET', 'semdel text 2', 'NS', n)).toBe('v2');
      expect(asMap(p, await c.call('SEMINFO', 'NS', n)).entries).toBe(1);
      expect(await direct.keys(`${PREFIX}exact:${n}:*`)).toHaveLength(1);
      expect(await c.call('SEMDEL', key('sd0'))).toBe(0);
      // a plain key (never indexed) is deleted too, as DEL would
      await direct.set(key('sd-plain'), 'x');
      expect(await c.call('SEMDEL', key('sd-plain'))).toBe(1);
      expect(await direct.exists(key('sd-plain'))).toBe(0);
    });

    it('SEMEMBED: vector, dim 384, source computed then cached, model', async () => {
      const text = `an embedding nobody asked for before r${p}`;
      const first = asMap(p, await c.call('SEMEMBED', text));
      expect(Object.keys(first)).toEqual(['vector', 'dim', 'source', 'model']);
      expect(first.dim).toBe(DIM);
      expect(first.source).toBe('computed');
      expect(first.model).toBe(`hash:hash-v1-${DIM}:${DIM}`);
      const v = (first.vector as unknown[]).map((x) => dbl(p, x));
      expect(v).toHaveLength(DIM);
      expect(Math.sqrt(v.reduce((s, x) => s + x * x, 0))).toBeCloseTo(1, 5);
      const expected = (await createHashEmbedder().embed([text]))[0]!;
      for (const [i, x] of v.entries()) expect(x).toBeCloseTo(expected[i]!, 6);
      const second = asMap(p, await c.call('SEMEMBED', text));
      expect(second.source).toBe('cached');
      expect((second.vector as unknown[]).map((x) => dbl(p, x))).toEqual(v);
    });

    it('SEMINFO: fields; hits, exact hits and misses counted', async () => {
      const n = ns('info');
      await c.call('SEMSET', key('info1'), 'counting lookups here', 'v', 'NS', n);
      await c.call('SEMGET', 'counting lookups here', 'NS', n); // exact hit
      await c.call('SEMGET', 'counting the lookups here', 'NS', n, 'THRESHOLD', '0.3'); // near hit
      await c.call('SEMGET', 'zebra xylophone', 'NS', n, 'THRESHOLD', '0.9'); // miss
      const m = asMap(p, await c.call('SEMINFO', 'NS', n));
      expect(Object.keys(m)).toEqual([
        'namespace',
        'entries',
        'dimension',
        'model',
        'index',
        'quant',
        'index_building',
        'index_tail',
        'threshold',
        'hits',
        'exact_hits',
        'misses',
        'exact_scans',
        'lookup_count',
        'lookup_mean_ms',
        'lookup_p50_ms',
        'lookup_p99_ms',
        'embed_count',
        'embed_mean_ms',
        'embed_p50_ms',
        'embed_p99_ms',
        'search_count',
        'search_mean_ms',
        'search_p50_ms',
        'search_p99_ms',
      ]);
      expect(m).toMatchObject({
        namespace: n,
        entries: 1,
        dimension: DIM,
        model: `hash:hash-v1-${DIM}:${DIM}`,
      });
      expect(m.hits).toBe(2);
      expect(m.exact_hits).toBe(1);
      expect(m.misses).toBe(1);
      expect(m.lookup_count).toBe(3);
      expect(m.embed_count).toBe(2);
      expect(dbl(p, m.threshold)).toBeCloseTo(0.9, 10);
      expect(['flat', 'hnsw']).toContain(m.index);
      for (const f of ['lookup_mean_ms', 'lookup_p50_ms', 'lookup_p99_ms', 'embed_mean_ms']) {
        expect(dbl(p, m[f])).toBeGreaterThanOrEqual(0);
      }
      const g = asMap(p, await c.call('SEMINFO'));
      expect(Object.keys(g)).toEqual([
        'state',
        'embedder',
        'model',
        'dimension',
        'entries',
        'default_threshold',
        'namespaces',
        'embed_model_calls',
        'embed_model_texts',
        'embed_batch_mean',
        'embed_cache_hits',
        'embed_cache_misses',
        'instance_id',
        'feed_applied_id',
        'feed_newest_id',
        'feed_lag_ms',
        'feed_events',
        'feed_resyncs',
        'keyspace_events',
        'keyspace_drops',
        'snapshot_loads',
        'snapshot_saves',
        'snapshot_leases',
        'snapshot_waiting',
      ]);
      // This proxy is shared by the file's tests: relations, not counts.
      const calls = g.embed_model_calls as number;
      const texts = g.embed_model_texts as number;
      expect(calls).toBeGreaterThan(0);
      expect(texts).toBeGreaterThanOrEqual(calls);
      expect(dbl(p, g.embed_batch_mean)).toBeCloseTo(texts / calls, 2);
      expect(g.embed_cache_misses).toBeGreaterThanOrEqual(texts);
      const before = g.embed_cache_hits as number;
      await c.call('SEMEMBED', 'counting lookups here zebra'); // computed, then cached
      await c.call('SEMEMBED', 'counting lookups here zebra');
      expect(asMap(p, await c.call('SEMINFO')).embed_cache_hits).toBe(before + 1);
      expect(g).toMatchObject({
        state: 'ready',
        embedder: 'hash',
        model: `hash:hash-v1-${DIM}:${DIM}`,
        dimension: DIM,
      });
      expect(dbl(p, g.default_threshold)).toBeCloseTo(0.9, 10);
      expect(g.namespaces).toContain('default');
      expect(g.namespaces).toContain(n);
      let sum = 0;
      for (const name of g.namespaces as string[])
        sum += asMap(p, await c.call('SEMINFO', 'NS', name)).entries as number;
      expect(g.entries).toBe(sum);
    });
  });

  it('100 concurrent clients: SEMSET then SEMGET of their own texts', async () => {
    const n = ns('conc');
    const clients = Array.from({ length: 100 }, () => client(proxy.port, p));
    try {
      const results = await Promise.all(
        clients.map(async (cl, i) => {
          const text = `client ${i} asks about topic ${i * 7919} and nothing else`;
          await cl.call('SEMSET', key(`conc${i}`), text, `answer-${i}`, 'NS', n);
          const exact = await cl.call('SEMGET', text, 'NS', n);
          const near = asMap(
            p,
            await cl.call('SEMGET', `so ${text}?`.toUpperCase(), 'NS', n, 'WITHKEY'),
          );
          return { exact, near: near.value, key: near.key };
        }),
      );
      results.forEach((r, i) => {
        expect(r).toEqual({ exact: `answer-${i}`, near: `answer-${i}`, key: key(`conc${i}`) });
      });
      expect(asMap(p, await c.call('SEMINFO', 'NS', n)).entries).toBe(100);
    } finally {
      for (const cl of clients) cl.disconnect();
    }
  });

  it('pipelines: a SEM write is seen by the commands after it, a SEM command sees those before', async () => {
    const n = ns('pipe');
    for (let i = 0; i < 3; i++) {
      const exec = c
        .pipeline()
        .call('SEMSET', key(`pipe${i}`), `pipelined text ${i}`, `pv${i}`, 'NS', n)
        .get(key(`pipe${i}`))
        .set(key(`pipe-set${i}`), `x${i}`)
        .call('SEMINDEX', key(`pipe-set${i}`), `indexed in a pipeline ${i}`, 'NS', n)
        .call('SEMGET', `indexed in a pipeline ${i}`, 'NS', n)
        .call('SEMGET', `pipelined text ${i}`, 'NS', n)
        .del(key(`pipe${i}`))
        .call('SEMGET', `pipelined text ${i}`, 'NS', n)
        .exec();
      const res = await within(exec, 3000, 'the pipeline was not answered');
      expect(res!.map(([err, r]) => err ?? r)).toEqual([
        'OK',
        `pv${i}`,
        'OK',
        1,
        `x${i}`,
        `pv${i}`,
        1,
        null,
      ]);
    }
  });
});

describe('raw pipelines, MULTI, subscribed mode', () => {
  it('a pipeline in one write: replies in order, SEMSET then GET sees the value', async () => {
    const r = await RawClient.open(proxy.port);
    try {
      const out = await request(
        r,
        Buffer.concat([
          cmd('SEMSET', 'raw:p1', 'raw pipeline text', 'raw-v1', 'NS', 'rawpipe'),
          cmd('GET', 'raw:p1'),
          cmd('SEMGET', 'raw pipeline text', 'NS', 'rawpipe'),
          cmd('SET', 'raw:p2', 'raw-x'),
          cmd('PING'),
        ]),
        5,
        3000,
      );
      expect(out).toBe('+OK\r\n$6\r\nraw-v1\r\n$6\r\nraw-v1\r\n+OK\r\n+PONG\r\n');
    } finally {
      r.close();
    }
  });

  it('a pipeline in one write: SET k2 x, SEMINDEX k2 t2, SEMGET t2 returns x', async () => {
    const r = await RawClient.open(proxy.port);
    try {
      const out = await request(
        r,
        Buffer.concat([
          cmd('SET', 'raw:p3', 'raw-y'),
          cmd('SEMINDEX', 'raw:p3', 'raw indexed text', 'NS', 'rawpipe'),
          cmd('SEMGET', 'raw indexed text', 'NS', 'rawpipe'),
          cmd('TTL', 'semcache:rec:raw:p3'),
          cmd('PING'),
        ]),
        5,
        3000,
      );
      expect(out).toBe('+OK\r\n:1\r\n$5\r\nraw-y\r\n:-1\r\n+PONG\r\n');
    } finally {
      r.close();
    }
  });

  // A forwarded command between two SEM writes: it waits for the first write to
  // finish, the second write waits for it.
  for (const pinned of [false, true]) {
    it(`SEM write, plain command, SEM write in one pipeline (${pinned ? 'own upstream connection' : 'shared upstream'}): all answered`, async () => {
      const r = await RawClient.open(proxy.port);
      const k = pinned ? 'raw:dl-pinned' : 'raw:dl-shared';
      try {
        if (pinned) expect(await request(r, cmd('CLIENT', 'SETNAME', 'pinned'))).toBe('+OK\r\n');
        const out = await request(
          r,
          Buffer.concat([
            cmd('SEMSET', `${k}:1`, 'first write in the pipeline', 'v1', 'NS', 'rawpipe'),
            cmd('SET', `${k}:2`, 'x'),
            cmd('SEMINDEX', `${k}:2`, 'second write in the pipeline', 'NS', 'rawpipe'),
            cmd('GET', `${k}:2`),
            cmd('SEMGET', 'second write in the pipeline', 'NS', 'rawpipe'),
          ]),
          5,
          3000,
        );
        expect(out).toBe('+OK\r\n+OK\r\n:1\r\n$1\r\nx\r\n$1\r\nx\r\n');
        // and the connection is still usable
        expect(await request(r, cmd('PING'), 1, 2000)).toBe('+PONG\r\n');
      } finally {
        r.close();
      }
    });
  }

  it('in MULTI: queued, run at EXEC in their places; SEMNS (no-multi) aborts it', async () => {
    const r = await RawClient.open(proxy.port);
    try {
      const out = await request(
        r,
        Buffer.concat([
          cmd('MULTI'),
          cmd('SET', 'multi:k', '1'),
          cmd('SEMSET', 'multi:s', 'a multi text', 'v'),
          cmd('SEMGET', 'a multi text'),
          cmd('SEMGET', 'nothing like it at all'),
          cmd('EXEC'),
          cmd('GET', 'multi:s'),
          cmd('MULTI'),
          cmd('SEMNS', 'LIST'),
          cmd('EXEC'),
        ]),
        10,
      );
      const { replies } = splitReplies(Buffer.from(out, 'latin1'));
      expect(replies.map((b) => b.toString())).toEqual([
        '+OK\r\n',
        '+QUEUED\r\n',
        '+QUEUED\r\n',
        '+QUEUED\r\n',
        '+QUEUED\r\n',
        // SEMGET's candidates are chosen at queue time: the entry SEMSET adds
        // in the same transaction is not one of them yet.
        '*4\r\n+OK\r\n+OK\r\n$-1\r\n$-1\r\n',
        '$1\r\nv\r\n',
        '+OK\r\n',
        '-ERR Command not allowed inside a transaction\r\n',
        '-EXECABORT Transaction discarded because of previous errors.\r\n',
      ]);
      expect(await request(r, cmd('SEMGET', 'a multi text'))).toBe('$1\r\nv\r\n');
    } finally {
      r.close();
    }
  });

  it('RESP2 subscribed mode: the context error; RESP3: allowed', async () => {
    const r = await RawClient.open(proxy.port);
    try {
      await request(r, cmd('SUBSCRIBE', 'semchan'));
      expect(await request(r, cmd('SEMGET', 'x'))).toBe(
        "-ERR Can't execute 'semget': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n",
      );
      expect(await request(r, cmd('SEMINFO'))).toBe(
        "-ERR Can't execute 'seminfo': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n",
      );
    } finally {
      r.close();
    }
    const r3 = await RawClient.open(proxy.port);
    try {
      await request(r3, cmd('HELLO', '3'));
      await request(r3, cmd('SUBSCRIBE', 'semchan'));
      expect(
        await request(r3, cmd('SEMGET', 'nothing like this was stored', 'THRESHOLD', '1')),
      ).toBe('_\r\n');
    } finally {
      r3.close();
    }
  });
});

describe('bad input', () => {
  let c: Redis;
  beforeAll(async () => {
    c = client(proxy.port, 2);
    await c.call('SEMSET', 'bad:k', 'bad input text', 'v', 'NS', 'bad');
  });
  afterAll(() => c?.disconnect());

  const arity = (name: string) => `ERR wrong number of arguments for '${name}' command`;
  const syntax = (t: string) => `ERR syntax error near '${t}'`;
  const notInt = 'ERR value is not an integer or out of range';
  const notFloat = 'ERR value is not a valid float';
  const threshold = 'ERR THRESHOLD must be between -1 and 1';
  const count = 'ERR COUNT must be between 1 and 10000';
  const expire = "ERR invalid expire time in 'semset' command";
  const tooLong = 'ERR text exceeds maximum allowed size of 16384 bytes (--max-text-bytes)';

  const cases: [string[], string | RegExp][] = [
    [['SEMSET'], arity('semset')],
    [['SEMSET', 'k'], arity('semset')],
    [['SEMSET', 'k', 't'], arity('semset')],
    [['SEMGET'], arity('semget')],
    [['SEMINDEX'], arity('semindex')],
    [['SEMINDEX', 'k'], arity('semindex')],
    [['SEMSEARCH'], arity('semsearch')],
    [['SEMSEARCH', 'TEXT'], arity('semsearch')],
    [['SEMDEL'], arity('semdel')],
    [['SEMEMBED'], arity('semembed')],
    [['SEMEMBED', 'a', 'b'], arity('semembed')],
    // unknown options, and options given twice where not allowed
    [['SEMSET', 'bad:x', 't', 'v', 'FOO'], syntax('FOO')],
    [['SEMSET', 'bad:x', 't', 'v', 'EX', '10', 'PX', '100'], syntax('PX')],
    [['SEMSET', 'bad:x', 't', 'v', 'PX', '100', 'EX', '10'], syntax('EX')],
    [['SEMSET', 'bad:x', 't', 'v', 'EX', '10', 'KEEPTTL'], syntax('KEEPTTL')],
    [['SEMSET', 'bad:x', 't', 'v', 'KEEPTTL', 'EX', '10'], syntax('EX')],
    [['SEMGET', 't', 'NS', 'bad', 'BAR'], syntax('BAR')],
    [['SEMGET', 't', 'NS', 'bad', 'WITHSCORES'], syntax('WITHSCORES')],
    [['SEMINDEX', 'bad:k', 't', 'BAZ'], syntax('BAZ')],
    [['SEMSEARCH', 'TEXT', 't', 'NS', 'bad', 'QUX'], syntax('QUX')],
    [['SEMSEARCH', 'BOGUS', 't'], syntax('BOGUS')],
    [['SEMSEARCH', 'TEXT', 't', 'NS', 'bad', 'WITHSCORE'], syntax('WITHSCORE')],
    [['SEMFLUSH', 'FOO'], syntax('FOO')],
    [['SEMINFO', 'FOO'], syntax('FOO')],
    // numbers
    [['SEMGET', 't', 'NS', 'bad', 'THRESHOLD', 'abc'], notFloat],
    [['SEMGET', 't', 'NS', 'bad', 'THRESHOLD', '1.5'], threshold],
    [['SEMGET', 't', 'NS', 'bad', 'THRESHOLD', '-2'], threshold],
    [['SEMGET', 't', 'NS', 'bad', 'THRESHOLD', 'nan'], notFloat],
    [['SEMGET', 't', 'NS', 'bad', 'THRESHOLD', ''], notFloat],
    [['SEMSEARCH', 'TEXT', 't', 'NS', 'bad', 'THRESHOLD', 'inf'], notFloat],
    [['SEMSEARCH', 'TEXT', 't', 'NS', 'bad', 'THRESHOLD', '2'], threshold],
    [['SEMSEARCH', 'TEXT', 't', 'NS', 'bad', 'COUNT', '0'], count],
    [['SEMSEARCH', 'TEXT', 't', 'NS', 'bad', 'COUNT', '10001'], count],
    [['SEMSEARCH', 'TEXT', 't', 'NS', 'bad', 'COUNT', '-1'], count],
    [['SEMSEARCH', 'TEXT', 't', 'NS', 'bad', 'COUNT', 'abc'], notInt],
    [['SEMSEARCH', 'TEXT', 't', 'NS', 'bad', 'COUNT', '1.5'], notInt],
    [['SEMSEARCH', 'TEXT', 't', 'NS', 'bad', 'COUNT', '99999999999999999999'], notInt],
    [['SEMSEARCH', 'TEXT', 't', 'NS', 'bad', 'MMR', '1.5'], /^ERR MMR must be between 0 and 1$/],
    [['SEMSEARCH', 'TEXT', 't', 'NS', 'bad', 'FETCHK', '0'], /^ERR FETCHK must be between 1 and/],
    [['SEMSET', 'bad:x', 't', 'v', 'EX', '0'], expire],
    [['SEMSET', 'bad:x', 't', 'v', 'EX', '-5'], expire],
    [['SEMSET', 'bad:x', 't', 'v', 'PX', '0'], expire],
    [['SEMSET', 'bad:x', 't', 'v', 'EX', 'abc'], notInt],
    [['SEMSET', 'bad:x', 't', 'v', 'EX', '1.5'], notInt],
    // missing option values, namespaces
    [['SEMGET', 't', 'NS'], /^ERR /],
    [['SEMGET', 't', 'NS', 'bad', 'THRESHOLD'], /^ERR /],
    [['SEMSET', 'bad:x', 't', 'v', 'EX'], /^ERR /],
    [['SEMSET', 'bad:x', 't', 'v', 'NS', ''], /^ERR /],
    [['SEMSET', 'bad:x', 't', 'v', 'NS', 'n'.repeat(300)], /^ERR /],
    [['SEMGET', 't', 'NS', 'bad', 'FILTER', '('.repeat(200)], /^ERR syntax error in FILTER/],
    [['SEMGET', 't', 'NS', 'bad', 'FILTER', `.a == "${'x'.repeat(5000)}"`], /^ERR /],
    // vectors
    [['SEMSEARCH', 'VALUES', '3', '0.1', '0.2', 'NS', 'bad'], /^ERR /],
    [['SEMSEARCH', 'VALUES', '2', '0.1', '0.2', '0.3', 'NS', 'bad'], syntax('0.3')],
    [['SEMSEARCH', 'VALUES', '2', '0.1'], /^ERR /],
    [['SEMSEARCH', 'VALUES', '0', 'NS', 'bad'], /^ERR /],
    [['SEMSEARCH', 'VALUES', '-1', 'NS', 'bad'], /^ERR /],
    [['SEMSEARCH', 'VALUES', 'x', 'NS', 'bad'], notInt],
    [['SEMSEARCH', 'VALUES', '2', 'a', 'b', 'NS', 'bad'], notFloat],
    [['SEMSEARCH', 'FP32', '', 'NS', 'bad'], /^ERR /],
    [['SEMSEARCH', 'FP32', 'abcde', 'NS', 'bad'], /^ERR /],
    [['SEMSEARCH', 'FP32', 'abc', 'NS', 'bad'], /^ERR /],
    // texts over --max-text-bytes (16384 by default), each command that takes one
    [['SEMSET', 'bad:x', 'x'.repeat(16_385), 'v'], tooLong],
    [['SEMGET', 'x'.repeat(16_385)], tooLong],
    [['SEMGET', 'x'.repeat(16_385), 'NS', 'bad'], tooLong],
    [['SEMGET', 'x'.repeat(16_385), 'WITHSCORE'], tooLong],
    [['SEMSEARCH', 'TEXT', 'x'.repeat(16_385), 'NS', 'bad'], tooLong],
    [['SEMINDEX', 'bad:x', 'x'.repeat(16_385)], tooLong],
    [['SEMEMBED', 'x'.repeat(16_385)], tooLong],
    [['SEMEMBED', '\u00e9'.repeat(8193)], tooLong], // 16386 bytes in UTF-8
  ];

  const named = cases.map(([args, expected]) => {
    const shown = args.map((a) => (a.length > 24 ? `${a.slice(0, 12)}...(${a.length})` : a));
    return [shown.join(' '), args, expected] as const;
  });

  it.each(named)('%s → %s', async (_name, args, expected) => {
    const msg = await errorOf(c.call(...(args as [string, ...string[]])));
    if (typeof expected === 'string') expect(msg).toBe(expected);
    else expect(msg).toMatch(expected);
  });

  it('none of them wrote anything, and the proxy still answers', async () => {
    expect(await direct.exists('bad:x', `${PREFIX}rec:bad:x`)).toBe(0);
    expect(await c.ping()).toBe('PONG');
    expect(await c.call('SEMGET', 'bad input text', 'NS', 'bad')).toBe('v');
    expect(proxy.engine.state).toBe('ready');
  });

  it('EX and PX are checked exactly as SET checks them (the error names semset)', async () => {
    const values = ['0', '-5', '1.5', 'abc', '', '+5', '05', '-0', ' 5', '100', '9007199254740993'];
    values.push(
      '9223372036854775807',
      '9223372036854775808',
      '9223372036854775',
      '9223372036854774',
    );
    const outcome = (p: Promise<unknown>) =>
      p.then(
        () => 'OK',
        (e: Error) => e.message,
      );
    for (const unit of ['EX', 'PX']) {
      for (const v of values) {
        const want = await outcome(direct.call('SET', 'ttl:x', 'v', unit, v));
        const got = await outcome(c.call('SEMSET', 'ttl:x', 'ttl text', 'v', unit, v, 'NS', 'bad'));
        expect([unit, v, got]).toEqual([unit, v, want.replace("'set'", "'semset'")]);
        if (want === 'OK') {
          // The same expiry, to the second (PTTL: ms; both in the far future or both soon).
          const ttl = Number(await direct.call('TTL', 'ttl:x'));
          expect(Math.abs(ttl - (unit === 'EX' ? Number(v) : Number(v) / 1000))).toBeLessThan(2);
        }
      }
    }
    await c.call('SEMDEL', 'ttl:x');
  });

  it('a text of exactly --max-text-bytes is taken, and found again by its exact text', async () => {
    const longest = `${'y'.repeat(16_382)}\u00e9`; // 16384 bytes in UTF-8
    expect(Buffer.byteLength(longest)).toBe(16_384);
    expect(await c.call('SEMSET', 'bad:long', longest, 'long value', 'NS', 'bad')).toBe('OK');
    expect(await c.call('SEMGET', longest, 'NS', 'bad')).toBe('long value');
    expect(await c.call('SEMDEL', 'bad:long')).toBe(1);
  });

  it('a NaN or infinite vector, and VALUES beyond float32, are refused', async () => {
    const v = new Array(DIM).fill(0.1);
    v[3] = Number.NaN;
    expect(await errorOf(c.call('SEMSEARCH', 'FP32', fp32(v), 'NS', 'bad'))).toMatch(/^ERR /);
    v[3] = Number.POSITIVE_INFINITY;
    expect(await errorOf(c.call('SEMSEARCH', 'FP32', fp32(v), 'NS', 'bad'))).toMatch(/^ERR /);
    // finite as float32 (at most 3.4e38): a valid vector
    const big = new Array(DIM).fill('3e38');
    expect(await c.call('SEMSEARCH', 'VALUES', String(DIM), ...big, 'NS', 'bad')).toEqual([
      'bad:k',
    ]);
    // beyond float32
    const huge = new Array(DIM).fill('1e39');
    expect(await errorOf(c.call('SEMSEARCH', 'VALUES', String(DIM), ...huge, 'NS', 'bad'))).toMatch(
      /^ERR /,
    );
    expect(await c.ping()).toBe('PONG');
  });
});

describe('binary-safe and exact texts and namespaces', () => {
  let c: Redis;
  const bytes = (...b: number[]) => Buffer.from(b);
  const cafE9 = bytes(0x63, 0x61, 0x66, 0xe9); // "caf" + a lone Latin-1 é: not UTF-8
  const cafE8 = bytes(0x63, 0x61, 0x66, 0xe8);
  const notUtf8 = 'ERR text must be valid UTF-8';
  beforeAll(() => {
    c = client(proxy.port, 2);
  });
  afterAll(() => c?.disconnect());

  it('a text that is not UTF-8 is refused by every command, never merged with another', async () => {
    expect(await errorOf(c.call('SEMSET', 'bin:1', cafE9, 'v', 'NS', 'bin'))).toBe(notUtf8);
    expect(await errorOf(c.call('SEMINDEX', 'bin:1', cafE9, 'NS', 'bin'))).toBe(notUtf8);
    expect(await errorOf(c.call('SEMEMBED', cafE9))).toBe(notUtf8);
    expect(await errorOf(c.call('SEMSEARCH', 'TEXT', cafE9, 'NS', 'bin'))).toBe(notUtf8);
    // U+FFFD itself is valid text; an invalid byte that would decode to it does not find it.
    expect(await c.call('SEMSET', 'bin:2', 'caf\ufffd', 'replacement', 'NS', 'bin')).toBe('OK');
    expect(await c.call('SEMGET', 'caf\ufffd', 'NS', 'bin')).toBe('replacement');
    expect(await errorOf(c.call('SEMGET', cafE8, 'NS', 'bin'))).toBe(notUtf8);
    expect(await errorOf(c.call('SEMGET', cafE8))).toBe(notUtf8);
    expect(await errorOf(c.call('SEMGET', cafE8, 'NS', 'bin', 'WITHSCORE'))).toBe(notUtf8);
    expect(await c.call('EXISTS', 'bin:1')).toBe(0);
    // ATTRS and FILTER are text too.
    const json = Buffer.concat([Buffer.from('{"a":"'), cafE9, Buffer.from('"}')]);
    expect(await errorOf(c.call('SEMSET', 'bin:1', 't', 'v', 'NS', 'bin', 'ATTRS', json))).toBe(
      'ERR ATTRS must be valid UTF-8',
    );
    const expr = Buffer.concat([Buffer.from('.a == "'), cafE9, Buffer.from('"')]);
    expect(await errorOf(c.call('SEMGET', 't', 'NS', 'bin', 'FILTER', expr))).toBe(
      'ERR FILTER must be valid UTF-8',
    );
    expect(await errorOf(c.call('SEMSEARCH', 'TEXT', 't', 'NS', 'bin', 'FILTER', expr))).toBe(
      'ERR FILTER must be valid UTF-8',
    );
  });

  it('a namespace that is not UTF-8 is refused; different names never share entries', async () => {
    const fe = bytes(0xfe);
    const ff = bytes(0xff);
    const nsErr = 'ERR namespace must be valid UTF-8';
    expect(await errorOf(c.call('SEMSET', 'bin:3', 'a text', 'v', 'NS', fe))).toBe(nsErr);
    expect(await errorOf(c.call('SEMGET', 'a text', 'NS', ff))).toBe(nsErr);
    expect(await errorOf(c.call('SEMSEARCH', 'TEXT', 'a text', 'NS', ff))).toBe(nsErr);
    expect(await errorOf(c.call('SEMINDEX', 'bin:3', 'a text', 'NS', ff))).toBe(nsErr);
    expect(await errorOf(c.call('SEMFLUSH', 'NS', ff))).toBe(nsErr);
    expect(await errorOf(c.call('SEMINFO', 'NS', ff))).toBe(nsErr);
    expect(await errorOf(c.call('SEMNS', 'SET', fe))).toBe(nsErr);
    expect(await errorOf(c.call('SEMNS', 'GET', fe))).toBe(nsErr);
    expect(await errorOf(c.call('SEMNS', 'DEL', fe))).toBe(nsErr);
    // Valid names that differ in one character are different namespaces.
    await c.call('SEMSET', 'bin:4', 'same text', 'in \u00fe', 'NS', '\u00fe');
    expect(await errorOf(c.call('SEMGET', 'same text', 'NS', '\u00ff'))).toBe(
      "ERR unknown namespace '\u00ff'",
    );
    expect(await c.call('SEMGET', 'same text', 'NS', '\u00fe')).toBe('in \u00fe');
  });

  it('texts that normalize to nothing match only their own exact bytes', async () => {
    await c.call('SEMSET', 'none:1', '!!!', 'bangs', 'NS', 'none');
    await c.call('SEMSET', 'none:2', '?!', 'interrobang', 'NS', 'none');
    await c.call('SEMSET', 'none:3', '', 'empty', 'NS', 'none');
    expect(await c.call('SEMGET', '!!!', 'NS', 'none')).toBe('bangs');
    expect(await c.call('SEMGET', '?!', 'NS', 'none')).toBe('interrobang');
    expect(await c.call('SEMGET', '', 'NS', 'none')).toBe('empty');
    // Not by meaning either: nothing else is a near match of "nothing".
    expect(await c.call('SEMGET', '!!', 'NS', 'none', 'THRESHOLD', '-1')).toBeNull();
    expect(await c.call('SEMGET', ' ', 'NS', 'none', 'THRESHOLD', '-1')).toBeNull();
    // All three are still entries, and other texts still normalize as before.
    await c.call('SEMSET', 'none:4', 'Hello,  World!', 'hello', 'NS', 'none');
    expect(await c.call('SEMGET', 'hello world', 'NS', 'none')).toBe('hello');
    expect(await c.call('SEMFLUSH', 'NS', 'none')).toBe(4);
  });
});

describe('restart', () => {
  let redis2: RedisHandle;
  beforeAll(async () => {
    redis2 = await startRedis();
  });
  afterAll(async () => {
    await redis2?.stop();
  });

  it('a new proxy on the same redis answers the same (exact, near, filters, binary keys), entry counts equal', async () => {
    const first = await startSemanticProxy(redis2.port, { threshold: 0.5 });
    const binKey = Buffer.from([0xff, 0x00, 0x0d, 0x0a, 0xfe]);
    const queries: [string, ...string[]][] = [
      ['SEMGET', 'house near ostsee', 'WITHSCORE'],
      ['SEMGET', 'a house near the ostsee', 'WITHSCORE'],
      ['SEMGET', 'quarterly tax report'],
      [
        'SEMGET',
        'wohnung ostsee',
        'NS',
        'other',
        'THRESHOLD',
        '0.2',
        'FILTER',
        '.y > 2020',
        'WITHKEY',
      ],
      ['SEMSEARCH', 'TEXT', 'an der ostsee', 'NS', 'other', 'WITHSCORES', 'WITHATTRIBS'],
      ['SEMSEARCH', 'TEXT', 'binary', 'NS', 'bin', 'WITHVALUES'],
    ];
    let before: unknown[];
    let infoBefore: unknown;
    {
      const c = client(first.port, 3);
      await c.call('SEMSET', 'rs:1', 'house near ostsee', 'v1');
      await c.call('SEMSET', 'rs:2', 'train to hamburg', 'v2', 'EX', '1000');
      await c.call(
        'SEMSET',
        'rs:3',
        'wohnung an der ostsee',
        'v3',
        'NS',
        'other',
        'ATTRS',
        '{"y":2024}',
      );
      await c.call(
        'SEMSET',
        'rs:4',
        'wohnung in der ostsee',
        'v4',
        'NS',
        'other',
        'ATTRS',
        '{"y":2019}',
      );
      await c.call('SEMSET', 'rs:gone', 'deleted while down', 'v5');
      await c.call('SEMSET', binKey, 'binary key text', Buffer.from([0, 1, 2, 255]), 'NS', 'bin');
      before = [];
      for (const q of queries) before.push(await c.call(...q));
      infoBefore = await c.call('SEMINFO');
      c.disconnect();
    }
    await first.stop();
    const d = new Redis({ port: redis2.port });
    await d.del('rs:gone');
    // A record that names no exact-match hash (as if written by hand): computed on rebuild.
    expect(await d.hdel('semcache:rec:rs:2', 'exact')).toBe(1);
    d.disconnect();

    const counting = new CountingEmbedder();
    const second = await startSemanticProxy(redis2.port, { threshold: 0.5 }, counting);
    try {
      const c = client(second.port, 3);
      // rebuilt from the stored vectors: the model is not asked again
      expect(counting.texts).toEqual([]);
      const info = asMap(3, await c.call('SEMINFO'));
      const old = asMap(3, infoBefore);
      expect(info.entries).toBe(old.entries);
      expect((info.namespaces as string[]).sort()).toEqual((old.namespaces as string[]).sort());
      const after: unknown[] = [];
      for (const q of queries) after.push(await c.call(...q));
      expect(after).toEqual(before);
      expect(asMap(3, await c.call('SEMGET', 'a house near the ostsee', 'WITHSCORE')).key).toBe(
        'rs:1',
      );
      // exact hits, with the record's hash or a computed one: no model call
      counting.texts.length = 0;
      expect(await c.call('SEMGET', 'Train to  Hamburg!')).toBe('v2');
      expect(await c.call('SEMGET', 'HOUSE near ostsee.')).toBe('v1');
      expect(counting.texts).toEqual([]);
      // its record survived the restart, its value did not: never answered, then dropped
      expect(await c.call('SEMGET', 'deleted while down')).toBeNull();
      expect(asMap(3, await c.call('SEMINFO')).entries).toBe((old.entries as number) - 1);
      const bin = (await c.callBuffer(
        'SEMGET',
        'binary key text',
        'NS',
        'bin',
        'WITHKEY',
      )) as Record<string, Buffer>;
      expect(Buffer.from(bin.key!)).toEqual(binKey);
      expect(Buffer.from(bin.value!)).toEqual(Buffer.from([0, 1, 2, 255]));
      c.disconnect();
    } finally {
      await second.stop();
    }
  });

  it('a different model re-embeds the stored texts: same entries, new dimension', async () => {
    const counting = new CountingEmbedder(128);
    const third = await startSemanticProxy(redis2.port, { threshold: 0.5 }, counting);
    try {
      const c = client(third.port, 2);
      expect([...counting.texts].sort()).toEqual(
        [
          'binary key text',
          'house near ostsee',
          'train to hamburg',
          'wohnung an der ostsee',
          'wohnung in der ostsee',
        ].sort(),
      );
      const info = asMap(2, await c.call('SEMINFO'));
      expect(info.dimension).toBe(128);
      expect(info.entries).toBe(5);
      expect(await c.call('SEMGET', 'a house near the ostsee')).toBe('v1');
      expect(asMap(2, await c.call('SEMEMBED', 'x')).dim).toBe(128);
      const d = new Redis({ port: redis2.port });
      expect(await d.hget(`${PREFIX}rec:rs:1`, 'model')).toBe('hash:hash-v1-128:128');
      expect((await d.hgetBuffer(`${PREFIX}rec:rs:1`, 'vec'))!.length).toBe(128 * 4);
      expect(await d.ttl(`${PREFIX}rec:rs:2`)).toBeGreaterThan(900);
      d.disconnect();
      c.disconnect();
    } finally {
      await third.stop();
    }
  });

  it('SEMFLUSH without NS deletes every entry of every namespace, values included', async () => {
    const p4 = await startSemanticProxy(redis2.port, {});
    try {
      const c = client(p4.port, 2);
      const before = asMap(2, await c.call('SEMINFO')).entries as number;
      expect(before).toBeGreaterThan(0);
      expect(await c.call('SEMFLUSH')).toBe(before);
      expect(asMap(2, await c.call('SEMINFO')).entries).toBe(0);
      const d = new Redis({ port: redis2.port });
      // What is left is the change feed, which records the deletions, and the
      // (complete, empty) sets of namespaces with settings and with snapshots.
      expect((await d.keys(`${PREFIX}*`)).sort()).toEqual(
        ['feed', 'namespaces', 'snaps'].map((k) => `${PREFIX}${k}`),
      );
      for (const k of ['namespaces', 'snaps'])
        expect(await d.smembers(`${PREFIX}${k}`)).toEqual(['']);
      expect(await d.exists('rs:1', 'rs:2', 'rs:3', 'rs:4')).toBe(0);
      d.disconnect();
      expect(await c.call('SEMGET', 'house near ostsee')).toBeNull();
      c.disconnect();
    } finally {
      await p4.stop();
    }
  });
});

describe('COMMAND introspection', () => {
  it('COMMAND INFO lists every SEM command with its arity', async () => {
    const c = client(proxy.port, 2);
    try {
      const names = [
        'semset',
        'semget',
        'semindex',
        'semsearch',
        'semdel',
        'semflush',
        'semembed',
        'seminfo',
      ];
      const info = (await c.call('COMMAND', 'INFO', ...names)) as unknown[][];
      expect(info.map((row) => [row[0], row[1]])).toEqual([
        ['semset', -4],
        ['semget', -2],
        ['semindex', -3],
        ['semsearch', -3],
        ['semdel', -2],
        ['semflush', -1],
        ['semembed', 2],
        ['seminfo', -1],
      ]);
    } finally {
      c.disconnect();
    }
  });
});

describe('while loading', () => {
  it('SEM commands answer LOADING, plain commands pass through', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const inner = createHashEmbedder();
    const slow: Embedder = {
      kind: 'hash',
      model: inner.model,
      dim: inner.dim,
      load: () => gate,
      embed: (t) => inner.embed(t),
    };
    const loading = await startSemanticProxy(redis.port, {}, slow, { waitReady: false });
    const c = client(loading.port, 2);
    try {
      expect(loading.engine.state).toBe('loading');
      for (const args of [
        ['SEMGET', 'x'],
        ['SEMSET', 'load:k', 't', 'v'],
        ['SEMSEARCH', 'TEXT', 'x'],
        ['SEMINDEX', 'load:k', 't'],
        ['SEMDEL', 'load:k'],
        ['SEMFLUSH'],
        ['SEMEMBED', 'x'],
      ]) {
        expect(await errorOf(c.call(...(args as [string, ...string[]])))).toMatch(
          /^LOADING semcache is loading /,
        );
      }
      expect(await c.set('load:plain', 'p')).toBe('OK');
      expect(await c.get('load:plain')).toBe('p');
      expect(await direct.exists('load:k')).toBe(0);
      release();
      expect(await waitFor(() => loading.engine.state === 'ready')).toBe(true);
      expect(await c.call('SEMSET', 'load:k', 'now it is loaded', 'v')).toBe('OK');
      expect(await c.call('SEMGET', 'now it is loaded')).toBe('v');
    } finally {
      release();
      c.disconnect();
      await loading.stop();
    }
  });
});
