/*
 * The real transformers.js pipeline (tokenizer, ONNX model in its worker
 * thread, mean pooling, normalization) behind the proxy, on the generated tiny
 * BERT model (test/helpers/model.ts). Its weights are random, so similarity
 * scores mean nothing; only self-similarity (1) and shapes are asserted.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureTinyModel } from '../helpers/model.js';
import { cmd, RawClient, request } from '../helpers/raw.js';
import {
  type RedisHandle,
  type SemanticProxyHandle,
  startRedis,
  startSemanticProxy,
} from '../helpers/servers.js';

let redis: RedisHandle;

beforeAll(async () => {
  redis = await startRedis();
});

afterAll(async () => {
  await redis?.stop();
});

function fp32(v: ArrayLike<number>): Buffer {
  const b = Buffer.alloc(v.length * 4);
  for (let i = 0; i < v.length; i++) b.writeFloatLE(v[i]!, i * 4);
  return b;
}

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

describe('the tiny generated model', () => {
  let proxy: SemanticProxyHandle;
  let hidden: number;
  let c: Redis;

  beforeAll(async () => {
    const modelDir = await ensureTinyModel();
    hidden = (
      JSON.parse(readFileSync(join(modelDir, 'config.json'), 'utf8')) as { hidden_size: number }
    ).hidden_size;
    proxy = await startSemanticProxy(
      redis.port,
      { embedder: 'transformers', modelDir, prefix: 'semt:', shutdownTimeout: 1000 },
      undefined,
      { timeoutMs: 30_000 },
    );
    c = new Redis({
      port: proxy.port,
      protocol: 3,
      replyMapping: 'resp3',
      maxRetriesPerRequest: 1,
    });
  }, 60_000);

  afterAll(async () => {
    c?.disconnect();
    await proxy?.stop();
  });

  it('SEMINFO: ready, transformers, the model dimension', async () => {
    const info = (await c.call('SEMINFO')) as Record<string, unknown>;
    expect(info.state).toBe('ready');
    expect(info.embedder).toBe('transformers');
    expect(info.dimension).toBe(hidden);
    expect(String(info.model)).toMatch(new RegExp(`^transformers:.+:${hidden}$`));
  });

  it('SEMEMBED: a unit vector of the hidden size, computed then cached', async () => {
    const first = (await c.call('SEMEMBED', 'what is the capital of germany')) as Record<
      string,
      unknown
    >;
    expect(first.dim).toBe(hidden);
    expect(first.source).toBe('computed');
    const v = first.vector as number[];
    expect(v).toHaveLength(hidden);
    expect(v.every(Number.isFinite)).toBe(true);
    expect(Math.sqrt(v.reduce((s, x) => s + x * x, 0))).toBeCloseTo(1, 4);
    const second = (await c.call('SEMEMBED', 'what is the capital of germany')) as Record<
      string,
      unknown
    >;
    expect(second.source).toBe('cached');
    expect(second.vector).toEqual(v);
  });

  it('SEMSET / SEMGET exact (also normalized text), SEMSEARCH by text and vector', async () => {
    const texts = [
      'what is the capital of germany',
      'how tall is the eiffel tower',
      'recipe for a cheese cake',
      'train connections from berlin to hamburg',
    ];
    for (const [i, t] of texts.entries()) {
      expect(await c.call('SEMSET', `tf:${i}`, t, `answer ${i}`, 'NS', 'tf')).toBe('OK');
    }
    for (const [i, t] of texts.entries()) {
      expect(await c.call('SEMGET', t, 'NS', 'tf')).toBe(`answer ${i}`);
      expect(await c.call('SEMGET', `  ${t.toUpperCase()}?`, 'NS', 'tf')).toBe(`answer ${i}`);
    }
    const detail = (await c.call('SEMGET', texts[2]!, 'NS', 'tf', 'WITHSCORE')) as Record<
      string,
      unknown
    >;
    expect(detail).toEqual({ value: 'answer 2', key: 'tf:2', score: 1, text: texts[2] });

    // by text: the entry itself is the best match (self-similarity 1), all four come back
    const rows = (await c.call(
      'SEMSEARCH',
      'TEXT',
      texts[1]!,
      'NS',
      'tf',
      'COUNT',
      '4',
      'WITHSCORES',
    )) as Record<string, unknown>[];
    expect(rows).toHaveLength(4);
    expect(rows[0]!.key).toBe('tf:1');
    expect(rows[0]!.score as number).toBeGreaterThan(0.999);
    const scores = rows.map((r) => r.score as number);
    expect([...scores].sort((a, b) => b - a)).toEqual(scores);
    for (const s of scores) {
      expect(s).toBeGreaterThanOrEqual(-1.0001);
      expect(s).toBeLessThanOrEqual(1.0001);
    }

    // by vector: SEMEMBED of a stored text, as FP32
    const emb = (await c.call('SEMEMBED', texts[3]!)) as Record<string, unknown>;
    const byVector = (await c.call(
      'SEMSEARCH',
      'FP32',
      fp32(emb.vector as number[]),
      'NS',
      'tf',
      'COUNT',
      '2',
      'WITHSCORES',
    )) as Record<string, unknown>[];
    expect(byVector[0]!.key).toBe('tf:3');
    expect(byVector[0]!.score as number).toBeGreaterThan(0.999);
    expect(await errorOf(c.call('SEMSEARCH', 'VALUES', '3', '1', '2', '3', 'NS', 'tf'))).toBe(
      `ERR vector has 3 dimensions, the index has ${hidden}`,
    );

    // a pipeline of lookups is embedded together and answered in order
    const pipe = c.pipeline();
    for (const t of texts) pipe.call('SEMSEARCH', 'TEXT', `${t} please`, 'NS', 'tf', 'COUNT', '1');
    const res = await pipe.exec();
    expect(res!.every(([err, r]) => err === null && Array.isArray(r) && r.length === 1)).toBe(true);
  });
});

describe('a model directory without a model', () => {
  let proxy: SemanticProxyHandle;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'semcache-empty-model-'));
    proxy = await startSemanticProxy(
      redis.port,
      { embedder: 'transformers', modelDir: dir, prefix: 'semx:', shutdownTimeout: 1000 },
      undefined,
      { timeoutMs: 30_000, allowFailed: true },
    );
  }, 60_000);

  afterAll(async () => {
    await proxy?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('SEM commands answer "embedding model unavailable" with the remedy; plain commands pass', async () => {
    expect(proxy.engine.state).toBe('failed');
    const unavailable =
      /^-ERR embedding model unavailable: .+ \(use --model-dir .+, or --embedder hash\)\r\n$/;
    const r = await RawClient.open(proxy.port);
    try {
      for (const args of [
        ['SEMGET', 'x'],
        ['SEMSET', 'semx:k', 'text', 'value'],
        ['SEMSEARCH', 'TEXT', 'x'],
        ['SEMINDEX', 'semx:k', 'text'],
        ['SEMEMBED', 'x'],
        ['SEMDEL', 'semx:k'],
        ['SEMFLUSH'],
      ]) {
        const out = await request(r, cmd(...args), 1, 3000);
        expect(out, args.join(' ')).toMatch(unavailable);
        expect(out).toContain(dir);
      }
      expect(await request(r, cmd('SET', 'semx:plain', 'v'), 1, 3000)).toBe('+OK\r\n');
      expect(await request(r, cmd('GET', 'semx:plain'), 1, 3000)).toBe('$1\r\nv\r\n');
      expect(await request(r, cmd('EXISTS', 'semx:k'), 1, 3000)).toBe(':0\r\n');
      // argument errors still come first, and the process lives on
      expect(await request(r, cmd('SEMGET'), 1, 3000)).toBe(
        "-ERR wrong number of arguments for 'semget' command\r\n",
      );
      expect(await request(r, cmd('PING'), 1, 3000)).toBe('+PONG\r\n');
    } finally {
      r.close();
    }
    const c = new Redis({ port: proxy.port, protocol: 3, replyMapping: 'resp3' });
    try {
      const info = (await c.call('SEMINFO')) as Record<string, unknown>;
      expect(info.state).toBe('failed');
      expect(info.embedder).toBe('transformers');
    } finally {
      c.disconnect();
    }
  });
});
