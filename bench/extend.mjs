#!/usr/bin/env node
// bench/extend.mjs: what a graph whose flat tail outgrew its bound costs,
// extended with the tail (as shipped: index/policy.ts extendable(), a worker
// copies the graph and adds the tail) against built again from every vector
// (`--hnsw-extend off`, as before), side by side on the same vectors.
//
// For each size N: an HNSW index (semcache's VectorIndex, dist/) bulk loads N
// clustered 384-d vectors and builds its graph; then one tail's worth of
// vectors more comes (just past the shipped bound: a tenth of the live vectors
// within [1024, 4096]),
// which makes a build due. Timed from the write that made it due to the swap:
// the extension (extendGraph on) and the full rebuild (off), each in an index
// of its own over the same vectors; with the longest event-loop stall seen
// meanwhile (a 1 ms timer) and recall@10 of the result against exact search
// (FAISS's flat index) over --queries queries.
//
//   npm run build && node bench/extend.mjs [--sizes 10000,100000] [--queries 200]
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  longestGap,
  machineInfo,
  mdTable,
  parseFlags,
  ROOT,
  runMain,
  syntheticVectors,
} from './lib.mjs';

const OPTS = { sizes: '10000,100000', queries: 200, data: 'clustered' };
const DIM = 384;
const dist = (p) => import(pathToFileURL(path.join(ROOT, 'dist', p)).href);

async function oneSetup(extendGraph, base, more, queries, truth) {
  const { createVectorIndex } = await dist('semantic/index/vector-index.js');
  const builds = [];
  const index = createVectorIndex({
    dim: DIM,
    kind: 'hnsw',
    extendGraph,
    buildRest: 0,
    onBuild: (e) => builds.push(e),
  });
  index.bulkLoad(true);
  index.addBatch(
    base.map((_, i) => i + 1),
    base,
  );
  index.bulkLoad(false);
  await index.settled();
  const first = builds.at(-1);
  const t0 = performance.now();
  const stall = await longestGap(
    (async () => {
      index.addBatch(
        more.map((_, i) => base.length + i + 1),
        more,
      );
      await index.settled();
    })(),
  );
  const ms = performance.now() - t0;
  const last = builds.at(-1);
  if (last === first || last.error || index.tail !== 0) throw new Error('no second build');
  let found = 0;
  queries.forEach((q, i) => {
    const want = new Set(truth[i]);
    for (const h of index.search(q, 10)) if (want.has(h.id)) found++;
  });
  index.clear();
  return { firstMs: first.ms, ms, stall, recall: found / (queries.length * 10), added: last.added };
}

async function main() {
  const o = parseFlags(OPTS);
  console.log(JSON.stringify(machineInfo()));
  const { newFlatIP } = await dist('semantic/index/faiss.js');
  const rows = [];
  for (const n of o.sizes.split(',').map(Number)) {
    // Just past the bound, which is a tenth of all live vectors (the tail's included).
    const tail = Math.min(4097, Math.max(1025, Math.ceil(n / 9) + 1));
    const all = syntheticVectors(o.data, n + tail, 1);
    const base = all.slice(0, n);
    const more = all.slice(n);
    const queries = syntheticVectors(o.data, o.queries, 2);
    // The exact top 10 of each query over all n + tail vectors (ids from 1).
    const flat = newFlatIP(DIM);
    const xs = new Float32Array(all.length * DIM);
    for (const [i, v] of all.entries()) xs.set(v, i * DIM);
    flat.add(xs);
    const truth = queries.map((q) => Array.from(flat.search(q, 10).labels, (l) => l + 1));
    flat.dispose();
    const on = await oneSetup(true, base, more, queries, truth);
    const off = await oneSetup(false, base, more, queries, truth);
    console.log(JSON.stringify({ n, tail, on, off }));
    for (const [name, r] of [
      ['extended (as shipped)', on],
      ['built again (--hnsw-extend off)', off],
    ]) {
      rows.push([
        n.toLocaleString('en-US'),
        String(tail),
        name,
        (r.firstMs / 1000).toFixed(1),
        (r.ms / 1000).toFixed(2),
        r.stall.toFixed(0),
        r.recall.toFixed(3),
      ]);
    }
    rows.push(['', '', 'ratio (built again / extended)', '', (off.ms / on.ms).toFixed(1), '', '']);
  }
  console.log(
    `\n${o.data} 384-d vectors, HNSW M 16 efConstruction 40, efSearch by size\n\n${mdTable(
      [
        'graph of',
        'tail',
        'second build',
        'first build (s)',
        'second build (s)',
        'longest stall (ms)',
        'recall@10 after',
      ],
      rows,
      ['r', 'r', 'l', 'r', 'r', 'r', 'r'],
    )}`,
  );
}

runMain(main);
