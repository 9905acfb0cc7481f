#!/usr/bin/env node
// bench/join.mjs — how long until a sidecar that joins a fleet serves from a full HNSW graph?
//
// --entries records (random unit vectors, 384-d, written straight into redis-server in
// semcache's layout, --embedder hash's model id) are put in Redis. Instance A starts on
// them with the defaults (--index auto: IVF first, then the HNSW graph built in a worker)
// and, holding the lease, saves its graph as the namespace's snapshot: A's time to a full
// graph is the reference, what every instance paid before snapshots. Then instance B
// starts beside it and loads the snapshot: B's time to a full graph, from spawn, is the
// join time. Both are checked with SEMSEARCH FP32 <a record's vector> COUNT 1, which must
// find that record (--probes of them).
//
//   npm run build && node bench/join.mjs [--entries 100000] [--probes 200] [--data random|clustered]
//                                        [--joins 1] [--baseline path/to/other/dist/cli.js]
// (clustered: points around 100 centres, whose graph builds several times faster)
// --joins N: B joins N times (stopped in between), the median reported; --baseline: each
// join of B is followed by one of that other build of semcache (e.g. a worktree of an
// earlier commit), side by side on the same snapshot.
import path from 'node:path';
import {
  fmt,
  fmt1,
  freePort,
  installCleanup,
  loadavg,
  machineInfo,
  mdTable,
  pairs,
  parseFlags,
  RespConn,
  ROOT,
  respOnce,
  runMain,
  startRedis,
  startServer,
  waitForPing,
  writeEntries,
} from './lib.mjs';

const OPTS = { entries: 100_000, probes: 200, data: 'random', joins: 1, baseline: '' };
const MODEL = 'hash:hash-v1-384:384';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function startSidecar(name, redisPort, cli = path.join(ROOT, 'dist', 'cli.js')) {
  const port = await freePort();
  const t0 = performance.now();
  const child = startServer(name, process.execPath, [
    cli,
    ...['--port', String(port), '--upstream', `redis://127.0.0.1:${redisPort}`],
    ...['--embedder', 'hash'],
  ]);
  await waitForPing(name, port, child, 60_000);
  return { child, port, t0 };
}

/** ms from spawn until SEMINFO says ready, and until the namespace answers from a built graph. */
async function timeline(s, limitMs) {
  let ready;
  for (;;) {
    if (performance.now() - s.t0 > limitMs)
      throw new Error(`no full graph after ${limitMs} ms:\n${s.child.log()}`);
    // Times are taken when the answer arrives: a busy event loop answers late.
    const info = pairs(await respOnce(s.port, ['SEMINFO'], 60_000));
    if (info.state === 'ready') {
      ready ??= performance.now() - s.t0;
      const ns = pairs(await respOnce(s.port, ['SEMINFO', 'NS', 'default'], 60_000));
      const now = performance.now() - s.t0;
      if (ns.index === 'hnsw' && Number(ns.index_building) === 0) return { ready, graph: now, ns };
    }
    await sleep(20);
  }
}

/** Self-recall through the graph: each probed record's own vector finds it first. */
async function selfRecall(port, redisPort, probes, n) {
  const c = await RespConn.connect(port);
  const r = await RespConn.connect(redisPort);
  let found = 0;
  for (let i = 0; i < probes; i++) {
    const key = `bench:sem:${Math.floor((i * n) / probes)}`;
    const vec = await r.call('HGET', `semcache:rec:${key}`, 'vec');
    const hits = await c.call('SEMSEARCH', 'FP32', vec, 'COUNT', '1');
    if (Array.isArray(hits) && String(hits[0]) === key) found++;
  }
  c.close();
  r.close();
  return found / probes;
}

async function snapshotBytes(redisPort) {
  const m = pairs(await respOnce(redisPort, ['HGETALL', 'semcache:snap:default']));
  let mem = 0;
  for (let i = 0; i < Number(m.chunks); i++) {
    mem += Number(
      await respOnce(redisPort, ['MEMORY', 'USAGE', `semcache:snapchunk:${m.gen}:${i}`]),
    );
  }
  return {
    payload: Number(m.bytes),
    head: Number(m.head),
    memory: mem,
    positions: Number(m.vectors),
  };
}

