/*
 * Builds a FAISS index from many vectors off the event loop.
 *
 * An HNSW graph costs 0.3-2.5 ms of CPU per vector (more for vectors with
 * little structure, like the random ones of the benchmarks), an IVF index a
 * training run of seconds: done on the event loop, a build at 100k vectors
 * would stop every client for minutes. With the patched addon (faiss.ts), a
 * worker thread gets an empty, configured index serialized (a few hundred
 * bytes) and the vectors (transferred, not copied), trains and fills the
 * index, and hands the index itself back: release() in the worker, adopt()
 * here (patch v3), its address in the message. Same process, same heap: the
 * caller's thread pays nothing for the size of the index.
 * Builds run at nice 19 on Linux (a build may take longer on a busy
 * machine, the lookups do not wait for it), in the process's kept build
 * thread when it is free, else in one of their own (threads.ts).
 *
 * Extending (patch v4): the worker gets the address of the main HNSW graph,
 * lent (FaissIndex.lend()), copies it (FAISS's serialization, in memory,
 * while this thread goes on searching the original) and adds the tail's
 * vectors to the copy: a graph that outgrew its tail costs the tail's
 * inserts, not a build of every vector again (build.ts).
 *
 * A worker of the same source reads a serialized index back (loadIndex(): a
 * snapshot another instance built, snapshot-sync.ts), at normal priority:
 * FAISS's read copies every vector and link, 53 ms for 5,000 HNSW vectors
 * and 7.5 s for 1,000,000 when it ran on the event loop.
 *
 * Without the patch the addon is not safe to load in a second thread, so the
 * build runs inline, on the caller's thread, and blocks it (and a load is
 * refused: adopt.ts).
 */

import { FaissIndex, patched } from './faiss.js';
import { QUANTIZED_GRAPH_SOURCE, quantizedGraph } from './quantized-graph.js';
import { IndexThreads } from './threads.js';

export interface BuildInput {
  /** Empty index of the wanted kind and parameters (untrained for IVF). */
  template: FaissIndex;
  /** The vectors, one after the other (length = n * dim); transferred to the worker. */
  vectors: Float32Array;
  /** Training sample for indexes that need one (IVF, SQ8), else undefined. */
  train?: Float32Array | undefined;
  /**
   * An empty scalar quantizer (SQ8), serialized: the HNSW template's graph
   * is built on the float32 vectors, then its storage is replaced by this
   * quantizer, trained on `train` and holding the same vectors (QUANT q8:
   * the graph's links come from exact distances; built on SQ8 distances
   * it found 0.936 of the true top 10 at 100k clustered vectors).
   */
  storage?: Buffer | undefined;
  /**
   * True: `template` is a built index in use (the main HNSW segment's),
   * which the worker copies and extends with `vectors`; the caller keeps it.
   */
  extend?: boolean | undefined;
}

const WORKER_SOURCE = `
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const faiss = require(workerData.addon);
// Linux: this thread (its own TID, from /proc/thread-self) at the lowest
// priority, nice 19, so that the model, the event loop and Redis come first
// and the build takes what they leave (a load, short and awaited, keeps the
// normal priority). Elsewhere it stays as it is.
if (workerData.nice) try {
  const tid = Number(require('node:fs').readlinkSync('/proc/thread-self').split('/').pop());
  if (Number.isInteger(tid) && tid > 0) {
    require('node:os').setPriority(tid, 19);
    require('node:child_process').spawnSync('chrt', ['-i', '-p', '0', String(tid)], { stdio: 'ignore' });
  }
} catch {}
${QUANTIZED_GRAPH_SOURCE}
const view = (u8) => Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);
function run({ load, extend, template, vectors, train, storage }) {
  if (extend !== undefined) {
    // A live index of the caller's, lent: copied, and the copy extended.
    const index = faiss.Index.copyOf(extend);
    if (vectors.length > 0) index.add(vectors);
    return index;
  }
  if (load) {
    // A snapshot's chunks in order: joined here, off the caller's event loop.
    return faiss.Index.fromBuffer(load.length === 1 ? view(load[0]) : Buffer.concat(load.map(view)));
  }
  let index = faiss.Index.fromBuffer(view(template));
  if (storage) index = quantizedGraph((b) => faiss.Index.fromBuffer(b), index, faiss.Index.fromBuffer(view(storage)), vectors, train);
  else {
    if (train) index.train(train);
    if (vectors.length > 0) index.add(vectors);
  }
  return index;
}
// One message, one job (threads.ts may keep this thread for the next one).
parentPort.on('message', (job) => {
  let reply;
  try {
    // Hand the index itself over (same process, same heap): no serialization.
    reply = { address: run(job).release() };
  } catch (err) {
    reply = { error: err instanceof Error ? err.message : String(err) };
  }
  // The job's vectors go back with the answer: a kept thread holds none of them.
  const back = [...new Set([job.vectors?.buffer, job.train?.buffer])].filter((b) => b && b.byteLength > 0);
  parentPort.postMessage(reply, back);
});
`;

const threads = new IndexThreads(WORKER_SOURCE);

export function buildIndex(input: BuildInput): Promise<FaissIndex> {
  // Without the patch the addon is not safe in a second thread: build inline.
  if (!patched()) return Promise.resolve().then(() => buildInline(input));
  const { template, vectors, train } = input;
  const transfer = [vectors.buffer as ArrayBuffer];
  if (input.extend) {
    const lent = template.lend();
    const built = threads.run('build', { extend: lent.address, vectors }, transfer, template.dim);
    // Returned once the worker no longer reads it: it has answered, failed or exited.
    void built.then(lent.done, lent.done);
    return built;
  }
  if (train && train.buffer !== vectors.buffer) transfer.push(train.buffer as ArrayBuffer);
  const message = { template: template.toBuffer(), vectors, train, storage: input.storage };
  template.dispose(); // the worker gets its own copy
  return threads.run('build', message, transfer, template.dim);
}

/**
 * A serialized index (FAISS's bytes, whole or in pieces that the worker
 * joins) read in a worker thread; an error unless it has `dim` dimensions.
 * Needs the patched addon. The bytes are copied to the worker, unless
 * `transfer` says the caller gives up the ArrayBuffers they lie in (a
 * snapshot's chunks, each a Redis reply of its own): then those are moved,
 * except any that may be Node's shared pool of small Buffers (poolSize
 * bytes or less).
 */
export function loadIndex(
  bytes: Buffer | readonly Buffer[],
  dim: number,
  transfer = false,
): Promise<FaissIndex> {
  if (!patched())
    return Promise.reject(
      new Error("loading an index in a worker needs semcache's patched faiss-node"),
    );
  const pieces = Buffer.isBuffer(bytes) ? [bytes] : [...bytes];
  const moved = new Set<ArrayBuffer>();
  if (transfer)
    for (const p of pieces)
      if (p.buffer.byteLength > Buffer.poolSize) moved.add(p.buffer as ArrayBuffer);
  return threads.run('load', { load: pieces }, [...moved], dim);
}

function buildInline({ template, vectors, train, storage, extend }: BuildInput): FaissIndex {
  if (extend) {
    const copy = FaissIndex.fromBuffer(template.toBuffer(), template.dim);
    if (vectors.length > 0) copy.add(vectors);
    return copy;
  }
  if (storage) {
    return quantizedGraph(
      (b) => FaissIndex.fromBuffer(b, template.dim),
      template,
      FaissIndex.fromBuffer(storage, template.dim),
      vectors,
      train,
    );
  }
  if (train) template.train(train);
  if (vectors.length > 0) template.add(vectors);
  return template;
}
