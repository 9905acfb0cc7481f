#!/usr/bin/env node
// bench/proxy.mjs — pass-through throughput of semcache vs. Redis and twemproxy.
//
// What it measures: plain GET/SET requests/s (redis-benchmark -c C -t get,set)
// at pipeline depth 1 and 16, against three targets that all sit on ONE
// redis-server this script starts itself:
//   redis      the redis-server directly (the ceiling: no proxy hop at all)
//   twemproxy  nutcracker with one pool, server_connections: 1 (a mature C proxy)
//   semcache   node dist/cli.js --upstream redis://... (our proxy; every
//              GET/SET is forwarded, so this is the cost of the pass-through path)
// Targets are interleaved within each round (redis, twemproxy, semcache, then
// again; the order rotated by one each round) so slow drifts of the machine hit all of them alike; the table shows
// the median of R rounds per cell. Read "semcache/twemproxy" as "how close are
// we to a C proxy" (1.00 = same speed) and "semcache/redis" as "what fraction
// of direct Redis throughput is left after our hop". On a small machine the
// client, the proxy and Redis share the cores, so absolute numbers are low;
// the ratios are what to compare between runs.
//
// A fourth target, `base`, is a second semcache to compare against in the same
// run (another build with --base-cli, other flags with --base-args): before and
// after a change, or --multiplex 1 against 2, side by side under the same load.
//
// Usage: node bench/proxy.mjs [--requests N | N1,N16] [--rounds R] [--clients C]
//          [--pipelines 1,16] [--only redis,twemproxy,semcache,base]
//          [--extra-args "--flag value"] [--json out.json] [--timeout SECONDS]
//          [--semcache-cli path/to/cli.js]   (default dist/cli.js)
//          [--base-cli path/to/cli.js] [--base-args "--flag value"]
// Env fallbacks: BENCH_REQUESTS, BENCH_ROUNDS, BENCH_CLIENTS, BENCH_PIPELINES, BENCH_ONLY,
//                BENCH_EXTRA_ARGS, BENCH_JSON, BENCH_TIMEOUT, BENCH_SEMCACHE_CLI,
//                BENCH_BASE_CLI, BENCH_BASE_ARGS.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  die,
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
  ROOT,
  ratio,
  respOnce,
  runMain,
  runTracked,
  sh,
  startRedis,
  startServer,
  tmpDir,
  waitForPing,
} from './lib.mjs';

const ALL_TARGETS = ['redis', 'twemproxy', 'semcache', 'base'];
const TESTS = ['SET', 'GET'];

