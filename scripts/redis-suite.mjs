#!/usr/bin/env node
// Redis's own test suite, through semcache: each unit of Redis 7.0.15's tests (vendored in
// test/redis-suite/, BSD-3) runs three times with `./runtest --host --port --single unit/X`:
// against a fresh redis-server directly, and through a fresh semcache in front of a fresh
// redis-server in each --multiplex mode. Every test's outcome through semcache ([ok], [err],
// [skip], [ignore], or "not run" when an exception ended the unit) must be the outcome it had
// against Redis directly, unless ALLOWED (scripts/redis-suite/allowed.mjs) lists the test for
// that mode with the reason. Exit status 1 on any other difference.
//
//   npm run build && npm run redis-suite                       # every unit, all three modes
//   npm run redis-suite -- --units unit/multi,unit/type/list --modes direct,1 --verbose
//
// The redis-server runs as Redis's own CI runs its external-server suite (save "", DEBUG and
// protected configs enabled); tests tagged external:skip are skipped by the suite itself in
// every mode alike. Per-unit figures for docs/redis-suite.md: --json.
import fs from 'node:fs';
import path from 'node:path';
import {
  freePort,
  installCleanup,
  logTail,
  parseFlags,
  ROOT,
  runMain,
  startServer,
  stopServer,
  tmpDir,
  waitForPing,
} from '../bench/lib.mjs';
import { ALLOWED } from './redis-suite/allowed.mjs';
import { parseOutcomes, runtest } from './redis-suite/runtest.mjs';

// The units of Redis's suite that cover what issue 7 names: strings, lists, hashes, sets,
// sorted sets, streams, MULTI, pub/sub, protocol, expire, keyspace, scan, introspection,
// scripting, tracking; and INFO, which introspects the commands we pass. (unit/acl and
// unit/auth start servers of their own: every test in them is external:skip.)
export const UNITS = [
  'unit/type/string',
  'unit/type/incr',
  'unit/type/list',
  'unit/type/list-2',
  'unit/type/list-3',
  'unit/type/hash',
  'unit/type/set',
  'unit/type/zset',
  'unit/type/stream',
  'unit/type/stream-cgroups',
  'unit/multi',
  'unit/pubsub',
  'unit/pubsubshard',
  'unit/protocol',
  'unit/expire',
  'unit/keyspace',
  'unit/scan',
  'unit/introspection',
  'unit/introspection-2',
  'unit/info-command',
  'unit/scripting',
  'unit/tracking',
];

// Tests skipped in every mode, because they fail against redis-server itself when it is an
// external server, and their exception would end the unit before the tests after them.
export const SKIP = {
  'unit/type/set': [
    // get_child_pid needs the pid of a server the suite started itself (Redis 7.0.15's suite
    // does not tag this test external:skip).
    'SRANDMEMBER with a dict containing long chain',
  ],
};

const OPTS = {
  units: UNITS.join(','),
  modes: 'direct,1,0',
  // Extra flags for runtest, e.g. "--tags -slow" (space separated).
  runtest: '',
  'timeout-s': 900,
  // Runs of a unit with unexpected differences again; only differences seen every time count.
  retries: 1,
  // semcache's entry point (another build, to compare).
  cli: 'dist/cli.js',
  verbose: false,
  json: '',
};

function parseArgs(argv) {
  const o = parseFlags(OPTS, argv);
  o.units = o.units.split(',').filter(Boolean);
  o.modes = o.modes.split(',').filter(Boolean);
  return o;
}

async function startBackend(tag) {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(tmpDir(), `${tag}-`));
  // As Redis's own CI starts the server for `runtest --host` (.github/workflows/external.yml).
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--dir', dir];
  args.push('--appendonly', 'no', '--enable-protected-configs', 'yes');
  args.push('--enable-debug-command', 'yes', '--enable-module-command', 'yes');
  const child = startServer(`redis-${tag}`, 'redis-server', args);
  await waitForPing('redis-server', port, child, 10_000);
  return { port, child };
}

