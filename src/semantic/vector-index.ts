/*
 * The FAISS-backed VectorIndex. docs/index.md has the measurements behind the
 * defaults here.
 *
 * Model. Vectors live in a Segment (index/segment.ts): one FAISS index plus
 * the map between FAISS positions and the caller's ids, with tombstones for
 * removed ids. Kinds:
 * - 'flat': exact inner product; compacts its tombstones in place, and keeps
 *   no copy of the vectors;
 * - 'hnsw': approximate; HNSW cannot remove, so once tombstones pass
 *   maxDeadRatio the graph is rebuilt from the live vectors, which this class
 *   keeps (unit-length copies);
 * - 'auto': flat until more than autoThreshold vectors are live, then HNSW for
 *   good (back to flat only when emptied).
 *
 * Migration. Building an HNSW graph costs 0.25-0.8 ms per vector, so a
 * rebuild, or the switch from flat, done in one go would stop the event loop
 * for seconds (minutes at 100k). Instead, as Redis rehashes its dicts, a fresh
 * HNSW segment becomes the main one and takes every new vector, while the old
 * segment is drained into it a few vectors at a time: about STEP_MS of work in
 * every add, remove and search, or more through maintain(). Until it is empty,
 * search asks both segments and merges; an id is in exactly one of them.
 *
 * Every FAISS call is synchronous on the caller's thread and gets only input
 * checked beforehand (index/validate.ts): FAISS aborts the process otherwise.
 */

import type { HnswParams } from './index/faiss.js';
import { Segment } from './index/segment.js';
import { checkId, checkK, intOption, unitCopy } from './index/validate.js';
import type { IndexKind, SearchHit, VectorIndex } from './types.js';

export interface VectorIndexOptions {
  dim: number;
  kind: IndexKind | 'auto';
  /** HNSW graph degree (FAISS's M); default 16. */
  hnswM?: number;
  /** Candidate list size while searching HNSW; default 64. */
  efSearch?: number;
  /** Candidate list size while inserting into HNSW; default 40. */
  efConstruction?: number;
  /** 'auto' switches to HNSW when more vectors than this are live; default 2048. */
  autoThreshold?: number;
  /** Tombstones, as a fraction of stored vectors, that trigger compaction; default 0.3. */
  maxDeadRatio?: number;
}

export const DEFAULT_AUTO_THRESHOLD = 2048;
/** Flat compacts at this many tombstones at the latest: removeIds costs O(stored x dead). */
const FLAT_COMPACT_AT = 256;
/** Migration work done inside each add, remove and search. */
const STEP_MS = 2;
const MOVE_CHUNK = 2;
/** An old segment this small is searched in JS: FAISS would need a large k to skip its dead. */
const BRUTE_FORCE_MAX = 1024;

export function createVectorIndex(opts: VectorIndexOptions): FaissVectorIndex {
  return new FaissVectorIndex(opts);
}

export class FaissVectorIndex implements VectorIndex {
  readonly dim: number;
  readonly #initialKind: IndexKind;
  readonly #auto: boolean;
  readonly #hnsw: HnswParams;
  readonly #autoThreshold: number;
  readonly #maxDeadRatio: number;
  /** Live vectors by id, for migrations; stays empty for kind 'flat'. */
  readonly #vectors = new Map<number, Float32Array>();
  #main: Segment;
  #old: Segment | undefined;
  /** Ids #old held when the migration began; those before #queueAt have been handled. */
  #queue: number[] = [];
  #queueAt = 0;
  /** While bulk loading (the rebuild from Redis), 'auto' stays flat: flat adds are fast. */
  #bulk = false;

