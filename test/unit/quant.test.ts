/*
 * Quantized vectors (QUANT q8): the JS copy in 8-bit codes (vector-store.ts)
 * and FAISS's SQ8 storage under HNSW and IVF, against brute force over the
 * float32 vectors with fixed seeds, with the real faiss-node addon. The
 * recall floor is the (recall@10 >= 0.95 against exact search).
 */
import { describe, expect, it } from 'vitest';
import { FaissIndex, newHnswIP, newSq8IP } from '../../src/semantic/index/faiss.js';
import { quantizedGraph } from '../../src/semantic/index/quantized-graph.js';
import {
  autoEfSearch,
  createVectorIndex,
  type FaissVectorIndex,
} from '../../src/semantic/index/vector-index.js';
import { SLAB_SLOTS, VectorStore } from '../../src/semantic/index/vector-store.js';
import { bruteForce, clusteredVectors, DIM, dot, randomVectors } from '../helpers/vectors.js';

function recallAt10(index: FaissVectorIndex, live: Map<number, Float32Array>, qs: Float32Array[]) {
  let found = 0;
  for (const q of qs) {
    const truth = new Set(bruteForce(live, q, 10).map((h) => h.id));
    for (const h of index.search(q, 10)) if (truth.has(h.id)) found++;
  }
  return found / (qs.length * 10);
}

function fill(index: FaissVectorIndex, vectors: Float32Array[]): Map<number, Float32Array> {
  const ids = vectors.map((_, i) => i * 7 + 3);
  index.addBatch(ids, vectors);
  return new Map(ids.map((id, i) => [id, vectors[i]!]));
}

describe('VectorStore', () => {
  it('fp32 gives back the vector as stored; q8 a unit vector whose inner products are off by < 0.005', () => {
    const vs = randomVectors(300, 5);
    const qs = clusteredVectors(20, 6);
    const f = new VectorStore(DIM, 'fp32');
    const q = new VectorStore(DIM, 'q8');
    vs.forEach((v, i) => {
      f.set(i, v);
      q.set(i, v);
    });
    let worst = 0;
    vs.forEach((v, i) => {
      expect(f.get(i)).toEqual(v);
      const back = q.get(i)!;
      expect(dot(back, back)).toBeCloseTo(1, 5);
      for (const x of qs) {
        expect(f.dot(i, x)).toBeCloseTo(dot(v, x), 5);
        const err = Math.abs(q.dot(i, x)! - dot(v, x));
        expect(Math.abs(q.dot(i, x)! - dot(back, x))).toBeLessThan(1e-5);
        worst = Math.max(worst, err);
      }
    });
    expect(worst).toBeLessThan(0.005);
    expect(worst).toBeGreaterThan(0); // it does quantize
    expect([f.bytes, q.bytes]).toEqual([SLAB_SLOTS * DIM * 4, SLAB_SLOTS * DIM]);
  });

  it('reuses the slots of deleted vectors, replaces in place, and knows only live ids', () => {
    const s = new VectorStore(4, 'q8');
    const v = (i: number) => Float32Array.from([i, 1, 0, 0]).map((x) => x / Math.hypot(i, 1));
    for (let i = 0; i < SLAB_SLOTS + 1; i++) s.set(i, v(i));
    expect([s.size, s.bytes]).toEqual([SLAB_SLOTS + 1, 2 * SLAB_SLOTS * 4]);
    for (let i = 0; i < 100; i++) expect(s.delete(i)).toBe(true);
    expect(s.delete(5)).toBe(false);
    for (let i = 0; i < 100; i++) s.set(10_000 + i, v(i));
    s.set(200, v(3)); // replaced
    expect([s.size, s.bytes]).toEqual([SLAB_SLOTS + 1, 2 * SLAB_SLOTS * 4]);
    expect([s.has(5), s.get(5), s.dot(5, v(1))]).toEqual([false, undefined, undefined]);
    expect(s.dot(200, v(3))).toBeCloseTo(1, 3);
    expect(s.dot(10_007, v(7))).toBeCloseTo(1, 3);
    expect(new Set(s.keys()).size).toBe(SLAB_SLOTS + 1);
    s.set(1, new Float32Array(4)); // all zeros: codes of zero, inner product 0, no NaN
    expect(s.dot(1, v(1))).toBe(0);
    s.clear();
    expect([s.size, s.bytes]).toEqual([0, 0]);
  });

  it('reserve() makes slabs ahead, in one buffer, which sets then fill without making more', () => {
    for (const quant of ['fp32', 'q8'] as const) {
      const s = new VectorStore(4, quant);
      const v = (i: number) => Float32Array.from([i, 1, 0, 0]).map((x) => x / Math.hypot(i, 1));
      s.set(0, v(0));
      s.reserve(3 * SLAB_SLOTS);
      for (let i = 1; i <= 3 * SLAB_SLOTS; i++) s.set(i, v(i));
      expect([s.size, s.bytes]).toEqual([
        3 * SLAB_SLOTS + 1,
        4 * SLAB_SLOTS * (quant === 'fp32' ? 16 : 4),
      ]);
      for (const i of [0, 1, SLAB_SLOTS, 2 * SLAB_SLOTS + 7, 3 * SLAB_SLOTS])
        expect(s.dot(i, v(i))).toBeCloseTo(1, quant === 'fp32' ? 6 : 3);
      // A vector beyond the reserve gets a slab made as before.
      s.set(99_999, v(5));
      expect(s.dot(99_999, v(5))).toBeCloseTo(1, 3);
      expect(s.size).toBe(3 * SLAB_SLOTS + 2);
      s.reserve(0);
      s.reserve(-5);
      expect(s.get(SLAB_SLOTS + 3)).toBeDefined();
    }
  });
});