async function startSemcache(cli, tag, upstreamPort, multiplex) {
  const port = await freePort();
  const child = startServer(`semcache-${tag}`, process.execPath, [
    path.resolve(ROOT, cli),
    ...['--port', String(port), '--bind', '127.0.0.1'],
    ...['--upstream', `redis://127.0.0.1:${upstreamPort}`],
    ...['--embedder', 'hash', '--multiplex', String(multiplex), '--log-level', 'warn'],
  ]);
  await waitForPing(`semcache --multiplex ${multiplex}`, port, child, 20_000);
  return { port, child };
}

function allowedReason(unit, mode, test) {
  for (const a of ALLOWED) {
    if (a.unit !== unit || !a.modes.includes(mode)) continue;
    if (typeof a.test === 'string' ? a.test === test : a.test.test(test)) return a.reason;
  }
  return null;
}

async function runMode(unit, mode, o) {
  const tag = `${unit.replace(/\W+/g, '-')}-${mode}`;
  const backend = await startBackend(tag);
  const front =
    mode === 'direct' ? null : await startSemcache(o.cli, tag, backend.port, Number(mode));
  const extra = o.runtest.split(' ').filter(Boolean);
  for (const name of SKIP[unit] ?? []) extra.push('--skiptest', name);
  const started = performance.now();
  const baseport = (await freePort()) + 32;
  const target = front ? front.port : backend.port;
  const { out } = await runtest(unit, target, baseport, extra, o['timeout-s']);
  const seconds = (performance.now() - started) / 1000;
  const crashed = front?.child.exited || backend.child.exited;
  if (front) await stopServer(front.child);
  await stopServer(backend.child);
  const parsed = parseOutcomes(out);
  if (crashed) parsed.exception = `${crashed}\n${logTail(front?.child ?? backend.child)}`;
  return { ...parsed, seconds, out };
}

function compareUnit(unit, results) {
  const base = results.get('direct');
  const rows = [];
  for (const [mode, r] of results) {
    if (mode === 'direct') continue;
    const row = { unit, mode, same: 0, allowed: [], unexpected: [] };
    const names = new Set([...base.tests.keys(), ...r.tests.keys()]);
    for (const name of names) {
      const want = base.tests.get(name)?.kind ?? 'not run';
      const got = r.tests.get(name)?.kind ?? 'not run';
      if (want === got) {
        row.same++;
        continue;
      }
      const diff = { test: name, direct: want, semcache: got, detail: r.tests.get(name)?.detail };
      const reason = allowedReason(unit, mode, name);
      if (reason) row.allowed.push({ ...diff, reason });
      else row.unexpected.push(diff);
    }
    if (r.exception && !base.exception) {
      const diff = { test: '(exception)', direct: 'none', semcache: r.exception };
      const reason = allowedReason(unit, mode, '(exception)');
      if (reason) row.allowed.push({ ...diff, reason });
      else row.unexpected.push(diff);
    }
    rows.push(row);
  }
  const count = (kind) => [...base.tests.values()].filter((t) => t.kind === kind).length;
  const summary = {
    unit,
    direct: { ok: count('ok'), err: count('err'), skipped: count('skip') + count('ignore') },
    seconds: Object.fromEntries([...results].map(([m, r]) => [m, Math.round(r.seconds)])),
    rows,
    // Not run in any mode: tagged external:skip, needs:repl, ... or in SKIP.
    skippedTests: [...base.tests]
      .filter(([, t]) => t.kind !== 'ok' && t.kind !== 'err')
      .map(([n]) => n),
  };
  if (base.exception) summary.directException = base.exception;
  return summary;
}

