/*
 * The FAISS-backed VectorIndex. docs/index.md has the measurements behind the
 * defaults here.
 *
 * Model: a built segment and a tail (index/segment.ts: one FAISS index each,
 * plus the map between FAISS positions and the caller's ids, with tombstones).
 * - The tail is flat (exact), in shards of SHARD_SIZE vectors. Every add goes
 *   there: a flat add is a copy, so a write never waits for a graph insert or
 *   a training run. A flat search costs about 0.2 ms per 1,000 vectors here,
 *   so searchYielding() yields to the event loop between shards once it has run
 *   for a millisecond: a large flat index (kind 'flat', or 'auto' right after
 *   a restart, before its first build) never stops the event loop for long.
 * - The main segment is HNSW (graph, approximate) or IVF (inverted lists,
 *   approximate), built from every live vector in a worker thread
 *   (index/builder.ts) and swapped in when ready. Neither removes: a removal
 *   is a tombstone.
 * - Search asks both and merges; an id lives in exactly one of them.
 * A build starts when the kind should change (an 'auto' index outgrowing
 * autoThreshold), when the tail outgrows tailMax (searching it costs like a
 * flat index of its size), or when tombstones pass maxDeadRatio of the main
 * segment. Ids added or removed while it runs are noted; at the swap they are
 * buried in the new segment and the live ones form the new tail. A build
 * costs the event loop a snapshot copied a few MB per turn; the built index
 * comes back by address, not serialized (index/builder.ts).
 *
 * Kinds: 'flat' keeps everything in the tail and compacts its tombstones in
 * place; 'hnsw' and 'ivf' as above; 'auto' is flat up to autoThreshold live
 * vectors, then HNSW (flat again only when emptied). An HNSW graph takes
 * minutes to build at 100k vectors, an IVF index seconds: so when 'auto' has
 * no graph yet and more than interimIvfAbove vectors (a restart, a bulk
 * load), it builds IVF first and serves from it while the graph is built.
 *
 * Every FAISS call is synchronous on the caller's thread and gets only input
 * checked beforehand (index/validate.ts).
 */

import { setImmediate as yieldToLoop } from 'node:timers/promises';

import { type BuildInput, buildIndex } from './index/builder.js';
import {
  type FaissIndex,
  type HnswParams,
  newFlatIP,
  newHnswIP,
  newIvfIP,
  patched,
} from './index/faiss.js';
import { type ScanOptions, scanExact } from './index/scan.js';
import { Segment } from './index/segment.js';
import { checkId, checkK, intOption, unitCopy } from './index/validate.js';
import type { IndexKind, SearchHit, VectorIndex } from './types.js';

export interface VectorIndexOptions {
  dim: number;
  kind: IndexKind | 'auto';
  /** HNSW graph degree (FAISS's M); default 16. */
  hnswM?: number;
  /** Candidate list size while searching HNSW; default autoEfSearch() of the vectors built. */
  efSearch?: number;
  /** Candidate list size while inserting into HNSW; default 40. */
  efConstruction?: number;
  /** IVF lists; default: the square root of the vectors at build time. */
  nlist?: number;
  /** IVF lists searched per query; default 16. */
  nprobe?: number;
  /** 'auto' switches to HNSW when more vectors than this are live; default 2048. */
  autoThreshold?: number;
  /** Tombstones, as a fraction of the main segment, that trigger a rebuild; default 0.3. */
  maxDeadRatio?: number;
  /** Largest tail before a rebuild; default: a tenth of the live vectors, within [1024, 4096]. */
  tailMax?: number;
  /** 'auto' builds IVF before its first graph when more vectors than this are live; default 16384. */
  interimIvfAbove?: number;
  /** Told about every background build, for the log. */
  onBuild?: (event: BuildEvent) => void;
  /** After a failed build, no new one starts for this long; default 60 s. */
  retryAfterMs?: number;
  /** Builds an index off the event loop; default index/builder.ts (tests inject faults). */
  builder?: (input: BuildInput) => Promise<FaissIndex>;
}

