#!/usr/bin/env node
// bench/naive-faiss-redis.mjs — the classic hand-written "FAISS + Redis" semantic
// cache, as the baseline for bench/semantic.mjs. What a typical tutorial-style
// implementation in Node does, no more:
//
//   - on start: SCAN the records semcache keeps in Redis (docs/storage.md,
//     `<prefix>rec:<key>` hashes), read their `vec` fields (pipelined HMGET),
//     put them into a faiss-node IndexFlatL2 (exact L2 search), and keep a
//     position -> key array;
//   - per request, in the request's own async handler: one transformers.js
//     feature-extraction call on that one text (mean pooling + normalize), no
//     batching, no embedding cache, run in the main thread; index.search(q, 1);
//     if the nearest vector is within the threshold (cosine = 1 - d²/2 for unit
//     vectors), one Redis GET of its key (ioredis) and that value is the answer.
//
// Front end: so that the SAME load driver (bench/lib.mjs drive(), raw RESP over
// loopback TCP) measures both designs, it listens on a tiny RESP server that
// speaks `PING` and `SEMGET text [THRESHOLD t]` (bulk value or nil), one command
// at a time per connection, connections served concurrently. The server is a few
// lines of RESP framing and is not where the time goes (check the log: it
// prints embed / search / GET means on SIGTERM).
//
// Usage: node bench/naive-faiss-redis.mjs --port P --redis-port R --model-dir DIR
//          [--threshold 0.9] [--prefix semcache:] [--dtype fp32]
// It listens only once the index is loaded, so "answers PING" means ready; it
// prints `ready: N vectors (dim D) loaded in M ms` first.
import { createRequire } from 'node:module';
import net from 'node:net';
import { parseArgs } from 'node:util';
import { env, pipeline } from '@huggingface/transformers';
import { Redis } from 'ioredis';
import { RespError, RespReader } from './lib.mjs';

const require = createRequire(import.meta.url);
const faiss = require('faiss-node');

const { values: opt } = parseArgs({
  options: {
    port: { type: 'string' },
    'redis-port': { type: 'string' },
    'model-dir': { type: 'string' },
    threshold: { type: 'string', default: '0.9' },
    prefix: { type: 'string', default: 'semcache:' },
    dtype: { type: 'string', default: 'fp32' },
  },
});
if (!opt.port || !opt['redis-port'] || !opt['model-dir']) {
  console.error('usage: node bench/naive-faiss-redis.mjs --port P --redis-port R --model-dir DIR');
  process.exit(2);
}
const threshold = Number(opt.threshold);
const t0 = performance.now();

// ---- model: transformers.js, local files only ----
env.allowRemoteModels = false;
const extractor = await pipeline('feature-extraction', opt['model-dir'], {
  dtype: opt.dtype,
  local_files_only: true,
});
const tModel = performance.now();

// ---- vectors from Redis into IndexFlatL2 ----
const redis = new Redis({ host: '127.0.0.1', port: Number(opt['redis-port']), lazyConnect: false });
const keys = [];
let index;
let cursor = '0';
const recPrefix = `${opt.prefix}rec:`;
do {
  const [next, recs] = await redis.scan(cursor, 'MATCH', `${recPrefix}*`, 'COUNT', 1000);
  cursor = next;
  if (recs.length === 0) continue;
  const p = redis.pipeline();
  for (const k of recs) p.hgetBuffer(k, 'vec');
  const vecs = await p.exec();
  const flat = [];
  vecs.forEach(([err, buf], i) => {
    if (err || !buf) return;
    const dim = buf.length / 4;
    index ??= new faiss.IndexFlatL2(dim);
    for (let j = 0; j < dim; j++) flat.push(buf.readFloatLE(j * 4));
    keys.push(recs[i].slice(recPrefix.length));
  });
  if (flat.length > 0) index.add(flat);
} while (cursor !== '0');
if (!index) {
  console.error('no vectors found in redis');
  process.exit(1);
}
const tLoaded = performance.now();
console.log(
  `ready: ${index.ntotal()} vectors (dim ${index.getDimension()}) loaded in ${(tLoaded - tModel).toFixed(0)} ms (model ${(tModel - t0).toFixed(0)} ms)`,
);

// ---- request handling ----
const stats = { n: 0, embed: 0, search: 0, get: 0 };

async function semget(text, th) {
  const a = performance.now();
  const out = await extractor(text, { pooling: 'mean', normalize: true });
  const b = performance.now();
  const { distances, labels } = index.search(Array.from(out.data), 1);
  const c = performance.now();
  stats.n++;
  stats.embed += b - a;
  stats.search += c - b;
  const label = labels[0];
  if (label === undefined || label < 0 || 1 - distances[0] / 2 < th) return null;
  const value = await redis.getBuffer(keys[label]);
  stats.get += performance.now() - c;
  return value;
}

const bulk = (b) => Buffer.concat([Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n')]);

async function handle(cmd) {
  if (!Array.isArray(cmd) || cmd.length === 0) return '-ERR protocol error\r\n';
  const name = String(cmd[0]).toUpperCase();
  if (name === 'PING') return '+PONG\r\n';
  // cumulative timings, for the benchmark's "where the time goes"
  if (name === 'BENCHSTATS') return bulk(Buffer.from(JSON.stringify(stats)));
  if (name === 'SEMGET' && (cmd.length === 2 || cmd.length === 4)) {
    let th = threshold;
    if (cmd.length === 4) {
      if (String(cmd[2]).toUpperCase() !== 'THRESHOLD') return '-ERR syntax error\r\n';
      th = Number(String(cmd[3]));
    }
    const v = await semget(cmd[1].toString(), th);
    return v === null ? '$-1\r\n' : bulk(v);
  }
  return `-ERR unknown command '${name}'\r\n`;
}

const server = net.createServer((sock) => {
  sock.setNoDelay(true);
  let chain = Promise.resolve();
  const reader = new RespReader((cmd) => {
    // one command at a time per connection, replies in order
    chain = chain
      .then(() => handle(cmd))
      .catch((e) => `-ERR ${e instanceof RespError ? e.message : String(e.message ?? e)}\r\n`)
      .then((reply) => {
        if (!sock.destroyed) sock.write(reply);
      });
  });
  sock.on('data', (d) => {
    try {
      reader.feed(d);
    } catch {
      sock.destroy();
    }
  });
  sock.on('error', () => {});
});
server.listen(Number(opt.port), '127.0.0.1');

process.on('SIGTERM', () => {
  const m = (x) => (stats.n ? (x / stats.n).toFixed(2) : '–');
  console.log(
    `stats: ${stats.n} SEMGET, mean embed ${m(stats.embed)} ms, search ${m(stats.search)} ms, GET ${m(stats.get)} ms`,
  );
  server.close();
  redis.disconnect();
  process.exit(0);
});
