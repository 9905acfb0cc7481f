#!/usr/bin/env node
// bench/tls.mjs — what semcache's hop costs over TLS, against redis-server's own TLS port.
//
// What it measures: plain GET/SET requests/s (redis-benchmark -c C -t get,set,
// with --tls where the target is TLS) at pipeline depth 1 and 16, against up to
// four targets on ONE redis-server this script starts with a plain and a TLS port:
//   redis-tls     the redis-server's TLS port directly (the ceiling over TLS)
//   semcache-tls  semcache's --tls-port, in front of --upstream rediss://<redis TLS port>:
//                 TLS from the client to semcache and from semcache to Redis
//   redis         the redis-server's plain port (for reference)
//   semcache      a second semcache, plain on both sides (for reference)
// Every TLS hop verifies certificates both ways (client certificates required,
// tls-auth-clients yes on Redis and on semcache), with an EC P-256 CA, server and
// client certificate made by openssl in a temp dir. Targets are interleaved within
// each round and the table shows the median of R rounds per cell. Read
// "semcache-tls/redis-tls" as "what fraction of direct Redis-over-TLS throughput is
// left after semcache's two TLS hops", next to the same ratio without TLS.
//
// Usage: node bench/tls.mjs [--requests N | N1,N16] [--rounds R] [--clients C]
//          [--pipelines 1,16] [--only redis-tls,semcache-tls,redis,semcache]
//          [--json out.json] [--timeout SECONDS]
// Env fallbacks: BENCH_REQUESTS, BENCH_ROUNDS, BENCH_CLIENTS, BENCH_PIPELINES, BENCH_ONLY,
//                BENCH_JSON, BENCH_TIMEOUT.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  die,
  fmt,
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
  startServer,
  tmpDir,
  waitForPing,
} from './lib.mjs';

const ALL_TARGETS = ['redis-tls', 'semcache-tls', 'redis', 'semcache'];
const TESTS = ['SET', 'GET'];

