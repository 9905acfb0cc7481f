#!/usr/bin/env node
// bench/stall.mjs — does a heavy SEM command hold up everyone else?
//
// One client sends a heavy SEM command in a loop (each sent when the last is answered) while
// `redis-cli --latency` PINGs semcache from another connection (a PING every 10 ms). The worst
// PING latency is what any other client of that semcache would wait behind the heavy command.
// The same PINGs sent to the redis-server behind it, in the same run, are the reference: what
// the machine itself adds under that load. Issue 8's goal: a few milliseconds at most.
//
//   npm run build && node bench/stall.mjs [--entries 5000] [--seconds 5] [--embedder hash]
//                                         [--text-bytes 16384] [--only SEMSET]
//
// The namespace is filled with --entries entries (SEMSET, pipelined); texts are random words.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {
  freePort,
  installCleanup,
  loadavg,
  machineInfo,
  pairs,
  parseFlags,
  RespConn,
  RespError,
  ROOT,
  respOnce,
  runMain,
  startRedis,
  startServer,
  textFor,
  waitForPing,
} from './lib.mjs';

// --text-bytes: the texts of SEMSET and SEMEMBED (default: the most semcache takes by default).
const OPTS = {
  entries: 5000,
  seconds: 5,
  embedder: 'hash',
  only: '',
  'text-bytes': 16_384,
  settle: false,
};

/** A text of `bytes` bytes starting with `i` (a new text each time). */
const big = (i, bytes) =>
  `${i} ${'lorem ipsum dolor sit amet '.repeat(bytes / 27 + 1)}`.slice(0, bytes);

/** The heavy commands, as the issue measured them (name, argv or argv(i, opts), clients). */
const SCENARIOS = [
  ['nothing else (reference)', null],
  [
    'SEMSEARCH COUNT 1000 FETCHK 100000 MMR 0.5',
    [
      'SEMSEARCH',
      'TEXT',
      'find order',
      'NS',
      'stall',
      'COUNT',
      '1000',
      'FETCHK',
      '100000',
      'MMR',
      '0.5',
    ],
  ],
  [
    'SEMSEARCH COUNT 100 FETCHK 2000 MMR 0.5',
    [
      'SEMSEARCH',
      'TEXT',
      'find order',
      'NS',
      'stall',
      'COUNT',
      '100',
      'FETCHK',
      '2000',
      'MMR',
      '0.5',
    ],
  ],
  [
    'SEMSEARCH COUNT 10000 WITHSCORES',
    ['SEMSEARCH', 'TEXT', 'find order', 'NS', 'stall', 'COUNT', '10000', 'WITHSCORES'],
  ],
  // A new text each time (a repeated one would be answered from the embedding cache).
  [
    'SEMSET, --text-bytes text',
    (i, o) => ['SEMSET', 'stall:big', big(i, o['text-bytes']), 'v', 'NS', 'big'],
  ],
  ['SEMEMBED, --text-bytes text', (i, o) => ['SEMEMBED', big(i, o['text-bytes'])]],
  // Many lookups at once: their embeddings come back together, and each then
  // searches the index on the event loop.
  [
    '32 clients of SEMGET, a new text each time',
    (i) => ['SEMGET', textFor(11, i, 8), 'NS', 'stall'],
    32,
  ],
  // The first row runs while the index of the fresh entries builds in the background.
  ['nothing else, at the end', null],
];

/** redis-cli --latency against `port` for `seconds`: { min, max, avg, samples } in ms. */
function latency(port, seconds) {
  return new Promise((resolve, reject) => {
    const child = spawn('redis-cli', ['-p', String(port), '--latency'], { stdio: 'pipe' });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('exit', () => {
      const [min, max, avg, samples] = out.trim().split(/\s+/).map(Number);
      resolve({ min, max, avg, samples });
    });
    setTimeout(() => child.kill('SIGINT'), seconds * 1000);
  });
}

/** `argv` (or argv(i)) in a loop on one connection until `until`; resolves { n, meanMs, maxMs, error }. */
async function loop(port, argv, until, o) {
  const c = await RespConn.connect(port);
  const times = [];
  let error;
  try {
    while (performance.now() < until) {
      const t0 = performance.now();
      const reply = await c.call(...(typeof argv === 'function' ? argv(times.length, o) : argv));
      times.push(performance.now() - t0);
      if (reply instanceof RespError) {
        error = reply.message;
        break;
      }
    }
  } finally {
    c.close();
  }
  const meanMs = times.reduce((s, x) => s + x, 0) / Math.max(1, times.length);
  return { n: times.length, meanMs, maxMs: Math.max(0, ...times), error };
}

