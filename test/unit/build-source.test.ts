/*
 * Builds read the vectors where the vector store keeps them (its shared
 * slabs, slab-reader.ts), in the build worker, with the real addon: writes
 * made after the build looked up its slots and before the worker read them
 * (a removed id whose slot a new id took, a vector replaced in place) are
 * right after the swap, fp32 and q8; a build's training sample and chunks
 * read what the store holds; and the kept build thread lets go of the slabs
 * after a job, so that a cleared index's memory is given back (in a process
 * started with a V8 option, --expose-gc, whose workers were refused until
 * they were given no execArgv: every build failed under
 * `node --max-old-space-size=... dist/cli.js`).
 */
import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildIndex } from '../../src/semantic/index/builder.js';
import { eachChunk, sampleOf } from '../../src/semantic/index/slab-reader.js';
import { createVectorIndex } from '../../src/semantic/index/vector-index.js';
import { VectorStore } from '../../src/semantic/index/vector-store.js';
import { clusteredVectors, DIM, dot } from '../helpers/vectors.js';

describe('builds read the shared slabs', () => {
  for (const [kind, quant] of [
    ['hnsw', 'fp32'],
    ['ivf', 'q8'],
  ] as const) {
    it(`${kind} ${quant}: writes between the lookup and the worker's read are right after the swap`, async () => {
      let release: () => void = () => {};
      const gate = new Promise<void>((r) => {
        release = r;
      });
      let started = 0;
      const index = createVectorIndex({
        dim: DIM,
        kind,
        quant,
        tailMax: 1000,
        // The worker reads the slabs only once the writes below are made.
        builder: async (input) => {
          started++;
          await gate;
          return buildIndex(input);
        },
      });
      const data = clusteredVectors(3000, 91);
      const live = new Map<number, Float32Array>();
      index.bulkLoad(true);
      index.addBatch(
        data.map((_, i) => i + 1),
        data,
      );
      for (const [i, v] of data.entries()) live.set(i + 1, v);
      index.bulkLoad(false);
      while (started === 0) await new Promise((r) => setTimeout(r, 5));
      // Removed: their slots are freed, and the new ids below take them.
      for (let id = 1; id <= 200; id++) {
        index.remove(id);
        live.delete(id);
      }
      const fresh = clusteredVectors(400, 92);
      for (let i = 0; i < 200; i++) {
        index.add(10_001 + i, fresh[i]!); // in a slot the build still points at
        live.set(10_001 + i, fresh[i]!);
        index.add(1001 + i, fresh[200 + i]!); // replaced in place
        live.set(1001 + i, fresh[200 + i]!);
      }
      release();
      await index.settled();
      expect([index.kind, index.size]).toEqual([kind, 3000]);
      for (let id = 1; id <= 200; id++) expect(index.has(id)).toBe(false);
      let found = 0;
      for (const [id, v] of live) {
        const hit = index.search(v, 1)[0];
        if (hit?.id === id) found++;
        expect(
          hit?.id === id || hit === undefined || hit.score >= dot(v, live.get(id)!) - 0.02,
        ).toBe(true);
      }
      // Every moved or new id is found, and nearly every other one (an approximate index).
      for (let i = 0; i < 200; i++) {
        expect(index.search(fresh[i]!, 1)[0]?.id).toBe(10_001 + i);
        expect(index.search(fresh[200 + i]!, 1)[0]?.id).toBe(1001 + i);
      }
      expect(found / live.size).toBeGreaterThan(0.97);
    });
  }

  it('chunks and samples read what the store holds, fp32 exactly and q8 within its codes', () => {
    for (const quant of ['fp32', 'q8'] as const) {
      const store = new VectorStore(DIM, quant);
      const data = clusteredVectors(2500, 93); // three slabs
      for (const [i, v] of data.entries()) store.set(i + 7, v);
      const ids = [...data.keys()].map((i) => i + 7).reverse();
      const slots = Int32Array.from(ids, (id) => store.slotOf(id));
      slots[5] = -1; // an id gone before the lookup: zeros
      const source = store.source(slots);
      const seen: number[] = [];
      eachChunk(source, 1000, (xs) => {
        for (let j = 0; j < xs.length / DIM; j++) {
          const at = seen.length;
          const v = xs.subarray(j * DIM, (j + 1) * DIM);
          seen.push(at === 5 ? dot(v, v) : dot(v, data[ids[at]! - 7]!));
        }
      });
      expect(seen.length).toBe(2500);
      expect(seen[5]).toBe(0);
      for (const [i, s] of seen.entries()) if (i !== 5) expect(s).toBeGreaterThan(0.999);
      const sample = sampleOf(source, 100);
      expect(sample.length).toBe(100 * DIM);
      expect(dot(sample.subarray(DIM, 2 * DIM), data[ids[25]! - 7]!)).toBeGreaterThan(0.999);
    }
  });

  it('the kept build thread lets go of the slabs after a job: a cleared index gives its memory back', () => {
    const vi = resolve('dist/semantic/index/vector-index.js');
    const script = `
      const { createVectorIndex } = await import(${JSON.stringify(vi)});
      const { readFileSync } = await import('node:fs');
      const rss = () => Number(/VmRSS:\\s+(\\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1]) * 1024;
      let error;
      const index = createVectorIndex({ dim: 384, kind: 'ivf', onBuild: (e) => { error ??= e.error?.message; } });
      const v = new Float32Array(384);
      index.bulkLoad(true);
      for (let i = 1; i <= 60000; i++) { for (let j = 0; j < 384; j++) v[j] = Math.random() - 0.5; index.add(i, v); }
      index.bulkLoad(false);
      await index.settled();
      const built = index.kind;
      index.clear();
      await new Promise((r) => setTimeout(r, 200)); // the worker's collection
      gc();
      const before = rss();
      await new Promise((r) => setTimeout(r, 1200)); // the heap trim
      gc();
      console.log(JSON.stringify({ built, error, before, after: rss() }));`;
    const out = JSON.parse(
      execFileSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', script], {
        encoding: 'utf8',
        timeout: 60_000,
      }),
    );
    expect([out.built, out.error]).toEqual(['ivf', undefined]);
    // 60,000 fp32 vectors: 92 MB of slabs, gone once neither thread refers to them.
    expect(out.after).toBeLessThan(150e6);
  });
});
