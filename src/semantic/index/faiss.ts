/*
 * The slice of faiss-node (0.5.1) that the vector index uses, loaded lazily so
 * a process that never builds an index never loads the native addon.
 *
 * scripts/build-faiss.sh compiles the addon with scripts/faiss/faiss-node.patch
 * (docs/index.md, "The faiss-node patch"). With it (`patched()`):
 * - add, train and search take Float32Array and copy nothing element by
 *   element; search answers with typed arrays;
 * - FAISS's C++ exceptions become JS errors instead of aborting the process
 *   (callers still validate everything first);
 * - the addon can be loaded in worker threads, so indexes are built off the
 *   event loop (index/builder.ts), and serialization leaks nothing;
 * - setParam sets efSearch (HNSW) and nprobe (IVF);
 * - release/adopt move an index from a worker thread to this one without
 *   serializing it (v3); borrow/copyOf copy a live index in a worker thread
 *   while this one goes on searching it (v4: builder.ts extend());
 * - dispose frees an index's memory at once: V8 does not see FAISS's memory,
 *   so an index left to the garbage collector (150 MB at 100k vectors) can
 *   stay allocated for a long time.
 * Without it (faiss-node's prebuilt binary), vectors go through number[]
 * (about 0.1-0.2 us per float), builds run on the calling thread, efSearch is
 * set by editing the serialized header (hnsw-params.ts) and IVF is refused.
 *
 * FAISS runs OpenMP threads, limited to one here (see load()).
 */

import { createRequire } from 'node:module';
import { setHnswParams } from './hnsw-params.js';

/** The patch version this code expects; scripts/faiss/smoke.cjs checks the same. */
export const PATCH_VERSION = 5;

export interface FaissSearchResult {
  distances: ArrayLike<number>;
  labels: ArrayLike<number>;
}

/** The binding's index object; methods take number[] always, Float32Array when patched. */
interface RawIndex {
  ntotal(): number;
  getDimension(): number;
  add(x: number[] | Float32Array): void;
  train(x: number[] | Float32Array): void;
  search(x: number[] | Float32Array, k: number): FaissSearchResult;
  removeIds(ids: number[]): number;
  toBuffer(): Buffer;
  setParam?(name: string, value: number): void;
  dispose?(): void;
  borrow?(): bigint;
}

interface FaissModule {
  IndexFlatIP: new (d: number) => RawIndex;
  Index: {
    fromFactory(d: number, descriptor: string, metric: number): RawIndex;
    fromBuffer(src: Buffer): RawIndex;
    adopt?(address: bigint): RawIndex;
  };
  MetricType: { METRIC_INNER_PRODUCT: number };
  semcachePatch?: number;
  /** Patch v5: glibc's malloc_trim(0); false where there is no glibc. */
  mallocTrim?(): boolean;
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

/** True when the addon carries semcache's patch, at the version this code expects. */
export function patched(): boolean {
  return load().semcachePatch === PATCH_VERSION;
}

/**
 * Give the C heap's free pages back to the system (glibc's malloc_trim, patch
 * v5): after reading a cache from Redis or swapping in a built index, the
 * allocator keeps what the freed buffers used (about 360 bytes per entry at
 * 100,000 entries, measured by hand with gdb). Returns false when nothing
 * could be done (no patch, no glibc).
 */
export function trimHeap(): boolean {
  const f = load();
  return f.semcachePatch === PATCH_VERSION && f.mallocTrim !== undefined && f.mallocTrim();
}

/** Where a worker thread finds the addon (the same file this thread loaded). */
export function addonPath(): string {
  return createRequire(import.meta.url).resolve('faiss-node');
}

/** A FAISS index over unit vectors, inner-product metric, with typed-array methods. */
export class FaissIndex {
  #raw: RawIndex | undefined;
  readonly #typed: boolean;
  /** Copies being made of it in worker threads (lend()). */
  #lent = 0;
  /** Disposed while lent: freed when the last copy is made. */
  #orphan: RawIndex | undefined;

  constructor(
    raw: RawIndex,
    readonly dim: number,
  ) {
    this.#raw = raw;
    this.#typed = patched();
  }

  /** The binding's object; after dispose() an error, never a call into freed memory. */
  get #index(): RawIndex {
    if (this.#raw === undefined) throw new Error('FAISS index used after dispose()');
    return this.#raw;
  }

  get disposed(): boolean {
    return this.#raw === undefined;
  }

  ntotal(): number {
    return this.#index.ntotal();
  }

  /** Adds xs.length / dim vectors, laid out one after the other. */
  add(xs: Float32Array): void {
    this.#index.add(this.#typed ? xs : Array.from(xs));
  }

  train(xs: Float32Array): void {
    this.#index.train(this.#typed ? xs : Array.from(xs));
  }

  /** Top k for each of qs.length / dim queries; k <= ntotal. */
  search(qs: Float32Array, k: number): FaissSearchResult {
    return this.#index.search(this.#typed ? qs : Array.from(qs), k);
  }

