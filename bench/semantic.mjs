#!/usr/bin/env node
// bench/semantic.mjs — the semantic cache: exact hits, semantic lookups with a
// MiniLM-shaped model, the hand-written FAISS + Redis baseline, index rebuild.
//
// Everything runs on one redis-server this script starts (save "", appendonly
// no) on a free loopback port; semcache is `node dist/cli.js --upstream ...`.
//
//   exact     SEMGET of a stored text (an exact hit: normalized-text map + one
//             MGET, never the model) vs a proxied GET of the same key, both
//             through semcache, both with redis-benchmark -c 50 at -P 1 and
//             -P 16, interleaved, median of R rounds. semcache runs with
//             --embedder hash (an exact hit never embeds; SEMINFO checks that).
//   semantic  SEMGET of distinct texts (so every query is embedded; semcache
//             also runs with --embed-cache 0) with the MiniLM-shaped model
//             (scripts/make-model.mjs --preset minilm: the real all-MiniLM-L6-v2
//             shape and tokenizer, random weights) at each size, 1 and 32
//             clients, batching on (--embed-batch 32) and off (--embed-batch 1).
//             Entries are written straight into Redis in semcache's storage
//             layout (docs/storage.md) with random unit 384-d vectors and the
//             `model` field semcache expects, then semcache rebuilds its index
//             from Redis. The threshold is 0 (--threshold 0, both designs) so the
//             nearest entry is always a hit: every lookup takes the full path
//             (embed, search, read the value from Redis).
//   naive     bench/naive-faiss-redis.mjs on the same Redis data, same model dir,
//             same driver and concurrency (see that file).
//   rebuild   entries/s of semcache's index rebuild from Redis, from its log line
//             "index rebuilt from redis: N entries in M ms", for every semcache
//             start above; also the time from spawn to SEMINFO state "ready",
//             and (--index auto) how long the background build of the HNSW
//             graph (in a worker thread; IVF first above 4096 entries) takes
//             after that.
//
// Order per size: write the entries; start semcache batch on, wait until ready,
// measure one 32-client row while its HNSW graph is still being built; start
// semcache batch off, wait until ready; wait until both have built HNSW; measure batch on, then batch off (steady state); stop both; start the
// naive baseline, measure it.
//
// The load driver (bench/lib.mjs drive) is closed-loop: C connections, each
// sends the next SEMGET when its reply arrived; replies inside the measuring
// window (after a warm-up) count. Latencies are client-side.
//
// Usage: node bench/semantic.mjs [--quick] [--only exact,semantic,naive,rebuild]
//          [--sizes 10000,100000] [--clients 1,32] [--duration S] [--warmup S]
//          [--batch 32] [--index auto|flat|hnsw|ivf] [--words 12] [--threshold 0]
//          [--exact-requests 100000,300000] [--exact-rounds 3] [--exact-clients 50]
//          [--model-dir DIR] [--extra-args "..."] [--json FILE] [--timeout S]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import {
  die,
  drive,
  ensureMiniLm,
  fmt,
  fmt1,
  fmtRatio,
  freePort,
  installCleanup,
  loadavg,
  logTail,
  machineInfo,
  mdTable,
  median,
  pairs,
  ROOT,
  ratio,
  respOnce,
  runMain,
  runTracked,
  sh,
  startRedis,
  startServer,
  stopServer,
  textFor,
  waitForPing,
  writeEntries,
} from './lib.mjs';

const ALL = ['exact', 'semantic', 'naive', 'rebuild'];
const { values: opt } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string', default: ALL.join(',') },
    sizes: { type: 'string' },
    clients: { type: 'string', default: '1,32' },
    duration: { type: 'string' },
    warmup: { type: 'string' },
    batch: { type: 'string', default: '32' },
    index: { type: 'string', default: 'auto' },
    words: { type: 'string', default: '12' },
    threshold: { type: 'string', default: '0' },
    'exact-requests': { type: 'string' },
    'exact-rounds': { type: 'string' },
    'exact-clients': { type: 'string', default: '50' },
    'model-dir': { type: 'string' },
    'extra-args': { type: 'string', default: '' },
    json: { type: 'string' },
    timeout: { type: 'string', default: '900' },
    'no-migrating-cell': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (opt.help) {
  const src = fs.readFileSync(new URL(import.meta.url), 'utf8');
  console.log(src.split('\nimport ')[0]);
  process.exit(0);
}
const quick = opt.quick;
const list = (s, name) =>
  s.split(',').map((x) => {
    const n = Number(x.trim());
    if (!Number.isInteger(n) || n < 1) die(`--${name}: "${x}" is not a positive integer`);
    return n;
  });
