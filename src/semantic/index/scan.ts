/*
 * The exact answer without FAISS: every live vector compared with the query
 * in JS, the best k kept in a heap. The vector index falls back to it when an
 * approximate search (HNSW, IVF) came back short of what was asked and the
 * namespace is small enough (docs/index.md, "How many hits a search returns").
 *
 * Cost: one 384-d dot product per vector that `accept` lets through
 * (vector-store.ts: float32 or 8-bit codes), about 0.35 us here, so 35-40 ms of CPU at 100k vectors. It yields to the event
 * loop after each YIELD_AFTER_MS of work, so no other client waits behind it
 * for longer than that. Vectors added or removed while it waits may or may
 * not be seen; the caller confirms every hit against its own state.
 */

import { setImmediate as yieldToLoop } from 'node:timers/promises';

import type { SearchHit } from '../types.js';
import type { VectorStore } from './vector-store.js';

const YIELD_AFTER_MS = 1;
/** Vectors compared between two looks at the clock. */
const CLOCK_EVERY = 256;

export interface ScanOptions {
  /** Only ids it accepts are compared (a FILTER); default all. */
  accept?: (id: number) => boolean;
  /** Hits scoring below it are left out. */
  minScore?: number;
}

/** The best k of `vectors` by inner product with `q`, best first. */
export async function scanExact(
  vectors: VectorStore,
  q: Float32Array,
  k: number,
  opts: ScanOptions = {},
): Promise<SearchHit[]> {
  const heap = new MinHeap(k);
  const accept = opts.accept;
  const minScore = opts.minScore ?? Number.NEGATIVE_INFINITY;
  let t0 = performance.now();
  let n = 0;
  for (const id of vectors.keys()) {
    if (++n % CLOCK_EVERY === 0 && performance.now() - t0 >= YIELD_AFTER_MS) {
      await yieldToLoop();
      t0 = performance.now();
    }
    if (accept !== undefined && !accept(id)) continue;
    const s = vectors.dot(id, q) ?? Number.NEGATIVE_INFINITY;
    if (s >= minScore) heap.offer(id, Math.max(-1, Math.min(1, s)));
  }
  return heap.sorted();
}

/** The k largest scores offered: a binary min-heap on score, its root the worst kept. */
class MinHeap {
  readonly #ids: number[] = [];
  readonly #scores: number[] = [];

  constructor(readonly k: number) {}

  offer(id: number, score: number): void {
    const ids = this.#ids;
    const sc = this.#scores;
    if (ids.length < this.k) {
      let i = ids.length;
      ids.push(id);
      sc.push(score);
      while (i > 0) {
        const p = (i - 1) >> 1;
        if (sc[p]! <= sc[i]!) break;
        this.#swap(i, p);
        i = p;
      }
      return;
    }
    if (this.k === 0 || score <= sc[0]!) return;
    ids[0] = id;
    sc[0] = score;
    for (let i = 0; ; ) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < ids.length && sc[l]! < sc[m]!) m = l;
      if (r < ids.length && sc[r]! < sc[m]!) m = r;
      if (m === i) break;
      this.#swap(i, m);
      i = m;
    }
  }

  #swap(a: number, b: number): void {
    const ids = this.#ids;
    const sc = this.#scores;
    [ids[a], ids[b]] = [ids[b]!, ids[a]!];
    [sc[a], sc[b]] = [sc[b]!, sc[a]!];
  }

  /** Best first. */
  sorted(): SearchHit[] {
    return this.#ids
      .map((id, i) => ({ id, score: this.#scores[i]! }))
      .sort((x, y) => y.score - x.score);
  }
}
