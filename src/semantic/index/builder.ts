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
import {
  eachChunk,
  SLAB_READER_SOURCE,
  type SlabSource,
  SOURCE_CHUNK,
  trainingSet,
} from './slab-reader.js';
import { IndexThreads } from './threads.js';

export interface BuildInput {
  /** Empty index of the wanted kind and parameters (untrained for IVF). */
  template: FaissIndex;
  /** The vectors, one after the other (length = n * dim); transferred to the worker. */
  vectors?: Float32Array | undefined;
  /**
   * Or where they are: the vector store's shared slabs, read by the worker
   * where they lie (slab-reader.ts); `slots` is transferred.
   */
  source?: SlabSource | undefined;
  /** Training sample for indexes that need one (IVF, SQ8), else undefined. */
  train?: Float32Array | undefined;
  /** Or the size of one to take from `source`, evenly strided. */
  trainCount?: number | undefined;
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
${SLAB_READER_SOURCE}
// A full collection of this thread's small heap after a job that read shared slabs: until
// then its dead references would keep them alive (all of a cleared namespace's vectors).
require('node:v8').setFlagsFromString('--expose-gc');
const collect = require('node:vm').runInNewContext('gc');
const view = (u8) => Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);
${feed.toString()}
function run({ load, extend, template, vectors, source, train, trainCount, storage }) {
  const each = feed(vectors, source, ${SOURCE_CHUNK}, eachChunk);
  if (extend !== undefined) {
    // A live index of the caller's, lent: copied, and the copy extended.
    const index = faiss.Index.copyOf(extend);
    each((xs) => index.add(xs));
    return index;
  }
  if (load) {
    // A snapshot's chunks in order: joined here, off the caller's event loop.
    return faiss.Index.fromBuffer(load.length === 1 ? view(load[0]) : Buffer.concat(load.map(view)));
  }
  const sample = trainingSet(train, source, trainCount);
  let index = faiss.Index.fromBuffer(view(template));
  if (storage) index = quantizedGraph((b) => faiss.Index.fromBuffer(b), index, faiss.Index.fromBuffer(view(storage)), each, sample);
  else {
    if (sample) index.train(sample);
    each((xs) => index.add(xs));
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
  // The job's own buffers go back with the answer: a kept thread holds none of them.
  const back = [...new Set([job.vectors?.buffer, job.train?.buffer, job.source?.slots.buffer])].filter((b) => b && b.byteLength > 0);
  const shared = job.source !== undefined;
  job = undefined;
  parentPort.postMessage(reply, back);
  if (shared) setImmediate(collect);
});
`;

/**
 * Calls of `fn` with every vector to add, a chunk at a time: `vectors` whole,
 * or `source`'s read by `chunks` (slab-reader.ts eachChunk). Runs in the
 * worker from its source too (so: plain JavaScript, no closures over imports).
 */
function feed(
  vectors: Float32Array | undefined,
  source: SlabSource | undefined,
  chunk: number,
  chunks: typeof eachChunk,
): (fn: (xs: Float32Array) => void) => void {
  return (fn) => {
    if (source !== undefined) chunks(source, chunk, fn);
    else if (vectors !== undefined && vectors.length > 0) fn(vectors);
  };
}

const threads = new IndexThreads(WORKER_SOURCE);

export function buildIndex(input: BuildInput): Promise<FaissIndex> {
  // Without the patch the addon is not safe in a second thread: build inline.
  if (!patched()) return Promise.resolve().then(() => buildInline(input));
  const { template, vectors, source, train, trainCount } = input;
  const transfer: ArrayBuffer[] = [];
  if (vectors !== undefined) transfer.push(vectors.buffer as ArrayBuffer);
  if (source !== undefined) transfer.push(source.slots.buffer as ArrayBuffer);
  if (input.extend) {
    const lent = template.lend();
    const job = { extend: lent.address, vectors, source };
    const built = threads.run('build', job, transfer, template.dim);
    // Returned once the worker no longer reads it: it has answered, failed or exited.
    void built.then(lent.done, lent.done);
    return built;
  }
  if (train && train.buffer !== vectors?.buffer) transfer.push(train.buffer as ArrayBuffer);
  const message = {
    template: template.toBuffer(),
    ...{ vectors, source, train, trainCount, storage: input.storage },
  };
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

/** The build on the caller's thread (without the patched addon; and for tests). */
export function buildInline(input: BuildInput): FaissIndex {
  const { template, source, storage, extend } = input;
  const each = feed(input.vectors, source, SOURCE_CHUNK, eachChunk);
  if (extend) {
    const copy = FaissIndex.fromBuffer(template.toBuffer(), template.dim);
    each((xs) => copy.add(xs));
    return copy;
  }
  const train = trainingSet(input.train, source, input.trainCount);
  if (storage) {
    return quantizedGraph(
      (b) => FaissIndex.fromBuffer(b, template.dim),
      template,
      FaissIndex.fromBuffer(storage, template.dim),
      each,
      train,
    );
  }
  if (train) template.train(train);
  each((xs) => template.add(xs));
  return template;
}
