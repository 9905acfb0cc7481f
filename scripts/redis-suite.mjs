#!/usr/bin/env node
// Redis's own test suite, through semcache: each unit of Redis 7.0.15's tests (vendored in
// test/redis-suite/, BSD-3) runs three times with `./runtest --host --port --single unit/X`:
// against a fresh redis-server directly, and through a fresh semcache in front of a fresh
// redis-server in each --multiplex mode. Every test's outcome through semcache ([ok], [err],
// [skip], [ignore], or "not run" when an exception ended the unit) must be the outcome it had
// against Redis directly, unless ALLOWED (scripts/redis-suite-allow.mjs) lists the test for
// that mode with the reason. Exit status 1 on any other difference.
//
//   npm run build && npm run redis-suite                       # every unit, all three modes
//   npm run redis-suite -- --units unit/multi,unit/type/list --modes direct,1 --verbose
//
// The redis-server runs as Redis's own CI runs its external-server suite (save "", DEBUG and
// protected configs enabled); tests tagged external:skip are skipped by the suite itself in
// every mode alike. Per-unit figures for docs/redis-suite.md: --json.
import { spawn } from 'node:child_process';
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
import { ALLOWED } from './redis-suite-allow.mjs';

// The units of Redis's suite that cover what issue 7 names: strings, lists, hashes, sets,
// sorted sets, streams, MULTI, pub/sub, protocol, expire, keyspace, scan, introspection,
// scripting, tracking; INFO, which introspects the commands we pass; ACL and AUTH, whose
// identity semcache mirrors.
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
  'unit/acl',
  'unit/auth',
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
  verbose: false,
  json: '',
};

function parseArgs(argv) {
  const o = parseFlags(OPTS, argv);
  o.units = o.units.split(',').filter(Boolean);
  o.modes = o.modes.split(',').filter(Boolean);
  return o;
}

const SUITE = path.join(ROOT, 'test', 'redis-suite');

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

async function startSemcache(tag, upstreamPort, multiplex) {
  const port = await freePort();
  const child = startServer(`semcache-${tag}`, process.execPath, [
    path.join(ROOT, 'dist', 'cli.js'),
    ...['--port', String(port), '--bind', '127.0.0.1'],
    ...['--upstream', `redis://127.0.0.1:${upstreamPort}`],
    ...['--embedder', 'hash', '--multiplex', String(multiplex), '--log-level', 'warn'],
  ]);
  await waitForPing(`semcache --multiplex ${multiplex}`, port, child, 20_000);
  return { port, child };
}

/** Run one unit against host:port; resolves the runtest output. */
function runtest(unit, port, extra, timeoutS) {
  return new Promise((resolve, reject) => {
    const args = ['tests/test_helper.tcl', '--host', '127.0.0.1', '--port', String(port)];
    args.push('--single', unit, '--timeout', '120', ...extra);
    const child = spawn('tclsh8.6', args, { cwd: SUITE, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => {
      out += `\n[exception]: redis-suite: ${unit} still running after ${timeoutS} s, killed\n`;
      child.kill('SIGKILL');
    }, timeoutS * 1000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

// [ok]: name (3 ms) | [err]: name in tests/unit/x.tcl | [skip]: name | [ignore]: name: reason
const LINE = /^\[(ok|err|skip|ignore|exception)\]: (.*)$/;

/** Map each test name to its outcome; an [exception] ends the unit (later tests: not run). */
export function parseOutcomes(out) {
  const tests = new Map();
  let exception = null;
  const lines = out.replace(/\x1b\[[0-9;]*m/g, '').split('\n');
  for (let i = 0; i < lines.length; i++) {
    const m = LINE.exec(lines[i]);
    if (!m) continue;
    const [, kind, rest] = m;
    if (kind === 'exception') {
      exception = [rest, ...lines.slice(i + 1, i + 4)].join(' | ');
      continue;
    }
    let name = rest;
    if (kind === 'ok') name = rest.replace(/ \(\d+ ms\)$/, '');
    else if (kind === 'err') name = rest.replace(/ in tests\/\S+$/, '');
    else if (kind === 'ignore') name = rest.replace(/: [^:]*$/, '');
    const detail = kind === 'err' ? (lines[i + 1] ?? '').trim() : '';
    // A name can repeat inside a unit (loops over encodings): number the repeats.
    let key = name;
    for (let n = 2; tests.has(key); n++) key = `${name} #${n}`;
    tests.set(key, { kind, detail });
  }
  return { tests, exception };
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
  const front = mode === 'direct' ? null : await startSemcache(tag, backend.port, Number(mode));
  const extra = o.runtest.split(' ').filter(Boolean);
  for (const name of SKIP[unit] ?? []) extra.push('--skiptest', name);
  const started = performance.now();
  const { out } = await runtest(unit, front ? front.port : backend.port, extra, o['timeout-s']);
  const seconds = (performance.now() - started) / 1000;
  const crashed = front?.child.exited || backend.child.exited;
  if (front) await stopServer(front.child);
  await stopServer(backend.child);
  const parsed = parseOutcomes(out);
  if (crashed) parsed.exception = `${crashed}\n${logTail(front?.child ?? backend.child)}`;
  return { ...parsed, seconds, out };
}

function compareUnit(unit, results, o) {
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
  };
  if (base.exception) summary.directException = base.exception;
  for (const row of rows) {
    const tag = row.unexpected.length ? 'DIFF' : 'same';
    console.log(
      `  ${tag} --multiplex ${row.mode}: ${row.same} same, ${row.allowed.length} allowed, ${row.unexpected.length} unexpected`,
    );
    const show = o.verbose ? [...row.unexpected, ...row.allowed] : row.unexpected;
    for (const d of show)
      console.log(
        `    ${d.reason ? 'allowed' : 'UNEXPECTED'}: ${d.test}: direct ${d.direct}, semcache ${d.semcache}${d.detail ? ` (${d.detail})` : ''}${d.reason ? ` [${d.reason}]` : ''}`,
      );
  }
  return summary;
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  installCleanup();
  if (!fs.existsSync(path.join(ROOT, 'dist', 'cli.js')))
    throw new Error('run `npm run build` first');
  const summaries = [];
  for (const unit of o.units) {
    if (!o.modes.includes('direct')) throw new Error('--modes must include direct (the reference)');
    const results = new Map();
    for (const mode of o.modes) results.set(mode, await runMode(unit, mode, o));
    const b = results.get('direct');
    const ok = [...b.tests.values()].filter((t) => t.kind === 'ok').length;
    console.log(
      `${unit}: ${b.tests.size} tests against redis-server (${ok} ok)${b.exception ? `, exception: ${b.exception}` : ''}`,
    );
    if (o.verbose && b.exception) console.log(b.out.slice(-3000));
    summaries.push(compareUnit(unit, results, o));
  }
  const unexpected = summaries.flatMap((s) => s.rows).reduce((n, r) => n + r.unexpected.length, 0);
  const allowed = summaries.flatMap((s) => s.rows).reduce((n, r) => n + r.allowed.length, 0);
  console.log(
    `redis-suite: ${o.units.length} units, modes ${o.modes.join(',')}: ${unexpected} unexpected differences, ${allowed} allowed`,
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
