// bench/lib.mjs — helpers shared by bench/proxy.mjs, bench/semantic.mjs,
// bench/faiss-search.mjs and bench/naive-faiss-redis.mjs:
// child processes that are always killed, free ports, a small pipelined RESP client,
// an incremental RESP parser (requests and replies), a closed-loop load driver,
// machine info and the generated MiniLM-shaped model.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export function die(msg) {
  console.error(`bench: ${msg}`);
  process.exit(1);
}

// ---------- child processes: tracked, always killed ----------
const children = new Set();
let tmp;

/** A temp dir for logs and configs, removed on exit. */
export function tmpDir() {
  tmp ??= fs.mkdtempSync(path.join(os.tmpdir(), 'semcache-bench-'));
  return tmp;
}

function killGroup(child, signal) {
  try {
    process.kill(-child.pid, signal); // children run detached: kill their whole process group
  } catch {
    /* already gone */
  }
}

function cleanupSync() {
  for (const c of children) killGroup(c, 'SIGKILL');
  children.clear();
  if (tmp && !process.env.KEEP_TMP) fs.rmSync(tmp, { recursive: true, force: true });
  if (tmp && process.env.KEEP_TMP) console.error('kept', tmp);
  tmp = undefined;
}

/** Kill every child on exit, error or signal. Call once from the main script. */
export function installCleanup() {
  process.on('exit', cleanupSync);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(sig, () => {
      console.error(`\n${sig}: stopping children`);
      cleanupSync();
      process.exit(130);
    });
  }
}

/** Start a long-running server in its own process group, output to a log file in tmpDir(). */
export function startServer(name, cmd, args, { cwd = tmpDir(), env = process.env } = {}) {
  const logFile = path.join(tmpDir(), `${name}.log`);
  fs.writeFileSync(logFile, '');
  const fd = fs.openSync(logFile, 'a');
  const child = spawn(cmd, args, { cwd, env, stdio: ['ignore', fd, fd], detached: true });
  fs.closeSync(fd);
  children.add(child);
  child.exited = false;
  child.startedAt = performance.now();
  child.exitPromise = new Promise((resolve) => {
    child.on('exit', (code, sig) => {
      child.exited = `${name} exited (code ${code}, signal ${sig})`;
      children.delete(child);
      resolve();
    });
    child.on('error', (e) => {
      child.exited = `${name} failed to start: ${e.message}`;
      children.delete(child);
      resolve();
    });
  });
  // A server that writes its own log file (e.g. nutcracker -o) can repoint child.logFile.
  child.logFile = logFile;
  child.log = () => {
    try {
      return fs.readFileSync(child.logFile, 'utf8');
    } catch {
      return '';
    }
  };
  return child;
}

export const logTail = (child, n = 20) => child.log().split('\n').slice(-n).join('\n');

/** SIGTERM one child, SIGKILL it after `ms`. */
export async function stopServer(child, ms = 5000) {
  if (child.exited) return;
  killGroup(child, 'SIGTERM');
  const timer = setTimeout(() => killGroup(child, 'SIGKILL'), ms);
  await child.exitPromise;
  clearTimeout(timer);
}

export async function stopAll() {
  await Promise.all([...children].map((c) => stopServer(c, 3000)));
}

/** Run the script's async main(), stop every child, exit 0; any error ends in die(). */
/** A redis-server on a free loopback port, without persistence; resolves { port, child }. */
export async function startRedis() {
  const port = await freePort();
  const dir = tmpDir();
  fs.writeFileSync(
    path.join(dir, 'redis.conf'),
    `port ${port}\nbind 127.0.0.1\nsave ""\nappendonly no\ndir ${dir}\n`,
  );
  const child = startServer('redis', 'redis-server', ['redis.conf']);
  await waitForPing('redis-server', port, child, 10_000);
  return { port, child };
}

