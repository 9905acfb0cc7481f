#!/usr/bin/env node
// bench/recall.mjs: how many of the true nearest neighbours each index kind
// finds, with the defaults as shipped, and what a wider search costs.
//
// For each data set (--data: clustered, random = uniform on the sphere,
// lowrank; bench/lib.mjs syntheticVectors, fixed seeds) and size (--sizes),
// it builds through semcache's own VectorIndex (dist/, so `npm run build`
// first), the way the rebuild on start does (bulkLoad, addBatch, settled):
//
// - flat: the exact answer, and its latency;
// - HNSW with the shipped M, efConstruction and efSearch, then swept over
//   --ef values (setSearchParams; the same graph);
// - IVF with the shipped nlist (sqrt n) and nprobe, swept over --nprobe.
//
// Per row: recall@10 of --queries single queries (fresh points of the same
// distribution) against the exact top 10; recall@1, how often the first hit is
// the true nearest (what SEMGET needs); search p50/p99 of search(q, 10);
// `self`: of --self stored vectors, how many find themselves first with
// search(v, 1) (what SEMSEARCH's exact-text pin covers for texts; a vector
// query gets no pin). The shipped default is marked. Tables to stdout and
// bench/results/recall-<time>.md.
//
// Usage: node bench/recall.mjs [--sizes 10000,100000] [--data clustered,random,lowrank]
//          [--ef 16,32,64,128,256,512] [--nprobe 8,16,32,64] [--queries 300]
//          [--self 300] [--skip random:100000:hnsw,...] [--quick]
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadavg, machineInfo, mdTable, parseFlags, ROOT, syntheticVectors } from './lib.mjs';

const opt = parseFlags({
  sizes: '10000,100000',
  data: 'clustered,random,lowrank',
  ef: '16,32,64,128,256,512',
  nprobe: '8,16,32,64',
  queries: 300,
  self: 300,
  skip: '',
  quick: false,
});
if (opt.quick) Object.assign(opt, { sizes: '10000', queries: 100, self: 100 });
const list = (s) => String(s).split(',').filter(Boolean);
const dist = path.join(ROOT, 'dist/semantic');
if (!fs.existsSync(path.join(dist, 'index/vector-index.js'))) {
  console.error('dist/ is missing: run npm run build first');
  process.exit(1);
}
const { createVectorIndex, autoEfSearch } = await import(
  pathToFileURL(path.join(dist, 'index/vector-index.js')).href
);
const { newFlatIP } = await import(pathToFileURL(path.join(dist, 'index/faiss.js')).href);
const cfg = await import(pathToFileURL(path.join(ROOT, 'dist/config/semantic-options.js')).href);
const shipped = (key) => cfg.SEMANTIC_OPTIONS.find((o) => o.key === key).def;
// 0: by the vectors in the graph (autoEfSearch).
const shippedEf = (n) => shipped('efSearch') || autoEfSearch(n);
const SHIPPED_NPROBE = shipped('nprobe');
const DIM = 384;
const skips = new Set(list(opt.skip));

/** The exact top 10 of each query, by FAISS's flat index. */
function truth(data, queries) {
  const flat = newFlatIP(DIM);
  const xs = new Float32Array(data.length * DIM);
  for (const [i, v] of data.entries()) xs.set(v, i * DIM);
  flat.add(xs);
  const out = queries.map((q) => Array.from(flat.search(q, 10).labels));
  flat.dispose();
  return out;
}

const pct = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];

