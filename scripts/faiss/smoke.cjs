// Smoke test of the faiss-node addon, run by scripts/build-faiss.sh in a child
// process (a broken build can segfault, which must not take the script down).
// Exercises what semcache relies on: IndexFlatIP, HNSW with inner product
// through the factory, removeIds, and toBuffer/fromBuffer (which crash in
// __dynamic_cast when the addon was compiled without RTTI). With PATCHED=1 it
// also requires semcache's patch (scripts/faiss/faiss-node.patch): Float32Array
// input, FAISS errors as JS errors, setParam, and loading in a worker thread.
'use strict';
const assert = require('node:assert/strict');
const { Worker, isMainThread, parentPort } = require('node:worker_threads');
const faiss = require('faiss-node');
const { Index, IndexFlatIP, MetricType } = faiss;

/** The patch version this checkout expects (src/semantic/index/faiss.ts). */
const PATCH_VERSION = 5;

function basics() {
  const flat = new IndexFlatIP(4);
  flat.add([1, 0, 0, 0, 0, 1, 0, 0, 0.6, 0.8, 0, 0]);
  const hit = flat.search([0, 1, 0, 0], 2);
  assert.deepEqual(Array.from(hit.labels), [1, 2]);
  assert.ok(Math.abs(hit.distances[1] - 0.8) < 1e-6, 'flat scores are inner products');
  assert.equal(flat.removeIds([0]), 1);
  assert.equal(flat.ntotal(), 2);
  assert.equal(IndexFlatIP.fromBuffer(flat.toBuffer()).ntotal(), 2);

  const hnsw = Index.fromFactory(4, 'HNSW8', MetricType.METRIC_INNER_PRODUCT);
  hnsw.add([1, 0, 0, 0, 0, 1, 0, 0, 0.6, 0.8, 0, 0]);
  const near = hnsw.search([0.6, 0.8, 0, 0], 3);
  assert.deepEqual(Array.from(near.labels), [2, 1, 0]);
  assert.ok(Math.abs(near.distances[0] - 1) < 1e-6, 'HNSW scores are inner products');
  return Index.fromBuffer(hnsw.toBuffer());
}

function patched() {
  assert.equal(faiss.semcachePatch, PATCH_VERSION, 'semcache patch version');
  // v5: the C heap's free pages given back (true on glibc, false elsewhere).
  assert.equal(typeof faiss.mallocTrim(), 'boolean', 'mallocTrim');
  const hnsw = Index.fromFactory(4, 'HNSW8', MetricType.METRIC_INNER_PRODUCT);
  hnsw.add(new Float32Array([1, 0, 0, 0, 0, 1, 0, 0, 0.6, 0.8, 0, 0]));
  hnsw.setParam('efSearch', 32);
  const near = hnsw.search(new Float32Array([0.6, 0.8, 0, 0]), 3);
  assert.ok(near.labels instanceof Float64Array && near.distances instanceof Float32Array);
  assert.deepEqual(Array.from(near.labels), [2, 1, 0]);
  assert.throws(() => hnsw.setParam('nprobe', 4), /nprobe|parameter/i);
  assert.throws(() => hnsw.search(new Float32Array(3), 1), /length/);
  const ivf = Index.fromFactory(4, 'IVF2,Flat', MetricType.METRIC_INNER_PRODUCT);
  const xs = new Float32Array(4 * 100).map((_, i) => Math.sin(i * 7.1));
  ivf.train(xs);
  ivf.add(xs);
  ivf.setParam('nprobe', 2); // every list: exact, like a flat index
  const exact = new IndexFlatIP(4);
  exact.add(Array.from(xs));
  const q = xs.subarray(40, 44);
  assert.deepEqual(Array.from(ivf.search(q, 5).labels), exact.search(Array.from(q), 5).labels);
  ivf.dispose();
  exact.dispose(); // frees FAISS's memory now (IndexFlatIP too)
}

if (isMainThread) {
  const back = basics();
  if (process.env.PATCHED === '1') {
    patched();
    // The class constructors are per thread: an index made in a worker's
    // thread, serialized, comes back here as an index of this thread.
    // An index borrowed here is copied in the worker (v4) and extended there.
    const borrowed = Index.fromBuffer(back.toBuffer());
    const w = new Worker(__filename, { workerData: { borrowed: borrowed.borrow() } });
    w.once('message', ({ buf, ptr }) => {
      assert.equal(borrowed.ntotal(), 3, 'the borrowed index is unchanged by its copy');
      const idx = Index.fromBuffer(Buffer.from(buf));
      assert.equal(idx.ntotal(), 3);
      assert.equal(back.ntotal(), 3);
      // An index released in the worker, adopted here: no serialization.
      const adopted = Index.adopt(ptr);
      assert.equal(adopted.ntotal(), 4, 'the copy made in the worker, extended by one vector');
      w.terminate().then(() => {
        // After the worker's environment is gone, this thread's classes (and
        // the adopted index) still work.
        assert.equal(Index.fromBuffer(idx.toBuffer()).ntotal(), 3);
        assert.deepEqual(
          Array.from(adopted.search(new Float32Array([0.6, 0.8, 0, 0]), 1).labels),
          [2],
        );
        adopted.dispose();
        console.log('faiss-node ok (patched)');
      });
    });
    w.once('error', (err) => {
      console.error(err);
      process.exit(1);
    });
  } else {
    console.log('faiss-node ok');
  }
} else {
  patched();
  const built = basics();
  const buf = built.toBuffer();
  const copy = Index.copyOf(require('node:worker_threads').workerData.borrowed);
  copy.add(new Float32Array([0, 0, 1, 0]));
  assert.throws(() => Index.copyOf(0n), /address/);
  const ptr = copy.release();
  assert.throws(() => copy.release(), /disposed or released/);
  parentPort.postMessage({ buf, ptr });
}
