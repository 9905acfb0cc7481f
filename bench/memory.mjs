#!/usr/bin/env node
// bench/memory.mjs — how much memory does a whole semcache process hold per entry?
//
// --entries records (clustered random unit vectors, 384-d, bench/lib.mjs writeEntries, in
// semcache's layout with --embedder hash's model id) are written into one redis-server; a
// second redis-server stays empty. For each setup (--setups kind:quant, e.g. flat:fp32,
// ivf:q8) a semcache process starts on each Redis with `--embedder hash --index kind --quant
// quant --snapshots off` (each builds its own index, as a lone sidecar does); once SEMINFO says ready and the default namespace is served by a built index of
// that kind (no build running), and --settle-ms later (V8 collects a build's garbage some
// seconds after it; semcache gives freed C heap pages back a second after its last swap;
// MEMORY_TRAIL=1 prints the RSS of each second meanwhile), its RSS is read from /proc/<pid>/status (VmRSS; VmHWM
// for the peak). Per entry: (RSS with the records - RSS of the empty one) / entries, the
// issue's measure (issue 9 part 3: "RSS growth per entry"), which counts everything the
// process holds for an entry: FAISS's index, the JS copy of the vectors, the entry's key,
// text, hashes and maps, and whatever the allocators kept from reading and building.
//
// --baseline path/to/other/dist/cli.js: each setup measured with that build too, alternating,
// in the same run (e.g. a worktree of an earlier commit).
//
//   npm run build && node bench/memory.mjs [--entries 100000] [--setups flat:fp32,ivf:q8]
//                                          [--runs 1] [--settle-ms 30000] [--baseline cli.js]
// Results: stdout and bench/results/memory-<time>.md.
import fs from 'node:fs';
import path from 'node:path';
import {
  fmt,
  freePort,
  installCleanup,
  loadavg,
  machineInfo,
  mdTable,
  median,
  pairs,
  parseFlags,
  ROOT,
  respOnce,
  runMain,
  startRedis,
  startServer,
  stopServer,
  waitForPing,
  writeEntries,
} from './lib.mjs';

const OPTS = {
  entries: 100_000,
  setups: 'flat:fp32,ivf:q8',
  runs: 1,
  'settle-ms': 30_000,
  baseline: '',
  'timeout-s': 3600,
};
const MODEL = 'hash:hash-v1-384:384';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function status(pid) {
  const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name) => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(s)?.[1] ?? Number.NaN) * 1024;
  return { rss: kb('VmRSS'), peak: kb('VmHWM') };
}

/** A semcache on `redisPort` with the setup; resolves its memory once its index is built. */
async function measure(cli, redisPort, kind, quant, o, expectVectors) {
  const port = await freePort();
  const child = startServer('semcache', process.execPath, [
    cli,
    ...['--port', String(port), '--upstream', `redis://127.0.0.1:${redisPort}`],
    ...['--embedder', 'hash', '--index', kind, '--quant', quant],
    // Each builds its own index, as a lone sidecar does (not the snapshot the last one saved).
    ...['--snapshots', 'off'],
  ]);
  const t0 = performance.now();
  try {
    await waitForPing('semcache', port, child, 60_000);
    for (;;) {
      if (performance.now() - t0 > o['timeout-s'] * 1000)
        throw new Error('index not built in time');
      const info = pairs(await respOnce(port, ['SEMINFO'], 60_000));
      if (info.state === 'ready') {
        if (expectVectors === 0) break;
        const ns = pairs(await respOnce(port, ['SEMINFO', 'NS', 'default'], 60_000));
        if (ns.index === kind && Number(ns.index_building) === 0) {
          if (Number(ns.entries) !== expectVectors)
            throw new Error(`${ns.entries} entries, expected ${expectVectors}`);
          break;
        }
      }
      await sleep(200);
    }
    const readyS = (performance.now() - t0) / 1000;
    // V8 collects the build's garbage (buffers sent back by the worker) only some seconds
    // later (its memory reducer): the RSS is read every second until --settle-ms.
    const trail = [];
    for (let t = 0; t < o['settle-ms']; t += 1000) {
      await sleep(1000);
      trail.push(status(child.pid).rss);
    }
    if (process.env.MEMORY_TRAIL) console.log(trail.map((x) => fmt(x / 2 ** 20)).join(' '));
    return { ...status(child.pid), readyS };
  } finally {
    await stopServer(child);
  }
}

async function main() {
  const o = parseFlags(OPTS);
  installCleanup();
  const info = machineInfo();
  console.log(info);
  const empty = await startRedis();
  const full = await startRedis();
  const writeMs = await writeEntries(full.port, o.entries, {
    modelId: MODEL,
    dim: 384,
    data: 'clustered',
  });
  console.log(`wrote ${fmt(o.entries)} records in ${(writeMs / 1000).toFixed(1)} s`);
  const builds = [['this', path.join(ROOT, 'dist', 'cli.js')]];
  if (o.baseline) builds.push(['baseline', path.resolve(o.baseline)]);
  const rows = [];
  for (const setup of o.setups.split(',')) {
    const [kind, quant = 'fp32'] = setup.split(':');
    const got = new Map(builds.map(([name]) => [name, []]));
    for (let run = 0; run < o.runs; run++) {
      for (const [name, cli] of builds) {
        const base = await measure(cli, empty.port, kind, quant, o, 0);
        const loaded = await measure(cli, full.port, kind, quant, o, o.entries);
        const r = {
          perEntry: (loaded.rss - base.rss) / o.entries,
          peakPerEntry: (loaded.peak - base.rss) / o.entries,
          readyS: loaded.readyS,
        };
        got.get(name).push(r);
        console.log(
          `${setup} ${name} run ${run + 1}: ${fmt(r.perEntry)} B/entry (peak ${fmt(r.peakPerEntry)}), built in ${loaded.readyS.toFixed(1)} s; empty RSS ${fmt(base.rss / 2 ** 20)} MB`,
        );
      }
    }
    for (const [name, rs] of got) {
      rows.push([
        setup,
        name,
        fmt(median(rs.map((r) => r.perEntry))),
        rs.map((r) => fmt(r.perEntry)).join(', '),
        fmt(median(rs.map((r) => r.peakPerEntry))),
        median(rs.map((r) => r.readyS)).toFixed(1),
      ]);
    }
  }
  const table = mdTable(
    ['setup', 'build', 'RSS B/entry (median)', 'runs', 'peak B/entry', 'built in s'],
    rows,
  );
  const out = [
    `# memory.mjs, ${info.date}`,
    '',
    `${fmt(o.entries)} entries, ${info.cores} cores, ${info.cpu}, semcache ${info.semcache}, load ${loadavg()}`,
    '',
    table,
    '',
  ].join('\n');
  console.log(`\n${table}`);
  const dir = path.join(ROOT, 'bench', 'results');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, `memory-${info.date.replace(/[:.]/g, '-')}.md`), out);
}

runMain(main);