export function runMain(main) {
  return main()
    .then(stopAll)
    .then(
      () => process.exit(0),
      (e) => die(e.stack ?? e),
    );
}

/** Run a command to completion (tracked, so it is killed with us); resolves { code, signal, out, err }. */
export function runTracked(cmd, args, timeoutMs) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    children.add(child);
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => killGroup(child, 'SIGKILL'), timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      children.delete(child);
      reject(e);
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      resolve({ code, signal, out, err });
    });
  });
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// ---------- RESP ----------
export class RespError extends Error {}

/**
 * Parse one RESP2/RESP3 value at `pos`; returns [value, next] or undefined when the
 * buffer does not hold all of it yet. Bulk strings are Buffers, simple strings are
 * strings, errors are RespError, nil is null.
 */
export function parseResp(buf, pos) {
  if (pos >= buf.length) return undefined;
  const lineEnd = buf.indexOf('\r\n', pos, 'latin1');
  if (lineEnd < 0) return undefined;
  const type = buf[pos];
  const line = buf.toString('latin1', pos + 1, lineEnd);
  const next = lineEnd + 2;
  switch (type) {
    case 0x2b: // +
      return [line, next];
    case 0x2d: // -
      return [new RespError(buf.toString('utf8', pos + 1, lineEnd)), next];
    case 0x3a: // :
      return [Number(line), next];
    case 0x2c: // , (RESP3 double)
      return [Number(line), next];
    case 0x5f: // _ (RESP3 null)
      return [null, next];
    case 0x24: {
      // $
      const len = Number(line);
      if (len < 0) return [null, next];
      if (buf.length < next + len + 2) return undefined;
      return [buf.subarray(next, next + len), next + len + 2];
    }
    case 0x2a: // *
    case 0x25: {
      // % (RESP3 map: 2n values)
      const n = Number(line) * (type === 0x25 ? 2 : 1);
      if (n < 0) return [null, next];
      const items = [];
      let p = next;
      for (let i = 0; i < n; i++) {
        const r = parseResp(buf, p);
        if (r === undefined) return undefined;
        items.push(r[0]);
        p = r[1];
      }
      return [items, p];
    }
    default:
      throw new Error(`bad RESP type byte 0x${type.toString(16)} at ${pos}`);
  }
}

/** Feeds chunks, calls onValue for every complete value, keeps the rest. */
export class RespReader {
  constructor(onValue) {
    this.onValue = onValue;
    this.buf = Buffer.alloc(0);
  }
  feed(chunk) {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    let pos = 0;
    for (;;) {
      const r = parseResp(this.buf, pos);
      if (r === undefined) break;
      pos = r[1];
      this.onValue(r[0]);
    }
    this.buf = pos === this.buf.length ? Buffer.alloc(0) : this.buf.subarray(pos);
  }
}