const only = opt.only.split(',').map((s) => s.trim());
for (const o of only) if (!ALL.includes(o)) die(`--only: unknown part "${o}" (${ALL.join(', ')})`);
const sizes = list(opt.sizes ?? (quick ? '10000' : '10000,100000'), 'sizes');
const clientList = list(opt.clients, 'clients');
const durationMs = Number(opt.duration ?? (quick ? 4 : 12)) * 1000;
const warmupMs = Number(opt.warmup ?? (quick ? 1 : 2)) * 1000;
const batchOn = list(opt.batch, 'batch')[0];
const words = list(opt.words, 'words')[0];
const threshold = Number(opt.threshold);
const exactReq = list(
  opt['exact-requests'] ?? (quick ? '20000,100000' : '100000,300000'),
  'exact-requests',
);
const exactRounds = list(opt['exact-rounds'] ?? (quick ? '1' : '3'), 'exact-rounds')[0];
const exactClients = list(opt['exact-clients'], 'exact-clients')[0];
const timeoutMs = Number(opt.timeout) * 1000;
const extraArgs = opt['extra-args'].split(/\s+/).filter(Boolean);
if (!['auto', 'flat', 'hnsw', 'ivf'].includes(opt.index))
  die('--index must be auto, flat, hnsw or ivf');

const CLK_TCK = Number(sh('getconf', ['CLK_TCK'])) || 100;
const CLI = path.join(ROOT, 'dist', 'cli.js');
const MODEL = 'Xenova/all-MiniLM-L6-v2'; // semcache's default --model: the record's model field
const PREFIX = 'semcache:';
const EXACT_TEXT = 'how do I reset the password of my account';
const EXACT_KEY = 'bench:exact';
const EXACT_VALUE = `To reset your password, open Settings > Account > Password and follow the link we email you.`;

installCleanup();
const say = (s) => console.log(s);
const seconds = (ms) => `${(ms / 1000).toFixed(1)} s`;

// ---------- redis ----------

// ---------- semcache ----------
let scCount = 0;
async function startSemcache(redisPort, args) {
  const port = await freePort();
  const name = `semcache-${++scCount}`;
  const all = [
    CLI,
    '--port',
    `${port}`,
    '--bind',
    '127.0.0.1',
    '--upstream',
    `redis://127.0.0.1:${redisPort}`,
    ...args,
    ...extraArgs,
  ];
  const child = startServer(name, process.execPath, all, { cwd: ROOT });
  child.port = port;
  child.args = args;
  await waitForPing(name, port, child, 60_000);
  return child;
}

