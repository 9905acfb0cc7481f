#!/usr/bin/env node
// Differential protocol fuzzing: the same random and mutated request bytes go, each case on a
// fresh connection, to a real redis-server and to semcache in front of it (one semcache per
// --multiplex mode), and the answers must be the same bytes, with the connection closed after
// the same bytes or left open by both. Each case is also fed to semcache's RequestParser
// in-process (from dist/), whose commands and error must account for Redis's replies exactly,
// whatever the timing. semcache must stay up (PING) and its RSS bounded.
//
//   npm run build && node scripts/fuzz-protocol.mjs --cases 100000 --seed 1
//
// Cases are rebuilt from (seed, case number) alone: `--case N` replays one and prints it.
// Differences that docs/protocol.md documents are counted apart, not failed (EXCEPTIONS in
// scripts/fuzz/exchange.mjs). Exit status 1 on any other difference, a crash or RSS growth over
// the bound. Generation: scripts/fuzz/generate.mjs; sending and comparing: exchange.mjs;
// shrinking a failing case: minimize.mjs; printing: report.mjs.
import fs from 'node:fs';
import path from 'node:path';
import {
  freePort,
  installCleanup,
  logTail,
  parseFlags,
  RespConn,
  ROOT,
  respOnce,
  startRedis,
  startServer,
  stopAll,
  waitForPing,
} from '../bench/lib.mjs';
import { compare, documentedException, redisLeg, semcacheLeg } from './fuzz/exchange.mjs';
import { generate } from './fuzz/generate.mjs';
import { minimize } from './fuzz/minimize.mjs';
import { describe, printSummary, report, roundRss } from './fuzz/report.mjs';

const OPTS = {
  cases: 100_000,
  seed: 1,
  modes: '1,0',
  concurrency: 16,
  'grace-ms': 10,
  'timeout-ms': 3000,
  'max-rss-growth': 256,
  show: 5,
  'show-exceptions': 0,
  case: -1,
  json: false,
  // Another script in semcache's place (same flags), for testing the harness itself.
  'semcache-cli': 'dist/cli.js',
};

function parseArgs(argv) {
  const o = parseFlags(OPTS, argv);
  o.modes = o.modes.split(',').map(Number);
  return o;
}

const rssMb = (pid) => {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : Number.NaN;
};

async function startSemcache(cli, upstream, multiplex) {
  const port = await freePort();
  const child = startServer(`semcache-m${multiplex}`, process.execPath, [
    cli,
    ...['--port', String(port), '--bind', '127.0.0.1', '--upstream', upstream],
    ...['--embedder', 'hash', '--multiplex', String(multiplex), '--log-level', 'warn'],
  ]);
  await waitForPing(`semcache --multiplex ${multiplex}`, port, child, 20_000);
  return { multiplex, port, child, rss: { start: rssMb(child.pid), peak: 0, end: 0 } };
}

// The commands cases may run, and where their keys are (argv positions; 'rest': all from 1).
const SAFE = {
  ...{ ping: [], echo: [], set: [1], get: [1], incr: [1], append: [1], strlen: [1] },
  ...{ exists: 'rest', del: 'rest' },
};

/**
 * accept(input, id) for generate(): the keys the input's commands touch, or undefined when it
 * would run a real command outside SAFE or touch a key without the case's id (another case's).
 * An unknown command is fine: Redis refuses it. The commands are found with our own parser,
 * whose agreement with Redis is what the run checks.
 */
async function commandFilter(conn, RequestParser) {
  const known = new Set((await conn.call('COMMAND', 'LIST')).map((n) => String(n).toLowerCase()));
  return (input, id) => {
    let ok = true;
    const keys = new Map();
    new RequestParser({ maxInlineSize: 1 << 30 }).feed(input, ({ args }) => {
      const name = args[0].toString('latin1').toLowerCase();
      const at = SAFE[name];
      if (at === undefined) {
        ok &&= !known.has(name);
        return;
      }
      for (const k of at === 'rest' ? args.slice(1) : at.map((i) => args[i]).filter(Boolean)) {
        ok &&= k.includes(id);
        keys.set(k.toString('latin1'), k);
      }
    });
    return ok ? [...keys.values()] : undefined;
  };
}

/** What the in-process parser makes of the input: how many commands, and the error if any. */
function parse(RequestParser, input) {
  let n = 0;
  const err = new RequestParser().feed(input, () => n++);
  return { n, err, replies: n + (err === undefined ? 0 : 1) };
}