const { values: opt } = parseArgs({
  options: {
    requests: { type: 'string', default: process.env.BENCH_REQUESTS ?? '100000,500000' },
    rounds: { type: 'string', default: process.env.BENCH_ROUNDS ?? '3' },
    clients: { type: 'string', default: process.env.BENCH_CLIENTS ?? '50' },
    pipelines: { type: 'string', default: process.env.BENCH_PIPELINES ?? '1,16' },
    only: { type: 'string', default: process.env.BENCH_ONLY ?? ALL_TARGETS.join(',') },
    json: { type: 'string', default: process.env.BENCH_JSON },
    timeout: { type: 'string', default: process.env.BENCH_TIMEOUT ?? '180' },
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
const requestsFor = (i) => reqList[Math.min(i, reqList.length - 1)];
const rounds = posInt('rounds', opt.rounds);
const clients = posInt('clients', opt.clients);
const timeoutMs = posInt('timeout', opt.timeout) * 1000;
const targets = opt.only
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);
for (const t of targets)
  if (!ALL_TARGETS.includes(t))
    die(`--only: unknown target "${t}" (use ${ALL_TARGETS.join(', ')})`);

installCleanup();

/** A CA, and a server (127.0.0.1, localhost) and a client certificate it signed. */
function makeCerts(dir) {
  const ssl = (...args) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  ssl(
    'req',
    '-x509',
    ...key,
    '-keyout',
    'ca.key',
    '-out',
    'ca.crt',
    '-days',
    '2',
    '-subj',
    '/CN=bench CA',
  );
  for (const [name, ext] of [
    ['server', 'subjectAltName=IP:127.0.0.1,DNS:localhost'],
    ['client', 'extendedKeyUsage=clientAuth'],
  ]) {
    ssl(
      'req',
      ...key,
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.csr`,
      '-subj',
      `/CN=bench ${name}`,
    );
    fs.writeFileSync(path.join(dir, `${name}.ext`), `${ext}\n`);
    ssl(
      ...['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key'],
      ...['-CAcreateserial', '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`],
    );
  }
  const p = (f) => path.join(dir, f);
  return {
    ca: p('ca.crt'),
    cert: p('server.crt'),
    key: p('server.key'),
    clientCert: p('client.crt'),
    clientKey: p('client.key'),
  };
}

/** One redis-benchmark run; resolves with { SET: rps, GET: rps }. */
async function runBenchmark(target, pipeline, requests, certs) {
  const args = ['-h', '127.0.0.1', '-p', `${target.port}`, '-c', `${clients}`, '-n', `${requests}`];
  args.push('-P', `${pipeline}`, '-t', 'get,set', '-q', '--csv');
  if (target.tls) {
    args.push('--tls', '--cacert', certs.ca, '--cert', certs.clientCert, '--key', certs.clientKey);
  }
  const { code, signal, out, err } = await runTracked('redis-benchmark', args, timeoutMs);
  const rps = {};
  for (const line of out.split('\n')) {
    const m = line.match(/^"(SET|GET)","([\d.]+)"/);
    if (m) rps[m[1]] = Number(m[2]);
  }
  if (TESTS.every((t) => rps[t] > 0)) return rps;
  throw new Error(
    `redis-benchmark ${args.join(' ')} failed (code ${code}, signal ${signal})\n${out}${err}`,
  );
}

const ratio2 = (a, b) => fmtRatio(ratio(a, b), '');

async function main() {
  const cli = path.join(ROOT, 'dist', 'cli.js');
  if (targets.some((t) => t.startsWith('semcache')) && !fs.existsSync(cli)) {
    die('dist/cli.js not found: run `npm run build` first.');
  }
  const tmp = tmpDir();
  const certs = makeCerts(tmp);
  const machine = machineInfo();
  const loadStart = loadavg();
  console.log(
    `machine: ${machine.cpu}, ${machine.cores} cores, ${machine.os}; load average ${loadStart}`,
  );
  console.log(
    `versions: node ${machine.node}, redis ${machine.redis}, semcache ${machine.semcache}`,
  );

  // One redis-server, plain and TLS ports; client certificates required on TLS (the default).
  const [redisPort, redisTlsPort] = [await freePort(), await freePort()];
  fs.writeFileSync(
    path.join(tmp, 'redis.conf'),
    [
      `port ${redisPort}`,
      `tls-port ${redisTlsPort}`,
      `tls-cert-file ${certs.cert}`,
      `tls-key-file ${certs.key}`,
      `tls-ca-cert-file ${certs.ca}`,
      'bind 127.0.0.1',
      'save ""',
      'appendonly no',
      `dir ${tmp}`,
      '',
    ].join('\n'),
  );
  const redis = startServer('redis', 'redis-server', ['redis.conf']);
  await waitForPing('redis-server', redisPort, redis, 10_000);
  const live = {
    redis: { port: redisPort, tls: false, child: redis },
    'redis-tls': { port: redisTlsPort, tls: true, child: redis },
  };

  const semcache = async (name, args) => {
    const port = await freePort();
    const child = startServer(name, process.execPath, [cli, '--port', `${port}`, ...args], {
      cwd: ROOT,
    });
    await waitForPing(name, port, child, 60_000);
    return { port, child };
  };
  if (targets.includes('semcache')) {
    const sc = await semcache('semcache', ['--upstream', `redis://127.0.0.1:${redisPort}`]);
    live.semcache = { port: sc.port, tls: false, child: sc.child };
  }
  if (targets.includes('semcache-tls')) {
    const tlsPort = await freePort();
    const sc = await semcache('semcache-tls', [
      ...['--tls-port', `${tlsPort}`, '--tls-cert-file', certs.cert, '--tls-key-file', certs.key],
      ...['--tls-ca-cert-file', certs.ca, '--upstream', `rediss://127.0.0.1:${redisTlsPort}`],
      ...['--upstream-tls-ca-cert-file', certs.ca],
      ...['--upstream-tls-cert-file', certs.clientCert, '--upstream-tls-key-file', certs.clientKey],
    ]);
    // Its plain port answered PING; the sanity check below goes through the TLS upstream.
    live['semcache-tls'] = { port: tlsPort, tls: true, child: sc.child, plainPort: sc.port };
    const key = 'bench:sanity:tls';
    await respOnce(sc.port, ['SET', key, 'over rediss']);
    if ((await respOnce(redisPort, ['GET', key]))?.toString() !== 'over rediss')
      die('semcache-tls: a SET did not reach redis over the TLS upstream');
  }

  const samples = {};
  for (const t of targets)
    samples[t] = Object.fromEntries(pipelines.map((p) => [p, { SET: [], GET: [] }]));
  const t0 = Date.now();
  for (let r = 1; r <= rounds; r++) {
    for (const [i, p] of pipelines.entries()) {
      for (const t of targets) {
        const rps = await runBenchmark(live[t], p, requestsFor(i), certs).catch((e) => {
          const dead = [live[t].child, redis].find((c) => c.exited);
          die(`${t} P${p}: ${e.message}${dead ? `\n${dead.exited}:\n${logTail(dead)}` : ''}`);
        });
        for (const test of TESTS) samples[t][p][test].push(rps[test]);
        console.log(
          `round ${r}/${rounds}  P${String(p).padEnd(3)} ${t.padEnd(13)} SET ${fmt(rps.SET).padStart(10)}  GET ${fmt(rps.GET).padStart(10)}  (load ${loadavg()})`,
        );
      }
    }
  }
  const loadEnd = loadavg();

  const med = (t, p, test) => (samples[t] ? median(samples[t][p][test]) : Number.NaN);
  const header = [
    '',
    ...ALL_TARGETS.map((t) => `${t} rps`),
    'semcache-tls/redis-tls',
    'semcache/redis',
  ];
  const rows = [];
  for (const p of pipelines) {
    for (const test of TESTS) {
      const [rt, st, r, s] = ALL_TARGETS.map((t) => med(t, p, test));
      rows.push([`P${p} ${test}`, fmt(rt), fmt(st), fmt(r), fmt(s), ratio2(st, rt), ratio2(s, r)]);
    }
  }
  const table = mdTable(header, rows);
  const settings = `redis-benchmark -c ${clients} -t get,set (--tls with a client certificate for TLS targets), requests ${pipelines.map((p, i) => `P${p}: ${requestsFor(i)}`).join(', ')}; median of ${rounds} round(s); targets: ${targets.join(', ')}; load average ${loadStart} at the start, ${loadEnd} at the end`;
  const machineLine = `${machine.cpu}, ${machine.cores} cores, ${machine.os}; node ${machine.node}, redis ${machine.redis}, semcache ${machine.semcache}`;
  const report = `# semcache TLS benchmark (${machine.date})\n\n${machineLine}\n\n${settings}\n\n${table}\n`;
  console.log(`\n${table}\n\n${settings} (${((Date.now() - t0) / 1000).toFixed(0)}s)`);

  const stamp = machine.date.replace(/[:.]/g, '-');
  const resultsDir = path.join(ROOT, 'bench', 'results');
  fs.mkdirSync(resultsDir, { recursive: true });
  const mdFile = path.join(resultsDir, `tls-${stamp}.md`);
  fs.writeFileSync(mdFile, report);
  console.log(`wrote ${path.relative(process.cwd(), mdFile)}`);
  if (opt.json) {
    const requests = pipelines.map((_, i) => requestsFor(i));
    const options = { clients, rounds, pipelines, requests, targets };
    const json = { machine, load: { start: loadStart, end: loadEnd }, options, samples };
    fs.writeFileSync(opt.json, `${JSON.stringify(json, null, 2)}\n`);
    console.log(`wrote ${opt.json}`);
  }
}

await runMain(main);