export interface BuildEvent {
  kind: IndexKind;
  vectors: number;
  ms: number;
  error?: Error;
}

export const DEFAULT_AUTO_THRESHOLD = 2048;
/** A tail shard compacts at this many tombstones at the latest: removeIds costs O(stored x dead). */
const FLAT_COMPACT_AT = 256;
/** Vectors per tail shard: searching one takes well under a millisecond. */
export const SHARD_SIZE = 4096;
/** Vectors copied into a build's snapshot per turn of the event loop. */
const SNAPSHOT_CHUNK = 4096;
/** searchYielding() yields to the event loop once it has searched this long. */
const YIELD_AFTER_MS = 1;
/** IVF below this many vectors would be trained on too little. */
const IVF_MIN_VECTORS = 1024;
/** FAISS's k-means wants at least 39 training points per list; we give up to 64. */
const IVF_TRAIN_PER_LIST = 64;
export const DEFAULT_INTERIM_IVF_ABOVE = 16_384;
const DEFAULT_RETRY_AFTER_MS = 60_000;
/**
 * HNSW's efSearch when none is set, by the vectors in the graph: the lowest
 * of 64/128/256 with recall@10 >= 0.95 on both clustered and low-rank data in
 * bench/recall.mjs at 10k (64: 1.000 / 0.967), 20k-50k (128: 0.984-0.999 /
 * 0.968-0.990) and 100k (256: 0.957 / 0.987); docs/index.md, "Recall as
 * shipped". Not measured beyond 100k. 256 costs 0.6-2.4 ms per search at
 * 100k on that data (3 ms on uniformly random vectors).
 */
export function autoEfSearch(vectors: number): number {
  if (vectors <= 10_000) return 64;
  return vectors <= 50_000 ? 128 : 256;
}

interface Build {
  kind: IndexKind;
  /** Ids added or removed since the snapshot. */
  dirty: Set<number>;
  done: Promise<void>;
}

export function createVectorIndex(opts: VectorIndexOptions): FaissVectorIndex {
  return new FaissVectorIndex(opts);
}

export class FaissVectorIndex implements VectorIndex {
  readonly dim: number;
  readonly #kind: IndexKind | 'auto';
  /** HNSW's M and efConstruction (efSearch: #efSearch). */
  readonly #hnsw: Omit<HnswParams, 'efSearch'>;
  /** Set by the caller, or undefined: autoEfSearch() of each build. */
  #efSearch: number | undefined;
  readonly #nlist: number | undefined;
  #nprobe: number;
  readonly #autoThreshold: number;
  readonly #maxDeadRatio: number;
  readonly #tailMax: number | undefined;
  readonly #interimIvfAbove: number;
  readonly #onBuild: ((e: BuildEvent) => void) | undefined;
  readonly #retryAfterMs: number;
  readonly #builder: (input: BuildInput) => Promise<FaissIndex>;
  /** Live vectors by id, for builds; stays empty for kind 'flat'. */
  readonly #vectors = new Map<number, Float32Array>();
  #main: Segment | undefined;
  /** The tail: flat shards, the last one takes adds. */
  #shards: Segment[] = [];
  /** The shard holding each tail id. */
  readonly #shardOf = new Map<number, Segment>();
  /** Shards that lost vectors since the last #tidyTail(). */
  readonly #touched = new Set<Segment>();
  #build: Build | undefined;
  /** Bumped by clear(): a build started before it is thrown away. */
  #generation = 0;
  #failedAt = Number.NEGATIVE_INFINITY;
  /** While bulk loading (the rebuild from Redis), no build starts. */
  #bulk = false;