/** The parser's view shaped like a server's answer: Redis's replies to its commands, its error. */
function parserAnswer({ n, err }, redis) {
  const replies = redis.replies.slice(0, n);
  if (replies.length < n) replies.push(...Array(n - replies.length).fill(Buffer.from('?')));
  if (err !== undefined) replies.push(Buffer.from(`-ERR Protocol error: ${err}\r\n`, 'latin1'));
  return { bytes: Buffer.concat(replies), replies, closed: err !== undefined };
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  if (!fs.existsSync(path.join(ROOT, 'dist/cli.js'))) throw new Error('run `npm run build` first');
  installCleanup();
  const t0 = performance.now();
  const redis = await startRedis();
  const upstream = `redis://127.0.0.1:${redis.port}`;
  const cli = path.resolve(ROOT, o['semcache-cli']);
  const proxies = await Promise.all(o.modes.map((m) => startSemcache(cli, upstream, m)));
  const { RequestParser } = await import('../dist/resp/request-parser.js');
  const control = await RespConn.connect(redis.port, '127.0.0.1', 2000);
  const accept = await commandFilter(control, RequestParser);
  // Before every run of a case: its keys as they were before any run.
  const reset = async (keys) => {
    if (keys.length > 0) await control.call('DEL', ...keys);
  };
  const legOpts = { timeoutMs: o['timeout-ms'], graceMs: o['grace-ms'] };

  const stats = {
    ...{ cases: 0, legs: 0, matches: 0, inconclusive: 0, exceptions: {} },
    ...{ mismatches: [], parser: [], excepted: [] },
  };
  const only = o.case >= 0;
  const first = only ? o.case : 0;
  const last = only ? o.case + 1 : o.cases;

  /** Files a disagreement: a documented exception (counted, kept for --show-exceptions) or not. */
  const file = (m, list) => {
    const ex = documentedException(m.kase.input, m.got, m.redis);
    if (ex === undefined) return void list.push(m);
    const id = m.px ? ex : `parser:${ex}`;
    stats.exceptions[id] = (stats.exceptions[id] ?? 0) + 1;
    if (stats.excepted.length < o['show-exceptions']) {
      stats.excepted.push({ ...m, where: `${id}, ${m.where}` });
    }
  };

  /** A run of the case from its keys' initial state; retried while TCP resets it. */
  async function attempt(kase, leg) {
    let res;
    for (let k = 0; k < 3 && (res === undefined || res.reset); k++) {
      await reset(kase.keys);
      res = await leg();
    }
    return res;
  }

  async function runCase(n) {
    const kase = { n, ...generate(o.seed, n, accept) };
    const parsed = parse(RequestParser, kase.input);
    const r = await attempt(kase, () =>
      redisLeg(redis.port, kase, parsed.replies, o['timeout-ms']),
    );
    const p = parserAnswer(parsed, r);
    if (!r.reset && compare(p, r) === 'differ') {
      file({ kase, redis: r, got: p, where: 'parser (in-process)' }, stats.parser);
    }
    for (const px of proxies) {
      const s = await attempt(kase, () => semcacheLeg(px.port, kase, r, legOpts));
      const m = { kase, redis: r, got: s, px, where: `semcache --multiplex ${px.multiplex}` };
      stats.legs++;
      if (only) report(m);
      const v = compare(s, r);
      if (v === 'same') stats.matches++;
      else if (v === 'reset') stats.inconclusive++;
      else if (v === 'differ') file(m, stats.mismatches);
    }
    stats.cases++;
  }

  let next = first;
  let checked = first;
  const health = async () => {
    for (const px of proxies) {
      if (px.child.exited) throw new Error(`${px.child.exited}\n${logTail(px.child)}`);
      const pong = await respOnce(px.port, ['PING'], 5000).catch((e) => e.message);
      if (pong !== 'PONG')
        throw new Error(`semcache --multiplex ${px.multiplex} did not answer PING: ${pong}`);
      px.rss.peak = Math.max(px.rss.peak, rssMb(px.child.pid));
    }
  };
  await Promise.all(
    Array.from({ length: Math.min(o.concurrency, last - first) }, async () => {
      while (next < last) {
        await runCase(next++);
        if (stats.cases - checked >= 2000) {
          checked = stats.cases;
          await health();
          if (!o.json) process.stderr.write(`\r${stats.cases} cases...`);
        }
      }
    }),
  );
  await health();
  await new Promise((r) => setTimeout(r, 500));
  for (const px of proxies) px.rss.end = rssMb(px.child.pid);

  const shown = [...stats.parser, ...stats.mismatches].slice(0, o.show);
  for (const m of shown) {
    const expectReplies = (input) => parse(RequestParser, input).replies;
    if (m.px) m.min = await minimize(m, redis.port, { accept, reset, expectReplies }, legOpts);
  }
  control.close();
  const summary = {
    seed: o.seed,
    cases: stats.cases,
    modes: o.modes,
    legs: stats.legs,
    matches: stats.matches,
    exceptions: stats.exceptions,
    inconclusive: stats.inconclusive,
    mismatches: stats.mismatches.length,
    parserMismatches: stats.parser.length,
    rssMb: Object.fromEntries(proxies.map((p) => [`multiplex=${p.multiplex}`, roundRss(p.rss)])),
    seconds: Math.round((performance.now() - t0) / 100) / 10,
    first: shown.map(describe),
    excepted: stats.excepted.map(describe),
  };
  const rssOk = proxies.every((p) => p.rss.end - p.rss.start <= o['max-rss-growth']);
  if (o.json) console.log(JSON.stringify(summary));
  else printSummary(summary, o);
  if (summary.mismatches + summary.parserMismatches > 0 || !rssOk) process.exitCode = 1;
}

main()
  .then(stopAll)
  .then(
    () => process.exit(process.exitCode ?? 0),
    (e) => {
      console.error(`fuzz-protocol: ${e.stack ?? e}`);
      process.exit(2);
    },
  );