// ---------- options ----------
const { values: opt } = parseArgs({
  options: {
    requests: { type: 'string', default: process.env.BENCH_REQUESTS ?? '200000,1000000' },
    rounds: { type: 'string', default: process.env.BENCH_ROUNDS ?? '5' },
    clients: { type: 'string', default: process.env.BENCH_CLIENTS ?? '50' },
    pipelines: { type: 'string', default: process.env.BENCH_PIPELINES ?? '1,16' },
    only: { type: 'string', default: process.env.BENCH_ONLY },
    'extra-args': { type: 'string', default: process.env.BENCH_EXTRA_ARGS ?? '' },
    json: { type: 'string', default: process.env.BENCH_JSON },
    timeout: { type: 'string', default: process.env.BENCH_TIMEOUT ?? '180' },
    'semcache-cli': {
      type: 'string',
      default: process.env.BENCH_SEMCACHE_CLI ?? path.join(ROOT, 'dist', 'cli.js'),
    },
    'base-cli': { type: 'string', default: process.env.BENCH_BASE_CLI },
    'base-args': { type: 'string', default: process.env.BENCH_BASE_ARGS },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (opt.help) {
  console.log(fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\nimport ')[0]);
  process.exit(0);
}
const posInt = (name, s) => {
  const n = Number(s);
  if (!Number.isInteger(n) || n < 1) die(`--${name} must be a positive integer, got "${s}"`);
  return n;
};
const pipelines = opt.pipelines.split(',').map((s) => posInt('pipelines', s.trim()));
const reqList = opt.requests.split(',').map((s) => posInt('requests', s.trim()));
// One value applies to every pipeline depth; otherwise one value per depth.
const requestsFor = (i) => reqList[Math.min(i, reqList.length - 1)];
const rounds = posInt('rounds', opt.rounds);
const clients = posInt('clients', opt.clients);
const timeoutMs = posInt('timeout', opt.timeout) * 1000;
// `base` runs when asked for, or when --base-cli / --base-args say what it is.
const hasBase = opt['base-cli'] !== undefined || opt['base-args'] !== undefined;
const targets = (opt.only ?? ALL_TARGETS.filter((t) => t !== 'base' || hasBase).join(','))
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);
for (const t of targets)
  if (!ALL_TARGETS.includes(t))
    die(`--only: unknown target "${t}" (use ${ALL_TARGETS.join(', ')})`);
const splitArgs = (s) => s.split(/\s+/).filter(Boolean);
const extraArgs = splitArgs(opt['extra-args']);
const baseArgs = opt['base-args'] === undefined ? extraArgs : splitArgs(opt['base-args']);

installCleanup();

/** One redis-benchmark run; resolves with { SET: rps, GET: rps }. */
async function runBenchmark(port, pipeline, requests) {
  const args = `-h 127.0.0.1 -p ${port} -c ${clients} -n ${requests} -P ${pipeline} -t get,set -q --csv`;
  const { code, signal, out, err } = await runTracked(
    'redis-benchmark',
    args.split(' '),
    timeoutMs,
  );
  // CSV: "test","rps","avg_latency_ms",...  then e.g. "SET","84745.77",...
  const rps = {};
  for (const line of out.split('\n')) {
    const m = line.match(/^"(SET|GET)","([\d.]+)"/);
    if (m) rps[m[1]] = Number(m[2]);
  }
  if (TESTS.every((t) => rps[t] > 0)) return rps;
  throw new Error(
    `redis-benchmark ${args} failed (code ${code}, signal ${signal}${signal ? `, timeout ${timeoutMs / 1000}s?` : ''})\n${out}${err}`,
  );
}

/**
 * CPU seconds (user + system) a process has used so far, from /proc (Linux);
 * NaN where that cannot be read. Steadier than requests/s on a shared machine:
 * what one request costs the proxy does not depend on who else wants the cores.
 */
const CLK_TCK = Number(sh('getconf', ['CLK_TCK'])) || 100;
function cpuSeconds(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which is in parentheses and may hold spaces.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { user: Number(f[11]) / CLK_TCK, sys: Number(f[12]) / CLK_TCK }; // utime, stime
  } catch {
    return { user: Number.NaN, sys: Number.NaN };
  }
}

/** Two decimals, no unit: the table's ratio columns. */
const ratio2 = (a, b) => fmtRatio(ratio(a, b), '');

async function main() {
  const cli = path.resolve(opt['semcache-cli']);
  if (targets.includes('semcache') && !fs.existsSync(cli)) {
    die(
      `${path.relative(process.cwd(), cli) || cli} not found: run \`npm run build\` first (or pass --only redis,twemproxy).`,
    );
  }
  const tmp = tmpDir();
  // lib's machineInfo() plus the twemproxy version (nutcracker prints it on stderr; sh() keeps both).
  const machine = {
    ...machineInfo(),
    twemproxy: sh('nutcracker', ['--version']).match(/nutcracker-(\S+)/)?.[1] ?? 'n/a',
  };
  console.log(`machine: ${machine.cpu}, ${machine.cores} cores, ${machine.os}`);
  console.log(
    `versions: node ${machine.node}, redis ${machine.redis}, twemproxy ${machine.twemproxy}, semcache ${machine.semcache}`,
  );

  // Redis is always started: every target sits on it.
  const { port: redisPort, child: redis } = await startRedis();
  const ports = { redis: redisPort };
  const procs = { redis };

  if (targets.includes('twemproxy')) {
    const [port, statsPort] = [await freePort(), await freePort()];
    fs.writeFileSync(
      path.join(tmp, 'nutcracker.yml'),
      `bench:
  listen: 127.0.0.1:${port}
  hash: fnv1a_64
  distribution: ketama
  redis: true
  server_connections: 1
  auto_eject_hosts: false
  preconnect: true
  servers:
    - 127.0.0.1:${redisPort}:1
`,
    );
    // Relative paths: nutcracker runs in the temp dir. -o: its log (default is under /var/log).
    const ncArgs = `-c nutcracker.yml -o nutcracker.log -p nutcracker.pid -a 127.0.0.1 -s ${statsPort}`;
    const nc = startServer('twemproxy', 'nutcracker', ncArgs.split(' '));
    nc.logFile = path.join(tmp, 'nutcracker.log');
    await waitForPing('twemproxy', port, nc, 10_000);
    ports.twemproxy = port;
    procs.twemproxy = nc;
  }
  // semcache, and the build or flags it is compared with (`base`).
  const semcaches = {
    semcache: { cli, args: extraArgs },
    base: { cli: path.resolve(opt['base-cli'] ?? opt['semcache-cli']), args: baseArgs },
  };
  for (const [t, { cli: script, args }] of Object.entries(semcaches)) {
    if (!targets.includes(t)) continue;
    if (!fs.existsSync(script)) die(`${t}: ${script} not found`);
    const port = await freePort();
    const upstream = `redis://127.0.0.1:${redisPort}`;
    const scArgs = [script, '--port', `${port}`, '--bind', '127.0.0.1', '--upstream', upstream];
    const sc = startServer(t, process.execPath, [...scArgs, ...args], { cwd: ROOT });
    await waitForPing(t, port, sc, 60_000);
    ports[t] = port;
    procs[t] = sc;
  }

  // Sanity: a SET through each proxy must be visible on the shared redis.
  for (const t of targets) {
    const key = `bench:sanity:${t}`;
    await respOnce(ports[t], ['SET', key, t]);
    if ((await respOnce(redisPort, ['GET', key]))?.toString() !== t)
      die(`${t}: SET through 127.0.0.1:${ports[t]} did not reach redis`);
  }

  const samples = {}; // samples[target][P][test] = [rps, ...]
  // cpu[target][P] = [{ proxy, redis }, ...]: CPU µs per request of the target's own
  // process and of redis-server, over one redis-benchmark run (SET and GET together).
  const cpu = {};
  for (const t of targets) {
    samples[t] = Object.fromEntries(pipelines.map((p) => [p, { SET: [], GET: [] }]));
    cpu[t] = Object.fromEntries(pipelines.map((p) => [p, []]));
  }
  const t0 = Date.now();
  const load = { start: loadavg(), rounds: [] };
  console.log(`load average (1, 5, 15 min) at the start: ${load.start}`);
  for (let r = 1; r <= rounds; r++) {
    for (const [i, p] of pipelines.entries()) {
      // Rotated each round, so that no target always runs right after the same one.
      for (const t of targets.map((_, k) => targets[(k + r - 1) % targets.length])) {
        const before = [cpuSeconds(procs[t].pid), cpuSeconds(redis.pid)];
        const rps = await runBenchmark(ports[t], p, requestsFor(i)).catch((e) => {
          const dead = [procs[t], redis].find((c) => c.exited);
          die(`${t} P${p}: ${e.message}${dead ? `\n${dead.exited}:\n${logTail(dead)}` : ''}`);
        });
        for (const test of TESTS) samples[t][p][test].push(rps[test]);
        const perReq = (s) => (s * 1e6) / (TESTS.length * requestsFor(i));
        const [proxyNow, redisNow] = [cpuSeconds(procs[t].pid), cpuSeconds(redis.pid)];
        const proxySys = perReq(proxyNow.sys - before[0].sys);
        const used = {
          proxy: perReq(proxyNow.user - before[0].user) + proxySys,
          proxySys,
          redis: perReq(redisNow.user + redisNow.sys - before[1].user - before[1].sys),
        };
        cpu[t][p].push(used);
        const cpuNote =
          t === 'redis'
            ? ''
            : `  proxy cpu µs/req ${fmt1(used.proxy)} (sys ${fmt1(used.proxySys)})`;
        console.log(
          `round ${r}/${rounds}  P${String(p).padEnd(3)} ${t.padEnd(10)} SET ${fmt(rps.SET).padStart(10)}  GET ${fmt(rps.GET).padStart(10)}  redis cpu µs/req ${fmt1(used.redis)}${cpuNote}`,
        );
      }
    }
    load.rounds.push(loadavg());
    console.log(`load average after round ${r}: ${load.rounds[r - 1]}`);
  }

  const med = (t, p, test) => (samples[t] ? median(samples[t][p][test]) : Number.NaN);
  const withBase = targets.includes('base');
  const header = [
    '',
    ...ALL_TARGETS.filter((t) => t !== 'base' || withBase).map((t) => `${t} rps`),
    'semcache/twemproxy',
    'semcache/redis',
    ...(withBase ? ['base/twemproxy', 'semcache/base'] : []),
  ];
  const rows = [];
  for (const p of pipelines) {
    for (const test of TESTS) {
      const [r, tw, sc, base] = ALL_TARGETS.map((t) => med(t, p, test));
      const cells = withBase ? [fmt(base)] : [];
      const ratios = withBase ? [ratio2(base, tw), ratio2(sc, base)] : [];
      rows.push([
        `P${p} ${test}`,
        fmt(r),
        fmt(tw),
        fmt(sc),
        ...cells,
        ratio2(sc, tw),
        ratio2(sc, r),
        ...ratios,
      ]);
    }
  }
  // The second table: where the CPU goes, per request, medians.
  const medCpu = (t, p, who) => (cpu[t] ? median(cpu[t][p].map((c) => c[who])) : Number.NaN);
  const proxies = targets.filter((t) => t !== 'redis');
  const cpuHeader = [
    'CPU µs/request',
    ...targets.map((t) => `redis-server (${t})`),
    ...proxies.map((t) => `${t} process`),
  ];
  const cpuRows = pipelines.map((p) => [
    `P${p} SET+GET`,
    ...targets.map((t) => fmt1(medCpu(t, p, 'redis'))),
    ...proxies.map((t) => `${fmt1(medCpu(t, p, 'proxy'))} (sys ${fmt1(medCpu(t, p, 'proxySys'))})`),
  ]);
  const cpuTable = mdTable(cpuHeader, cpuRows);
  const table = `${mdTable(header, rows)}\n\n${cpuTable}`;
  const settings = `redis-benchmark -c ${clients} -t get,set, requests ${pipelines.map((p, i) => `P${p}: ${requestsFor(i)}`).join(', ')}; median of ${rounds} round(s); targets: ${targets.join(', ')}${extraArgs.length ? `; semcache extra args: ${extraArgs.join(' ')}` : ''}${withBase ? `; base: ${path.relative(ROOT, semcaches.base.cli)} ${baseArgs.join(' ')}` : ''}; load average at the start ${load.start}, after each round ${load.rounds.join(' / ')}`;
  const machineLine = `${machine.cpu}, ${machine.cores} cores, ${machine.os}; node ${machine.node}, redis ${machine.redis}, twemproxy ${machine.twemproxy}, semcache ${machine.semcache}`;
  const report = `# semcache proxy benchmark (${machine.date})\n\n${machineLine}\n\n${settings}\n\n${table}\n`;
  console.log(`\n${table}\n\n${settings} (${((Date.now() - t0) / 1000).toFixed(0)}s)`);

  const stamp = machine.date.replace(/[:.]/g, '-');
  const resultsDir = path.join(ROOT, 'bench', 'results');
  fs.mkdirSync(resultsDir, { recursive: true });
  const mdFile = path.join(resultsDir, `proxy-${stamp}.md`);
  fs.writeFileSync(mdFile, report);
  console.log(`wrote ${path.relative(process.cwd(), mdFile)}`);
  if (opt.json) {
    const medians = {}; // medians[target]['P16'].GET = rps
    for (const t of targets) {
      medians[t] = {};
      for (const p of pipelines)
        medians[t][`P${p}`] = { SET: med(t, p, 'SET'), GET: med(t, p, 'GET') };
    }
    const requests = pipelines.map((_, i) => requestsFor(i));
    const base = withBase ? { cli: semcaches.base.cli, args: baseArgs } : undefined;
    const options = { clients, rounds, pipelines, requests, targets, extraArgs, base };
    const json = { machine, options, load, medians, samples, cpu };
    fs.writeFileSync(opt.json, `${JSON.stringify(json, null, 2)}\n`);
    console.log(`wrote ${opt.json}`);
  }
}

await runMain(main);
