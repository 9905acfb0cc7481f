#!/usr/bin/env node
// bench/fleet.mjs — how fast does a write through one sidecar reach the others?
//
// N semcache processes (default 4) in front of one redis-server, --embedder hash. Writers send
// SEMSET at a fixed total rate (default 1,000/s), spread over the instances. For every --sample'th
// write, from the moment the writer's OK arrives, each other instance is asked the exact text
// (SEMGET) every --poll-ms until it answers with the value: that delay is the write's
// propagation to that instance. A poll costs the instance what a lookup costs; the delay is
// known to within --poll-ms.
//
// --probe ordered (the default): one probe loop per instance asks, in one pipelined batch, for
// every write it has not shown yet (up to --probe-batch of them, oldest first); a write counts
// as visible at the reply that first showed it, so a delay can only come out too high (by up to
// one round trip and --poll-ms). With --probe-batch 1 it asks only for the oldest, and a later
// write shown first is counted late: at ~150 followed writes/s per instance and a SEMGET round
// trip of 6 ms under load, that one probe in flight saturates and its own queue adds to the
// delay (the rows of 2026-12-06 evening in docs/benchmarks.md). --probe each: every followed write has its own loop on every
// instance (the first version of this bench): the probes then grow with the delay they measure
// (200 followed writes/s x 3 instances x 30 ms = 18,000 SEMGET/s), and on a loaded machine they
// make the delay they measure.
//
// The reference, in the same run: the same number of messages PUBLISHed to redis-server and
// received by N-1 subscribers (the fastest Redis can tell another process of a change; no
// record is read, no index updated), and the writer's own SEMSET latency.
//
// --preload N: the fleet is warm instead of empty. N records (clustered random vectors,
// bench/lib.mjs writeEntries) are written into Redis first; instance 0 starts, builds the
// namespace's HNSW graph and saves it as the snapshot; the others start and load it; the
// writes begin once every instance serves from a full graph. From empty (the default), the
// namespace grows from 0 during the run, and below --snapshot-min-entries every instance
// builds its own graph again every tailMax writes.
//
//   npm run build && node bench/fleet.mjs [--instances 4] [--rate 1000] [--seconds 10]
//                                         [--sample 5] [--poll-ms 1] [--probe ordered|each]
//                                         [--probe-batch 64]
//                                         [--preload 0] [--extra-args "--index flat"] [--stalls]
// --stalls: each instance preloads bench/stall-probe.cjs, and the report says, per instance, how
// often and how long its main thread was held (over 40 ms) during the run.
import path from 'node:path';
import {
  fmt1,
  freePort,
  installCleanup,
  loadavg,
  machineInfo,
  mdTable,
  pairs,
  parseFlags,
  percentile,
  RespConn,
  ROOT,
  respOnce,
  runMain,
  startRedis,
  startServer,
  waitForPing,
  writeEntries,
} from './lib.mjs';
import { stallProbeEnv, stallsOf } from './stalls.mjs';

const OPTS = {
  instances: 4,
  rate: 1000,
  seconds: 10,
  sample: 5,
  'poll-ms': 1,
  probe: 'ordered',
  'probe-batch': 64,
  preload: 0,
  'extra-args': '',
  stalls: false,
};

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The instances' processes (their logs hold the stall probe's lines with --stalls). */
const sidecars = [];

async function startSidecars(n, redisPort, extra, first = 0, stalls = false) {
  const ports = [];
  const env = stalls ? stallProbeEnv() : process.env;
  for (let i = first; i < first + n; i++) {
    const port = await freePort();
    const child = startServer(
      `semcache-${i}`,
      process.execPath,
      [
        path.join(ROOT, 'dist', 'cli.js'),
        ...['--port', String(port), '--upstream', `redis://127.0.0.1:${redisPort}`],
        ...['--embedder', 'hash', '--log-level', 'warn'],
        ...extra,
      ],
      { env },
    );
    sidecars.push(child);
    await waitForPing(`semcache-${i}`, port, child, 20_000);
    for (;;) {
      const info = pairs(await respOnce(port, ['SEMINFO']));
      if (info.state === 'ready') break;
      await sleep(50);
    }
    ports.push(port);
  }
  return ports;
}

