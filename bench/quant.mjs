#!/usr/bin/env node
// bench/quant.mjs: memory per entry, recall@10 and search latency of the vector
// index with float32 and 8-bit (QUANT q8) vectors, side by side, through
// semcache's own VectorIndex (dist/, so `npm run build` first).
//
// For each size N and each setup (--setups; default flat:fp32, hnsw:fp32,
// hnsw:q8, ivf:fp32, ivf:q8) a child process of its own (so that one setup's
// freed memory does not hide the next one's growth):
// - generates the same N unit vectors (--data clustered or lowrank, fixed seed,
//   bench/lib.mjs's generators) 65,536 at a time and bulk loads them as
//   semcache's rebuild from Redis does (bulkLoad(true), addBatch per chunk,
//   bulkLoad(false)); then waits for the build (HNSW/IVF in a worker thread);
// - memory: the process's RSS after a full GC, minus the RSS before the first
//   vector, per vector ("RSS/entry"; the source chunks are garbage by then);
//   also the JS heap + ArrayBuffers part (semcache's JS copy and maps) and the
//   peak RSS during load and build, sampled every 100 ms;
// - search: --queries single queries (k = 10) one after another, p50/p99;
// - recall@10 against exact search: the true top 10 of each query computed
//   beforehand by the parent with FAISS's exact IndexFlatIP, chunk by chunk.
// Only the vector index is measured; the engine's per-entry metadata (key, text,
// exact-match hash, version, maps) comes on top, and bench/join.mjs' Redis
// figures are separate.
//
// Usage: node bench/quant.mjs [--sizes 100000,1000000] [--data clustered]
//          [--setups flat:fp32,hnsw:fp32,hnsw:q8,ivf:fp32,ivf:q8]
//          [--queries 500] [--skip 1000000:hnsw] [--json out.json]
//          [--ef-search N] [--m N] [--nprobe N] [--nlist N] (default: semcache's)
// Results: stdout and bench/results/quant-<time>.md.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import vm from 'node:vm';
import { gaussian, loadavg, machineInfo, mdTable, mulberry32, percentile } from './lib.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CHUNK = 65_536;
const DIM = 384;

const args = process.argv.slice(2);
const flag = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};

function unit(v) {
  let s = 0;
  for (const x of v) s += x * x;
  const k = 1 / Math.sqrt(s);
  for (let i = 0; i < v.length; i++) v[i] *= k;
  return v;
}

/** The vectors of bench/lib.mjs's syntheticVectors(kind, n, seed), `CHUNK` at a time. */
function* vectorChunks(kind, n, seed) {
  const rand = mulberry32(seed);
  const crand = mulberry32(7);
  let make;
  if (kind === 'lowrank') {
    const rank = 32;
    const basis = Array.from({ length: rank }, () =>
      unit(Float32Array.from({ length: DIM }, () => gaussian(crand))),
    );
    const noise = 0.2 / Math.sqrt(DIM / rank);
    make = () => {
      const v = Float32Array.from({ length: DIM }, () => noise * gaussian(rand));
      for (const b of basis) {
        const g = gaussian(rand);
        for (let i = 0; i < DIM; i++) v[i] += g * b[i];
      }
      return unit(v);
    };
  } else if (kind === 'clustered') {
    const cs = Array.from({ length: 100 }, () =>
      unit(Float32Array.from({ length: DIM }, () => gaussian(crand))),
    );
    make = () => {
      const c = cs[Math.floor(rand() * cs.length)];
      return unit(c.map((x) => x + 0.05 * gaussian(rand)));
    };
  } else throw new Error(`--data clustered or lowrank, not ${kind}`);
  // One buffer per chunk, the vectors views into it: one large allocation, which
  // the allocator gives back once free (a small one per vector it would keep).
  for (let at = 0; at < n; at += CHUNK) {
    const m = Math.min(CHUNK, n - at);
    const buf = new Float32Array(m * DIM);
    for (let i = 0; i < m; i++) buf.set(make(), i * DIM);
    yield Array.from({ length: m }, (_, i) => buf.subarray(i * DIM, (i + 1) * DIM));
  }
}

