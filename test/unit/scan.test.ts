/*
 * index/scan.ts: the exact top k in JS, the fallback behind an approximate
 * index's short answer. Checked against a sort of every score, with filters
 * and a minimum score, and for giving the event loop turns while it runs.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { scanExact } from '../../src/semantic/index/scan.js';
import { VectorStore } from '../../src/semantic/index/vector-store.js';

function vectors(n: number, dim: number, seed: number): [number, Float32Array][] {
  let s = seed >>> 0;
  const rnd = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  };
  return Array.from({ length: n }, (_, i) => {
    const v = Float32Array.from({ length: dim }, rnd);
    const norm = Math.hypot(...v);
    return [i * 5 + 2, v.map((x) => x / norm)];
  });
}

function store(vs: [number, Float32Array][], dim: number): VectorStore {
  const st = new VectorStore(dim, 'fp32');
  for (const [id, v] of vs) st.set(id, v);
  return st;
}

const dot = (a: Float32Array, b: Float32Array) => a.reduce((s, x, i) => s + x * b[i]!, 0);

describe('scanExact', () => {
  it('gives the k best, best first, of what accept and minScore let through', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 300 }),
        fc.integer({ min: 1, max: 400 }),
        fc.integer({ min: 1, max: 4 }),
        fc.double({ min: -1, max: 1, noNaN: true }),
        fc.integer(),
        async (n, k, mod, minScore, seed) => {
          const vs = vectors(n, 8, seed);
          const q = vs[0]?.[1] ?? new Float32Array(8).fill(0.1);
          const accept = (id: number) => id % mod === 0;
          const want = vs
            .filter(([id]) => accept(id))
            .map(([id, v]) => ({ id, score: Math.max(-1, Math.min(1, dot(q, v))) }))
            .filter((h) => h.score >= minScore)
            .sort((a, b) => b.score - a.score)
            .slice(0, k);
          const got = await scanExact(store(vs, 8), q, k, { accept, minScore });
          expect(got.map((h) => h.score)).toEqual(want.map((h) => expect.closeTo(h.score, 5)));
          expect(new Set(got.map((h) => h.id))).toEqual(new Set(want.map((h) => h.id)));
        },
      ),
      { numRuns: 200, seed: 7 },
    );
  });

  it('lets the event loop run while it scans many vectors', async () => {
    const vs = vectors(60_000, 384, 3);
    let turns = 0;
    const tick = setInterval(() => turns++, 0);
    const t0 = performance.now();
    const got = await scanExact(store(vs, 384), vs[0]![1], 10);
    const ms = performance.now() - t0;
    clearInterval(tick);
    expect(got[0]!.id).toBe(vs[0]![0]); // unit vectors: the query is its own best
    // About one turn per millisecond of scanning; a loop that never yields gets none.
    expect(turns).toBeGreaterThan(Math.min(5, ms / 4));
  });
});