/** Poll SEMINFO until state is ready; returns ms from spawn to ready and the log's figures. */
async function waitReady(child, expected) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exited) die(`${child.exited}. Last log lines:\n${logTail(child)}`);
    const info = pairs(await respOnce(child.port, ['SEMINFO']).catch(() => null));
    if (info.state === 'ready') {
      const readyMs = performance.now() - child.startedAt;
      const log = child.log();
      const m = log.match(/index rebuilt from redis: (\d+) entries in (\d+) ms/);
      const e = log.match(/embedder \S+ \S+ ready \(dim \d+, (\d+) ms\)/);
      if (expected !== undefined && info.entries !== expected)
        die(
          `semcache has ${info.entries} entries after the rebuild, expected ${expected}:\n${logTail(child)}`,
        );
      const ns = pairs(await respOnce(child.port, ['SEMINFO', 'NS', 'default']));
      return {
        readyMs,
        rebuildN: m ? Number(m[1]) : Number.NaN,
        rebuildMs: m ? Number(m[2]) : Number.NaN,
        modelMs: e ? Number(e[1]) : Number.NaN,
        model: info.model,
        indexKind: ns.index,
      };
    }
    if (info.state === 'failed') die(`semcache failed:\n${logTail(child)}`);
    if (Date.now() > deadline) die(`semcache not ready within ${opt.timeout}s:\n${logTail(child)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// ---------- 1. exact hits ----------
async function runBenchmark(port, pipeline, requests, args, auth = []) {
  const a = [
    '-h',
    '127.0.0.1',
    '-p',
    `${port}`,
    ...auth,
    '-c',
    `${exactClients}`,
    '-n',
    `${requests}`,
    '-P',
    `${pipeline}`,
    '-q',
    '--csv',
    ...args,
  ];
  const r = await runTracked('redis-benchmark', a, timeoutMs);
  for (const line of r.out.split('\n')) {
    const m = line.match(/^"([^"]*)","([\d.]+)"/);
    if (m) return Number(m[2]);
  }
  die(
    `redis-benchmark ${a.join(' ')} failed (code ${r.code}, signal ${r.signal}):\n${r.out}${r.err}`,
  );
}

async function exactPart(redisPort, results) {
  say('\n== exact-hit SEMGET vs proxied GET (hash embedder) ==');
  await respOnce(redisPort, ['FLUSHALL']);
  const sc = await startSemcache(redisPort, ['--embedder', 'hash']);
  await waitReady(sc);
  const set = await respOnce(sc.port, ['SEMSET', EXACT_KEY, EXACT_TEXT, EXACT_VALUE]);
  if (set !== 'OK') die(`SEMSET: ${set}`);
  const got = await respOnce(sc.port, ['SEMGET', EXACT_TEXT]);
  if (!Buffer.isBuffer(got) || got.toString() !== EXACT_VALUE)
    die(`SEMGET did not return the value: ${got}`);
  const pipelines = [1, 16];
  // As the default user (no password), then as an ACL user: its connections
  // authenticate, so each has its own upstream connection and SEMGET's GET
  // runs on it, under the user's permissions (docs/security.md).
  await respOnce(redisPort, ['ACL', 'SETUSER', 'bench', 'on', '>benchpw', '~bench:*', '+@all']);
  const users = [
    { name: 'default', auth: [] },
    { name: 'acl', auth: ['--user', 'bench', '-a', 'benchpw'] },
  ];
  const samples = {};
  for (const u of users)
    for (const p of pipelines) samples[`${u.name} ${p}`] = { GET: [], SEMGET: [] };
  for (let r = 1; r <= exactRounds; r++) {
    for (const u of users) {
      for (const [i, p] of pipelines.entries()) {
        const n = exactReq[Math.min(i, exactReq.length - 1)];
        // alternate which goes first, so drift hits both alike
        const order = r % 2 ? ['GET', 'SEMGET'] : ['SEMGET', 'GET'];
        for (const which of order) {
          const args = which === 'GET' ? ['GET', EXACT_KEY] : ['SEMGET', EXACT_TEXT];
          const rps = await runBenchmark(sc.port, p, n, args, u.auth);
          samples[`${u.name} ${p}`][which].push(rps);
          say(
            `round ${r}/${exactRounds}  ${u.name.padEnd(7)} P${String(p).padEnd(3)} ${which.padEnd(7)} ${fmt(rps).padStart(9)} rps   (load ${loadavg()})`,
          );
        }
      }
    }
  }
  const ns = pairs(await respOnce(sc.port, ['SEMINFO', 'NS', 'default']));
  await stopServer(sc);
  results.exact = {
    samples,
    requests: exactReq,
    rounds: exactRounds,
    clients: exactClients,
    seminfo: {
      exact_hits: ns.exact_hits,
      misses: ns.misses,
      embed_count: ns.embed_count,
      lookup_p50_ms: ns.lookup_p50_ms,
    },
    rows: users.flatMap((u) =>
      pipelines.map((p) => {
        const get = median(samples[`${u.name} ${p}`].GET);
        const sem = median(samples[`${u.name} ${p}`].SEMGET);
        return { user: u.name, p, get, sem, ratio: ratio(sem, get) };
      }),
    ),
  };
}

// ---------- 2./3. semantic lookups ----------
const latencyKeys = ['lookup', 'embed', 'search'];
async function nsSnapshot(port) {
  const ns = pairs(await respOnce(port, ['SEMINFO', 'NS', 'default'], 10_000));
  const all = pairs(await respOnce(port, ['SEMINFO'], 10_000));
  const out = {
    modelCalls: Number(all.embed_model_calls),
    modelTexts: Number(all.embed_model_texts),
  };
  for (const k of latencyKeys)
    out[k] = {
      count: Number(ns[`${k}_count`]),
      sum: Number(ns[`${k}_count`]) * Number(ns[`${k}_mean_ms`]),
    };
  return out;
}
async function naiveSnapshot(port) {
  const r = await respOnce(port, ['BENCHSTATS'], 10_000);
  return JSON.parse(r.toString());
}

/** Run one cell; `snap` takes a stats snapshot at the start and end of the measuring window. */
async function cell(port, size, clients, tag, snap) {
  const seed = size * 100 + clients; // same texts for every target at this size and concurrency
  let before;
  let after;
  const t1 = setTimeout(() => (before = snap?.(port).catch(() => undefined)), warmupMs);
  const t2 = setTimeout(() => (after = snap?.(port).catch(() => undefined)), warmupMs + durationMs);
  const load0 = os.loadavg()[0];
  const r = await drive({
    port,
    concurrency: clients,
    warmupMs,
    durationMs,
    command: (i) => ['SEMGET', textFor(seed, i, words)],
  });
  clearTimeout(t1);
  clearTimeout(t2);
  r.load = ((load0 + os.loadavg()[0]) / 2).toFixed(2);
  r.before = await before;
  r.after = await after;
  if (r.errors > 0) die(`${tag}: ${r.errors} error replies, first: ${r.firstError}`);
  const m = phaseMeans(r);
  const parts = m
    ? Object.entries(m)
        .map(([k, v]) => `${k} ${fmt1(v)}`)
        .join(', ')
    : 'n/a';
  say(
    `${String(size).padStart(7)} entries  ${String(clients).padStart(2)} clients  ${tag.padEnd(22)} ${fmt1(r.rps).padStart(7)} rps  p50 ${fmt1(r.p50).padStart(7)} ms  p99 ${fmt1(r.p99).padStart(7)} ms  hits ${r.hits}/${r.n}  (load ${loadavg()})\n${' '.repeat(45)}means ms: client ${fmt1(r.mean)}, ${parts}`,
  );
  return r;
}

function phaseMeans(r) {
  if (!r.before || !r.after) return undefined;
  const out = {};
  if (r.before.lookup) {
    for (const k of latencyKeys) {
      const dc = r.after[k].count - r.before[k].count;
      out[k] = dc > 0 ? (r.after[k].sum - r.before[k].sum) / dc : Number.NaN;
    }
    // Texts per model call in the window (SEMINFO embed_model_*; NaN on an older semcache).
    const calls = r.after.modelCalls - r.before.modelCalls;
    out.batch = calls > 0 ? (r.after.modelTexts - r.before.modelTexts) / calls : Number.NaN;
  } else {
    const dn = r.after.n - r.before.n;
    for (const k of ['embed', 'search', 'get'])
      out[k] = dn > 0 ? (r.after[k] - r.before[k]) / dn : Number.NaN;
  }
  return out;
}

/** CPU seconds (all threads) a process has used, from /proc; NaN where there is no /proc. */
function cpuSeconds(pid) {
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(f[11]) + Number(f[12])) / CLK_TCK; // utime + stime
  } catch {
    return Number.NaN;
  }
}

/**
 * Waits until every instance has finished semcache's background index builds
 * after a rebuild: SEMINFO NS default index_building is 0 (polled every
 * 0.5 s), or, for a semcache without that field, the process is idle (under 5% of
 * a core over two 1 s windows in a row). Sets inst.idleAt (performance.now() when
 * done) and inst.idleCpu (the process's CPU seconds then).
 */
async function waitIdle(instances, limitMs) {
  const deadline = performance.now() + limitMs;
  const state = instances.map((inst) => ({
    inst,
    last: cpuSeconds(inst.sc.pid),
    lastAt: performance.now(),
    quiet: 0,
  }));
  for (let tick = 0; ; tick++) {
    await new Promise((r) => setTimeout(r, 500));
    for (const st of state) {
      if (st.inst.idleAt !== undefined) continue;
      if (st.inst.sc.exited) die(`${st.inst.sc.exited}:\n${logTail(st.inst.sc)}`);
      const now = performance.now();
      const cpu = cpuSeconds(st.inst.sc.pid);
      const ns = pairs(
        await respOnce(st.inst.sc.port, ['SEMINFO', 'NS', 'default'], 10_000).catch(() => null),
      );
      if (ns.index_building !== undefined) {
        if (ns.index_building === 0) {
          st.inst.idleAt = now;
          st.inst.idleCpu = cpu;
          st.inst.doneBy = 'SEMINFO index_building 0';
        }
        continue;
      }
      if (tick % 2 === 0) continue; // CPU windows of 1 s
      const share = (cpu - st.last) / ((now - st.lastAt) / 1000);
      if (!(share >= 0.05)) {
        // NaN (no /proc) counts as idle: nothing to wait for then
        if (++st.quiet === 1) st.quietFrom = { at: st.lastAt, cpu: st.last };
        if (st.quiet >= 2) {
          st.inst.idleAt = st.quietFrom.at;
          st.inst.idleCpu = st.quietFrom.cpu;
          st.inst.doneBy = 'process idle';
        }
      } else st.quiet = 0;
      st.last = cpu;
      st.lastAt = now;
    }
    if (state.every((st) => st.inst.idleAt !== undefined)) return true;
    if (performance.now() > deadline) return false;
  }
}

async function sizePart(redisPort, size, modelDir, dim, results) {
  say(`\n== ${fmt(size)} entries ==`);
  const modelId = `transformers:${MODEL}:${dim}`;
  const loadMs = await writeEntries(redisPort, size, { modelId, dim, words, prefix: PREFIX });
  say(
    `wrote ${fmt(size)} entries into redis (storage layout, model ${modelId}) in ${seconds(loadMs)}`,
  );
  const res = { size, loadMs, cells: [], rebuilds: [] };
  results.sizes.push(res);
  const common = [
    '--embedder',
    'transformers',
    '--model-dir',
    modelDir,
    '--embed-cache',
    '0',
    '--threshold',
    `${threshold}`,
    '--index',
    opt.index,
  ];
  const maxClients = Math.max(...clientList);

  // Batching on and off. The second instance starts once the first is ready, so
  // the first one's rebuild figures are clean; both then build their HNSW
  // graphs in the background at the same time, and are measured one after the
  // other once both are idle (steady state).
  const modes = only.includes('semantic')
    ? [
        { tag: `semcache batch ${batchOn}`, batch: batchOn, kind: 'on' },
        { tag: 'semcache batch off', batch: 1, kind: 'off' },
      ]
    : only.includes('rebuild')
      ? [{ tag: `semcache batch ${batchOn}`, batch: batchOn, kind: 'on' }]
      : [];
  const instances = [];
  for (const [k, m] of modes.entries()) {
    const sc = await startSemcache(redisPort, [...common, '--embed-batch', `${m.batch}`]);
    const rb = await waitReady(sc, size);
    const inst = { sc, m, rb, readyAt: performance.now(), readyCpu: cpuSeconds(sc.pid) };
    instances.push(inst);
    rb.note = k === 0 ? '' : 'started while the first instance built its graph';
    res.rebuilds.push(rb);
    say(
      `${m.tag}: ready ${seconds(rb.readyMs)} after spawn (model ${rb.modelMs} ms, rebuild ${fmt(rb.rebuildN)} entries in ${rb.rebuildMs} ms = ${fmt(rb.rebuildN / (rb.rebuildMs / 1000))}/s, index ${rb.indexKind})`,
    );
    if (
      k === 0 &&
      only.includes('semantic') &&
      opt.index === 'auto' &&
      size > 2048 &&
      !opt['no-migrating-cell']
    ) {
      // What clients see right after a restart, while the HNSW graph is built.
      const r = await cell(sc.port, size, maxClients, `${m.tag} (migrating)`, nsSnapshot);
      res.cells.push({
        target: `${m.tag}, during the HNSW build`,
        kind: 'migrating',
        clients: maxClients,
        ...r,
        means: phaseMeans(r),
        before: undefined,
        after: undefined,
      });
    }
  }
  if (instances.length > 0) {
    const t = performance.now();
    const done = await waitIdle(instances, timeoutMs);
    for (const inst of instances) {
      inst.rb.migrationMs = inst.idleAt === undefined ? Number.NaN : inst.idleAt - inst.readyAt;
      inst.rb.migrationCpu = inst.idleAt === undefined ? Number.NaN : inst.idleCpu - inst.readyCpu;
    }
    say(
      `${done ? `background builds done (${instances[0].doneBy})` : `still busy after ${opt.timeout}s, measuring anyway`} after ${seconds(performance.now() - t)} more: ${instances.map((i) => `${i.m.tag}: ready → HNSW built ${seconds(i.rb.migrationMs)}, ${fmt1(i.rb.migrationCpu)} CPU s`).join('; ')}`,
    );
    if (!done)
      for (const inst of instances)
        inst.rb.note = `${inst.rb.note} not idle after ${opt.timeout}s`.trim();
  }
  for (const inst of only.includes('semantic') ? instances : []) {
    for (const c of clientList) {
      const r = await cell(inst.sc.port, size, c, inst.m.tag, nsSnapshot);
      res.cells.push({
        target: inst.m.tag,
        kind: inst.m.kind,
        clients: c,
        ...r,
        means: phaseMeans(r),
        before: undefined,
        after: undefined,
      });
    }
  }
  for (const inst of instances) await stopServer(inst.sc);

  if (only.includes('naive')) {
    const port = await freePort();
    const args = [
      path.join(ROOT, 'bench', 'naive-faiss-redis.mjs'),
      '--port',
      `${port}`,
      '--redis-port',
      `${redisPort}`,
      '--model-dir',
      modelDir,
      '--threshold',
      `${threshold}`,
      '--prefix',
      PREFIX,
    ];
    const child = startServer(`naive-${size}`, process.execPath, args, { cwd: ROOT });
    await waitForPing('naive-faiss-redis', port, child, timeoutMs);
    const ready = child.log().match(/ready: (\d+) vectors .* loaded in (\d+) ms/);
    res.naiveLoad = {
      readyMs: performance.now() - child.startedAt,
      vectors: Number(ready?.[1]),
      loadMs: Number(ready?.[2]),
    };
    if (res.naiveLoad.vectors !== size) die(`naive loaded ${ready?.[1]} vectors, expected ${size}`);
    say(
      `naive FAISS+Redis: ready ${seconds(res.naiveLoad.readyMs)} after spawn (${fmt(size)} vectors into IndexFlatL2 in ${res.naiveLoad.loadMs} ms)`,
    );
    for (const c of clientList) {
      const r = await cell(port, size, c, 'naive FAISS+Redis', naiveSnapshot);
      res.cells.push({
        target: 'naive FAISS+Redis',
        kind: 'naive',
        clients: c,
        ...r,
        means: phaseMeans(r),
        before: undefined,
        after: undefined,
      });
    }
    await stopServer(child);
  }
}

// ---------- the model alone ----------
/**
 * What batching can gain at most: the embedder semcache uses (dist/, model in a
 * worker thread, as in semcache) in this process, nothing else running: texts/s
 * one at a time, 32 concurrent single-text calls (what --embed-batch 1 sees at 32
 * clients), and calls of 32 texts.
 */
async function modelCeiling(modelDir) {
  const { createTransformersEmbedder } = await import(
    pathToFileURL(path.join(ROOT, 'dist/semantic/embedders/transformers.js')).href
  );
  const e = createTransformersEmbedder({ modelDir, maxBatch: 32 });
  await e.load();
  let k = 0;
  const next = () => textFor(4242, k++, words);
  await e.embed(Array.from({ length: 32 }, next)); // warm-up
  const ms = quick ? 2000 : 6000;
  const rate = async (fn) => {
    const t0 = performance.now();
    let texts = 0;
    while (performance.now() - t0 < ms) texts += await fn();
    return texts / ((performance.now() - t0) / 1000);
  };
  const single = await rate(async () => (await e.embed([next()])).length);
  const concurrent = await rate(
    async () => (await Promise.all(Array.from({ length: 32 }, () => e.embed([next()])))).length,
  );
  const batch = await rate(async () => (await e.embed(Array.from({ length: 32 }, next))).length);
  await e.close();
  const out = { single, concurrent, batch, load: loadavg() };
  say(
    `model alone: ${fmt1(single)} texts/s one at a time, ${fmt1(concurrent)} with 32 concurrent single calls, ${fmt1(batch)} in calls of 32 (the ceiling)  (load ${out.load})`,
  );
  return out;
}

// ---------- report ----------
const mark = (ok) => (ok ? 'met' : '**missed**');

function report(machine, results, modelDir, elapsedMs) {
  const out = [];
  const cmd = `node bench/semantic.mjs ${process.argv.slice(2).join(' ')}`.trim();
  out.push(`# semcache semantic-cache benchmark (${machine.date})`, '');
  out.push(
    `${machine.cpu}, ${machine.cores} cores, ${machine.memGb} GB, ${machine.os}; node ${machine.node}, redis ${machine.redis}, semcache ${machine.semcache}`,
    '',
  );
  out.push(
    `Command: \`${cmd}\` (${seconds(elapsedMs)}). Load average at start / end: ${results.loadStart} / ${results.loadEnd} (other jobs share this machine).`,
    '',
  );
  if (results.exact) {
    const e = results.exact;
    out.push(`## 1. Exact-hit SEMGET vs proxied GET`, '');
    out.push(
      `redis-benchmark -c ${e.clients} through semcache (--embedder hash), requests P1 ${fmt(e.requests[0])} / P16 ${fmt(e.requests[1] ?? e.requests[0])}, median of ${e.rounds} round(s), GET and SEMGET interleaved. Same key and value (${EXACT_VALUE.length} bytes). "default": no password (clients share upstream connections); "acl": redis-benchmark --user bench -a ... (ACL user ~bench:* +@all; each client authenticates, so has its own upstream connection, and SEMGET reads the value on it as that user).`,
      '',
    );
    out.push(
      mdTable(
        ['user', '', 'GET via semcache rps', 'SEMGET exact hit rps', 'SEMGET / GET', 'target'],
        e.rows.map((r) => [
          r.user,
          `P${r.p}`,
          fmt(r.get),
          fmt(r.sem),
          fmtRatio(r.ratio),
          r.user === 'acl' ? `≥ 0.8× ${mark(r.ratio >= 0.8)}` : `≥ 0.5× ${mark(r.ratio >= 0.5)}`,
        ]),
      ),
      '',
    );
    out.push(
      `SEMINFO after the run: exact_hits ${e.seminfo.exact_hits}, misses ${e.seminfo.misses}, embed_count ${e.seminfo.embed_count} (exact hits never called the embedder).`,
      '',
    );
  }
  if (results.sizes.some((s) => s.cells.length > 0)) {
    out.push(`## 2./3. Semantic SEMGET: semcache (batching on / off) vs naive FAISS + Redis`, '');
    out.push(
      `MiniLM-shaped model (${path.relative(ROOT, modelDir)}; 6 layers, hidden 384, real tokenizer, random weights), fp32, onnxruntime-node CPU. Every query is a distinct ${words}-word text (embedded, never cached: --embed-cache 0), threshold ${threshold} (every lookup is a hit and reads its value from Redis). semcache --index ${opt.index}; naive: IndexFlatL2, one model call per request. Closed loop, ${seconds(warmupMs)} warm-up + ${seconds(durationMs)} measured per row; latency is client-side.`,
      '',
    );
    const rows = [];
    for (const s of results.sizes)
      for (const c of s.cells)
        rows.push([
          fmt(s.size),
          `${c.clients}`,
          c.target,
          fmt1(c.rps),
          fmt1(c.p50),
          fmt1(c.p99),
          `${((100 * c.hits) / Math.max(1, c.n)).toFixed(0)}%`,
          c.load,
        ]);
    out.push(
      mdTable(['entries', 'clients', 'target', 'req/s', 'p50 ms', 'p99 ms', 'hits', 'load'], rows, [
        'r',
        'r',
        'l',
        'r',
        'r',
        'r',
        'r',
        'r',
      ]),
      '',
    );
    const rrows = [];
    for (const s of results.sizes) {
      for (const c of clientList) {
        const get = (kind) => s.cells.find((x) => x.kind === kind && x.clients === c)?.rps;
        const onOff = ratio(get('on'), get('off'));
        const vsNaive = ratio(get('on'), get('naive'));
        rrows.push([
          fmt(s.size),
          `${c}`,
          fmtRatio(onOff),
          c === 32 ? mark(onOff >= 4) : '(no target)',
          fmtRatio(vsNaive),
          mark(vsNaive >= 3),
        ]);
      }
    }
    out.push(
      mdTable(
        [
          'entries',
          'clients',
          'batch on / off',
          'target ≥ 4× at 32',
          'semcache / naive',
          'target ≥ 3×',
        ],
        rrows,
      ),
      '',
    );
    if (results.ceiling) {
      const c = results.ceiling;
      out.push(
        `The model alone (semcache's embedder from dist/, worker thread, in the benchmark process, nothing else running; ${words}-word texts): ${fmt1(c.single)} texts/s one at a time, ${fmt1(c.concurrent)} texts/s as 32 concurrent single-text calls, **${fmt1(c.batch)} texts/s in calls of 32: the ceiling**. So batching can gain at most ${fmtRatio(c.batch / c.concurrent)} over 32 concurrent single calls on this machine (load ${c.load}).`,
        '',
      );
      const mrows = [];
      for (const s of results.sizes) {
        const on = s.cells.find((x) => x.kind === 'on' && x.clients === 32)?.rps;
        const mig = s.cells.find((x) => x.kind === 'migrating')?.rps;
        const vsModel = ratio(on, c.batch);
        const vsSteady = ratio(mig, on);
        mrows.push([
          fmt(s.size),
          fmt1(on),
          fmtRatio(vsModel),
          mark(vsModel >= 0.85),
          fmt1(mig),
          fmtRatio(vsSteady),
          mark(vsSteady >= 0.8),
        ]);
      }
      out.push(
        mdTable(
          [
            'entries',
            'semcache req/s at 32 clients',
            'of the ceiling',
            'target ≥ 0.85×',
            'while its index builds',
            'of steady',
            'target ≥ 0.8×',
          ],
          mrows,
        ),
        '',
      );
    }
    out.push(`### Where the time goes`, '');
    out.push(
      `Means over each measuring window. semcache: from SEMINFO NS default (lookup = whole SEMGET inside semcache, embed = waiting for and running the model call incl. the batching queue, search = FAISS); "other" = lookup − embed − search (value read from Redis, bookkeeping); "outside" = client latency − lookup (RESP parsing, proxy, loopback, driver); "batch" = texts per model call (SEMINFO embed_model_texts / embed_model_calls over the window). naive: embed / search / GET timed in the process, one text per model call.`,
      '',
    );
    const wrows = [];
    for (const s of results.sizes)
      for (const c of s.cells) {
        const m = c.means ?? {};
        if (c.kind === 'naive')
          wrows.push([
            fmt(s.size),
            `${c.clients}`,
            c.target,
            fmt1(c.mean),
            '–',
            fmt1(m.embed),
            fmt1(m.search),
            `GET ${fmt1(m.get)}`,
            fmt1(c.mean - (m.embed + m.search + m.get)),
            '1',
          ]);
        else
          wrows.push([
            fmt(s.size),
            `${c.clients}`,
            c.target,
            fmt1(c.mean),
            fmt1(m.lookup),
            fmt1(m.embed),
            fmt1(m.search),
            fmt1(m.lookup - m.embed - m.search),
            fmt1(c.mean - m.lookup),
            fmt1(m.batch),
          ]);
      }
    out.push(
      mdTable(
        [
          'entries',
          'clients',
          'target',
          'client mean ms',
          'lookup',
          'embed',
          'search',
          'other',
          'outside',
          'batch',
        ],
        wrows,
        ['r', 'r', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
      ),
      '',
    );
  }
  const rb = results.sizes.flatMap((s) => s.rebuilds.map((r, k) => ({ size: s.size, k, ...r })));
  if (rb.length > 0) {
    out.push(`## 4. Index rebuild from Redis`, '');
    out.push(
      `"rebuild" is semcache's log line "index rebuilt from redis: N entries in M ms" (SCAN + pipelined HMGET + inserts into the index; the model is loaded before it and not included); the target is on its rate. "spawn → ready": from starting the process to SEMINFO state ready (node start, model load, rebuild). With --index auto the rebuild bulk-loads into a flat index and semcache is ready then; the index is then built in a worker thread (above 4096 entries an IVF index first, in seconds, then the HNSW graph), and swapped in: "ready → HNSW built" is until SEMINFO NS default reports index_building 0, with the CPU seconds the process used meanwhile, worker included (the first instance also served the "during the HNSW build" row in that time; both instances built their HNSW graphs at the same time).`,
      '',
    );
    const rows = rb.map((r) => {
      const rate = r.rebuildN / (r.rebuildMs / 1000);
      return [
        fmt(r.size),
        r.k === 0 ? `batch on${r.note ? `, ${r.note}` : ''}` : `batch off (${r.note})`,
        fmt(r.rebuildMs),
        fmt(rate),
        r.size >= 100_000 ? mark(rate >= 20_000) : '(target at 100k)',
        seconds(r.readyMs),
        fmt(r.modelMs),
        Number.isFinite(r.migrationMs)
          ? `${seconds(r.migrationMs)} (${fmt1(r.migrationCpu)} CPU s)`
          : '–',
      ];
    });
    for (const s of results.sizes)
      if (s.naiveLoad)
        rows.push([
          fmt(s.size),
          'naive: SCAN + HGET into IndexFlatL2',
          fmt(s.naiveLoad.loadMs),
          fmt(s.size / (s.naiveLoad.loadMs / 1000)),
          '(reference)',
          seconds(s.naiveLoad.readyMs),
          '–',
          '–',
        ]);
    out.push(
      mdTable(
        [
          'entries',
          'semcache instance',
          'rebuild ms',
          'entries/s',
          'target ≥ 20k/s',
          'spawn → ready',
          'model load ms',
          'ready → HNSW built',
        ],
        rows,
        ['r', 'l', 'r', 'r', 'l', 'r', 'r', 'r'],
      ),
      '',
    );
    out.push(
      `Writing the entries into Redis (this script, pipelined): ${results.sizes.map((s) => `${fmt(s.size)} in ${seconds(s.loadMs)}`).join(', ')}.`,
      '',
    );
  }
  return out.join('\n');
}

// ---------- main ----------
async function main() {
  if (!fs.existsSync(CLI)) die('dist/cli.js not found: run `npm run build` first.');
  const t0 = performance.now();
  const machine = machineInfo();
  say(
    `machine: ${machine.cpu}, ${machine.cores} cores, ${machine.os}; node ${machine.node}, redis ${machine.redis}, semcache ${machine.semcache}`,
  );
  const results = { machine, sizes: [], loadStart: loadavg() };
  say(`load average: ${results.loadStart}`);
  const needModel = only.some((o) => o !== 'exact');
  const modelDir = needModel
    ? path.resolve(opt['model-dir'] ?? (await ensureMiniLm(say)))
    : undefined;
  let dim = 384;
  if (modelDir) {
    dim = JSON.parse(fs.readFileSync(path.join(modelDir, 'config.json'), 'utf8')).hidden_size;
    say(`model: ${modelDir} (hidden ${dim})`);
  }
  const redis = await startRedis();
  if (only.includes('exact')) await exactPart(redis.port, results);
  if (only.includes('semantic')) results.ceiling = await modelCeiling(modelDir);
  if (needModel) for (const size of sizes) await sizePart(redis.port, size, modelDir, dim, results);
  results.loadEnd = loadavg();
  const md = report(machine, results, modelDir ?? '', performance.now() - t0);
  say(`\n${md}`);
  const stamp = machine.date.replace(/[:.]/g, '-');
  const dir = path.join(ROOT, 'bench', 'results');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `semantic-${stamp}.md`);
  fs.writeFileSync(file, `${md}\n`);
  say(`wrote ${path.relative(process.cwd(), file)}`);
  if (opt.json) {
    fs.writeFileSync(opt.json, `${JSON.stringify(results, null, 2)}\n`);
    say(`wrote ${opt.json}`);
  }
}

await runMain(main);
