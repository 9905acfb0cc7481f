#!/usr/bin/env node
// bench/faiss-search.mjs: what the vector index costs, through semcache's own
// VectorIndex (dist/semantic/vector-index.js, so `npm run build` first).
//
// For each size N it fills a flat and an HNSW index with the same clustered
// unit vectors (points around random centres, like sentence embeddings; pass
// --data random for structureless vectors, HNSW's worst case), then times
// single-query searches (k=10) one after another, as the proxy runs them, and
// reports p50/p90 per query, HNSW recall@10 against flat (which is exact),
// and the time to insert: flat and HNSW through addBatch, flat one by one.
// Results go to stdout as a table; --json FILE also writes every number.
//
// Usage: node bench/faiss-search.mjs [--sizes 1000,2000,5000,10000,100000]
//          [--dim 384] [--queries 300] [--data clustered|random]
//          [--m 16] [--ef-search 64] [--ef-construction 40] [--json out.json]
//          [--module dist/semantic/vector-index.js]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const { values: opt } = parseArgs({
  options: {
    module: { type: 'string', default: path.join(ROOT, 'dist/semantic/vector-index.js') },
    sizes: { type: 'string', default: '1000,2000,5000,10000,100000' },
    dim: { type: 'string', default: '384' },
    queries: { type: 'string', default: '300' },
    data: { type: 'string', default: 'clustered' },
    m: { type: 'string', default: '16' },
    'ef-search': { type: 'string', default: '64' },
    'ef-construction': { type: 'string', default: '40' },
    json: { type: 'string' },
  },
});
if (!fs.existsSync(opt.module)) {
  console.error(`${opt.module} is missing: run npm run build first`);
  process.exit(1);
}
const { createVectorIndex } = await import(pathToFileURL(path.resolve(opt.module)).href);
const dim = Number(opt.dim);
const sizes = opt.sizes.split(',').map(Number);
const hnswOpts = {
  hnswM: Number(opt.m),
  efSearch: Number(opt['ef-search']),
  efConstruction: Number(opt['ef-construction']),
};

function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const gaussian = (rand) => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
function unit(v) {
  let s = 0;
  for (const x of v) s += x * x;
  return v.map((x) => x / Math.sqrt(s));
}
function vectors(n, seed) {
  const rand = mulberry32(seed);
  const random = () => unit(Float32Array.from({ length: dim }, () => gaussian(rand)));
  if (opt.data === 'random') return Array.from({ length: n }, random);
  const crand = mulberry32(7);
  const centres = Array.from({ length: 100 }, () =>
    unit(Float32Array.from({ length: dim }, () => gaussian(crand))),
  );
  return Array.from({ length: n }, () => {
    const c = centres[Math.floor(rand() * centres.length)];
    return unit(c.map((x) => x + 0.05 * gaussian(rand)));
  });
}

const ms = (t0) => Number(process.hrtime.bigint() - t0) / 1e6;
function latencies(index, queries) {
  const t = queries.map((q) => {
    const t0 = process.hrtime.bigint();
    index.search(q, 10);
    return ms(t0);
  });
  t.sort((a, b) => a - b);
  const at = (p) => t[Math.min(t.length - 1, Math.floor(p * t.length))];
  return { p50: at(0.5), p90: at(0.9) };
}

const rows = [];
const queries = vectors(Number(opt.queries), 2);
for (const n of sizes) {
  const data = vectors(n, 1);
  const ids = data.map((_, i) => i);
  const flat = createVectorIndex({ dim, kind: 'flat' });
  let t0 = process.hrtime.bigint();
  flat.addBatch(ids, data);
  const flatBatchUs = (ms(t0) * 1000) / n;
  const one = createVectorIndex({ dim, kind: 'flat' });
  const sample = Math.min(n, 2000);
  t0 = process.hrtime.bigint();
  for (let i = 0; i < sample; i++) one.add(i, data[i]);
  const flatOneUs = (ms(t0) * 1000) / sample;
  const flatLat = latencies(flat, queries);

  const hnsw = createVectorIndex({ dim, kind: 'hnsw', ...hnswOpts });
  t0 = process.hrtime.bigint();
  hnsw.addBatch(ids, data);
  const hnswBuildS = ms(t0) / 1000;
  const hnswLat = latencies(hnsw, queries);
  let found = 0;
  for (const q of queries) {
    const truth = new Set(flat.search(q, 10).map((h) => h.id));
    for (const h of hnsw.search(q, 10)) if (truth.has(h.id)) found++;
  }
  const row = {
    n,
    flatP50: flatLat.p50,
    flatP90: flatLat.p90,
    hnswP50: hnswLat.p50,
    hnswP90: hnswLat.p90,
    recall10: found / (10 * queries.length),
    flatAddBatchUsPerVector: flatBatchUs,
    flatAddOneUsPerVector: flatOneUs,
    hnswBuildSeconds: hnswBuildS,
  };
  rows.push(row);
  console.log(
    `n=${n}: flat p50 ${row.flatP50.toFixed(3)} ms p90 ${row.flatP90.toFixed(3)} ms | ` +
      `hnsw p50 ${row.hnswP50.toFixed(3)} ms p90 ${row.hnswP90.toFixed(3)} ms recall@10 ` +
      `${row.recall10.toFixed(3)} | add flat ${flatBatchUs.toFixed(0)} us/vec batched, ` +
      `${flatOneUs.toFixed(0)} one by one; hnsw build ${hnswBuildS.toFixed(1)} s`,
  );
}

if (opt.json) {
  const machine = { cpus: os.cpus().length, model: os.cpus()[0]?.model, load: os.loadavg() };
  fs.writeFileSync(opt.json, JSON.stringify({ machine, options: opt, rows }, null, 2));
}
