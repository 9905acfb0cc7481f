/*
 * The transformers.js embedder on generated BERT models (random weights, real
 * tokenizer, see scripts/make-model.mjs): the real pipeline, tokenizer and
 * onnxruntime, with vectors that mean nothing.
 */

import { join } from 'node:path';
import * as transformers from '@huggingface/transformers';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  createTransformersEmbedder,
  type TransformersEmbedder,
  type TransformersEmbedderOptions,
} from '../../src/semantic/embedders/transformers.js';
import { EmbedderUnavailableError } from '../../src/semantic/types.js';
import { ensureMiniLmModel, ensureTinyModel } from '../helpers/model.js';

// Count loads: pipeline() calls in-thread (the embedder imports transformers.js
// dynamically; the mock applies), Worker constructions in worker mode.
vi.mock('@huggingface/transformers', async (importOriginal) => {
  const mod = await importOriginal<typeof import('@huggingface/transformers')>();
  return { ...mod, pipeline: vi.fn(mod.pipeline) };
});
const pipelineSpy = vi.mocked(transformers.pipeline);
const workers = vi.hoisted(() => ({ created: 0 }));
vi.mock('node:worker_threads', async (importOriginal) => {
  const mod = await importOriginal<typeof import('node:worker_threads')>();
  class CountingWorker extends mod.Worker {
    constructor(...args: ConstructorParameters<typeof mod.Worker>) {
      super(...args);
      workers.created++;
    }
  }
  return { ...mod, Worker: CountingWorker };
});
const loads = (worker: boolean): number =>
  worker ? workers.created : pipelineSpy.mock.calls.length;

const TINY_DIM = 32;

function norm(v: Float32Array): number {
  let s = 0;
  for (const x of v) s += x * x;
  return Math.sqrt(s);
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

const SAMPLES = [
  'What is the capital of France?',
  'how do I reset my password',
  'The quick brown fox jumps over the lazy dog.',
  'a',
  '',
  'Ünïcödé çafé naïve — “quotes” and emoji 🚀🔥',
  '東京の天気はどうですか？',
  'Привет, как дела?',
  'x'.repeat(300),
];

describe.each([
  { mode: 'worker thread', worker: true },
  { mode: 'in-thread', worker: false },
])('transformers embedder (tiny generated model, $mode)', ({ worker }) => {
  let modelDir: string;
  let emb: TransformersEmbedder;
  const make = (opts: TransformersEmbedderOptions = {}): TransformersEmbedder => {
    const e = createTransformersEmbedder({ modelDir, worker, ...opts });
    made.push(e);
    return e;
  };
  const made: TransformersEmbedder[] = [];

  beforeAll(async () => {
    modelDir = await ensureTinyModel();
    emb = make();
    await emb.load();
  });

  afterAll(async () => {
    await Promise.all(made.map((e) => e.close()));
  });

  it('reports kind, model and the dimension from config.json', async () => {
    const fresh = make();
    expect(fresh.kind).toBe('transformers');
    expect(fresh.model).toBe('Xenova/all-MiniLM-L6-v2');
    expect(fresh.dim).toBe(0);
    await fresh.load();
    expect(fresh.dim).toBe(TINY_DIM);
    expect(make({ model: 'my/model' }).model).toBe('my/model');
  });

  it('returns one L2-normalized vector of the model dimension per text, in order', async () => {
    const vs = await emb.embed(SAMPLES);
    expect(vs).toHaveLength(SAMPLES.length);
    for (const v of vs) {
      expect(v).toBeInstanceOf(Float32Array);
      expect(v).toHaveLength(TINY_DIM);
      expect(Math.abs(norm(v) - 1)).toBeLessThan(1e-5);
      expect(v.every(Number.isFinite)).toBe(true);
    }
  });

  it('embeds nothing for no texts', async () => {
    expect(await emb.embed([])).toEqual([]);
  });

  it('is deterministic across calls and instances', async () => {
    const a = await emb.embed(SAMPLES);
    const b = await emb.embed(SAMPLES);
    const other = make();
    const c = await other.embed(SAMPLES);
    a.forEach((v, i) => {
      expect(Array.from(b[i]!)).toEqual(Array.from(v));
      expect(Array.from(c[i]!)).toEqual(Array.from(v));
    });
  });

  it('gives the same vectors in a batch as one by one (padding does not leak)', async () => {
    const long = 'lorem ipsum dolor sit amet '.repeat(100);
    const texts = [...SAMPLES, long, `${long} tail`];
    for (let i = 0; i < 40; i++) texts.push(`sentence number ${i} ${'filler '.repeat(i)}`);
    const batch = await emb.embed(texts);
    for (let i = 0; i < texts.length; i++) {
      const [single] = await emb.embed([texts[i]!]);
      expect(maxAbsDiff(batch[i]!, single!)).toBeLessThan(1e-5);
    }
  });

  it('gives different texts different vectors', async () => {
    const vs = await emb.embed(SAMPLES);
    for (let i = 0; i < vs.length; i++) {
      for (let j = i + 1; j < vs.length; j++) {
        expect(maxAbsDiff(vs[i]!, vs[j]!), `${SAMPLES[i]} vs ${SAMPLES[j]}`).toBeGreaterThan(1e-4);
      }
    }
  });

  it('embeds the empty string', async () => {
    const [v] = await emb.embed(['']);
    expect(v).toHaveLength(TINY_DIM);
    expect(Math.abs(norm(v!) - 1)).toBeLessThan(1e-5);
  });

  it('truncates a 10k-character text to the model length', async () => {
    const text = 'semantic caching of prompts '.repeat(400).slice(0, 10_000);
    expect(text).toHaveLength(10_000);
    const [a, b] = await emb.embed([text, `${text} and a different ending that is cut off`]);
    expect(Math.abs(norm(a!) - 1)).toBeLessThan(1e-5);
    // both are cut at 512 tokens, long before they differ
    expect(maxAbsDiff(a!, b!)).toBeLessThan(1e-6);
  });

  it('embeds unicode (accents, CJK, Cyrillic, emoji)', async () => {
    const texts = ['café', 'cafe', '東京', '🚀', 'Привет'];
    const vs = await emb.embed(texts);
    for (const v of vs) expect(Math.abs(norm(v) - 1)).toBeLessThan(1e-5);
    // the uncased BERT tokenizer strips accents: café and cafe are the same tokens
    expect(maxAbsDiff(vs[0]!, vs[1]!)).toBeLessThan(1e-6);
  });

  it('rejects a missing model directory with EmbedderUnavailableError and a remedy', async () => {
    const missing = make({ modelDir: join(modelDir, 'does-not-exist') });
    const err = await missing.load().then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(EmbedderUnavailableError);
    const e = err as EmbedderUnavailableError;
    expect(e.message).toContain('does-not-exist');
    expect(e.remedy).toContain('--model-dir');
    expect(e.remedy).toContain('onnx/model.onnx');
    expect(e.remedy).toContain('--embedder hash');
    // a failed load is not cached: it fails again (and would succeed once the files exist)
    await expect(missing.load()).rejects.toBeInstanceOf(EmbedderUnavailableError);
    await expect(missing.embed(['x'])).rejects.toBeInstanceOf(EmbedderUnavailableError);
    expect(missing.dim).toBe(0);
  });

  it('names the dtype-specific file in the remedy when that file is missing', async () => {
    const q8 = make({ dtype: 'q8' });
    const err = await q8.load().then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(EmbedderUnavailableError);
    expect((err as EmbedderUnavailableError).message).toContain('model_quantized.onnx');
    expect((err as EmbedderUnavailableError).remedy).toContain('onnx/model_quantized.onnx');
  });

  it('loads once when load() and embed() are called concurrently', async () => {
    const fresh = make();
    const before = loads(worker);
    const [, , , vs] = await Promise.all([
      fresh.load(),
      fresh.load(),
      fresh.load(),
      fresh.embed(['hello']),
    ]);
    await fresh.load();
    expect(loads(worker) - before).toBe(1);
    expect(vs).toHaveLength(1);
    expect(fresh.dim).toBe(TINY_DIM);
  });

  it('loads again after close()', async () => {
    const e = make();
    const [before] = await e.embed(['close and reopen']);
    await e.close();
    await e.close(); // idempotent
    const [after] = await e.embed(['close and reopen']);
    expect(Array.from(after!)).toEqual(Array.from(before!));
  });
});

/** Runs `fn` and reports the longest the event loop went without running a 1 ms timer. */
async function withLoopGap<T>(fn: () => Promise<T>): Promise<{ value: T; gapMs: number }> {
  let last = performance.now();
  let gapMs = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    gapMs = Math.max(gapMs, now - last);
    last = now;
  }, 1);
  try {
    const value = await fn();
    await new Promise((r) => setTimeout(r, 3));
    return { value, gapMs };
  } finally {
    clearInterval(timer);
  }
}

