/*
 * Extending an HNSW graph with its tail (index/policy.ts extendable(),
 * build.ts, builder.ts; patch v4's borrow/copyOf), with the real faiss-node
 * addon: the extended graph answers like one built from every vector; what
 * is removed, replaced or added while a worker extends the copy is right
 * after the swap; tombstones are kept until a full build drops them; q8
 * graphs and extendGraph false build in full; an index freed while lent
 * to a worker is freed only once the worker is done with it.
 */
import { describe, expect, it } from 'vitest';
import { buildIndex } from '../../src/semantic/index/builder.js';
import { newHnswIP } from '../../src/semantic/index/faiss.js';
import { createVectorIndex, type FaissVectorIndex } from '../../src/semantic/index/vector-index.js';
import type { BuildEvent } from '../../src/semantic/types.js';
import { bruteForce, clusteredVectors, DIM } from '../helpers/vectors.js';

const events = (list: BuildEvent[]) =>
  list.map((e) => `${e.kind} ${e.vectors}${e.added === undefined ? '' : ` +${e.added}`}`);

/** An HNSW index with a tail of at most 100 and no rest; builds take `delayMs` longer. */
function graphIndex(opts: { delayMs?: number; quant?: 'fp32' | 'q8'; extendGraph?: boolean } = {}) {
  const built: BuildEvent[] = [];
  const index = createVectorIndex({
    dim: DIM,
    kind: 'hnsw',
    tailMax: 100,
    buildRest: 0,
    ...(opts.quant ? { quant: opts.quant } : {}),
    extendGraph: opts.extendGraph ?? true,
    onBuild: (e) => built.push(e),
    builder: async (input) => {
      const index = await buildIndex(input);
      if (opts.delayMs) await new Promise((r) => setTimeout(r, opts.delayMs));
      return index;
    },
  });
  return { index, built };
}

/** Adds data[from..to) as ids from+1.. in one batch (one build check), into `live` too. */
function addRange(
  index: FaissVectorIndex,
  live: Map<number, Float32Array>,
  data: Float32Array[],
  from: number,
  to: number,
) {
  const ids = Array.from({ length: to - from }, (_, i) => from + i + 1);
  index.addBatch(ids, data.slice(from, to));
  for (const id of ids) live.set(id, data[id - 1]!);
}

/**
 * graphIndex(opts) with a graph of data[0..1000) built, then data[1000..added)
 * added in one batch; `n` clustered vectors from `seed` in all.
 */
async function grown(opts: Parameters<typeof graphIndex>[0], seed: number, n: number, added = n) {
  const { index, built } = graphIndex(opts);
  const data = clusteredVectors(n, seed);
  const live = new Map<number, Float32Array>();
  addRange(index, live, data, 0, 1000);
  await index.settled();
  addRange(index, live, data, 1000, added);
  return { index, built, data, live };
}

function findsOwn(index: FaissVectorIndex, live: Map<number, Float32Array>) {
  for (const [id, v] of live) expect(index.search(v, 1)[0]?.id).toBe(id);
}

function recallAt10(
  index: FaissVectorIndex,
  live: Map<number, Float32Array>,
  queries: Float32Array[],
) {
  let found = 0;
  for (const q of queries) {
    const truth = new Set(bruteForce(live, q, 10).map((h) => h.id));
    for (const h of index.search(q, 10)) if (truth.has(h.id)) found++;
  }
  return found / (queries.length * 10);
}