export function encodeCommand(args) {
  const parts = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = Buffer.isBuffer(a) ? a : Buffer.from(String(a));
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

/** One pipelined RESP connection: call() resolves in reply order (errors resolve as RespError). */
export class RespConn {
  static connect(port, host = '127.0.0.1', ms = 5000) {
    return new Promise((resolve, reject) => {
      const sock = net.connect(port, host);
      const timer = setTimeout(() => {
        sock.destroy();
        reject(new Error(`connect 127.0.0.1:${port}: timeout`));
      }, ms);
      sock.once('connect', () => {
        clearTimeout(timer);
        sock.setNoDelay(true);
        resolve(new RespConn(sock));
      });
      sock.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
    });
  }
  constructor(sock) {
    this.sock = sock;
    this.pending = [];
    this.pendingAt = 0;
    this.reader = new RespReader((v) => {
      const p = this.pending[this.pendingAt++];
      if (this.pendingAt > 1024) {
        this.pending = this.pending.slice(this.pendingAt);
        this.pendingAt = 0;
      }
      p?.resolve(v);
    });
    sock.on('data', (d) => this.reader.feed(d));
    const fail = (e) => {
      for (let i = this.pendingAt; i < this.pending.length; i++) this.pending[i].reject(e);
      this.pending = [];
      this.pendingAt = 0;
    };
    sock.on('error', fail);
    sock.on('close', () => fail(new Error('connection closed')));
  }
  call(...args) {
    return this.callRaw(encodeCommand(args));
  }
  callRaw(bytes) {
    return new Promise((resolve, reject) => {
      this.pending.push({ resolve, reject });
      this.sock.write(bytes);
    });
  }
  /** Write `bytes` holding `n` commands; resolves with their n replies. */
  callMany(bytes, n) {
    const replies = [];
    for (let k = 0; k < n; k++)
      replies.push(new Promise((resolve, reject) => this.pending.push({ resolve, reject })));
    this.sock.write(bytes);
    return Promise.all(replies);
  }
  close() {
    this.sock.destroy();
  }
}

/** One command on a fresh connection. */
export async function respOnce(port, args, ms = 2000) {
  const c = await RespConn.connect(port, '127.0.0.1', ms);
  try {
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error('timeout')), ms);
    });
    return await Promise.race([c.call(...args), timeout]).finally(() => clearTimeout(timer));
  } finally {
    c.close();
  }
}