const gc = () => {
  v8.setFlagsFromString('--expose-gc');
  vm.runInNewContext('gc')();
  vm.runInNewContext('gc')();
};

async function load(index, data, n) {
  index.bulkLoad(true);
  let id = 1;
  for (const chunk of vectorChunks(data, n, 1)) {
    index.addBatch(
      chunk.map(() => id++),
      chunk,
    );
    await new Promise((r) => setImmediate(r));
  }
}

/** Child: one setup at one size; prints a JSON line. */
async function child({ n, kind, quant, data, queries: truthFile, tuning = {} }) {
  const { createVectorIndex } = await import(
    path.join(ROOT, 'dist/semantic/index/vector-index.js')
  );
  const { queries, truth } = JSON.parse(fs.readFileSync(truthFile, 'utf8'));
  const index = createVectorIndex({
    dim: DIM,
    kind,
    quant,
    ...(tuning.efSearch ? { efSearch: tuning.efSearch } : {}),
    ...(tuning.m ? { hnswM: tuning.m } : {}),
    ...(tuning.nprobe ? { nprobe: tuning.nprobe } : {}),
    ...(tuning.nlist ? { nlist: tuning.nlist } : {}),
  });
  index.search(new Float32Array(DIM).fill(1 / Math.sqrt(DIM)), 1); // loads the addon
  gc();
  const rss0 = process.memoryUsage().rss;
  const js0 = process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers;
  let peak = rss0;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 100);
  const t0 = performance.now();
  await load(index, data, n); // a frame of its own: no chunk stays referenced after it
  const loadS = (performance.now() - t0) / 1000;
  index.bulkLoad(false);
  await index.settled();
  const buildS = (performance.now() - t0) / 1000 - loadS;
  clearInterval(sampler);
  gc();
  const mem = process.memoryUsage();
  const rss = mem.rss - rss0;
  const js = mem.heapUsed + mem.arrayBuffers - js0;
  const qs = queries.map((q) => Float32Array.from(q));
  for (const q of qs.slice(0, 50)) index.search(q, 10); // warm up
  const times = [];
  let found = 0;
  qs.forEach((q, i) => {
    const t = performance.now();
    const hits = index.search(q, 10);
    times.push(performance.now() - t);
    const want = new Set(truth[i]);
    for (const h of hits) if (want.has(h.id)) found++;
  });
  times.sort((a, b) => a - b);
  // What FAISS holds: the main segment as serialized, or the flat vectors.
  const faissBytes = index.exportMain?.()?.buffer.length ?? index.stored * DIM * 4;
  const out = {
    n,
    kind,
    quant,
    built: index.kind,
    rssPerEntry: rss / n,
    jsPerEntry: js / n,
    faissPerEntry: faissBytes / n,
    peakPerEntry: (peak - rss0) / n,
    loadS,
    buildS,
    p50: percentile(times, 0.5),
    p99: percentile(times, 0.99),
    recall: found / (qs.length * 10),
  };
  process.stdout.write(`${JSON.stringify(out)}\n`);
  process.exit(0);
}

/** Parent: the queries and their exact top 10 over all n vectors (FAISS flat, by chunk). */
async function groundTruth(n, data, count) {
  const { newFlatIP } = await import(path.join(ROOT, 'dist/semantic/index/faiss.js'));
  // Queries: other points of the same distribution (another seed).
  const [qchunk] = vectorChunks(data, count, 99);
  const qs = new Float32Array(count * DIM);
  for (const [i, q] of qchunk.entries()) qs.set(q, i * DIM);
  const best = qchunk.map(() => []);
  let base = 1;
  for (const chunk of vectorChunks(data, n, 1)) {
    const flat = newFlatIP(DIM);
    const xs = new Float32Array(chunk.length * DIM);
    for (const [i, v] of chunk.entries()) xs.set(v, i * DIM);
    flat.add(xs);
    const r = flat.search(qs, Math.min(10, chunk.length));
    const k = Math.min(10, chunk.length);
    for (let q = 0; q < count; q++) {
      for (let j = 0; j < k; j++) {
        best[q].push([base + Number(r.labels[q * k + j]), r.distances[q * k + j]]);
      }
      best[q].sort((a, b) => b[1] - a[1]);
      best[q].length = Math.min(best[q].length, 10);
    }
    flat.dispose();
    base += chunk.length;
  }
  return { queries: qchunk.map((q) => [...q]), truth: best.map((b) => b.map(([id]) => id)) };
}