describe('extending the graph with its tail', () => {
  it('adds the tail to a copy of the graph: same answers, recall as a full build', async () => {
    const { index, built, data, live } = await grown({}, 91, 1500, 1150); // 150 > tailMax
    expect(index.building).toBe(true);
    await index.settled();
    addRange(index, live, data, 1150, 1500);
    await index.settled();
    expect(events(built)).toEqual(['hnsw 1000', 'hnsw 1150 +150', 'hnsw 1500 +350']);
    expect([index.kind, index.size, index.tail, index.stored, index.dead]).toEqual([
      'hnsw',
      1500,
      0,
      1500,
      0,
    ]);
    findsOwn(index, live);
    const queries = clusteredVectors(100, 92);
    const recall = recallAt10(index, live, queries);
    // The same vectors built at once, for comparison.
    const full = graphIndex({ extendGraph: false });
    full.index.addBatch([...live.keys()], [...live.values()]);
    await full.index.settled();
    expect(events(full.built)).toEqual(['hnsw 1500']);
    expect(recall).toBeGreaterThanOrEqual(0.95);
    expect(recall).toBeGreaterThanOrEqual(recallAt10(full.index, live, queries) - 0.02);
    index.clear();
    full.index.clear();
  });

  it('what changes while a worker extends the copy is right after the swap', async () => {
    const { index, built, data, live } = await grown({ delayMs: 300 }, 93, 1400, 1150);
    expect(index.building).toBe(true); // extending by the 150
    // Meanwhile: removals in the graph and in the tail being added, replacements
    // of ids in the graph and in that tail, new ids.
    for (const id of [3, 4, 5, 1002, 1003]) {
      index.remove(id);
      live.delete(id);
    }
    data.slice(1150).forEach((v, i) => {
      const id = i < 20 ? 100 + i : i < 40 ? 1000 + i : 2000 + i;
      index.add(id, v);
      live.set(id, v);
    });
    findsOwn(index, live);
    await index.settled();
    expect(events(built)[1]).toBe('hnsw 1150 +150');
    expect(built.slice(1).every((e) => e.added !== undefined && !e.error)).toBe(true);
    expect(index.size).toBe(live.size);
    expect(index.stored - index.dead).toBe(live.size);
    findsOwn(index, live);
    for (const id of [3, 4, 5, 1002, 1003]) expect(index.has(id)).toBe(false);
    for (const q of clusteredVectors(20, 94)) {
      for (const h of index.search(q, 10)) expect(live.has(h.id)).toBe(true);
    }
    index.clear();
  });

  it('keeps tombstones until they pass the ratio; then a full build drops them', async () => {
    const { index, built } = graphIndex();
    const data = clusteredVectors(1150, 95);
    const live = new Map<number, Float32Array>();
    addRange(index, live, data, 0, 1000);
    await index.settled();
    for (let id = 1; id <= 200; id++) index.remove(id); // 200 <= 0.3 x 1000
    addRange(index, live, data, 1000, 1150);
    await index.settled();
    expect(events(built)).toEqual(['hnsw 1000', 'hnsw 950 +150']);
    expect([index.stored, index.dead, index.tail]).toEqual([1150, 200, 0]);
    for (let id = 201; id <= 345; id++) index.remove(id); // 345 = 0.3 x 1150: not yet
    expect(index.building).toBe(false);
    index.remove(346);
    await index.settled();
    expect(events(built).at(-1)).toBe('hnsw 804'); // a full build, of the live vectors
    expect([index.stored, index.dead, index.size]).toEqual([804, 0, 804]);
    index.clear();
  });

  it('q8 graphs and extendGraph false build from every vector', async () => {
    for (const opts of [{ quant: 'q8' as const }, { extendGraph: false }]) {
      const { index, built } = await grown(opts, 96, 1150);
      await index.settled();
      expect(events(built)).toEqual(['hnsw 1000', 'hnsw 1150']);
      index.clear();
    }
  });

  it('clear() during an extension: the lent graph is freed once the worker is done, nothing crashes', async () => {
    const { index, built, data } = await grown({ delayMs: 200 }, 97, 1200);
    expect(index.building).toBe(true);
    const settling = index.settled();
    index.clear();
    await settling;
    await new Promise((r) => setTimeout(r, 400));
    expect([events(built), index.size, index.building]).toEqual([['hnsw 1000'], 0, false]);
    addRange(index, new Map(), data, 0, 10);
    expect(index.search(data[3]!, 1)[0]?.id).toBe(4);
    index.clear();
  });

  it('an index disposed while lent stays readable for the copy, and unusable here', async () => {
    const graph = newHnswIP(DIM, { m: 16, efConstruction: 40, efSearch: 64 });
    const data = clusteredVectors(600, 98);
    const xs = new Float32Array(500 * DIM);
    for (const [i, v] of data.slice(0, 500).entries()) xs.set(v, i * DIM);
    graph.add(xs);
    const more = new Float32Array(100 * DIM);
    for (const [i, v] of data.slice(500).entries()) more.set(v, i * DIM);
    const copying = buildIndex({ template: graph, vectors: more, extend: true });
    graph.dispose(); // while the worker copies it
    expect(graph.disposed).toBe(true);
    expect(() => graph.ntotal()).toThrow('used after dispose');
    const copy = await copying;
    expect(copy.ntotal()).toBe(600);
    for (const i of [0, 250, 499, 500, 599]) {
      expect(Array.from(copy.search(data[i]!, 1).labels)).toEqual([i]);
    }
    copy.dispose();
    // Lent and returned: dispose() frees at once again.
    const other = newHnswIP(DIM, { m: 16, efConstruction: 40, efSearch: 64 });
    other.add(xs);
    const lent = other.lend();
    expect(typeof lent.address).toBe('bigint');
    lent.done();
    lent.done(); // once only
    other.dispose();
    expect(other.disposed).toBe(true);
  });
});