/** Wait until the default namespace is served by a built HNSW graph (and, if asked, saved). */
async function fullGraph(port, { saved = false, limitMs = 1_800_000 } = {}) {
  const t0 = performance.now();
  for (;;) {
    const ns = pairs(await respOnce(port, ['SEMINFO', 'NS', 'default'], 60_000));
    const info = saved ? pairs(await respOnce(port, ['SEMINFO'], 60_000)) : undefined;
    const built = ns.index === 'hnsw' && Number(ns.index_building) === 0;
    if (built && (!saved || Number(info.snapshot_saves) >= 1)) return performance.now() - t0;
    if (performance.now() - t0 > limitMs) throw new Error(`no full graph on :${port}`);
    await sleep(200);
  }
}

/** SEMGETs sent to follow writes (the load the measurement itself puts on the instances). */
let probes = 0;

/** Poll `conn` with SEMGET text until it answers `value`; ms since `t0` (--probe each). */
async function seen(conn, text, value, t0, pollMs) {
  for (;;) {
    probes++;
    const got = await conn.call('SEMGET', text);
    if (got !== null && String(got) === value) return performance.now() - t0;
    if (performance.now() - t0 > 10_000) return Number.POSITIVE_INFINITY;
    await sleep(pollMs);
  }
}

/** --probe ordered: one loop per instance, asking for up to `batch` unseen writes at a time. */
function follower(conn, pollMs, batch) {
  const queue = [];
  let running = false;
  const run = async () => {
    running = true;
    while (queue.length > 0) {
      const ask = queue.slice(0, batch);
      probes += ask.length;
      const got = await Promise.all(ask.map((w) => conn.call('SEMGET', w.text)));
      const now = performance.now();
      const seen = new Set();
      for (const [i, w] of ask.entries()) {
        const ms = now - w.t0;
        if ((got[i] !== null && String(got[i]) === w.value) || ms > 10_000) {
          seen.add(w);
          w.done(ms > 10_000 ? Number.POSITIVE_INFINITY : ms);
        }
      }
      const unseen = ask.some((w) => !seen.has(w));
      for (let i = queue.length - 1; i >= 0; i--) if (seen.has(queue[i])) queue.splice(i, 1);
      // One write at a time (--probe-batch 1) goes on only once the oldest was seen.
      if (unseen) await sleep(pollMs);
    }
    running = false;
  };
  return (text, value, t0) =>
    new Promise((done) => {
      queue.push({ text, value, t0, done });
      if (!running) void run();
    });
}

async function propagation(ports, o) {
  const writers = await Promise.all(ports.map((p) => RespConn.connect(p)));
  const pollers = await Promise.all(ports.map((p) => RespConn.connect(p)));
  const follow = pollers.map((c) =>
    o.probe === 'each'
      ? (text, value, t0) => seen(c, text, value, t0, o['poll-ms'])
      : follower(c, o['poll-ms'], o['probe-batch']),
  );
  const delays = [];
  const writeMs = [];
  const pending = [];
  const total = o.rate * o.seconds;
  const start = performance.now();
  for (let i = 0; i < total; i++) {
    // Pace: write i goes out at start + i / rate.
    const due = start + (i * 1000) / o.rate;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
    const w = i % ports.length;
    const text = `fleet write ${i} ${Math.random().toString(36).slice(2)}`;
    const value = `v${i}`;
    const t = performance.now();
    const write = writers[w].call('SEMSET', `fleet:${i}`, text, value).then((r) => {
      const ok = performance.now();
      writeMs.push(ok - t);
      if (String(r) !== 'OK') throw new Error(`SEMSET: ${r}`);
      if (i % o.sample !== 0) return;
      return Promise.all(
        follow.map((f, j) =>
          j === w ? undefined : f(text, value, ok).then((d) => delays.push(d)),
        ),
      );
    });
    pending.push(write);
  }
  await Promise.all(pending);
  const elapsed = (performance.now() - start) / 1000;
  for (const c of [...writers, ...pollers]) c.close();
  return { delays, writeMs, rate: total / elapsed };
}

/** The reference: PUBLISH to redis-server, received by n-1 subscribers, at the same rate. */
async function pubsub(redisPort, n, o) {
  const subs = await Promise.all(Array.from({ length: n - 1 }, () => RespConn.connect(redisPort)));
  const sent = new Map();
  const delays = [];
  for (const s of subs) {
    // Messages are pushes, not replies: taken before the reader matches replies to calls.
    const reply = s.reader.onValue;
    s.reader.onValue = (v) => {
      if (Array.isArray(v) && String(v[0]) === 'message') {
        const t = sent.get(String(v[2]));
        if (t !== undefined) delays.push(performance.now() - t);
      } else reply(v);
    };
    await s.call('SUBSCRIBE', 'fleet-bench');
  }
  const pub = await RespConn.connect(redisPort);
  const total = Math.floor((o.rate * o.seconds) / o.sample);
  const start = performance.now();
  for (let i = 0; i < total; i++) {
    const due = start + (i * 1000 * o.sample) / o.rate;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
    sent.set(String(i), performance.now());
    await pub.call('PUBLISH', 'fleet-bench', String(i));
  }
  await sleep(200);
  for (const c of [pub, ...subs]) c.close();
  return delays;
}

