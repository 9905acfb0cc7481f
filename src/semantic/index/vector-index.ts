/*
 * The FAISS-backed VectorIndex (docs/index.md: the measurements behind it).
 *
 * Model: a built segment and a tail (segment.ts: one FAISS index each, plus
 * the map between FAISS positions and the caller's ids, with tombstones).
 * This file keeps them in step; its parts do: tail.ts (the shards), jobs.ts
 * (the one background build or snapshot load: build.ts, adopt.ts; when a
 * build starts: policy.ts), search.ts (a search across segments), options.ts
 * (defaults, efSearch by size), scan.ts (exact, behind a short answer).
 * - The tail is flat (exact), in shards of SHARD_SIZE vectors. Every add goes
 *   there: a flat add is a copy, so a write never waits for a graph insert or
 *   a training run. A search yields to the event loop between shards.
 * - The main segment is HNSW or IVF (approximate), built from every live
 *   vector in a worker thread and swapped in when ready. A removal is a
 *   tombstone.
 * - Search asks both and merges; an id lives in exactly one of them. Ids
 *   written while a build or load runs go to the new tail at the swap.
 * Kinds: 'flat' keeps everything in the tail and compacts its tombstones in
 * place; 'hnsw' and 'ivf' as above; 'auto' is flat up to autoThreshold live
 * vectors, then HNSW (flat again only when emptied). An HNSW graph takes
 * minutes to build at 100k vectors, an IVF index seconds: so when 'auto' has
 * no graph yet and more than interimIvfAbove vectors (a restart, a bulk
 * load), it builds IVF first and serves from it while the graph is built.
 *
 * quant 'q8' (docs/index.md, "Quantization"): the JS copy of the vectors
 * (vector-store.ts) holds 8-bit codes, HNSW and IVF segments SQ8 codes
 * (build.ts, quantized-graph.ts), and hits are scored again from the JS
 * codes (search.ts); the tail stays float32.
 *
 * Every FAISS call is synchronous on the caller's thread and gets only input
 * checked beforehand (validate.ts).
 */
import type { IndexKind, MainExport, MainImport, SearchHit, VectorIndex } from '../types.js';
import { trimSoon } from './heap-trim.js';
import { Jobs } from './jobs.js';
import { autoEfSearch, resolveOptions, type Settings, type VectorIndexOptions } from './options.js';
import { type ScanOptions, scanExact } from './scan.js';
import { type Parts, searchParts, searchPartsYielding } from './search.js';
import type { Segment } from './segment.js';
import { FlatTail } from './tail.js';
import { type Quant, VectorStore } from './vector-store.js';

export { autoEfSearch, type VectorIndexOptions } from './options.js';

import { checkId, checkK, intOption, unitCopy, unitOrCopy } from './validate.js';

export function createVectorIndex(opts: VectorIndexOptions): FaissVectorIndex {
  return new FaissVectorIndex(opts);
}

export class FaissVectorIndex implements VectorIndex {
  readonly dim: number;
  /** The options, checked and with their defaults (index/options.ts). */
  readonly #o: Settings;
  /** Live vectors by id, for builds (vector-store.ts); stays empty for kind 'flat'. */
  readonly #vectors: VectorStore;
  #main: Segment | undefined;
  /** Where every add goes (index/tail.ts). */
  readonly #tail: FlatTail;
  /** The background build or snapshot load (jobs.ts). */
  readonly #jobs: Jobs;

  constructor(opts: VectorIndexOptions) {
    this.#o = resolveOptions(opts);
    this.dim = this.#o.dim;
    this.#tail = new FlatTail(this.dim, this.#o.maxDeadRatio);
    this.#vectors = new VectorStore(this.dim, this.#o.quant);
    this.#jobs = new Jobs(this.#o, this.#vectors, {
      state: () => ({ size: this.size, tail: this.tail, main: this.#main }),
      install: (segment, dirty) => this.#swap(segment, dirty),
    });
  }

  /** How HNSW and IVF segments hold vectors (the tail is float32 always). */
  get quant(): Quant {
    return this.#o.quant;
  }