function printUnit(summary, verbose) {
  for (const row of summary.rows) {
    const tag = row.unexpected.length ? 'DIFF' : 'same';
    const flaky = row.flaky?.length ? `, ${row.flaky.length} not reproduced on a rerun` : '';
    console.log(
      `  ${tag} --multiplex ${row.mode}: ${row.same} same, ${row.allowed.length} allowed, ${row.unexpected.length} unexpected${flaky}`,
    );
    const show = [
      ...row.unexpected.map((d) => ['UNEXPECTED', d]),
      ...(verbose ? row.allowed.map((d) => [`allowed [${d.reason}]`, d]) : []),
      ...(row.flaky ?? []).map((d) => ['not reproduced', d]),
    ];
    for (const [label, d] of show)
      console.log(
        `    ${label}: ${d.test}: direct ${d.direct}, semcache ${d.semcache}${d.detail ? ` (${d.detail})` : ''}`,
      );
  }
}

async function runUnit(unit, o) {
  const results = new Map();
  for (const mode of o.modes) results.set(mode, await runMode(unit, mode, o));
  return results;
}

/**
 * Runs one unit in every mode and compares. A difference must reproduce: a unit with
 * unexpected differences runs again (all modes, fresh servers) and only the differences seen
 * both times count; the others are reported as not reproduced (timing-sensitive tests).
 */
async function checkUnit(unit, o) {
  let results = await runUnit(unit, o);
  const b = results.get('direct');
  if (b.tests.size === 0) throw new Error(`${unit}: no test ran against redis-server:\n${b.out}`);
  const ok = [...b.tests.values()].filter((t) => t.kind === 'ok').length;
  console.log(
    `${unit}: ${b.tests.size} tests against redis-server (${ok} ok)${b.exception ? `, exception: ${b.exception}` : ''}`,
  );
  if (o.verbose && b.exception) console.log(b.out.slice(-3000));
  let summary = compareUnit(unit, results);
  for (let retry = 0; retry < o.retries; retry++) {
    if (!summary.rows.some((r) => r.unexpected.length)) break;
    console.log(`  ${unit}: differences; running it again`);
    results = await runUnit(unit, o);
    const again = compareUnit(unit, results);
    const key = (mode, d) => `${mode}\0${d.test}\0${d.direct}\0${d.semcache}`;
    const seen = new Set(again.rows.flatMap((r) => r.unexpected.map((d) => key(r.mode, d))));
    for (const row of summary.rows) {
      row.flaky = [
        ...(row.flaky ?? []),
        ...row.unexpected.filter((d) => !seen.has(key(row.mode, d))),
      ];
      row.unexpected = row.unexpected.filter((d) => seen.has(key(row.mode, d)));
    }
    summary = { ...summary, retried: retry + 1 };
  }
  printUnit(summary, o.verbose);
  return summary;
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  installCleanup();
  if (!fs.existsSync(path.resolve(ROOT, o.cli))) throw new Error('run `npm run build` first');
  if (!o.modes.includes('direct')) throw new Error('--modes must include direct (the reference)');
  const started = performance.now();
  const summaries = [];
  for (const unit of o.units) summaries.push(await checkUnit(unit, o));
  const rows = summaries.flatMap((s) => s.rows);
  const sum = (f) => rows.reduce((n, r) => n + f(r), 0);
  const unexpected = sum((r) => r.unexpected.length);
  const tests = summaries.reduce((n, s) => n + s.direct.ok + s.direct.err, 0);
  console.log(
    `redis-suite: ${o.units.length} units, ${tests} tests run against redis-server, modes ${o.modes.join(',')}: ` +
      `${unexpected} unexpected differences, ${sum((r) => r.allowed.length)} allowed, ` +
      `${sum((r) => r.flaky?.length ?? 0)} not reproduced (${Math.round((performance.now() - started) / 1000)} s)`,
  );
  if (o.json) fs.writeFileSync(o.json, `${JSON.stringify(summaries, null, 2)}\n`);
  if (unexpected) process.exitCode = 1;
}

runMain(async () => {
  await main();
  if (process.exitCode) {
    await import('../bench/lib.mjs').then((l) => l.stopAll());
    process.exit(process.exitCode);
  }
});