describe('transformers embedder (all-MiniLM-L6-v2 shape)', () => {
  it('embeds 384-d vectors, one text and a batch of 32 (worker thread and in-thread)', async () => {
    const modelDir = await ensureMiniLmModel();
    const texts = Array.from(
      { length: 32 },
      (_, i) => `user question number ${i}: how do I configure the cache for topic ${i % 7}?`,
    );
    let reference: Float32Array[] | undefined;
    for (const worker of [true, false]) {
      const emb = createTransformersEmbedder({ modelDir, worker });
      try {
        let t = performance.now();
        const load = await withLoopGap(() => emb.load());
        const loadMs = performance.now() - t;
        expect(emb.dim).toBe(384);
        await emb.embed(texts.slice(0, 2)); // warm up

        const runs = 5;
        t = performance.now();
        for (let r = 0; r < runs; r++) await emb.embed([texts[r]!]);
        const oneMs = (performance.now() - t) / runs;

        t = performance.now();
        let vs: Float32Array[] = [];
        let batchGap = 0;
        for (let r = 0; r < runs; r++) {
          const m = await withLoopGap(() => emb.embed(texts));
          vs = m.value;
          batchGap = Math.max(batchGap, m.gapMs);
        }
        const batchMs = (performance.now() - t) / runs;

        expect(vs).toHaveLength(32);
        for (const v of vs) {
          expect(v).toHaveLength(384);
          expect(Math.abs(norm(v) - 1)).toBeLessThan(1e-5);
        }
        if (reference) {
          for (let i = 0; i < vs.length; i++) {
            expect(maxAbsDiff(vs[i]!, reference[i]!)).toBeLessThan(1e-5);
          }
        }
        reference = vs;
        console.log(
          `minilm shape, ${worker ? 'worker thread' : 'in-thread'}: load ${loadMs.toFixed(0)} ms ` +
            `(event loop blocked up to ${load.gapMs.toFixed(0)} ms), 1 text ${oneMs.toFixed(1)} ms, ` +
            `batch of 32 ${batchMs.toFixed(1)} ms (${(batchMs / 32).toFixed(2)} ms/text, ` +
            `event loop blocked up to ${batchGap.toFixed(0)} ms)`,
        );
      } finally {
        await emb.close();
      }
    }
  });
});