export async function waitForPing(name, port, child, ms) {
  const deadline = Date.now() + ms;
  for (;;) {
    if (child.exited)
      die(`${child.exited} before answering PING. Last log lines:\n${logTail(child)}`);
    try {
      if ((await respOnce(port, ['PING'])) === 'PONG') return;
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline)
      die(
        `${name} did not answer PING on 127.0.0.1:${port} within ${ms / 1000}s. Last log lines:\n${logTail(child)}`,
      );
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A flat [name, value, ...] reply (RESP2 map) as an object of strings/numbers. */
export function pairs(reply) {
  const out = {};
  if (!Array.isArray(reply)) return out;
  for (let i = 0; i + 1 < reply.length; i += 2) {
    const v = reply[i + 1];
    out[String(reply[i])] = Buffer.isBuffer(v) ? v.toString() : v;
  }
  return out;
}

// ---------- closed-loop load driver ----------
const nowMs = () => performance.now();

export function percentile(sorted, q) {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
}

/**
 * `concurrency` connections, each sending the next command as soon as the previous
 * reply arrived. Replies that arrive inside [warmup, warmup + duration] count for
 * throughput and latency. Returns { rps, p50, p99, mean, n, hits, nils, errors, firstError }.
 */
export async function drive({ port, concurrency, warmupMs, durationMs, command }) {
  const conns = await Promise.all(
    Array.from({ length: concurrency }, () => RespConn.connect(port)),
  );
  const start = nowMs();
  const from = start + warmupMs;
  const to = from + durationMs;
  const lat = [];
  let i = 0;
  let hits = 0;
  let nils = 0;
  let errors = 0;
  let firstError;
  const loop = async (conn) => {
    for (;;) {
      const t0 = nowMs();
      if (t0 >= to) return;
      const reply = await conn.callRaw(encodeCommand(command(i++)));
      const t1 = nowMs();
      if (reply instanceof RespError) {
        errors++;
        firstError ??= reply.message;
        if (errors > 20) throw new Error(`too many errors, first: ${firstError}`);
      }
      if (t1 < from || t1 > to) continue;
      lat.push(t1 - t0);
      if (reply === null) nils++;
      else if (!(reply instanceof RespError)) hits++;
    }
  };
  try {
    await Promise.all(conns.map(loop));
  } finally {
    for (const c of conns) c.close();
  }
  lat.sort((a, b) => a - b);
  const mean = lat.reduce((s, x) => s + x, 0) / Math.max(1, lat.length);
  return {
    rps: lat.length / (durationMs / 1000),
    p50: percentile(lat, 0.5),
    p99: percentile(lat, 0.99),
    mean,
    n: lat.length,
    hits,
    nils,
    errors,
    firstError,
  };
}

// ---------- texts ----------
export function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS = `how what why when where which can could should would is are do does my the a an
to for of in on with about from into near best cheapest fastest way reset change update cancel
find book order return refund ship track pay open close install configure upgrade delete export
import password email invoice address account subscription plan order package laptop phone
printer router flight hotel train ticket visa passport tax report insurance loan mortgage
recipe pasta bread coffee garden bike car battery screen keyboard backup server database cache
query index python node docker kubernetes linux windows network error timeout memory disk
weather berlin paris tokyo london beach mountain museum concert weekend tomorrow today monthly
quickly safely online offline free cheap family student business abroad again first new old`
  .split(/\s+/)
  .filter(Boolean);

/** A deterministic text of `words` words; distinct for distinct (seed, i) through the number in it. */
export function textFor(seed, i, words) {
  const rand = mulberry32((seed * 1_000_003 + i) >>> 0);
  const w = [];
  for (let k = 0; k < words - 1; k++) w.push(WORDS[Math.floor(rand() * WORDS.length)]);
  w.splice(Math.floor(rand() * w.length), 0, `#${seed}-${i}`);
  return w.join(' ');
}

// ---------- machine ----------
export function sh(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return r.status === 0 ? `${r.stdout}${r.stderr}`.trim() : 'n/a';
}

export function machineInfo() {
  let cpu = os.cpus()[0]?.model ?? 'n/a';
  try {
    cpu = fs.readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/)?.[1] ?? cpu;
  } catch {}
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  const dirty =
    sh('git', ['-C', ROOT, 'status', '--porcelain', '--', 'src']) !== '' ? ', src modified' : '';
  return {
    date: new Date().toISOString(),
    cpu,
    cores: os.availableParallelism?.() ?? os.cpus().length,
    memGb: Math.round(os.totalmem() / 2 ** 30),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    redis: sh('redis-server', ['--version']).match(/v=(\S+)/)?.[1] ?? 'n/a',
    semcache: `${pkg.version} (git ${sh('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'])}${dirty})`,
  };
}

export const loadavg = () =>
  os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');

// ---------- the MiniLM-shaped model ----------
/**
 * The directory of the generated all-MiniLM-L6-v2-shaped model, the same one
 * test/helpers/model.ts uses (node_modules/.cache/semcache-models/minilm-<hash>);
 * generated with scripts/make-model.mjs when missing (needs ../shared/models).
 */
export async function ensureMiniLm(log = console.log) {
  const script = path.join(ROOT, 'scripts', 'make-model.mjs');
  const modelSrc = path.join(ROOT, 'scripts', 'model');
  const h = createHash('sha256');
  const files = [
    script,
    ...fs
      .readdirSync(modelSrc)
      .filter((f) => f.endsWith('.mjs'))
      .sort()
      .map((f) => path.join(modelSrc, f)),
  ];
  for (const f of files) h.update(fs.readFileSync(f));
  const cacheRoot = path.join(ROOT, 'node_modules', '.cache', 'semcache-models');
  const dir = path.join(cacheRoot, `minilm-${h.digest('hex').slice(0, 12)}`);
  if (fs.existsSync(path.join(dir, 'semcache-model.json'))) return dir;
  fs.mkdirSync(cacheRoot, { recursive: true });
  const part = `${dir}.tmp-${process.pid}-${Date.now()}`;
  log(`generating the MiniLM-shaped model into ${path.relative(ROOT, dir)} (once) ...`);
  const r = await runTracked(
    process.execPath,
    [script, '--out', part, '--preset', 'minilm', '--quiet'],
    600_000,
  );
  if (r.code !== 0) {
    fs.rmSync(part, { recursive: true, force: true });
    die(`scripts/make-model.mjs failed (code ${r.code}):\n${r.out}${r.err}`);
  }
  try {
    fs.renameSync(part, dir);
  } catch (e) {
    fs.rmSync(part, { recursive: true, force: true });
    if (!fs.existsSync(path.join(dir, 'semcache-model.json'))) throw e;
  }
  return dir;
}

// ---------- formatting ----------
export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length === 0 ? Number.NaN : s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
export const fmt = (n) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '–');
export const fmt1 = (n) =>
  Number.isFinite(n)
    ? n >= 100
      ? Math.round(n).toLocaleString('en-US')
      : n.toFixed(n >= 10 ? 1 : 2)
    : '–';