function row(name, xs) {
  const s = [...xs].sort((a, b) => a - b);
  return [
    name,
    String(s.length),
    fmt1(percentile(s, 0.5)),
    fmt1(percentile(s, 0.99)),
    fmt1(s[s.length - 1]),
  ];
}

async function main() {
  const o = parseFlags(OPTS);
  if (o.probe !== 'ordered' && o.probe !== 'each') throw new Error('--probe is ordered or each');
  if (!(Number.isInteger(o['probe-batch']) && o['probe-batch'] >= 1))
    throw new Error('--probe-batch is a whole number, 1 or more');
  installCleanup();
  console.log(machineInfo());
  const redis = await startRedis();
  const extra = o['extra-args'].split(' ').filter((a) => a !== '');
  let ports;
  if (o.preload > 0) {
    const ms = await writeEntries(redis.port, o.preload, {
      modelId: 'hash:hash-v1-384:384',
      dim: 384,
      data: 'clustered',
    });
    console.log(`${o.preload} records written in ${fmt1(ms / 1000)} s`);
    ports = await startSidecars(1, redis.port, extra, 0, o.stalls);
    console.log(
      `instance 0: graph built and saved in ${fmt1((await fullGraph(ports[0], { saved: true })) / 1000)} s`,
    );
    ports.push(...(await startSidecars(o.instances - 1, redis.port, extra, 1, o.stalls)));
    for (const [i, port] of ports.entries())
      console.log(`instance ${i}: full graph after ${fmt1((await fullGraph(port)) / 1000)} s more`);
  } else ports = await startSidecars(o.instances, redis.port, extra, 0, o.stalls);
  const load0 = loadavg();
  const runFrom = Date.now();
  const p = await propagation(ports, o);
  const runTo = Date.now();
  const ref = await pubsub(redis.port, o.instances, o);
  const infos = await Promise.all(ports.map((port) => respOnce(port, ['SEMINFO'])));
  const feedMem = await respOnce(redis.port, ['MEMORY', 'USAGE', 'semcache:feed']);
  const feedLen = await respOnce(redis.port, ['XLEN', 'semcache:feed']);
  console.log(
    `\n${o.instances} instances${o['extra-args'] ? ` (${o['extra-args']})` : ''}${o.preload > 0 ? `, warm: ${o.preload} entries preloaded` : ', from empty'}, ${o.rate} SEMSET/s asked (${p.rate.toFixed(0)}/s done) for ${o.seconds} s, every ${o.sample}th write followed on the ${o.instances - 1} others, polled every ${o['poll-ms']} ms (--probe ${o.probe}${o.probe === 'ordered' ? `, batches of up to ${o['probe-batch']}` : ''}: ${probes} SEMGETs, ${(probes / o.seconds).toFixed(0)}/s); load ${load0} -> ${loadavg()}\n`,
  );
  console.log(
    mdTable(
      ['measure', 'samples', 'p50 ms', 'p99 ms', 'max ms'],
      [
        row('write OK -> visible on another instance (SEMGET hits)', p.delays),
        row('reference: PUBLISH -> received by a subscriber', ref),
        row("writer's SEMSET latency", p.writeMs),
      ],
      ['l', 'r', 'r', 'r', 'r'],
    ),
  );
  const p99 = percentile(
    [...p.delays].sort((a, b) => a - b),
    0.99,
  );
  const r99 = percentile(
    [...ref].sort((a, b) => a - b),
    0.99,
  );
  console.log(
    `\np99 propagation ${fmt1(p99)} ms = ${(p99 / r99).toFixed(1)}x the pub/sub reference`,
  );
  console.log(
    `feed after the run: ${feedLen} events, ${(Number(feedMem) / feedLen).toFixed(0)} bytes each (MEMORY USAGE ${feedMem})`,
  );
  for (const [i, r] of infos.entries()) {
    const f = pairs(r);
    const stalls = o.stalls ? `, ${stallsOf(sidecars[i].log(), runFrom, runTo)}` : '';
    console.log(
      `instance ${i}: feed_events ${f.feed_events}, lag ${f.feed_lag_ms} ms, entries ${f.entries}${stalls}`,
    );
  }
}

runMain(main);
