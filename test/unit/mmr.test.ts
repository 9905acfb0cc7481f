/*
 * MMR selection (src/semantic/mmr.ts): the incremental loop chooses exactly
 * what the textbook loop chooses, its pool is capped, and it yields to the
 * event loop while it works.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { dot } from '../../src/semantic/dot.js';
import { MMR_MAX_DOTS, MMR_MAX_POOL, mmrPool, selectMmr } from '../../src/semantic/mmr.js';

/** The loop semcache used before: redundancy recomputed over the chosen set each time. */
function textbook(query: Float32Array, vectors: Float32Array[], count: number, lambda: number) {
  const pool = vectors.map((v, i) => ({ v, i }));
  const chosen: { v: Float32Array; i: number }[] = [];
  while (chosen.length < count && pool.length > 0) {
    let best = 0;
    let bestScore = Number.NEGATIVE_INFINITY;
    pool.forEach((p, i) => {
      let redundancy = 0;
      for (const c of chosen) redundancy = Math.max(redundancy, dot(p.v, c.v));
      const s = lambda * dot(p.v, query) - (1 - lambda) * redundancy;
      if (s > bestScore) {
        bestScore = s;
        best = i;
      }
    });
    chosen.push(pool.splice(best, 1)[0]!);
  }
  return chosen.map((c) => c.i);
}

function unit(v: number[]): Float32Array {
  const n = Math.hypot(...v) || 1;
  return Float32Array.from(v, (x) => x / n);
}

const vec = (dim: number) =>
  fc.array(fc.float({ min: -1, max: 1, noNaN: true }), { minLength: dim, maxLength: dim });

describe('selectMmr', () => {
  it('chooses what the textbook loop chooses, in the same order', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc
          .integer({ min: 2, max: 8 })
          .chain((dim) =>
            fc.tuple(
              vec(dim),
              fc.array(vec(dim), { minLength: 0, maxLength: 40 }),
              fc.integer({ min: 1, max: 45 }),
              fc.double({ min: 0, max: 1, noNaN: true }),
            ),
          ),
        async ([q, vs, count, lambda]) => {
          const query = unit(q);
          const vectors = vs.map(unit);
          expect(await selectMmr(query, vectors, count, lambda)).toEqual(
            textbook(query, vectors, count, lambda),
          );
        },
      ),
      { numRuns: 300 },
    );
  });

  it('keeps near-duplicates apart at lambda 0.5, and is pure relevance at lambda 1', async () => {
    const query = unit([1, 0, 0]);
    const a = unit([0.9, 0.1, 0]);
    const a2 = unit([0.9, 0.11, 0]);
    const b = unit([0.7, 0, 0.7]);
    expect(await selectMmr(query, [a, a2, b], 2, 0.5)).toEqual([0, 2]);
    expect(await selectMmr(query, [a, a2, b], 2, 1)).toEqual([0, 1]);
  });

  it('gives other work turns of the event loop while it runs', async () => {
    const vectors = Array.from({ length: 3000 }, (_, i) => unit([Math.sin(i), Math.cos(i), 1]));
    let turns = 0;
    const tick = () => {
      turns++;
      if (!done) setImmediate(tick);
    };
    let done = false;
    setImmediate(tick);
    const chosen = await selectMmr(unit([1, 1, 1]), vectors, 50, 0.5, 0);
    done = true;
    expect(chosen).toHaveLength(50);
    // A loop that never yields would finish before the first immediate runs.
    expect(turns).toBeGreaterThan(10);
  });
});

describe('mmrPool', () => {
  it('is FETCHK within [count, min(MMR_MAX_POOL, MMR_MAX_DOTS / count)]', () => {
    expect(mmrPool(10, 100)).toBe(100);
    expect(mmrPool(10, 5)).toBe(10);
    expect(mmrPool(1, 100_000)).toBe(MMR_MAX_POOL);
    expect(mmrPool(1000, 100_000)).toBe(MMR_MAX_DOTS / 1000);
    expect(mmrPool(10_000, 100_000)).toBe(10_000);
    for (const count of [1, 7, 100, 999, 1000, 5000, 10_000]) {
      const pool = mmrPool(count, 100_000);
      expect(pool).toBeGreaterThanOrEqual(count);
      expect(Math.min(pool, MMR_MAX_POOL) * count <= MMR_MAX_DOTS || pool === count).toBe(true);
    }
  });
});