export const ratio = (a, b) =>
  Number.isFinite(a) && Number.isFinite(b) && b > 0 ? a / b : Number.NaN;
export const fmtRatio = (r, suffix = '×') =>
  Number.isFinite(r) ? `${r.toFixed(2)}${suffix}` : '–';

export function mdTable(header, rows, align) {
  const a = align ?? header.map((_, i) => (i === 0 ? 'l' : 'r'));
  return [
    `| ${header.join(' | ')} |`,
    `|${a.map((x) => (x === 'l' ? ' --- ' : ' ---: ')).join('|')}|`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');
}

/** A standard normal deviate from two uniform ones (Box-Muller). */
export function gaussian(rand) {
  return Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
}

// ---------- synthetic vectors (bench/faiss-search.mjs, bench/recall.mjs) ----------
function unit(v) {
  let s = 0;
  for (const x of v) s += x * x;
  return v.map((x) => x / Math.sqrt(s));
}

/**
 * `n` unit vectors of `dim`, from seed `seed`. `random` (uniform on the
 * sphere) and `clustered` are test/unit/vector-index.test.ts's randomVectors
 * and clusteredVectors (`centres` centres drawn from seed 7, cosine to their
 * centre about 0.7 at `spread` 0.05). `lowrank`: Gaussian points in a random
 * `rank`-dimensional subspace plus a little isotropic noise, i.e. continuous
 * structure of low intrinsic dimension and no clusters to line up with IVF's
 * lists (an in-between model of real embeddings).
 */
export function syntheticVectors(
  kind,
  n,
  seed,
  { dim = 384, centres = 100, spread = 0.05, rank = 32 } = {},
) {
  const rand = mulberry32(seed);
  const random = () => unit(Float32Array.from({ length: dim }, () => gaussian(rand)));
  if (kind === 'random') return Array.from({ length: n }, random);
  const crand = mulberry32(7);
  if (kind === 'lowrank') {
    const basis = Array.from({ length: rank }, () =>
      unit(Float32Array.from({ length: dim }, () => gaussian(crand))),
    );
    const noise = 0.2 / Math.sqrt(dim / rank);
    return Array.from({ length: n }, () => {
      const v = Float32Array.from({ length: dim }, () => noise * gaussian(rand));
      for (const b of basis) {
        const g = gaussian(rand);
        for (let i = 0; i < dim; i++) v[i] += g * b[i];
      }
      return unit(v);
    });
  }
  if (kind !== 'clustered') throw new Error(`data: clustered, random or lowrank, not ${kind}`);
  const cs = Array.from({ length: centres }, () =>
    unit(Float32Array.from({ length: dim }, () => gaussian(crand))),
  );
  return Array.from({ length: n }, () => {
    const c = cs[Math.floor(rand() * cs.length)];
    return unit(c.map((x) => x + spread * gaussian(rand)));
  });
}

// ---------- semcache entries written straight into Redis (docs/storage.md) ----------

/**
 * FLUSHALL, then write `n` entries in semcache's storage layout, as SEMSET would:
 * the value at `bench:sem:<i>`, the record hash `<prefix>rec:<key>` (ns default,
 * text, vec = a random unit vector of `dim` float32 LE, model = `modelId`, exact,
 * ts) and the exact-match key. `data: 'clustered'`: the vectors are points around 100
 * random centres (spread 0.05), like syntheticVectors' clustered set. Pipelined, 1000 entries per round trip. Returns ms.
 */
export async function writeEntries(
  redisPort,
  n,
  { modelId, dim, words = 12, prefix = 'semcache:', seed = 12345, data = 'random' },
) {
  const { pathToFileURL } = await import('node:url');
  const { exactKey } = await import(
    pathToFileURL(path.join(ROOT, 'dist/semantic/normalize.js')).href
  );
  const conn = await RespConn.connect(redisPort);
  await conn.call('FLUSHALL');
  const rand = mulberry32(seed);
  const t0 = performance.now();
  const CHUNK = 1000;
  const vec = new Float32Array(dim);
  if (data !== 'random' && data !== 'clustered') die(`data: random or clustered, not ${data}`);
  const crand = mulberry32(7);
  const centres =
    data === 'clustered'
      ? Array.from({ length: 100 }, () =>
          unit(Float32Array.from({ length: dim }, () => gaussian(crand))),
        )
      : undefined;
  for (let start = 0; start < n; start += CHUNK) {
    const parts = [];
    const end = Math.min(n, start + CHUNK);
    for (let i = start; i < end; i++) {
      const key = `bench:sem:${i}`;
      const text = `stored ${textFor(777, i, words)}`;
      let s = 0;
      const c = centres?.[Math.floor(rand() * centres.length)];
      for (let j = 0; j < dim; j++) {
        vec[j] = c ? c[j] + 0.05 * gaussian(rand) : gaussian(rand);
        s += vec[j] * vec[j];
      }
      const norm = Math.sqrt(s);
      const bytes = Buffer.allocUnsafe(dim * 4);
      for (let j = 0; j < dim; j++) bytes.writeFloatLE(vec[j] / norm, j * 4);
      const exact = `${prefix}exact:default:${exactKey(text)}`;
      parts.push(
        encodeCommand(['SET', key, `cached answer for entry ${i}: ${textFor(999, i, 10)}`]),
        encodeCommand([
          'HSET',
          `${prefix}rec:${key}`,
          'ns',
          'default',
          'text',
          text,
          'vec',
          bytes,
          'model',
          modelId,
          'exact',
          exact,
          'ts',
          Date.now(),
        ]),
        encodeCommand(['SET', exact, key]),
      );
    }
    for (const r of await conn.callMany(Buffer.concat(parts), parts.length))
      if (r instanceof RespError) die(`writing entries: ${r.message}`);
  }
  const ms = performance.now() - t0;
  const dbsize = await conn.call('DBSIZE');
  conn.close();
  if (dbsize !== 3 * n) die(`wrote ${dbsize} keys, expected ${3 * n}`);
  return ms;
}

/**
 * `--name value` flags over defaults: a number default makes a number, a boolean default a
 * switch (no value); an unknown flag is an error that lists the known ones.
 */
export function parseFlags(defaults, argv = process.argv.slice(2)) {
  const o = { ...defaults };
  for (let i = 0; i < argv.length; i++) {
    const name = argv[i].replace(/^--/, '');
    if (!(name in o))
      throw new Error(`unknown flag ${argv[i]} (flags: ${Object.keys(o).join(', ')})`);
    if (typeof o[name] === 'boolean') o[name] = true;
    else o[name] = typeof o[name] === 'number' ? Number(argv[++i]) : String(argv[++i]);
  }
  return o;
}

/** The longest gap between the ticks of a 1 ms timer while `promise` runs (ms): the event loop's longest stall. */
export async function longestGap(promise) {
  let last = performance.now();
  let longest = 0;
  const probe = setInterval(() => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
  }, 1);
  try {
    await promise;
  } finally {
    clearInterval(probe);
  }
  return Math.max(longest, performance.now() - last);
}
