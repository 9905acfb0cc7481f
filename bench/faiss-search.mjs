#!/usr/bin/env node
// bench/faiss-search.mjs: flat, HNSW and IVF side by side, through semcache's
// own VectorIndex (dist/semantic/index/vector-index.js, so `npm run build` first).
//
// For each data set (--data: `clustered` unit vectors, i.e. points around 100
// random centres like sentence embeddings; `random` unit vectors, which have no
// neighbourhood structure; `lowrank`, Gaussian in a 32-d subspace plus noise,
// structure without clusters) and each size N, it builds
// every kind (--kinds) from the same N vectors, as semcache's rebuild from
// Redis does (bulkLoad(true), addBatch, bulkLoad(false)), and measures:
//
// - build: wall time until `await index.settled()`, and what of it runs on the
//   event loop. flat: the addBatch, all on the event loop. hnsw/ivf: the
//   addBatch into the flat tail (event loop), starting the build (event loop:
//   the snapshot copy of every live vector and the worker's spawn; an add that
//   starts a rebuild pays the same), the worker thread (train + add + serialize),
//   and the swap (event loop: deserializing the built index). The longest
//   event-loop stall while the worker runs is measured with a 1 ms setInterval
//   probe and perf_hooks.monitorEventLoopDelay.
// - search: single queries (k=10) one after another, as the proxy runs them,
//   p50/p90/p99 per query.
// - recall@10 against exact brute force (the flat index, FAISS IndexFlatIP,
//   which is always run; it is reported only when `flat` is in --kinds).
// - add: --adds single add() calls after the build (they go to the flat tail);
//   p50/p99 per add. Then (hnsw/ivf) the tail is filled up to its default
//   tailMax (N/10 within [1024, 4096]; one more would start a rebuild) and the
//   searches are timed again: between builds every search scans the tail too.
// - memory, per vector: the serialized FAISS index the worker hands back
//   (caught on the worker's 'message' event; flat: 4 x dim), plus the growth of
//   the JS heap and ArrayBuffers after GC (semcache's copy of every live vector,
//   which HNSW/IVF indexes keep for rebuilds, and its maps). The process's RSS
//   delta is printed too, but it is noise: the allocator reuses what earlier
//   indexes freed.
//
// IVF runs once per --nprobe value (each a full build, nlist = sqrt(N) unless
// --nlist). Results go to stdout as tables and to bench/results/faiss-<time>.md;
// --json FILE also writes every number. The load average is recorded at the
// start, per row and at the end: the machine may be shared.
//
// By default HNSW over 100k random vectors is skipped (--skip random:100000:hnsw;
// minutes of CPU for a recall@10 under 0.1): --skip none runs everything.
//
// Usage: node bench/faiss-search.mjs [--sizes 10000,100000]
//          [--data clustered,random,lowrank] [--kinds flat,hnsw,ivf]
//          [--nprobe 8,16,32] [--nlist N] [--dim 384] [--queries 500] [--adds 1000]
//          [--m 16] [--ef-search 64] [--ef-construction 40]
//          [--skip data:size:kind,...|none] [--centres 100] [--spread 0.05]
//          [--rank 32] [--quick] [--json out.json]
//          [--module dist/semantic/index/vector-index.js]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import v8 from 'node:v8';
import vm from 'node:vm';
import { Worker } from 'node:worker_threads';
import { loadavg, longestGap, machineInfo, mdTable, syntheticVectors } from './lib.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const { values: opt } = parseArgs({
  options: {
    module: { type: 'string', default: path.join(ROOT, 'dist/semantic/index/vector-index.js') },
    sizes: { type: 'string' },
    dim: { type: 'string', default: '384' },
    queries: { type: 'string' },
    data: { type: 'string', default: 'clustered,random' },
    kinds: { type: 'string', default: 'flat,hnsw,ivf' },
    nprobe: { type: 'string', default: '8,16,32' },
    nlist: { type: 'string' },
    adds: { type: 'string', default: '1000' },
    m: { type: 'string', default: '16' },
    'ef-search': { type: 'string', default: '64' },
    'ef-construction': { type: 'string', default: '40' },
    skip: { type: 'string', default: 'random:100000:hnsw' },
    centres: { type: 'string', default: '100' },
    spread: { type: 'string', default: '0.05' },
    rank: { type: 'string', default: '32' },
    quick: { type: 'boolean', default: false },
    json: { type: 'string' },
  },
});
if (!fs.existsSync(opt.module)) {
  console.error(`${opt.module} is missing: run npm run build first`);
  process.exit(1);
}
const { createVectorIndex } = await import(pathToFileURL(path.resolve(opt.module)).href);

