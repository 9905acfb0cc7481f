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
// --probe ordered (the default): one probe loop per instance asks only for the oldest write it
// has not shown yet, and the next one as soon as it has; an instance applies the record of
// changes in order, so a later write is seldom shown before an earlier one, and when it is, it is
// counted late (the figure can only come out too high). The probe load stays at about one SEMGET
// per instance per --poll-ms. --probe each: every followed write has its own loop on every
// instance (the first version of this bench): the probes then grow with the delay they measure
// (200 followed writes/s x 3 instances x 30 ms = 18,000 SEMGET/s), and on a loaded machine they
// make the delay they measure.
//
// The reference, in the same run: the same number of messages PUBLISHed to redis-server and
// received by N-1 subscribers (the fastest Redis can tell another process of a change; no
// record is read, no index updated), and the writer's own SEMSET latency.
//
//   npm run build && node bench/fleet.mjs [--instances 4] [--rate 1000] [--seconds 10]
//                                         [--sample 5] [--poll-ms 1] [--probe ordered|each]
//                                         [--extra-args "--index flat"]
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
} from './lib.mjs';

const OPTS = {
  instances: 4,
  rate: 1000,
  seconds: 10,
  sample: 5,
  'poll-ms': 1,
  probe: 'ordered',
  'extra-args': '',
};

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function startSidecars(n, redisPort, extra) {
  const ports = [];
  for (let i = 0; i < n; i++) {
    const port = await freePort();
    const child = startServer(`semcache-${i}`, process.execPath, [
      path.join(ROOT, 'dist', 'cli.js'),
      ...['--port', String(port), '--upstream', `redis://127.0.0.1:${redisPort}`],
      ...['--embedder', 'hash', '--log-level', 'warn'],
      ...extra,
    ]);
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

/** --probe ordered: one loop per instance, asking for the oldest write not yet shown. */
function follower(conn, pollMs) {
  const queue = [];
  let running = false;
  const run = async () => {
    running = true;
    while (queue.length > 0) {
      const w = queue[0];
      probes++;
      const got = await conn.call('SEMGET', w.text);
      const ms = performance.now() - w.t0;
      if ((got !== null && String(got) === w.value) || ms > 10_000) {
        queue.shift();
        w.done(ms > 10_000 ? Number.POSITIVE_INFINITY : ms);
      } else await sleep(pollMs);
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
      : follower(c, o['poll-ms']),
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
  installCleanup();
  console.log(machineInfo());
  const redis = await startRedis();
  const ports = await startSidecars(
    o.instances,
    redis.port,
    o['extra-args'].split(' ').filter((a) => a !== ''),
  );
  const load0 = loadavg();
  const p = await propagation(ports, o);
  const ref = await pubsub(redis.port, o.instances, o);
  const infos = await Promise.all(ports.map((port) => respOnce(port, ['SEMINFO'])));
  const feedMem = await respOnce(redis.port, ['MEMORY', 'USAGE', 'semcache:feed']);
  const feedLen = await respOnce(redis.port, ['XLEN', 'semcache:feed']);
  console.log(
    `\n${o.instances} instances${o['extra-args'] ? ` (${o['extra-args']})` : ''}, ${o.rate} SEMSET/s asked (${p.rate.toFixed(0)}/s done) for ${o.seconds} s, every ${o.sample}th write followed on the ${o.instances - 1} others, polled every ${o['poll-ms']} ms (--probe ${o.probe}: ${probes} SEMGETs, ${(probes / o.seconds).toFixed(0)}/s); load ${load0} -> ${loadavg()}\n`,
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
    console.log(
      `instance ${i}: feed_events ${f.feed_events}, lag ${f.feed_lag_ms} ms, entries ${f.entries}`,
    );
  }
}

runMain(main);