  removeIds(positions: number[]): number {
    return this.#index.removeIds(positions);
  }

  toBuffer(): Buffer {
    return this.#index.toBuffer();
  }

  /** efSearch (HNSW) or nprobe (IVF); needs the patch. */
  setParam(name: 'efSearch' | 'nprobe', value: number): void {
    const raw = this.#index;
    if (!raw.setParam) throw new Error('setting FAISS parameters needs the patched faiss-node');
    raw.setParam(name, value);
  }

  /**
   * Frees FAISS's memory now (with the patch; else when collected), or, while
   * it is lent, once the last copy is made. Unusable afterwards. Idempotent.
   */
  dispose(): void {
    if (this.#lent > 0) this.#orphan ??= this.#raw;
    else this.#raw?.dispose?.();
    this.#raw = undefined;
  }

  /**
   * The index's address, for a worker thread to copy (builder.ts, patch v4),
   * and `done`, to call once that thread no longer reads it. Meanwhile this
   * index is searched as usual and not changed (only a flat tail adds, and
   * none is lent; a search may set efSearch, which the copy's owner sets
   * again), and dispose() waits for `done`.
   */
  lend(): { address: bigint; done: () => void } {
    const raw = this.#index;
    if (!raw.borrow) throw new Error('lending an index needs the patched faiss-node');
    const address = raw.borrow();
    this.#lent++;
    let returned = false;
    const done = (): void => {
      if (returned) return;
      returned = true;
      if (--this.#lent === 0 && this.#orphan !== undefined) {
        this.#orphan.dispose?.();
        this.#orphan = undefined;
      }
    };
    return { address, done };
  }

  /**
   * The index a worker thread released (its address, from release()); an
   * error unless it has `dim` dimensions. Needs the patch.
   */
  static adopt(address: bigint, dim: number): FaissIndex {
    const adopt = load().Index.adopt;
    if (!adopt) throw new Error('adopting an index needs the patched faiss-node');
    return FaissIndex.#ofDimension(adopt(address), dim);
  }

  /** An index FAISS serialized; an error unless it has `dim` dimensions. */
  static fromBuffer(buf: Buffer, dim: number): FaissIndex {
    return FaissIndex.#ofDimension(load().Index.fromBuffer(buf), dim);
  }

  static #ofDimension(raw: RawIndex, dim: number): FaissIndex {
    const index = new FaissIndex(raw, dim);
    const d = index.#index.getDimension();
    if (d !== dim) {
      index.dispose();
      throw new Error(`FAISS index of dimension ${d}, ${dim} expected`);
    }
    return index;
  }
}

/** Exact inner-product search over every stored vector. */
export function newFlatIP(dim: number): FaissIndex {
  return new FaissIndex(new (load().IndexFlatIP)(dim), dim);
}

export interface HnswParams {
  m: number;
  efConstruction: number;
  efSearch: number;
}

/** FAISS's storage for a quantization: flat float32, or 8-bit scalar codes (trained). */
function storage(quant: 'fp32' | 'q8'): string {
  return quant === 'q8' ? 'SQ8' : 'Flat';
}

/**
 * HNSW graph over flat storage with the inner-product metric: FAISS negates
 * the similarity internally and hands back inner products, largest first.
 * (QUANT q8 swaps the built graph's storage for SQ8 codes: builder.ts.)
 */
export function newHnswIP(dim: number, p: HnswParams): FaissIndex {
  const f = load();
  const desc = `HNSW${p.m}`;
  const empty = f.Index.fromFactory(dim, desc, f.MetricType.METRIC_INNER_PRODUCT);
  return FaissIndex.fromBuffer(setHnswParams(empty.toBuffer(), p.efConstruction, p.efSearch), dim);
}

/** An empty 8-bit scalar quantizer (flat, untrained), inner-product metric: a q8 graph's storage. */
export function newSq8IP(dim: number): FaissIndex {
  const f = load();
  return new FaissIndex(f.Index.fromFactory(dim, 'SQ8', f.MetricType.METRIC_INNER_PRODUCT), dim);
}

export interface IvfParams {
  nlist: number;
  nprobe: number;
}

/** Inverted lists over flat or SQ8 storage (untrained), inner-product metric; needs the patch. */
export function newIvfIP(dim: number, p: IvfParams, quant: 'fp32' | 'q8' = 'fp32'): FaissIndex {
  const f = load();
  if (!patched()) {
    throw new Error(
      "the IVF index needs faiss-node built with semcache's patch: run `bash scripts/build-faiss.sh`",
    );
  }
  const index = new FaissIndex(
    f.Index.fromFactory(dim, `IVF${p.nlist},${storage(quant)}`, f.MetricType.METRIC_INNER_PRODUCT),
    dim,
  );
  index.setParam('nprobe', Math.min(p.nprobe, p.nlist));
  return index;
}
