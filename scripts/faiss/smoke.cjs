// Smoke test of the faiss-node addon, run by scripts/build-faiss.sh in a child
// process (a broken build can segfault, which must not take the script down).
// Exercises what semcache relies on: IndexFlatIP, HNSW with inner product
// through the factory, removeIds, and toBuffer/fromBuffer (which crash in
// __dynamic_cast when the addon was compiled without RTTI).
'use strict';
const assert = require('node:assert/strict');
const { Index, IndexFlatIP, MetricType } = require('faiss-node');

const flat = new IndexFlatIP(4);
flat.add([1, 0, 0, 0, 0, 1, 0, 0, 0.6, 0.8, 0, 0]);
const hit = flat.search([0, 1, 0, 0], 2);
assert.deepEqual(hit.labels, [1, 2]);
assert.ok(Math.abs(hit.distances[1] - 0.8) < 1e-6, 'flat scores are inner products');
assert.equal(flat.removeIds([0]), 1);
assert.equal(flat.ntotal(), 2);
assert.equal(IndexFlatIP.fromBuffer(flat.toBuffer()).ntotal(), 2);

const hnsw = Index.fromFactory(4, 'HNSW8', MetricType.METRIC_INNER_PRODUCT);
hnsw.add([1, 0, 0, 0, 0, 1, 0, 0, 0.6, 0.8, 0, 0]);
const near = hnsw.search([0.6, 0.8, 0, 0], 3);
assert.deepEqual(near.labels, [2, 1, 0]);
assert.ok(Math.abs(near.distances[0] - 1) < 1e-6, 'HNSW scores are inner products');
assert.equal(Index.fromBuffer(hnsw.toBuffer()).ntotal(), 3);
console.log('faiss-node ok');
