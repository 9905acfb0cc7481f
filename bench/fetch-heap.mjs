#!/usr/bin/env node
// bench/fetch-heap.mjs — does a big JS heap slow the fetch of a snapshot's chunks?
//
// A joining instance fetches a snapshot as 8 MB strings by pipelined GETs on semcache's own
// Redis client (src/semantic/snapshot.ts fetch()). At 1,000,000 entries that ran at 80 MB/s
// against 220-270 MB/s at 100,000 (docs/fleet.md, "Not built yet"). This fetches --chunks
// strings of 8 MB from a redis-server, in a process of its own per setup: one with an empty
// heap, one holding --entries entry-like objects in three maps (as the entry table does),
// and reports MB/s and V8's full collections (--trace-gc).
//
//   npm run build && node bench/fetch-heap.mjs [--chunks 120] [--entries 1000000]
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  fmt,
  installCleanup,
  machineInfo,
  mdTable,
  parseFlags,
  ROOT,
  runMain,
  startRedis,
  stopAll,
} from './lib.mjs';

const OPTS = { chunks: 120, entries: 1_000_000, child: '', port: 0 };
const CHUNK = 8 << 20;

async function client(port) {
  const url = pathToFileURL(path.join(ROOT, 'dist/upstream/redis-client.js')).href;
  const { RedisClient } = await import(url);
  return new RedisClient({ host: '127.0.0.1', port });
}

/** In the child: hold `entries` objects, then fetch every chunk; print MB/s as JSON. */
async function child(o) {
  const maps = [new Map(), new Map(), new Map()];
  for (let i = 0; i < o.entries; i++) {
    const e = {
      id: i,
      name: `bench:sem:${i}`,
      text: `stored text number ${i} with some words`,
      exact: i.toString(16).padStart(64, '0'),
      ver: `1796650217515-${i}`,
      attrs: undefined,
    };
    maps[0].set(e.name, e);
    maps[1].set(i, e);
    maps[2].set(e.exact, e);
  }
  const c = await client(o.port);
  await c.call('PING');
  const t0 = performance.now();
  let bytes = 0;
  const kept = [];
  for (let at = 0; at < o.chunks; at += 16) {
    const n = Math.min(16, o.chunks - at);
    const replies = await c.pipeline(
      Array.from({ length: n }, (_, i) => ['GET', `chunk:${at + i}`]),
    );
    for (const r of replies) {
      bytes += r.length;
      kept.push(r); // held, as a fetch holds the payload until it is adopted
    }
  }
  const ms = performance.now() - t0;
  console.log(JSON.stringify({ bytes, ms, held: maps[0].size }));
  process.exit(0);
}

async function main() {
  const o = parseFlags(OPTS);
  if (o.child) return child(o);
  installCleanup();
  console.log(machineInfo());
  const redis = await startRedis();
  const c = await client(redis.port);
  const value = Buffer.alloc(CHUNK, 7);
  for (let i = 0; i < o.chunks; i++) await c.call('SET', `chunk:${i}`, value);
  c.close?.();
  const rows = [];
  for (const entries of [0, o.entries]) {
    const args = ['--trace-gc', process.argv[1], '--child', 'yes', '--port', String(redis.port)];
    args.push('--chunks', String(o.chunks), '--entries', String(entries));
    const r = spawnSync(process.execPath, args, { encoding: 'utf8', maxBuffer: 64 << 20 });
    const line = r.stdout.split('\n').find((l) => l.startsWith('{'));
    if (!line) throw new Error(`child failed:\n${r.stderr}\n${r.stdout.slice(-2000)}`);
    const { bytes, ms } = JSON.parse(line);
    const fullGcs = (r.stdout.match(/Mark-Compact/g) ?? []).length;
    rows.push([fmt(entries), fmt(bytes / 1e6), fmt(ms), fmt(bytes / 1e3 / ms), String(fullGcs)]);
  }
  console.log(
    mdTable(['entries held', 'MB fetched', 'ms', 'MB/s', 'full GCs'], rows, [
      'r',
      'r',
      'r',
      'r',
      'r',
    ]),
  );
  await stopAll();
}

runMain(main);