const list = (s) =>
  String(s)
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
const dim = Number(opt.dim);
const sizes = list(opt.sizes ?? (opt.quick ? '10000' : '10000,100000')).map(Number);
const nQueries = Number(opt.queries ?? (opt.quick ? '200' : '500'));
const datasets = list(opt.data);
const kinds = list(opt.kinds);
const nprobes = list(opt.nprobe).map(Number);
const nAdds = Number(opt.adds);
const skips = new Set(
  list(opt.skip)
    .map((s) => s.toLowerCase())
    .filter((s) => s !== 'none'),
);
const centresN = Number(opt.centres);
const spread = Number(opt.spread);
const rank = Number(opt.rank);
for (const d of datasets) {
  if (!['clustered', 'random', 'lowrank'].includes(d)) {
    throw new Error(`--data: clustered, random or lowrank, not ${d}`);
  }
}
for (const k of kinds) {
  if (!['flat', 'hnsw', 'ivf'].includes(k)) throw new Error(`--kinds: flat, hnsw or ivf, not ${k}`);
}
const hnswOpts = {
  hnswM: Number(opt.m),
  efSearch: Number(opt['ef-search']),
  efConstruction: Number(opt['ef-construction']),
};

// ---------- instruments ----------
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** Collect garbage, let N-API finalizers (FAISS indexes dropped) run, collect again. */
async function settleMemory() {
  gc();
  await sleep(50);
  gc();
  await sleep(50);
}
/** RSS, and what V8 holds: JS heap + ArrayBuffer backing stores (semcache's vector copies). */
function mem() {
  const m = process.memoryUsage();
  return { rss: m.rss, js: m.heapUsed + m.arrayBuffers };
}

// The index builder (dist/semantic/index/builder.js) gets the built index back
// as a 'message' event of its Worker, { out: <serialized index> }: note when and
// how big, without touching semcache's code.
let lastBuilt;
const workerEmit = Worker.prototype.emit;
Worker.prototype.emit = function emit(event, ...args) {
  const msg = args[0];
  if (event === 'message' && msg && msg.out instanceof Uint8Array) {
    lastBuilt = { at: performance.now(), bytes: msg.out.byteLength };
  }
  return workerEmit.call(this, event, ...args);
};

/** Longest event-loop stalls while `promise` runs: a 1 ms interval probe and the histogram. */
async function stallsDuring(promise) {
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  let maxGap;
  try {
    maxGap = await longestGap(promise);
  } finally {
    h.disable();
  }
  return { probeMaxMs: maxGap, histMaxMs: h.max / 1e6, histP99Ms: h.percentile(99) / 1e6 };
}

// ---------- data ----------
const vectors = (kind, n, seed) =>
  syntheticVectors(kind, n, seed, { dim, centres: centresN, spread, rank });

// ---------- measurements ----------
const ms = (t0) => performance.now() - t0;
function pct(sorted, q) {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}
/** Single queries one after another; returns percentiles (ms) and every result's ids. */
function searchAll(index, queries) {
  for (let i = 0; i < Math.min(20, queries.length); i++) index.search(queries[i], 10); // warm-up
  const ids = [];
  const t = queries.map((q) => {
    const t0 = performance.now();
    const hits = index.search(q, 10);
    const dt = ms(t0);
    ids.push(hits.map((h) => h.id));
    return dt;
  });
  t.sort((a, b) => a - b);
  const mean = t.reduce((a, b) => a + b, 0) / t.length;
  return { p50: pct(t, 0.5), p90: pct(t, 0.9), p99: pct(t, 0.99), mean, ids };
}
function recall(ids, truth) {
  let found = 0;
  for (let i = 0; i < ids.length; i++) {
    const want = new Set(truth[i]);
    for (const id of ids[i]) if (want.has(id)) found++;
  }
  return found / (10 * truth.length);
}
/** The largest tail that starts no rebuild: vector-index.ts's default tailMax. */
const fullTail = (n) => Math.min(4096, Math.max(1024, Math.floor(n / 10)));
/** Single add() calls of fresh vectors (ids after the data's); µs percentiles. */
function addEach(index, fresh, firstId) {
  const t = fresh.map((v, i) => {
    const t0 = performance.now();
    index.add(firstId + i, v);
    return ms(t0) * 1000;
  });
  t.sort((a, b) => a - b);
  return { p50: pct(t, 0.5), p99: pct(t, 0.99), max: t[t.length - 1] };
}

