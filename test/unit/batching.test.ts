import { describe, expect, it } from 'vitest';
import { BatchingEmbedder } from '../../src/semantic/embedders/batching.js';
import { CachedEmbedder } from '../../src/semantic/embedders/cache.js';
import type { Embedder } from '../../src/semantic/types.js';

/**
 * A deterministic test double: the vector of a text is [length, first char
 * code, 1] (not normalized: the wrappers must not care). It records every
 * call, can be made slow, and fails any call containing a text in `poison`.
 */
class RecordingEmbedder implements Embedder {
  readonly kind = 'test';
  readonly model = 'recording-v1';
  dim = 3;
  loads = 0;
  calls: string[][] = [];
  delayMs = 0;
  poison = new Set<string>();

  async load(): Promise<void> {
    this.loads++;
  }

  async embed(texts: string[]): Promise<Float32Array[]> {
    this.calls.push([...texts]);
    if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
    const bad = texts.find((t) => this.poison.has(t));
    if (bad !== undefined) throw new Error(`poisoned: ${bad}`);
    return texts.map(vectorOf);
  }
}

function vectorOf(text: string): Float32Array {
  return Float32Array.of(text.length, text.charCodeAt(0) || 0, 1);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('BatchingEmbedder', () => {
  it('passes kind, model, dim and load through', async () => {
    const inner = new RecordingEmbedder();
    const b = new BatchingEmbedder(inner);
    expect([b.kind, b.model, b.dim]).toEqual(['test', 'recording-v1', 3]);
    inner.dim = 7;
    expect(b.dim).toBe(7);
    await b.load();
    expect(inner.loads).toBe(1);
  });

  it('merges 100 concurrent calls into few inner calls bounded by maxBatch', async () => {
    const inner = new RecordingEmbedder();
    const b = new BatchingEmbedder(inner, { maxBatch: 32, maxWaitMs: 5 });
    const texts = Array.from({ length: 100 }, (_, i) => `text number ${i}`);
    const results = await Promise.all(texts.map((t) => b.embed([t])));
    expect(inner.calls.length).toBe(4); // 32 + 32 + 32 + 4
    for (const call of inner.calls) expect(call.length).toBeLessThanOrEqual(32);
    expect(inner.calls.flat().sort()).toEqual([...texts].sort());
    for (const [i, [v]] of results.entries()) expect(v).toEqual(vectorOf(texts[i]!));
    expect(b.stats).toEqual({
      requests: 100,
      texts: 100,
      batches: 4,
      embedded: 100,
      avgBatchSize: 25,
    });
  });

  it('keeps each caller’s order across multi-text calls and batch boundaries', async () => {
    const inner = new RecordingEmbedder();
    const b = new BatchingEmbedder(inner, { maxBatch: 4, maxWaitMs: 1 });
    const calls = [['a', 'bb', 'ccc'], ['dddd', 'e', 'ff', 'ggg', 'hhhh', 'i'], ['jj']];
    const results = await Promise.all(calls.map((c) => b.embed(c)));
    for (const [k, vs] of results.entries()) expect(vs).toEqual(calls[k]!.map(vectorOf));
    for (const call of inner.calls) expect(call.length).toBeLessThanOrEqual(4);
    expect(inner.calls.flat()).toEqual(calls.flat()); // FIFO
  });

  it('embeds duplicate texts of a batch once, giving each caller its own copy', async () => {
    const inner = new RecordingEmbedder();
    const b = new BatchingEmbedder(inner, { maxWaitMs: 1 });
    const [[x], [y], [z, w]] = await Promise.all([
      b.embed(['same']),
      b.embed(['same']),
      b.embed(['same', 'other']),
    ]);
    expect(inner.calls).toEqual([['same', 'other']]);
    expect(x).toEqual(vectorOf('same'));
    expect(y).toEqual(x);
    expect(z).toEqual(x);
    expect(w).toEqual(vectorOf('other'));
    expect(new Set([x, y, z]).size).toBe(3); // distinct arrays
    expect(b.stats).toMatchObject({ texts: 4, embedded: 2, batches: 1 });
  });

  it('waits at most maxWaitMs for company, then sends what it has', async () => {
    const inner = new RecordingEmbedder();
    const b = new BatchingEmbedder(inner, { maxWaitMs: 20 });
    const first = b.embed(['first']);
    await sleep(5);
    expect(inner.calls).toEqual([]);
    const second = b.embed(['second']);
    await Promise.all([first, second]);
    expect(inner.calls).toEqual([['first', 'second']]);
  });

  it('sends at once when maxBatch distinct texts are queued', async () => {
    const inner = new RecordingEmbedder();
    const b = new BatchingEmbedder(inner, { maxBatch: 3, maxWaitMs: 10_000 });
    const t0 = Date.now();
    await Promise.all([b.embed(['a', 'b']), b.embed(['c'])]);
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(inner.calls).toEqual([['a', 'b', 'c']]);
  });

  it('queues requests during a flight and sends them as soon as it returns', async () => {
    const inner = new RecordingEmbedder();
    inner.delayMs = 30;
    const b = new BatchingEmbedder(inner, { maxWaitMs: 0 });
    const first = b.embed(['one']);
    await sleep(10); // the first batch is in flight now
    const rest = ['two', 'three', 'four'].map((t) => b.embed([t]));
    await Promise.all([first, ...rest]);
    expect(inner.calls).toEqual([['one'], ['two', 'three', 'four']]);
  });

  it('an inner failure rejects only the callers of that batch', async () => {
    const inner = new RecordingEmbedder();
    inner.delayMs = 20;
    inner.poison.add('bad');
    const b = new BatchingEmbedder(inner, { maxWaitMs: 0 });
    const ok1 = b.embed(['fine']);
    await sleep(5);
    const failing = [b.embed(['bad']), b.embed(['neighbour'])];
    await sleep(30); // second batch in flight: these go in the third
    const ok2 = b.embed(['later']);
    await expect(ok1).resolves.toEqual([vectorOf('fine')]);
    for (const p of failing) await expect(p).rejects.toThrow('poisoned: bad');
    await expect(ok2).resolves.toEqual([vectorOf('later')]);
    expect(inner.calls).toEqual([['fine'], ['bad', 'neighbour'], ['later']]);
  });

  it('a request spanning batches rejects once and its remaining texts are dropped', async () => {
    const inner = new RecordingEmbedder();
    inner.poison.add('b');
    const b = new BatchingEmbedder(inner, { maxBatch: 2, maxWaitMs: 0 });
    const spanning = b.embed(['a', 'b', 'c', 'd', 'e']);
    await expect(spanning).rejects.toThrow('poisoned: b');
    await sleep(5);
    expect(inner.calls).toEqual([['a', 'b']]);
    await expect(b.embed(['c'])).resolves.toEqual([vectorOf('c')]); // still usable
  });

  it('rejects when the inner embedder returns the wrong number of vectors', async () => {
    const inner = new RecordingEmbedder();
    inner.embed = async (texts) => texts.slice(1).map(vectorOf);
    const b = new BatchingEmbedder(inner, { maxWaitMs: 0 });
    await expect(b.embed(['a', 'b'])).rejects.toThrow('returned 1 vectors for 2 texts');
  });

  it('treats a synchronous throw of the inner embedder as a failed batch', async () => {
    const inner = new RecordingEmbedder();
    inner.embed = () => {
      throw new Error('sync boom');
    };
    const b = new BatchingEmbedder(inner, { maxWaitMs: 0 });
    await expect(b.embed(['a'])).rejects.toThrow('sync boom');
  });

  it('passes straight through when disabled', async () => {
    const inner = new RecordingEmbedder();
    const b = new BatchingEmbedder(inner, { enabled: false });
    const results = await Promise.all(['a', 'b', 'a'].map((t) => b.embed([t])));
    expect(inner.calls).toEqual([['a'], ['b'], ['a']]);
    expect(results).toEqual([[vectorOf('a')], [vectorOf('b')], [vectorOf('a')]]);
    expect(b.stats).toMatchObject({ batches: 3, avgBatchSize: 1 });
  });

  it('answers an empty call without the inner embedder', async () => {
    const inner = new RecordingEmbedder();
    const b = new BatchingEmbedder(inner);
    expect(await b.embed([])).toEqual([]);
    expect(inner.calls).toEqual([]);
    expect(b.stats.avgBatchSize).toBe(0);
  });

  it('validates its options', () => {
    const inner = new RecordingEmbedder();
    expect(() => new BatchingEmbedder(inner, { maxBatch: 0 })).toThrow(RangeError);
    expect(() => new BatchingEmbedder(inner, { maxWaitMs: -1 })).toThrow(RangeError);
  });
});

describe('CachedEmbedder', () => {
  it('passes kind, model, dim and load through', async () => {
    const inner = new RecordingEmbedder();
    const c = new CachedEmbedder(inner);
    expect([c.kind, c.model, c.dim]).toEqual(['test', 'recording-v1', 3]);
    await c.load();
    expect(inner.loads).toBe(1);
  });

  it('serves repeats from the cache with equal vectors and counts hits and misses', async () => {
    const inner = new RecordingEmbedder();
    const c = new CachedEmbedder(inner);
    const first = await c.embedWithSource(['a', 'b']);
    const second = await c.embedWithSource(['b', 'c', 'a']);
    expect(first.map((r) => r.cached)).toEqual([false, false]);
    expect(second.map((r) => r.cached)).toEqual([true, false, true]);
    expect(second[0]!.vector).toEqual(first[1]!.vector);
    expect(second[2]!.vector).toEqual(first[0]!.vector);
    expect(inner.calls).toEqual([['a', 'b'], ['c']]);
    expect(c.stats).toEqual({ hits: 2, misses: 3, hitRate: 0.4, size: 3, maxEntries: 10_000 });
  });

  it('evicts the least recently used entry, a hit counting as a use', async () => {
    const inner = new RecordingEmbedder();
    const c = new CachedEmbedder(inner, { maxEntries: 3 });
    await c.embed(['a', 'b', 'c']);
    await c.embed(['a']); // a is now the youngest: b is the oldest
    await c.embed(['d']); // evicts b
    inner.calls = [];
    const r = await c.embedWithSource(['a', 'c', 'd', 'b']);
    expect(r.map((x) => x.cached)).toEqual([true, true, true, false]);
    expect(inner.calls).toEqual([['b']]); // and b's return evicted a, the oldest again
    expect(c.stats.size).toBe(3);
    expect((await c.embedWithSource(['a']))[0]!.cached).toBe(false);
  });

  it('hands out copies so a caller cannot corrupt the cache', async () => {
    const c = new CachedEmbedder(new RecordingEmbedder());
    const [v] = await c.embed(['abc']);
    v!.fill(0);
    expect((await c.embed(['abc']))[0]).toEqual(vectorOf('abc'));
  });

  it('embeds a text repeated within one call once', async () => {
    const inner = new RecordingEmbedder();
    const c = new CachedEmbedder(inner);
    const r = await c.embedWithSource(['x', 'x', 'y']);
    expect(inner.calls).toEqual([['x', 'y']]);
    expect(r.map((e) => e.vector)).toEqual(['x', 'x', 'y'].map(vectorOf));
  });

  it('lets concurrent misses of the same text share one inner call', async () => {
    const inner = new RecordingEmbedder();
    inner.delayMs = 10;
    const c = new CachedEmbedder(inner);
    const [a, b] = await Promise.all([c.embed(['same', 'one']), c.embed(['same', 'two'])]);
    expect(inner.calls).toEqual([['same', 'one'], ['two']]);
    expect(a![0]).toEqual(b![0]);
  });

  it('caches nothing from a failed call and recovers', async () => {
    const inner = new RecordingEmbedder();
    inner.poison.add('bad');
    const c = new CachedEmbedder(inner);
    await expect(c.embed(['ok', 'bad'])).rejects.toThrow('poisoned');
    expect(c.stats.size).toBe(0);
    inner.poison.clear();
    expect(await c.embed(['ok', 'bad'])).toEqual(['ok', 'bad'].map(vectorOf));
    expect(c.stats.size).toBe(2);
  });

  it('with maxEntries 0 caches nothing', async () => {
    const inner = new RecordingEmbedder();
    const c = new CachedEmbedder(inner, { maxEntries: 0 });
    await c.embed(['a']);
    await c.embed(['a']);
    expect(inner.calls).toEqual([['a'], ['a']]);
    expect(() => new CachedEmbedder(inner, { maxEntries: -1 })).toThrow(RangeError);
  });

  it('stacks on a BatchingEmbedder', async () => {
    const inner = new RecordingEmbedder();
    const c = new CachedEmbedder(new BatchingEmbedder(inner, { maxWaitMs: 1 }));
    await Promise.all(['a', 'b', 'c'].map((t) => c.embed([t])));
    expect(inner.calls).toEqual([['a', 'b', 'c']]);
    expect((await c.embedWithSource(['b']))[0]).toEqual({ vector: vectorOf('b'), cached: true });
  });
});