async function main() {
  const o = parseFlags(OPTS);
  installCleanup();
  console.log(machineInfo());
  const redis = await startRedis();
  const writeMs = await writeEntries(redis.port, o.entries, {
    modelId: MODEL,
    dim: 384,
    data: o.data,
  });
  console.log(`${fmt(o.entries)} records written in ${fmt(writeMs)} ms; load ${loadavg()}`);

  const a = await startSidecar('semcache-a', redis.port);
  // The records went straight into Redis: no change event was ever written. One write through
  // A (in a namespace of its own) gives the feed one, as any fleet writing through semcache has:
  // a snapshot saved at feed position 0-0 does not carry its entries to a joiner (docs/fleet.md).
  while (pairs(await respOnce(a.port, ['SEMINFO'], 60_000)).state !== 'ready') await sleep(20);
  await respOnce(a.port, ['SEMSET', 'bench:marker', 'a first change', 'x', 'NS', 'marker'], 60_000);
  const ta = await timeline(a, 3_600_000);
  // The graph is saved right after it is built.
  for (let i = 0; i < 600; i++) {
    const info = pairs(await respOnce(a.port, ['SEMINFO']));
    if (Number(info.snapshot_saves) >= 1) break;
    await sleep(100);
  }
  const snap = await snapshotBytes(redis.port);
  const ra = await selfRecall(a.port, redis.port, o.probes, o.entries);

  /** One join of `cli`: times, self-recall, what its log says; stopped after. */
  const join = async (name, cli) => {
    const s = await startSidecar(name, redis.port, cli);
    const t = await timeline(s, 600_000);
    const recall = await selfRecall(s.port, redis.port, o.probes, o.entries);
    const log = s.child.log();
    await respOnce(s.port, ['SEMINFO']); // still up
    s.child.kill('SIGTERM');
    await s.child.exitPromise;
    return { ...t, recall, log };
  };
  const joins = [];
  const baselines = [];
  for (let i = 0; i < Math.max(1, Number(o.joins)); i++) {
    joins.push(await join(`semcache-b${i}`, undefined));
    if (o.baseline) baselines.push(await join(`baseline-b${i}`, path.resolve(o.baseline)));
  }
  const median = (runs, f) => runs.map(f).sort((x, y) => x - y)[Math.floor((runs.length - 1) / 2)];
  const tb = { ready: median(joins, (j) => j.ready), graph: median(joins, (j) => j.graph) };
  const rb = median(joins, (j) => j.recall);
  const last = joins.at(-1).log;
  const loaded = /snapshot loaded.*/.exec(last)?.[0] ?? '(no snapshot loaded)';
  const rebuilt = /index rebuilt from redis.*/.exec(last)?.[0] ?? '';
  const taken = /\d+ vectors taken from the snapshot.*/.exec(last)?.[0] ?? '';
  const held = /\d+ entries taken from snapshots.*/.exec(last)?.[0] ?? '';
  const each = (runs) => runs.map((j) => fmt1(j.graph / 1000)).join(', ');

  console.log(`\n${fmt(o.entries)} entries, 384-d, --index auto; load after ${loadavg()}\n`);
  console.log(
    mdTable(
      ['instance', 'ready (s)', 'full HNSW graph (s)', `self-recall@1 (${o.probes} probes)`],
      [
        [
          'A: builds the graph (as every instance did before)',
          fmt1(ta.ready / 1000),
          fmt1(ta.graph / 1000),
          ra.toFixed(3),
        ],
        [
          `B: joins, loads the snapshot${joins.length > 1 ? ` (median of ${joins.length})` : ''}`,
          fmt1(tb.ready / 1000),
          fmt1(tb.graph / 1000),
          rb.toFixed(3),
        ],
        ...(baselines.length > 0
          ? [
              [
                `baseline ${o.baseline} joins${baselines.length > 1 ? ` (median of ${baselines.length})` : ''}`,
                fmt1(median(baselines, (j) => j.ready) / 1000),
                fmt1(median(baselines, (j) => j.graph) / 1000),
                median(baselines, (j) => j.recall).toFixed(3),
              ],
            ]
          : []),
      ],
      ['l', 'r', 'r', 'r'],
    ),
  );
  console.log(
    `\njoin to a full graph: ${(ta.graph / tb.graph).toFixed(1)}x faster than building it`,
  );
  if (baselines.length > 0) {
    const ratio = median(baselines, (j) => j.graph) / tb.graph;
    console.log(`baseline's join / B's join: ${ratio.toFixed(2)}`);
    console.log(`B's joins (s): ${each(joins)}; baseline's: ${each(baselines)}`);
  }
  console.log(`B: ${rebuilt}`);
  if (held) console.log(`B: ${held}`);
  if (taken) console.log(`B: ${taken}`);
  console.log(`B: ${loaded}`);
  console.log(
    `snapshot in redis: ${fmt(snap.positions)} positions, payload ${fmt1(snap.payload / 1e6)} MB (keys and entries ${fmt1(snap.head / 1e6)} MB), MEMORY USAGE ${fmt1(snap.memory / 1e6)} MB (${fmt(snap.memory / snap.positions)} B per entry)`,
  );
}

runMain(main);