async function main() {
  const sizes = flag('sizes', '100000').split(',').map(Number);
  const data = flag('data', 'clustered');
  const setups = flag('setups', 'flat:fp32,hnsw:fp32,hnsw:q8,ivf:fp32,ivf:q8').split(',');
  const skip = new Set(flag('skip', '1000000:hnsw').split(','));
  const count = Number(flag('queries', '500'));
  // Index options other than the defaults (HNSW's efSearch and M, IVF's nprobe and nlist).
  const tuning = {
    efSearch: Number(flag('ef-search', '0')),
    m: Number(flag('m', '0')),
    nprobe: Number(flag('nprobe', '0')),
    nlist: Number(flag('nlist', '0')),
  };
  const results = [];
  console.log(`machine: ${JSON.stringify(machineInfo())}; load ${loadavg()}`);
  for (const n of sizes) {
    const truthFile = path.join(ROOT, `bench/results/.quant-truth-${data}-${n}.json`);
    fs.mkdirSync(path.dirname(truthFile), { recursive: true });
    if (!fs.existsSync(truthFile)) {
      const t0 = performance.now();
      fs.writeFileSync(truthFile, JSON.stringify(await groundTruth(n, data, count)));
      console.log(
        `ground truth for ${n} ${data}: ${((performance.now() - t0) / 1000).toFixed(0)} s`,
      );
    }
    for (const s of setups) {
      const [kind, quant] = s.split(':');
      if (skip.has(`${n}:${kind}`)) continue;
      const spec = JSON.stringify({ n, kind, quant, data, queries: truthFile, tuning });
      const line = execFileSync(
        process.execPath,
        [fileURLToPath(import.meta.url), '--child', spec],
        {
          encoding: 'utf8',
          maxBuffer: 1 << 20,
          stdio: ['ignore', 'pipe', 'inherit'],
        },
      );
      const r = JSON.parse(line.trim().split('\n').pop());
      results.push(r);
      console.log(
        `${n} ${kind}:${quant} (${r.built}) RSS ${r.rssPerEntry.toFixed(0)} B/entry (FAISS ${r.faissPerEntry.toFixed(0)}, JS ${r.jsPerEntry.toFixed(0)}, peak ${r.peakPerEntry.toFixed(0)}) | load ${r.loadS.toFixed(1)} s build ${r.buildS.toFixed(1)} s | search p50 ${r.p50.toFixed(3)} p99 ${r.p99.toFixed(3)} ms | recall@10 ${r.recall.toFixed(3)} | load avg ${loadavg()}`,
      );
    }
  }
  const rows = results.map((r) => [
    String(r.n),
    `${r.kind} ${r.quant}`,
    r.rssPerEntry.toFixed(0),
    r.faissPerEntry.toFixed(0),
    r.jsPerEntry.toFixed(0),
    r.peakPerEntry.toFixed(0),
    r.buildS.toFixed(1),
    r.p50.toFixed(3),
    r.p99.toFixed(3),
    r.recall.toFixed(3),
  ]);
  const table = mdTable(
    [
      'N',
      'setup',
      'RSS B/entry',
      'FAISS B/entry',
      'JS B/entry',
      'peak B/entry',
      'build s',
      'p50 ms',
      'p99 ms',
      'recall@10',
    ],
    rows,
  );
  console.log(table);
  const file = path.join(
    ROOT,
    `bench/results/quant-${new Date().toISOString().replace(/[:.]/g, '-')}.md`,
  );
  fs.writeFileSync(file, `# bench/quant.mjs ${args.join(' ')}\n\ndata ${data}\n\n${table}\n`);
  const json = flag('json');
  if (json) fs.writeFileSync(json, JSON.stringify(results, null, 2));
}

if (args[0] === '--child') await child(JSON.parse(args[1]));
else await main();