  /** The kind of the main segment (the tail is always flat). */
  get kind(): IndexKind {
    return this.#main?.kind ?? 'flat';
  }

  get size(): number {
    return (this.#main?.live ?? 0) + this.#tail.live;
  }

  /** Vectors held by FAISS, live or tombstoned (for stats and tests). */
  get stored(): number {
    return (this.#main?.stored ?? 0) + this.#tail.stored;
  }

  /** Tombstones not yet compacted away. */
  get dead(): number {
    return (this.#main?.dead ?? 0) + this.#tail.dead;
  }

  /** Live vectors in the flat tail, waiting for the next build. */
  get tail(): number {
    return this.#tail.live;
  }

  /** Flat shards of the tail (for stats and tests). */
  get shards(): number {
    return this.#tail.shards.length;
  }

  /**
   * True when a search may miss vectors: the main segment is HNSW or IVF.
   * scan() then gives the exact answer.
   */
  get approximate(): boolean {
    return this.#main !== undefined;
  }

  /**
   * efSearch (HNSW) and nprobe (IVF) for searches from now on, the current
   * main segment included (the patched addon only; for tuning and benches).
   */
  setSearchParams(p: { efSearch?: number; nprobe?: number }): void {
    if (p.efSearch !== undefined) {
      this.#o.efSearch = intOption('efSearch', p.efSearch, 0, 1, 100_000);
      if (this.#main?.kind === 'hnsw') this.#main.efSearch = this.#o.efSearch;
    }
    if (p.nprobe !== undefined) {
      this.#o.nprobe = intOption('nprobe', p.nprobe, 16, 1, 1 << 20);
      if (this.#main?.kind === 'ivf') this.#main.nprobe = this.#o.nprobe;
    }
  }

  /**
   * True while a background build or snapshot load runs, or a build is due
   * and waits for mayBuild to allow it.
   */
  get building(): boolean {
    return this.#jobs.busy;
  }

  /** Resolves when no build or load runs (ones started meanwhile included). */
  settled(): Promise<void> {
    return this.#jobs.settled();
  }

  has(id: number): boolean {
    checkId(id);
    return this.#tail.has(id) || this.#main?.has(id) === true;
  }

  add(id: number, vector: Float32Array): void {
    this.addBatch([id], [vector]);
  }

  /** Room for `n` more vectors, made at once (vector-store.ts reserve()). */
  reserve(n: number): void {
    if (this.#o.kind !== 'flat') this.#vectors.reserve(n);
  }

  addBatch(ids: number[], vectors: Float32Array[], hold = false): void {
    if (!Array.isArray(ids) || !Array.isArray(vectors) || ids.length !== vectors.length) {
      throw new RangeError('addBatch needs two arrays of the same length');
    }
    // Check everything before changing anything; a repeated id keeps its last vector.
    // Not kept: the tail and the vector store copy them, in this turn.
    const batch = new Map<number, Float32Array>();
    for (let i = 0; i < ids.length; i++) {
      batch.set(checkId(ids[i]), unitOrCopy(vectors[i], this.dim, `vector of id ${ids[i]}`));
    }
    if (batch.size === 0) return;
    for (const id of batch.keys()) this.#bury(id);
    if (this.#o.kind !== 'flat') for (const [id, v] of batch) this.#vectors.set(id, v);
    if (hold && this.#jobs.bulk && this.#o.kind !== 'flat' && this.#o.quant === 'fp32')
      this.#tail.hold(batch.keys());
    else this.#tail.append([...batch]);
    for (const id of batch.keys()) this.#jobs.touched(id);
    this.#afterWrite();
  }

  remove(id: number): boolean {
    if (!this.#bury(checkId(id))) return false;
    this.#jobs.touched(id);
    if (this.size === 0 && !this.#jobs.running) this.clear();
    else this.#afterWrite();
    return true;
  }

  /** Up to k live hits, best first, in one go (however long the tail). */
  search(query: Float32Array, k: number): SearchHit[] {
    checkK(k);
    return searchParts(this.#parts(), unitCopy(query, this.dim, 'query'), k);
  }

  /**
   * The same as search(), but between tail shards it may wait for the event
   * loop's next turn (index/search.ts): the hits come back as they are when
   * it never had to wait (the usual case: a built index and a short tail),
   * and as a promise when it did. Writes may happen while it waits: what was
   * removed by the end is left out, what was added may or may not be in.
   */
  searchYielding(query: Float32Array, k: number): SearchHit[] | Promise<SearchHit[]> {
    checkK(k);
    const q = unitCopy(query, this.dim, 'query');
    const again = (n: number) => (this.size === 0 ? [] : this.search(q, n));
    return searchPartsYielding(this.#parts(), q, k, (id) => this.has(id), again);
  }

  /** What a search reads (search.ts); q8 hits are scored again from the JS codes. */
  #parts(): Parts {
    return {
      main: this.#main,
      shards: this.#tail.shards,
      size: this.size,
      rescore: this.#o.quant === 'q8' ? (id, q) => this.#vectors.dot(id, q) : undefined,
    };
  }

  /**
   * The exact best k (index/scan.ts): every live vector compared in JS,
   * yielding to the event loop as it goes; `accept` and `minScore` leave
   * vectors out before they count towards k. For an approximate index whose
   * search came back short.
   */
  async scan(query: Float32Array, k: number, opts: ScanOptions = {}): Promise<SearchHit[]> {
    checkK(k);
    const q = unitCopy(query, this.dim, 'query');
    if (this.#o.kind !== 'flat') return scanExact(this.#vectors, q, k, opts);
    // A flat index keeps no JS copies, and its search is exact already.
    const all = await this.searchYielding(q, this.size);
    const { accept, minScore = Number.NEGATIVE_INFINITY } = opts;
    return all.filter((h) => h.score >= minScore && (!accept || accept(h.id))).slice(0, k);
  }

  /**
   * The main segment, serialized (snapshot.ts shares it with other
   * instances): FAISS's bytes, the id at each position (-1: dead), its kind
   * and base efSearch. Undefined without one.
   */
  exportMain(): MainExport | undefined {
    const main = this.#main;
    if (main === undefined) return undefined;
    const efSearch = this.#o.efSearch ?? autoEfSearch(main.live, this.#o.quant);
    return { kind: main.kind, efSearch, ...main.serialize() };
  }

  /**
   * Make a serialized segment (another instance's exportMain(), ids mapped
   * to this index's) the main one, read in a worker thread: jobs.ts load().
   * `transfer`: m.buffer may be moved to the worker (unusable afterwards).
   */
  adoptMain(m: MainImport, transfer = false): Promise<number> {
    if (this.#o.kind === 'flat') return Promise.reject(new Error('only HNSW and IVF are adopted'));
    return this.#jobs.load(m, transfer);
  }

  /**
   * Bulk loading on: no build starts, however many adds there are, and
   * adds with `hold` wait in the vector store (tail.ts hold()). Off: those
   * go to the tail, and a build starts if one is due.
   */
  bulkLoad(on: boolean): void {
    if (!on) this.#tail.flush((id) => this.#vectors.get(id)!).tidy();
    this.#jobs.bulkLoad(on);
  }

  clear(): void {
    this.#jobs.reset();
    this.#main?.dispose();
    this.#tail.clear();
    this.#main = undefined;
    this.#vectors.clear();
    trimSoon();
  }

  #bury(id: number): boolean {
    if (!this.#tail.bury(id) && this.#main?.bury(id) !== true) return false;
    this.#vectors.delete(id);
    return true;
  }

  #afterWrite(): void {
    this.#tail.tidy();
    this.#jobs.check();
  }

  /** The built segment becomes the main one; what changed meanwhile becomes the tail. */
  #swap(built: Segment, dirty: Iterable<number>): void {
    const tail: [number, Float32Array][] = [];
    for (const id of dirty) {
      built.bury(id);
      const v = this.#vectors.get(id);
      if (v !== undefined) tail.push([id, v]);
    }
    this.#main?.dispose();
    this.#tail.clear();
    this.#main = built;
    this.#tail.append(tail);
    trimSoon();
  }
}