/** One kind at one size: build, search, recall, adds, memory. */
async function run(kind, data, queries, fresh, truth, extra = {}) {
  const n = data.length;
  const ids = data.map((_, i) => i);
  await settleMemory();
  const mem0 = mem();
  const builds = [];
  const index = createVectorIndex({
    dim,
    kind,
    ...hnswOpts,
    ...extra,
    onBuild: (e) => builds.push(e),
  });
  const r = { kind, n, ...extra, load: os.loadavg()[0] };
  lastBuilt = undefined;
  const t0 = performance.now();
  if (kind === 'flat') {
    index.addBatch(ids, data);
    r.loadMs = ms(t0);
    r.buildWallMs = r.loadMs;
    r.where = 'event loop';
    r.eventLoopMs = r.loadMs;
  } else {
    index.bulkLoad(true);
    index.addBatch(ids, data);
    r.loadMs = ms(t0);
    const t1 = performance.now();
    index.bulkLoad(false); // snapshot + worker spawn, on the event loop
    r.startMs = ms(t1);
    if (!index.building) throw new Error(`${kind}: no build started after bulkLoad(false)`);
    const stalls = await stallsDuring(index.settled());
    const tEnd = performance.now();
    r.buildWallMs = tEnd - t1;
    r.where = 'worker';
    Object.assign(r, stalls);
    if (lastBuilt) {
      r.workerMs = lastBuilt.at - t1;
      r.swapMs = tEnd - lastBuilt.at;
      r.faissBytes = lastBuilt.bytes;
    } else {
      // No worker answered: faiss-node without semcache's patch builds inline.
      r.where = 'event loop (inline: unpatched addon)';
    }
    const ev = builds.at(-1);
    if (ev?.error) throw ev.error;
    r.builtKind = index.kind;
    if (index.kind !== kind) throw new Error(`asked for ${kind}, main segment is ${index.kind}`);
    if (index.tail !== 0) throw new Error(`tail holds ${index.tail} after the build`);
  }
  await settleMemory();
  const mem1 = mem();
  r.rssBytesPerVector = (mem1.rss - mem0.rss) / n;
  r.jsBytesPerVector = (mem1.js - mem0.js) / n;
  r.faissBytesPerVector = kind === 'flat' ? 4 * dim : r.faissBytes / n;
  r.bytesPerVector = r.faissBytesPerVector + r.jsBytesPerVector;
  const s = searchAll(index, queries);
  Object.assign(r, { p50: s.p50, p90: s.p90, p99: s.p99, mean: s.mean });
  r.recall10 = truth ? recall(s.ids, truth) : 1;
  r.add = addEach(index, fresh.slice(0, nAdds), n);
  if (kind !== 'flat') {
    // Fill the tail up to the size that starts a rebuild (the default tailMax):
    // between builds every search also scans the tail (flat) and merges.
    const more = fresh.slice(nAdds, fullTail(n));
    index.addBatch(
      more.map((_, i) => n + nAdds + i),
      more,
    );
    if (index.building) {
      r.addsStartedBuild = true;
      await index.settled();
    }
    r.tail = index.tail;
    const t = searchAll(index, queries);
    r.fullTailP50 = t.p50;
    r.fullTailP99 = t.p99;
  }
  return { r, ids: s.ids };
}

// ---------- output ----------
const f = (x, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : '–');
const sec = (msv) => (msv >= 10_000 ? (msv / 1000).toFixed(0) : (msv / 1000).toFixed(1));
const dur = (msv) => (msv < 1000 ? `${msv.toFixed(0)} ms` : `${sec(msv)} s`);
const label = (r) =>
  r.kind === 'flat'
    ? 'flat'
    : r.kind === 'hnsw'
      ? `HNSW M${hnswOpts.hnswM} efS ${hnswOpts.efSearch}`
      : `IVF nlist ${r.nlist} nprobe ${r.nprobe}`;