  constructor(opts: VectorIndexOptions) {
    const kind = opts.kind;
    if (kind !== 'flat' && kind !== 'hnsw' && kind !== 'ivf' && kind !== 'auto') {
      throw new RangeError(`index kind must be flat, hnsw, ivf or auto, got ${String(kind)}`);
    }
    this.dim = intOption('dim', opts.dim ?? Number.NaN, 0, 1, 65536);
    this.#hnsw = {
      m: intOption('hnswM', opts.hnswM, 16, 2, 256),
      efConstruction: intOption('efConstruction', opts.efConstruction, 40, 1, 100_000),
    };
    this.#efSearch =
      opts.efSearch === undefined ? undefined : intOption('efSearch', opts.efSearch, 0, 1, 100_000);
    this.#nlist =
      opts.nlist === undefined ? undefined : intOption('nlist', opts.nlist, 0, 1, 1 << 20);
    this.#nprobe = intOption('nprobe', opts.nprobe, 16, 1, 1 << 20);
    this.#autoThreshold = intOption(
      'autoThreshold',
      opts.autoThreshold,
      DEFAULT_AUTO_THRESHOLD,
      1,
      Number.MAX_SAFE_INTEGER,
    );
    this.#tailMax =
      opts.tailMax === undefined
        ? undefined
        : intOption('tailMax', opts.tailMax, 0, 1, Number.MAX_SAFE_INTEGER);
    this.#interimIvfAbove = intOption(
      'interimIvfAbove',
      opts.interimIvfAbove,
      DEFAULT_INTERIM_IVF_ABOVE,
      IVF_MIN_VECTORS,
      Number.MAX_SAFE_INTEGER,
    );
    const ratio = opts.maxDeadRatio ?? 0.3;
    if (!(ratio > 0 && ratio < 1)) throw new RangeError('maxDeadRatio must be in (0, 1)');
    this.#maxDeadRatio = ratio;
    if (kind === 'ivf' && !patched()) {
      throw new RangeError(
        "index kind ivf needs faiss-node built with semcache's patch (bash scripts/build-faiss.sh)",
      );
    }
    this.#kind = kind;
    this.#onBuild = opts.onBuild;
    this.#retryAfterMs = intOption(
      'retryAfterMs',
      opts.retryAfterMs,
      DEFAULT_RETRY_AFTER_MS,
      0,
      Number.MAX_SAFE_INTEGER,
    );
    this.#builder = opts.builder ?? buildIndex;
  }

  /** The kind of the main segment (the tail is always flat). */
  get kind(): IndexKind {
    return this.#main?.kind ?? 'flat';
  }

  get size(): number {
    return (this.#main?.live ?? 0) + this.#shardOf.size;
  }

  /** Vectors held by FAISS, live or tombstoned (for stats and tests). */
  get stored(): number {
    let n = this.#main?.stored ?? 0;
    for (const s of this.#shards) n += s.stored;
    return n;
  }

  /** Tombstones not yet compacted away. */
  get dead(): number {
    let n = this.#main?.dead ?? 0;
    for (const s of this.#shards) n += s.dead;
    return n;
  }

  /** Live vectors in the flat tail, waiting for the next build. */
  get tail(): number {
    return this.#shardOf.size;
  }

  /** Flat shards of the tail (for stats and tests). */
  get shards(): number {
    return this.#shards.length;
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
      this.#efSearch = intOption('efSearch', p.efSearch, 0, 1, 100_000);
      if (this.#main?.kind === 'hnsw') this.#main.efSearch = this.#efSearch;
    }
    if (p.nprobe !== undefined) {
      this.#nprobe = intOption('nprobe', p.nprobe, 16, 1, 1 << 20);
      if (this.#main?.kind === 'ivf') this.#main.nprobe = this.#nprobe;
    }
  }

  /** True while a background build runs. */
  get building(): boolean {
    return this.#build !== undefined;
  }

  /** Resolves when no build runs (builds started meanwhile included). */
  async settled(): Promise<void> {
    while (this.#build) await this.#build.done;
  }

  has(id: number): boolean {
    checkId(id);
    return this.#shardOf.has(id) || this.#main?.has(id) === true;
  }

  add(id: number, vector: Float32Array): void {
    this.addBatch([id], [vector]);
  }

  addBatch(ids: number[], vectors: Float32Array[]): void {
    if (!Array.isArray(ids) || !Array.isArray(vectors) || ids.length !== vectors.length) {
      throw new RangeError('addBatch needs two arrays of the same length');
    }
    // Check everything before changing anything; a repeated id keeps its last vector.
    const batch = new Map<number, Float32Array>();
    for (let i = 0; i < ids.length; i++) {
      batch.set(checkId(ids[i]), unitCopy(vectors[i], this.dim, `vector of id ${ids[i]}`));
    }
    if (batch.size === 0) return;
    for (const id of batch.keys()) this.#bury(id);
    this.#appendToTail([...batch]);
    if (this.#kind !== 'flat') for (const [id, v] of batch) this.#vectors.set(id, v);
    if (this.#build) for (const id of batch.keys()) this.#build.dirty.add(id);
    this.#afterWrite();
  }

  remove(id: number): boolean {
    if (!this.#bury(checkId(id))) return false;
    this.#build?.dirty.add(id);
    if (this.size === 0 && this.#build === undefined) this.clear();
    else this.#afterWrite();
    return true;
  }

  /** Up to k live hits, best first, in one go (however long the tail). */
  search(query: Float32Array, k: number): SearchHit[] {
    checkK(k);
    const q = unitCopy(query, this.dim, 'query');
    const want = Math.min(k, this.size);
    if (want === 0) return [];
    let hits = this.#main?.search(q, want) ?? [];
    for (const shard of this.#shards) hits = merge(hits, shard.search(q, want), want);
    return hits;
  }

  /**
   * The same as search(), but once it has run for YIELD_AFTER_MS it goes on
   * after the event loop's next turn, between tail shards. The hits come back
   * as they are when it never had to wait (the usual case: a built index and
   * a short tail), and as a promise when it did. Writes may happen while it
   * waits: what was removed by the end is left out, what was added may or may
   * not be in.
   */
  searchYielding(query: Float32Array, k: number): SearchHit[] | Promise<SearchHit[]> {
    checkK(k);
    const q = unitCopy(query, this.dim, 'query');
    const want = Math.min(k, this.size);
    if (want === 0) return [];
    const t0 = performance.now();
    let hits = this.#main?.search(q, want) ?? [];
    const shards = this.#shards;
    for (let i = 0; i < shards.length; i++) {
      if (performance.now() - t0 >= YIELD_AFTER_MS)
        return this.#searchRest(q, want, hits, shards.slice(i));
      hits = merge(hits, shards[i]!.search(q, want), want);
    }
    return hits;
  }

  /** The rest of searchYielding() after a wait: a turn of the event loop before each shard. */
  async #searchRest(
    q: Float32Array,
    want: number,
    hits: SearchHit[],
    shards: Segment[],
  ): Promise<SearchHit[]> {
    let t0 = Number.NEGATIVE_INFINITY;
    for (const shard of shards) {
      if (performance.now() - t0 >= YIELD_AFTER_MS) {
        await yieldToLoop();
        t0 = performance.now();
      }
      // A build was swapped in meanwhile and freed this shard: its vectors are
      // elsewhere now, so search everything as it is (rare; not yielding).
      if (shard.disposed) return this.size === 0 ? [] : this.search(q, want);
      hits = merge(hits, shard.search(q, want), want);
    }
    // An id removed, or moved to a shard searched before, while this one waited.
    const seen = new Set<number>();
    return hits.filter((h) => this.has(h.id) && !seen.has(h.id) && seen.add(h.id) !== undefined);
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
    if (this.#kind !== 'flat') return scanExact(this.#vectors, q, k, opts);
    // A flat index keeps no JS copies, and its search is exact already.
    const all = await this.searchYielding(q, this.size);
    const { accept, minScore = Number.NEGATIVE_INFINITY } = opts;
    return all.filter((h) => h.score >= minScore && (!accept || accept(h.id))).slice(0, k);
  }

  /**
   * Bulk loading on: adds go to the tail and no build starts, however many
   * there are. Off: a build starts if one is due.
   */
  bulkLoad(on: boolean): void {
    this.#bulk = on;
    if (!on) this.#afterWrite();
  }

  clear(): void {
    this.#generation++;
    this.#main?.dispose();
    for (const s of this.#shards) s.dispose();
    this.#main = undefined;
    this.#shards = [];
    this.#touched.clear();
    this.#shardOf.clear();
    this.#vectors.clear();
    this.#build = undefined;
    this.#failedAt = Number.NEGATIVE_INFINITY;
  }

  #newFlat(): Segment {
    return new Segment('flat', newFlatIP(this.dim));
  }

  #bury(id: number): boolean {
    const shard = this.#shardOf.get(id);
    if (shard !== undefined) {
      shard.bury(id);
      this.#shardOf.delete(id);
      this.#touched.add(shard);
    } else if (this.#main?.bury(id) !== true) return false;
    this.#vectors.delete(id);
    return true;
  }

  /** Adds to the last shard, and to new ones when it is full. */
  #appendToTail(entries: [number, Float32Array][]): void {
    for (let at = 0; at < entries.length; ) {
      let shard = this.#shards.at(-1);
      if (shard === undefined || shard.stored >= SHARD_SIZE) {
        shard = this.#newFlat();
        this.#shards.push(shard);
      }
      const chunk = entries.slice(at, at + SHARD_SIZE - shard.stored);
      shard.append(chunk);
      for (const [id] of chunk) this.#shardOf.set(id, shard);
      at += chunk.length;
    }
  }

  /** Of the shards that lost vectors: drops the emptied, compacts those with many tombstones. */
  #tidyTail(): void {
    if (this.#touched.size === 0) return;
    let emptied = false;
    for (const s of this.#touched) {
      if (s.disposed) continue;
      if (s.live === 0) {
        s.dispose();
        emptied = true;
      } else if (s.dead >= FLAT_COMPACT_AT || s.dead > this.#maxDeadRatio * s.stored) {
        s.compact();
      }
    }
    this.#touched.clear();
    if (emptied) this.#shards = this.#shards.filter((s) => !s.disposed);
  }

  #afterWrite(): void {
    this.#tidyTail();
    if (this.#bulk || this.#build || performance.now() - this.#failedAt < this.#retryAfterMs)
      return;
    const kind = this.#targetKind();
    if (kind === 'flat' || this.size === 0) return;
    const main = this.#main;
    const due =
      main === undefined ||
      main.kind !== kind ||
      this.tail > this.#maxTail() ||
      main.dead > this.#maxDeadRatio * main.stored;
    if (due) this.#startBuild(kind);
  }

  #targetKind(): IndexKind {
    switch (this.#kind) {
      case 'flat':
        return 'flat';
      case 'hnsw':
        return 'hnsw';
      case 'ivf':
        // Too few vectors to train on: the tail (flat, exact) serves them.
        return this.size >= IVF_MIN_VECTORS ? 'ivf' : 'flat';
      case 'auto':
        if (this.#main === undefined && this.size <= this.#autoThreshold) return 'flat';
        // IVF in the meantime needs the patched addon (so does any off-thread build).
        if (this.#main === undefined && this.size > this.#interimIvfAbove && patched()) {
          return 'ivf';
        }
        return 'hnsw';
    }
  }

  #maxTail(): number {
    return this.#tailMax ?? Math.min(4096, Math.max(1024, Math.floor(this.size / 10)));
  }

  #startBuild(kind: IndexKind): void {
    const ids = [...this.#vectors.keys()];
    const n = ids.length;
    const generation = this.#generation;
    const t0 = performance.now();
    const build: Build = { kind, dirty: new Set(), done: Promise.resolve() };
    const efSearch = this.#efSearch ?? autoEfSearch(n);
    this.#build = build;
    build.done = this.#snapshot(ids, generation)
      .then((xs) => {
        if (xs === undefined) return undefined; // cleared meanwhile
        let template: FaissIndex;
        let train: Float32Array | undefined;
        if (kind === 'ivf') {
          const nlist = Math.max(
            1,
            Math.min(this.#nlist ?? Math.round(Math.sqrt(n)), Math.floor(n / 39)),
          );
          template = newIvfIP(this.dim, { nlist, nprobe: this.#nprobe });
          train = sample(xs, this.dim, Math.min(n, nlist * IVF_TRAIN_PER_LIST));
        } else {
          template = newHnswIP(this.dim, { ...this.#hnsw, efSearch: efSearch });
        }
        return this.#builder({ template, vectors: xs, train });
      })
      .then(
        (faiss) => {
          if (faiss === undefined) return;
          if (generation !== this.#generation) {
            faiss.dispose(); // cleared meanwhile
            return;
          }
          this.#swap(new Segment(kind, faiss, ids, efSearch), build);
          this.#onBuild?.({ kind, vectors: n, ms: performance.now() - t0 });
          this.#afterWrite();
        },
        (err: Error) => {
          if (generation !== this.#generation) return;
          this.#build = undefined;
          this.#failedAt = performance.now();
          this.#onBuild?.({ kind, vectors: n, ms: performance.now() - t0, error: err });
        },
      );
  }

  /**
   * The vectors of `ids`, one after the other, copied SNAPSHOT_CHUNK at a time
   * with a turn of the event loop between chunks (100k vectors are 150 MB).
   * An id removed before its chunk leaves zeros, and one replaced may give its
   * new vector: both are in the build's dirty set, buried in the built index
   * at the swap. Undefined when the index was cleared meanwhile.
   */
  async #snapshot(ids: number[], generation: number): Promise<Float32Array | undefined> {
    const xs = new Float32Array(ids.length * this.dim);
    for (let at = 0; at < ids.length; at += SNAPSHOT_CHUNK) {
      if (at > 0) {
        await yieldToLoop();
        if (generation !== this.#generation) return undefined;
      }
      const end = Math.min(ids.length, at + SNAPSHOT_CHUNK);
      for (let i = at; i < end; i++) {
        const v = this.#vectors.get(ids[i]!);
        if (v !== undefined) xs.set(v, i * this.dim);
      }
    }
    return xs;
  }

  /** The built segment becomes the main one; what changed meanwhile becomes the tail. */
  #swap(built: Segment, build: Build): void {
    const tail: [number, Float32Array][] = [];
    for (const id of build.dirty) {
      built.bury(id);
      const v = this.#vectors.get(id);
      if (v !== undefined) tail.push([id, v]);
    }
    this.#main?.dispose();
    for (const s of this.#shards) s.dispose();
    this.#main = built;
    this.#shards = [];
    this.#touched.clear();
    this.#shardOf.clear();
    this.#appendToTail(tail);
    this.#build = undefined;
  }
}

/** The best `want` of two lists sorted best first. */
function merge(a: SearchHit[], b: SearchHit[], want: number): SearchHit[] {
  if (b.length === 0) return a;
  if (a.length === 0) return b;
  return a
    .concat(b)
    .sort((x, y) => y.score - x.score)
    .slice(0, want);
}

/** About `count` vectors of `xs`, evenly strided, in a fresh array. */
function sample(xs: Float32Array, dim: number, count: number): Float32Array {
  const n = xs.length / dim;
  if (count >= n) return xs.slice();
  const out = new Float32Array(count * dim);
  for (let i = 0; i < count; i++) {
    const from = Math.floor((i * n) / count) * dim;
    out.set(xs.subarray(from, from + dim), i * dim);
  }
  return out;
}