  constructor(opts: VectorIndexOptions) {
    if (opts.kind !== 'flat' && opts.kind !== 'hnsw' && opts.kind !== 'auto') {
      throw new RangeError(`index kind must be flat, hnsw or auto, got ${String(opts.kind)}`);
    }
    this.dim = intOption('dim', opts.dim ?? Number.NaN, 0, 1, 65536);
    this.#hnsw = {
      m: intOption('hnswM', opts.hnswM, 16, 2, 256),
      efSearch: intOption('efSearch', opts.efSearch, 64, 1, 100_000),
      efConstruction: intOption('efConstruction', opts.efConstruction, 40, 1, 100_000),
    };
    this.#autoThreshold = intOption(
      'autoThreshold',
      opts.autoThreshold,
      DEFAULT_AUTO_THRESHOLD,
      1,
      Number.MAX_SAFE_INTEGER,
    );
    const ratio = opts.maxDeadRatio ?? 0.3;
    if (!(ratio > 0 && ratio < 1)) throw new RangeError('maxDeadRatio must be in (0, 1)');
    this.#maxDeadRatio = ratio;
    this.#auto = opts.kind === 'auto';
    this.#initialKind = opts.kind === 'hnsw' ? 'hnsw' : 'flat';
    this.#main = new Segment(this.#initialKind, this.dim, this.#hnsw);
  }

  get kind(): IndexKind {
    return this.#main.kind;
  }

  get size(): number {
    return this.#main.live + (this.#old?.live ?? 0);
  }

  /** Vectors held by FAISS, live or tombstoned (for stats and tests). */
  get stored(): number {
    return this.#main.stored + (this.#old?.stored ?? 0);
  }

  /** Tombstones not yet compacted away. */
  get dead(): number {
    return this.#main.dead + (this.#old?.dead ?? 0);
  }

  /** True while an old segment is being drained into a new HNSW one. */
  get migrating(): boolean {
    return this.#old !== undefined;
  }

  has(id: number): boolean {
    checkId(id);
    return this.#main.has(id) || this.#old?.has(id) === true;
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
    if (
      this.#auto &&
      !this.#bulk &&
      this.#main.kind === 'flat' &&
      this.size + batch.size > this.#autoThreshold
    ) {
      this.#startMigration();
    }
    this.#main.append([...batch]);
    if (this.#auto || this.#initialKind === 'hnsw') {
      for (const [id, v] of batch) this.#vectors.set(id, v);
    }
    this.#afterWrite();
  }

  remove(id: number): boolean {
    if (!this.#bury(checkId(id))) return false;
    if (this.size === 0) this.clear();
    else this.#afterWrite();
    return true;
  }

  search(query: Float32Array, k: number): SearchHit[] {
    checkK(k);
    const q = unitCopy(query, this.dim, 'query');
    this.maintain(STEP_MS);
    const want = Math.min(k, this.size);
    if (want === 0) return [];
    const qs = Array.from(q);
    const hits = this.#main.search(qs, want);
    const old = this.#old;
    if (old === undefined) return hits;
    const more =
      old.live <= BRUTE_FORCE_MAX ? this.#bruteForce(old, q, want) : old.search(qs, want);
    return hits
      .concat(more)
      .sort((a, b) => b.score - a.score)
      .slice(0, want);
  }

  /**
   * Bulk loading on: an 'auto' index takes adds into its flat segment however
   * many there are. Off: if it has grown past the threshold, the move to HNSW
   * starts, and proceeds through maintain() and later operations.
   */
  bulkLoad(on: boolean): void {
    this.#bulk = on;
    if (!on && this.#auto && this.#main.kind === 'flat' && this.size > this.#autoThreshold) {
      this.#startMigration();
    }
  }

  /**
   * Moves vectors of a running migration for about `budgetMs`; returns true
   * while some are left. add, remove and search each do STEP_MS of it.
   */
  maintain(budgetMs = Number.POSITIVE_INFINITY): boolean {
    const old = this.#old;
    if (old === undefined) return false;
    const t0 = performance.now();
    while (this.#queueAt < this.#queue.length) {
      const moving: [number, Float32Array][] = [];
      while (moving.length < MOVE_CHUNK && this.#queueAt < this.#queue.length) {
        const id = this.#queue[this.#queueAt++]!;
        if (old.bury(id)) moving.push([id, this.#vectors.get(id)!]);
      }
      this.#main.append(moving);
      if (performance.now() - t0 >= budgetMs) break;
    }
    if (this.#queueAt < this.#queue.length) return true;
    this.#old = undefined;
    this.#queue = [];
    this.#queueAt = 0;
    return false;
  }

  clear(): void {
    this.#main = new Segment(this.#initialKind, this.dim, this.#hnsw);
    this.#old = undefined;
    this.#queue = [];
    this.#queueAt = 0;
    this.#vectors.clear();
  }

  #bury(id: number): boolean {
    if (!this.#main.bury(id) && !this.#old?.bury(id)) return false;
    this.#vectors.delete(id);
    return true;
  }

  #afterWrite(): void {
    const main = this.#main;
    const overRatio = main.dead > this.#maxDeadRatio * main.stored;
    if (main.kind === 'flat' && (overRatio || main.dead >= FLAT_COMPACT_AT)) {
      main.compact();
    } else if (main.kind === 'hnsw' && overRatio && this.#old === undefined) {
      this.#startMigration();
    }
    this.maintain(STEP_MS);
  }

  /** Makes a fresh HNSW segment the main one; the current one drains into it. */
  #startMigration(): void {
    const old = this.#main;
    this.#old = old;
    this.#queue = [...old.ids()];
    this.#queueAt = 0;
    this.#main = new Segment('hnsw', this.dim, this.#hnsw);
  }

  /** Exact top `want` of a small segment, from the kept vectors. */
  #bruteForce(seg: Segment, q: Float32Array, want: number): SearchHit[] {
    const top: SearchHit[] = [];
    for (const id of seg.ids()) {
      const v = this.#vectors.get(id)!;
      let score = 0;
      for (let j = 0; j < q.length; j++) score += q[j]! * v[j]!;
      if (top.length === want && score <= top[want - 1]!.score) continue;
      let i = top.length;
      while (i > 0 && top[i - 1]!.score < score) i--;
      top.splice(i, 0, { id, score: Math.max(-1, Math.min(1, score)) });
      if (top.length > want) top.pop();
    }
    return top;
  }
}