function line(data, r) {
  const build =
    r.kind === 'flat'
      ? `load ${f(r.loadMs, 0)} ms (event loop)`
      : `build ${dur(r.buildWallMs)} in ${r.where} (load ${f(r.loadMs, 0)} ms, start ${f(r.startMs, 0)} ms, ` +
        `swap ${f(r.swapMs, 0)} ms, longest stall ${f(r.probeMaxMs, 0)} ms)`;
  return (
    `${data} n=${r.n} ${label(r)}: ${build} | search p50 ${f(r.p50, 3)} p99 ${f(r.p99, 3)} ms, ` +
    `recall@10 ${f(r.recall10, 3)} | add p50 ${f(r.add.p50, 1)} p99 ${f(r.add.p99, 1)} us | ` +
    (r.kind === 'flat'
      ? ''
      : `with a full tail (${r.tail}): p50 ${f(r.fullTailP50, 3)} p99 ${f(r.fullTailP99, 3)} ms | `) +
    `FAISS ${f(r.faissBytesPerVector, 0)} + ` +
    `JS ${f(r.jsBytesPerVector, 0)} B/vec (RSS delta ${f(r.rssBytesPerVector, 0)}) | load ${f(r.load)}`
  );
}
function table(rows) {
  return mdTable(
    [
      'vectors',
      'kind',
      'build wall',
      'where',
      'event loop: start / swap / longest stall',
      'search p50 / p99',
      'p50 / p99, full tail',
      'recall@10',
      'add p50 / p99',
      'bytes/vector: FAISS + JS',
    ],
    rows.map((r) => [
      r.n.toLocaleString('en-US'),
      label(r),
      dur(r.buildWallMs),
      r.where,
      r.kind === 'flat'
        ? `${f(r.loadMs, 0)} ms (the addBatch)`
        : `${f(r.startMs, 0)} / ${f(r.swapMs, 0)} / ${f(r.probeMaxMs, 0)} ms`,
      `${f(r.p50, r.p50 < 10 ? 2 : 1)} / ${f(r.p99, r.p99 < 10 ? 2 : 1)} ms`,
      r.kind === 'flat' ? '' : `${f(r.fullTailP50)} / ${f(r.fullTailP99)} ms (${r.tail})`,
      f(r.recall10, 3),
      `${f(r.add.p50, 0)} / ${f(r.add.p99, 0)} µs`,
      `${f(r.faissBytesPerVector, 0)} + ${f(r.jsBytesPerVector, 0)}`,
    ]),
    ['r', 'l', 'r', 'l', 'r', 'r', 'r', 'r', 'r', 'r'],
  );
}

// ---------- main ----------
const machine = { ...machineInfo(), loadStart: loadavg() };
console.log(
  `faiss-search: ${machine.cpu}, ${machine.cores} cores, node ${machine.node}, ` +
    `semcache ${machine.semcache}; load average at start ${machine.loadStart}`,
);
console.log(
  `dim ${dim}, ${nQueries} queries (k=10), ${nAdds} single adds; data ${datasets.join(',')}; ` +
    `sizes ${sizes.join(',')}; kinds ${kinds.join(',')}; IVF nprobe ${nprobes.join(',')}, ` +
    `nlist ${opt.nlist ?? 'sqrt(n)'}` +
    (opt.data.includes('clustered') ? `; clustered: ${centresN} centres, spread ${spread}` : '') +
    (opt.data.includes('lowrank') ? `; lowrank: rank ${rank}` : '') +
    (skips.size ? `; skipping ${[...skips].join(', ')} (--skip; --skip none runs all)` : ''),
);
const t00 = performance.now();
const results = {};
const skipped = [];
for (const d of datasets) {
  results[d] = [];
  for (const n of sizes) {
    const tg = performance.now();
    const data = vectors(d, n, 1);
    const queries = vectors(d, nQueries, 2);
    const fresh = vectors(d, Math.max(nAdds, fullTail(n)), 3);
    console.log(`${d} n=${n}: vectors generated in ${sec(ms(tg))} s; load ${loadavg()}`);
    // Flat always runs: it is the exact answer the others' recall is measured against.
    const flat = await run('flat', data, queries, fresh, undefined);
    const truth = flat.ids;
    if (kinds.includes('flat')) {
      results[d].push(flat.r);
      console.log(line(d, flat.r));
    }
    for (const kind of kinds) {
      if (kind === 'flat') continue;
      if (kind === 'ivf' && n < 1024) {
        console.log(`${d} n=${n} ivf: skipped (an ivf index stays flat below 1024 vectors)`);
        continue;
      }
      if (skips.has(`${d}:${n}:${kind}`)) {
        skipped.push(`${d}:${n}:${kind}`);
        console.log(
          `${d} n=${n} ${kind}: SKIPPED (--skip ${opt.skip}; pass --skip none to run it)`,
        );
        continue;
      }
      const variants =
        kind === 'hnsw'
          ? [{}]
          : nprobes.map((nprobe) => ({
              nprobe,
              nlist: opt.nlist
                ? Number(opt.nlist)
                : Math.max(1, Math.min(Math.round(Math.sqrt(n)), Math.floor(n / 39))),
            }));
      for (const v of variants) {
        const extra =
          kind === 'ivf' ? { nprobe: v.nprobe, ...(opt.nlist ? { nlist: v.nlist } : {}) } : {};
        const { r } = await run(kind, data, queries, fresh, truth, extra);
        if (kind === 'ivf') r.nlist = v.nlist;
        results[d].push(r);
        console.log(line(d, r));
      }
    }
  }
}
const totalS = ms(t00) / 1000;
machine.loadEnd = loadavg();