/** loop()'s results of several clients as one. */
function merge(results) {
  const n = results.reduce((s, r) => s + r.n, 0);
  return {
    n,
    meanMs: results.reduce((s, r) => s + r.meanMs * r.n, 0) / Math.max(1, n),
    maxMs: Math.max(0, ...results.map((r) => r.maxMs)),
    error: results.find((r) => r.error)?.error,
  };
}

async function fill(port, n) {
  const c = await RespConn.connect(port);
  for (let i = 0; i < n; i += 500) {
    const batch = [];
    for (let j = i; j < Math.min(n, i + 500); j++)
      batch.push(c.call('SEMSET', `stall:${j}`, textFor(7, j, 8), `v${j}`, 'NS', 'stall'));
    const replies = await Promise.all(batch);
    const bad = replies.find((r) => r instanceof RespError);
    if (bad) throw new Error(`fill: ${bad.message}`);
  }
  c.close();
}

async function main() {
  const o = parseFlags(OPTS);
  installCleanup();
  const redis = await startRedis();
  const port = await freePort();
  const semcache = startServer('semcache', process.execPath, [
    path.join(ROOT, 'dist', 'cli.js'),
    ...['--port', String(port), '--upstream', `redis://127.0.0.1:${redis.port}`],
    ...['--embedder', o.embedder, '--log-level', 'warn'],
    ...['--max-text-bytes', String(Math.max(16_384, o['text-bytes']))],
  ]);
  await waitForPing('semcache', port, semcache, 20_000);
  const t0 = performance.now();
  await fill(port, o.entries);
  console.log(`filled ${o.entries} entries in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  if (o.settle) {
    // --settle: measure once the background index build is done, not during it.
    for (;;) {
      const info = pairs(await respOnce(port, ['SEMINFO', 'NS', 'stall']));
      if (Number(info.index_building) === 0) break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    console.log(`index built after ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  const rows = [];
  for (const [name, argv, clients = 1] of SCENARIOS) {
    if (o.only && !name.includes(o.only)) continue;
    const until = performance.now() + o.seconds * 1000;
    // Each client its own texts: client c numbers its commands from c x 1e6.
    const mine = (c) => (typeof argv === 'function' ? (i, opts) => argv(i + c * 1e6, opts) : argv);
    const [viaSemcache, direct, heavy] = await Promise.all([
      latency(port, o.seconds),
      latency(redis.port, o.seconds),
      argv
        ? Promise.all(
            Array.from({ length: clients }, (_, c) => loop(port, mine(c), until, o)),
          ).then(merge)
        : Promise.resolve(undefined),
    ]);
    const row = { name, viaSemcache, direct, heavy };
    rows.push(row);
    const h = heavy
      ? `; heavy: ${heavy.n} done, mean ${heavy.meanMs.toFixed(0)} ms, max ${heavy.maxMs.toFixed(0)} ms${heavy.error ? `, error: ${heavy.error}` : ''}`
      : '';
    console.log(
      `${name}: PING via semcache max ${viaSemcache.max} ms avg ${viaSemcache.avg}; redis direct max ${direct.max} ms${h}`,
    );
  }
  const table = [
    '| heavy command, in a loop | worst PING via semcache (ms) | mean PING via semcache (ms) | worst PING to redis direct (ms) | heavy commands done | heavy command mean / max (ms) |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
    ...rows.map(
      (r) =>
        `| ${r.name} | ${r.viaSemcache.max} | ${r.viaSemcache.avg} | ${r.direct.max} | ${r.heavy?.n ?? '-'} | ${r.heavy ? `${r.heavy.meanMs.toFixed(0)} / ${r.heavy.maxMs.toFixed(0)}${r.heavy.error ? ` (${r.heavy.error})` : ''}` : '-'} |`,
    ),
  ].join('\n');
  const m = machineInfo();
  const info = `${m.date}: ${m.cpu}, ${m.cores} cores, Node ${m.node}, Redis ${m.redis}, semcache ${m.semcache}; ${o.entries} entries, ${o.seconds} s per row, --embedder ${o.embedder}, texts of ${o['text-bytes']} bytes; load ${loadavg()}`;
  console.log(`\n${table}\n\n${info}`);
  const dir = path.join(ROOT, 'bench', 'results');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `stall-${new Date().toISOString().replace(/[:.]/g, '-')}.md`);
  fs.writeFileSync(file, `${table}\n\n${info}\n`);
  console.log(`wrote ${path.relative(ROOT, file)}`);
}

runMain(main);
