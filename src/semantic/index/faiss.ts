/*
 * The slice of faiss-node (0.5.1) that the vector index uses, loaded lazily so
 * a process that never builds an index never loads the native addon.
 *
 * What the binding does and does not do, and why the callers are careful:
 * - it takes plain number[] arrays and converts them element by element in
 *   C++ (about 0.1-0.2 us per float here), synchronously, on the calling thread;
 * - a FAISS C++ exception thrown inside add/search/removeIds is not caught by
 *   the binding and aborts the process, so callers validate everything first;
 * - it cannot set HNSW's efConstruction/efSearch (see hnsw-params.ts);
 * - FAISS runs OpenMP threads, limited to one here (see load());
 * - `toBuffer` and `fromBuffer` leak their serialization buffer, so they are
 *   only used on empty indexes.
 */

import { createRequire } from 'node:module';
import { setHnswParams } from './hnsw-params.js';

export interface FaissSearchResult {
  distances: number[];
  labels: number[];
}

export interface FaissIndex {
  ntotal(): number;
  add(x: number[]): void;
  search(x: number[], k: number): FaissSearchResult;
  removeIds(ids: number[]): number;
  toBuffer(): Buffer;
}

interface FaissModule {
  IndexFlatIP: new (d: number) => FaissIndex;
  Index: {
    fromFactory(d: number, descriptor: string, metric: number): FaissIndex;
    fromBuffer(src: Buffer): FaissIndex;
  };
  MetricType: { METRIC_INNER_PRODUCT: number };
}

let faiss: FaissModule | undefined;

function load(): FaissModule {
  if (faiss) return faiss;
  // HNSW search opens an OpenMP parallel region even for a single query, and
  // on a busy machine its barrier waits for a second thread to be scheduled
  // (p90 0.9 ms with one thread, 12 ms with two, measured here). One thread
  // unless the user chose otherwise; libgomp reads this when the addon loads
  // it, i.e. at the require below.
  process.env.OMP_NUM_THREADS ??= '1';
  try {
    faiss = createRequire(import.meta.url)('faiss-node') as FaissModule;
  } catch (err) {
    throw new Error(
      `faiss-node cannot be loaded (${(err as Error).message.split('\n')[0]}); ` +
        'run `npm run setup` (or `bash scripts/build-faiss.sh`) to build it',
      { cause: err },
    );
  }
  return faiss;
}

/** Exact inner-product search over every stored vector. */
export function newFlatIP(dim: number): FaissIndex {
  return new (load().IndexFlatIP)(dim);
}

export interface HnswParams {
  m: number;
  efConstruction: number;
  efSearch: number;
}

/**
 * HNSW graph over flat storage with the inner-product metric: FAISS negates
 * the similarity internally and hands back inner products, largest first.
 */
export function newHnswIP(dim: number, p: HnswParams): FaissIndex {
  const f = load();
  const empty = f.Index.fromFactory(dim, `HNSW${p.m}`, f.MetricType.METRIC_INNER_PRODUCT);
  return f.Index.fromBuffer(setHnswParams(empty.toBuffer(), p.efConstruction, p.efSearch));
}