/** recall@10, latency of search(q, 10), and self-hits of search(v, 1). */
function measure(index, queries, want, selfIds, data) {
  for (const q of queries.slice(0, 20)) index.search(q, 10); // warm-up
  let found = 0;
  let first = 0;
  const times = queries.map((q, i) => {
    const t0 = performance.now();
    const hits = index.search(q, 10);
    const dt = performance.now() - t0;
    const w = new Set(want[i]);
    for (const h of hits) if (w.has(h.id)) found++;
    if (hits[0]?.id === want[i][0]) first++;
    return dt;
  });
  times.sort((a, b) => a - b);
  let self = 0;
  for (const id of selfIds) if (index.search(data[id], 1)[0]?.id === id) self++;
  return {
    recall: found / (queries.length * 10),
    recall1: first / queries.length,
    p50: pct(times, 0.5),
    p99: pct(times, 0.99),
    self: `${self}/${selfIds.length}`,
  };
}

async function build(kind, data) {
  const index = createVectorIndex({ dim: DIM, kind });
  const t0 = performance.now();
  index.bulkLoad(true);
  index.addBatch(
    data.map((_, i) => i),
    data,
  );
  index.bulkLoad(false);
  await index.settled();
  return { index, buildS: (performance.now() - t0) / 1000 };
}

const rows = [];
const row = (d, n, kind, param, m, buildS) =>
  rows.push([
    d,
    n.toLocaleString('en-US'),
    kind,
    param,
    m.recall.toFixed(3),
    m.recall1.toFixed(3),
    `${m.p50.toFixed(2)} / ${m.p99.toFixed(2)} ms`,
    m.self,
    buildS === undefined ? '' : `${buildS.toFixed(1)} s`,
    loadavg().split(' ')[0],
  ]);

const started = Date.now();
for (const d of list(opt.data)) {
  for (const n of list(opt.sizes).map(Number)) {
    const data = syntheticVectors(d, n, 1, { dim: DIM });
    const queries = syntheticVectors(d, opt.queries, 2, { dim: DIM });
    const want = truth(data, queries);
    const selfIds = Array.from({ length: opt.self }, (_, i) => Math.floor((i * n) / opt.self));
    console.error(`${d} ${n}: flat`);
    const flat = await build('flat', data);
    row(d, n, 'flat', 'exact', measure(flat.index, queries, want, selfIds, data), flat.buildS);
    flat.index.clear();
    for (const kind of ['hnsw', 'ivf']) {
      if (skips.has(`${d}:${n}:${kind}`)) continue;
      console.error(`${d} ${n}: ${kind} (building)`);
      const b = await build(kind, data);
      const name = kind === 'hnsw' ? 'efSearch' : 'nprobe';
      const values = list(kind === 'hnsw' ? opt.ef : opt.nprobe).map(Number);
      const def = kind === 'hnsw' ? shippedEf(n) : SHIPPED_NPROBE;
      if (!values.includes(def)) values.push(def);
      values.sort((a, b) => a - b);
      for (const v of values) {
        b.index.setSearchParams({ [name]: v });
        const m = measure(b.index, queries, want, selfIds, data);
        row(
          d,
          n,
          kind,
          `${name} ${v}${v === def ? ' (default)' : ''}`,
          m,
          v === def ? b.buildS : undefined,
        );
      }
      b.index.clear();
    }
  }
}

const header = [
  'data',
  'vectors',
  'kind',
  'search parameter',
  'recall@10',
  'recall@1',
  'search p50 / p99',
  'self found',
  'build',
  'load',
];
const table = mdTable(header, rows, [...'lllrrrrrrr']);
const m = machineInfo();
const text = [
  `# bench/recall.mjs, ${m.date}`,
  '',
  `${m.cpu}, ${m.cores} cores, ${m.os}, Node ${m.node}, semcache ${m.semcache}; ` +
    `${((Date.now() - started) / 1000).toFixed(0)} s; ${opt.queries} queries, ${opt.self} self-queries`,
  '',
  table,
  '',
].join('\n');
console.log(text);
const out = path.join(
  ROOT,
  'bench/results',
  `recall-${new Date().toISOString().replace(/[:.]/g, '-')}.md`,
);
fs.mkdirSync(path.dirname(out), { recursive: true });
fs.writeFileSync(out, text);
console.error(`written to ${path.relative(ROOT, out)}`);