describe.each(['hnsw', 'ivf'] as const)('%s with quant q8, 20k clustered vectors', (kind) => {
  it('has recall@10 >= 0.95 against exact search, scores within 0.005 (scored again from the JS codes), and a smaller serialization', async () => {
    const index = createVectorIndex({ dim: DIM, kind, quant: 'q8' });
    const live = fill(index, clusteredVectors(20_000, 61));
    await index.settled();
    expect([index.kind, index.quant, index.size, index.tail]).toEqual([kind, 'q8', 20_000, 0]);
    const queries = clusteredVectors(50, 62);
    expect(recallAt10(index, live, queries)).toBeGreaterThanOrEqual(0.95);
    for (const q of queries.slice(0, 10)) {
      for (const h of index.search(q, 10))
        expect(Math.abs(h.score - dot(live.get(h.id)!, q))).toBeLessThan(0.005);
    }
    // Every vector finds itself.
    for (const [id, v] of [...live].slice(0, 200)) expect(index.search(v, 1)[0]?.id).toBe(id);
    // The exact scan over the 8-bit JS copy ranks as brute force does, bar near ties.
    const scanned = await index.scan(queries[0]!, 10);
    const truth = bruteForce(live, queries[0]!, 10);
    expect(scanned.filter((h) => truth.some((t) => t.id === h.id)).length).toBeGreaterThanOrEqual(
      9,
    );
    const m = index.exportMain()!;
    expect(m.buffer.toString('latin1', 0, 4)).toBe(kind === 'hnsw' ? 'IHNs' : 'IwSq');
    expect(m.buffer.length).toBeLessThan(20_000 * (DIM + (kind === 'hnsw' ? 200 : 40)));
    index.clear();
  }, 120_000);
});

describe('efSearch by size', () => {
  it('a q8 graph of more than 50,000 vectors searches wider than an fp32 one (docs/index.md)', () => {
    const sizes = [1, 10_000, 10_001, 50_000, 50_001, 1_000_000];
    expect(sizes.map((n) => autoEfSearch(n))).toEqual([64, 64, 128, 128, 256, 256]);
    expect(sizes.map((n) => autoEfSearch(n, 'q8'))).toEqual([64, 64, 128, 128, 384, 384]);
  });
});

describe('quantizedGraph (a graph built on float32, stored in SQ8)', () => {
  it('reads back as an IndexHNSWSQ holding the same vectors at the same positions', () => {
    const data = clusteredVectors(2000, 81);
    const xs = new Float32Array(data.length * DIM);
    for (const [i, v] of data.entries()) xs.set(v, i * DIM);
    const graph = newHnswIP(DIM, { m: 16, efConstruction: 40, efSearch: 64 });
    const g = quantizedGraph(
      (b) => FaissIndex.fromBuffer(b, DIM),
      graph,
      newSq8IP(DIM),
      xs,
      undefined,
    );
    expect(g.toBuffer().toString('latin1', 0, 4)).toBe('IHNs');
    expect(g.ntotal()).toBe(2000);
    let self = 0;
    for (const i of [0, 1, 500, 1999]) {
      const r = g.search(data[i]!, 1);
      if (Number(r.labels[0]) === i) self++;
      expect(r.distances[0]).toBeCloseTo(1, 1);
    }
    expect(self).toBe(4);
    expect(() =>
      quantizedGraph(
        (b) => FaissIndex.fromBuffer(b, DIM),
        newHnswIP(DIM, { m: 8, efConstruction: 40, efSearch: 16 }),
        newHnswIP(DIM, { m: 8, efConstruction: 40, efSearch: 16 }),
        xs,
        undefined,
      ),
    ).toThrow(/needs an IHNf graph and an IxSQ storage/);
    g.dispose();
  });
});

describe('snapshots and quantization', () => {
  it('a q8 segment is adopted by a q8 index and refused by an fp32 one, and the other way round', async () => {
    const data = clusteredVectors(3000, 71);
    const q8 = createVectorIndex({ dim: DIM, kind: 'hnsw', quant: 'q8' });
    const fp = createVectorIndex({ dim: DIM, kind: 'hnsw' });
    fill(q8, data);
    fill(fp, data);
    await Promise.all([q8.settled(), fp.settled()]);
    const mq = q8.exportMain()!;
    const mf = fp.exportMain()!;
    const to = (quant: 'fp32' | 'q8') => {
      const x = createVectorIndex({ dim: DIM, kind: 'hnsw', quant });
      x.bulkLoad(true);
      fill(x, data);
      return x;
    };
    const a = to('fp32');
    await expect(a.adoptMain(mq)).rejects.toThrow(/not a fp32 hnsw index/);
    expect(await a.adoptMain(mf)).toBe(3000);
    const b = to('q8');
    await expect(b.adoptMain(mf)).rejects.toThrow(/not a q8 hnsw index/);
    expect(await b.adoptMain(mq)).toBe(3000);
    expect([b.kind, b.tail]).toEqual(['hnsw', 0]);
    for (const [i, v] of data.slice(0, 100).entries())
      expect(b.search(v, 1)[0]?.id).toBe(i * 7 + 3);
    for (const x of [q8, fp, a, b]) x.clear();
  }, 120_000);

  it('rejects an unknown quant', () => {
    expect(() => createVectorIndex({ dim: DIM, kind: 'hnsw', quant: 'q4' as never })).toThrow(
      /quant must be fp32 or q8, got q4/,
    );
  });
});
