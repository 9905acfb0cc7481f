#!/usr/bin/env node
// bench/join-fill.mjs — how fast does a joining instance take the vectors a snapshot holds
// from its bytes into the index (src/semantic/snapshot-join.ts fill())?
//
// Synthetic, without Redis: FAISS's fp32 storage layout (an 'IHNf' head, then 'IxFI', its
// header and --entries 384-d vectors) in 8 MB chunks, slots naming keys and versions, and
// entries at those versions; then JoinCoverage.add() and fill() into a real HNSW index
// while it bulk loads. Each setup runs in a process of its own: `reserve` (as shipped: the
// vector store's slabs made at once) against `slab by slab` (reserve() taken away, the
// store grows one 1.5 MB slab at a time as before, and V8 collects the whole heap every
// 64 MB of them).
//
//   npm run build && node bench/join-fill.mjs [--entries 1000000]
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { fmt, machineInfo, mdTable, parseFlags, ROOT, runMain } from './lib.mjs';

const OPTS = { entries: 1_000_000, child: '', reserve: 'yes' };
const DIM = 384;
const HEADER = 4 + 8 + 8 + 8 + 1 + 4;

async function child(n, reserve) {
  const dist = (p) => pathToFileURL(path.join(ROOT, 'dist', p)).href;
  const { JoinCoverage } = await import(dist('semantic/snapshot-join.js'));
  const { createVectorIndex } = await import(dist('semantic/index/vector-index.js'));
  const head = Buffer.alloc(64);
  head.write('IHNf', 0, 'latin1');
  const storage = Buffer.alloc(4 + HEADER + 8);
  storage.write('IxFI', 0, 'latin1');
  storage.writeInt32LE(DIM, 4);
  storage.writeBigInt64LE(BigInt(n), 8);
  storage.writeBigUInt64LE(BigInt(n * DIM), 4 + HEADER);
  const floats = new Float32Array(n * DIM);
  for (let i = 0; i < n; i++) floats[i * DIM + (i % DIM)] = 1;
  const all = Buffer.concat([head, storage, Buffer.from(floats.buffer)]);
  const chunks = [];
  for (let at = 0; at < all.length; at += 8 << 20)
    chunks.push(Buffer.from(all.subarray(at, at + (8 << 20))));
  const slots = Array.from({ length: n }, (_, i) => ({
    key: Buffer.from(`bench:sem:${i}`),
    ver: `1733520000000-${i}`,
  }));
  const space = { name: 'default', entries: new Map() };
  const entries = slots.map((s, i) => {
    const e = {
      id: i + 1,
      key: Buffer.from(s.key),
      ns: space,
      text: `stored text ${i}`,
      attrs: undefined,
      attrsJson: undefined,
      exact: `${i}`,
      ver: s.ver,
    };
    space.entries.set(e.id, e);
    return e;
  });
  const join = new JoinCoverage('m', DIM);
  let t = performance.now();
  await join.add('default', { model: 'm', dim: DIM, kind: 'hnsw' }, slots);
  const addMs = performance.now() - t;
  const index = createVectorIndex({ dim: DIM, kind: 'hnsw' });
  if (!reserve) index.reserve = undefined;
  index.bulkLoad(true);
  t = performance.now();
  const left = await join.fill(index, entries, { slots, faiss: chunks });
  const fillMs = performance.now() - t;
  if (left.length > 0 || index.size !== n)
    throw new Error(`${left.length} left, ${index.size} held`);
  console.log(JSON.stringify({ addMs, fillMs }));
}

async function main() {
  const o = parseFlags(OPTS);
  const n = Number(o.entries);
  if (o.child) return child(n, o.reserve === 'yes');
  console.log(machineInfo());
  const rows = [];
  const runs = {};
  for (const reserve of ['yes', 'no']) {
    const out = spawnSync(
      process.execPath,
      [
        new URL(import.meta.url).pathname,
        '--child',
        '1',
        '--entries',
        String(n),
        '--reserve',
        reserve,
      ],
      { encoding: 'utf8' },
    );
    if (out.status !== 0) throw new Error(out.stderr);
    runs[reserve] = JSON.parse(out.stdout.trim().split('\n').at(-1));
    const { addMs, fillMs } = runs[reserve];
    rows.push([
      reserve === 'yes' ? 'reserve (as shipped)' : 'slab by slab (before)',
      fmt(addMs),
      fmt(fillMs),
      ((fillMs * 1000) / n).toFixed(1),
    ]);
  }
  console.log(`\n${fmt(n)} vectors, 384-d fp32\n`);
  console.log(
    mdTable(['vector store', 'slots mapped (ms)', 'fill (ms)', 'us per vector'], rows, [
      'l',
      'r',
      'r',
      'r',
    ]),
  );
  console.log(`\nslab by slab / reserve: ${(runs.no.fillMs / runs.yes.fillMs).toFixed(2)}`);
}

runMain(main);