const out = [
  `# bench/faiss-search.mjs, ${machine.date}`,
  '',
  `${machine.cpu}, ${machine.cores} cores, ${machine.memGb} GB, ${machine.os}, node ${machine.node}, ` +
    `semcache ${machine.semcache}. Load average (1, 5, 15 min) at start ${machine.loadStart}, ` +
    `at end ${machine.loadEnd}; the machine may be shared, so treat the numbers as upper bounds.`,
  '',
  `dim ${dim}; ${nQueries} single queries, k=10; recall@10 against exact brute force (flat); ` +
    `${nAdds} single adds after the build; HNSW M ${hnswOpts.hnswM}, efConstruction ` +
    `${hnswOpts.efConstruction}, efSearch ${hnswOpts.efSearch}; IVF nlist ` +
    `${opt.nlist ?? 'sqrt(n)'}. Build wall = bulkLoad(false) to settled(); "start" (snapshot + ` +
    'worker spawn) and "swap" (deserializing the built index) run on the event loop, the rest in a ' +
    'worker thread; "longest stall" is the longest event-loop stall while the worker ran (1 ms ' +
    'interval probe). Add = one add() after the build (to the flat tail). Full tail = search ' +
    'again once the tail holds as many vectors as it can before a rebuild starts (default ' +
    'tailMax, n/10 within [1024, 4096]), as between two builds. Bytes/vector = serialized ' +
    `FAISS index + JS heap and ArrayBuffers (semcache's vector copies). Total ${totalS.toFixed(0)} s.`,
];
if (skipped.length) {
  out.push(
    '',
    `**Skipped** (--skip ${opt.skip}): ${skipped.join(', ')}. HNSW over 100k uniformly random ` +
      'vectors takes several minutes of CPU (7 min on a loaded 2-core machine) for a recall@10 under ' +
      '0.1; pass `--skip none` to run it.',
  );
}
for (const d of datasets) {
  if (results[d].length === 0) continue;
  out.push(
    '',
    `## ${
      d === 'clustered'
        ? `Clustered (${centresN} centres, spread ${spread}, like sentence embeddings)`
        : d === 'lowrank'
          ? `Low rank (Gaussian in a random ${rank}-d subspace + noise)`
          : 'Uniformly random unit vectors'
    }`,
    '',
  );
  out.push(table(results[d]));
}
const md = out.join('\n');
console.log(`\n${md}`);
const resultsDir = path.join(ROOT, 'bench', 'results');
fs.mkdirSync(resultsDir, { recursive: true });
const mdFile = path.join(resultsDir, `faiss-${machine.date.replace(/[:.]/g, '-')}.md`);
fs.writeFileSync(mdFile, `${md}\n`);
console.log(`\nwritten to ${path.relative(process.cwd(), mdFile)}`);
if (opt.json) {
  fs.writeFileSync(
    opt.json,
    JSON.stringify({ machine, options: opt, skipped, totalSeconds: totalS, results }, null, 2),
  );
}
