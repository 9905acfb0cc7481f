/*
 * Maximal marginal relevance (Carbonell and Goldstein, 1998): from a pool of
 * candidates, choose `count`, each time the one with the best
 *   lambda * sim(query, c) - (1 - lambda) * max over chosen s of sim(c, s).
 *
 * Incremental: every candidate keeps its best similarity to the chosen set,
 * updated with each new choice only, so the work is count x pool dot
 * products (not count² x pool, as recomputing the redundancy from scratch
 * would be). The choices are the same as the textbook loop's, ties to the
 * earlier candidate. The pool is capped (mmrPool) so that one request does
 * at most MMR_MAX_DOTS dot products, and the loop yields to the event loop
 * after each `sliceMs` of work, so other clients are not held up meanwhile.
 */
import { setImmediate as turn } from 'node:timers/promises';

import { dot } from './dot.js';

/** The most dot products one MMR selection may cost (about 0.35 s of CPU at 384 dimensions). */
export const MMR_MAX_DOTS = 1_000_000;
/** The most candidates MMR reads vectors for (at 384 dimensions, 15 MB). */
export const MMR_MAX_POOL = 10_000;

/**
 * How many of the best candidates MMR chooses from: FETCHK, but at most
 * MMR_MAX_POOL and MMR_MAX_DOTS / count, and never fewer than count.
 */
export function mmrPool(count: number, fetchK: number): number {
  const cap = Math.min(MMR_MAX_POOL, Math.floor(MMR_MAX_DOTS / count));
  return Math.max(count, Math.min(fetchK, cap));
}

/** Indexes into `vectors` of the `count` chosen, in the order chosen. */
export async function selectMmr(
  query: Float32Array,
  vectors: Float32Array[],
  count: number,
  lambda: number,
  sliceMs = 1,
): Promise<number[]> {
  const n = vectors.length;
  const relevance = new Float64Array(n);
  // The textbook loop starts each candidate's redundancy at 0: so does this one.
  const redundancy = new Float64Array(n);
  const taken = new Uint8Array(n);
  // Every 256 dot products: has this slice of work taken sliceMs? Then a turn of the event loop.
  let sliceStart = performance.now();
  const due = (i: number) => (i & 255) === 255 && performance.now() - sliceStart >= sliceMs;
  const pause = async () => {
    await turn();
    sliceStart = performance.now();
  };
  for (let i = 0; i < n; i++) {
    relevance[i] = dot(vectors[i]!, query);
    if (due(i)) await pause();
  }
  const chosen: number[] = [];
  while (chosen.length < Math.min(count, n)) {
    let best = -1;
    let bestScore = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < n; i++) {
      if (taken[i]) continue;
      const score = lambda * relevance[i]! - (1 - lambda) * redundancy[i]!;
      if (best < 0 || score > bestScore) {
        bestScore = score;
        best = i;
      }
    }
    taken[best] = 1;
    chosen.push(best);
    const v = vectors[best]!;
    for (let i = 0; i < n; i++) {
      if (taken[i]) continue;
      const sim = dot(vectors[i]!, v);
      if (sim > redundancy[i]!) redundancy[i] = sim;
      if (due(i)) await pause();
    }
  }
  return chosen;
}

/**
 * The `count` of `items` MMR chooses, in order, by their `vectors` (same
 * order); items without a vector (no longer stored) take no part.
 */
export async function rerankMmr<T>(
  query: Float32Array,
  items: T[],
  vectors: (Float32Array | undefined)[],
  count: number,
  lambda: number,
): Promise<T[]> {
  const pool = items.flatMap((item, i) => {
    const v = vectors[i];
    return v === undefined ? [] : [{ item, v }];
  });
  const chosen = await selectMmr(
    query,
    pool.map((p) => p.v),
    count,
    lambda,
  );
  return chosen.map((i) => pool[i]!.item);
}
