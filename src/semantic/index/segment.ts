/*
 * One FAISS index and the map between its positions and the caller's ids.
 *
 * FAISS numbers vectors by position (0..ntotal-1) and faiss-node has no
 * add_with_ids, so `slots[position]` holds the id stored there, or DEAD, and
 * `positions` maps id -> position. Removing an id only marks its slot DEAD (a
 * tombstone): search asks FAISS for more than it needs and skips dead slots.
 * A flat segment compacts with one removeIds call, after which FAISS has
 * shifted every later vector down, keeping their order, and the slots are
 * renumbered alike. HNSW and IVF segments do not remove (HNSW cannot, and
 * IVF's remove_ids would make FAISS hand out labels twice); the owner replaces
 * them with a fresh build.
 *
 * An HNSW search keeps efSearch candidates and stops once that many are
 * closer than the next one to expand (FAISS's stopping rule), so asking for
 * k > efSearch gives fewer than k: with efSearch 64, k 5000 over 5000 vectors
 * gave 1439. A search for `fetch` hits therefore runs with efSearch =
 * max(its base, fetch), up to WIDE_EF_MAX (256: up to 3 ms at 100k vectors
 * in bench/recall.mjs, 1024 took 2-11 ms; past it the caller scans exactly
 * instead, index/scan.ts, which yields). Needs the patched addon (setParam); without it the base
 * efSearch written at creation stays.
 */

import type { IndexKind, SearchHit } from '../types.js';
import { type FaissIndex, patched } from './faiss.js';

/** The id of a dead slot. */
export const DEAD = -1;
/**
 * Vectors per faiss add() call, so that the temporary copy stays small (and,
 * without the patched addon, the number[] conversion stays fast).
 */
const ADD_CHUNK = 1024;
/** The widest efSearch a single HNSW search gets (see the top of this file). */
export const WIDE_EF_MAX = 256;

export class Segment {
  readonly #faiss: FaissIndex;
  #slots: number[] = [];
  readonly #positions = new Map<number, number>();
  #dead = 0;
  /** HNSW: the efSearch a search starts from, and the one FAISS has now. */
  #baseEf: number;
  #ef: number;

  /**
   * `faiss` holds, at positions 0.., the vectors of `ids` (none for a new
   * index; DEAD, -1, for a dead slot); an HNSW one was made with efSearch
   * `efSearch`.
   */
  constructor(
    readonly kind: IndexKind,
    faiss: FaissIndex,
    ids: readonly number[] = [],
    efSearch = 0,
  ) {
    this.#baseEf = efSearch;
    this.#ef = efSearch;
    if (faiss.ntotal() !== ids.length) {
      throw new Error(`segment: FAISS holds ${faiss.ntotal()} vectors, ${ids.length} ids given`);
    }
    this.#faiss = faiss;
    for (const id of ids) {
      if (id === DEAD || this.#positions.has(id)) {
        this.#slots.push(DEAD);
        this.#dead++;
        continue;
      }
      this.#positions.set(id, this.#slots.length);
      this.#slots.push(id);
    }
  }

  /** FAISS's own serialization, and the id at each position (DEAD: none). */
  serialize(): { buffer: Buffer; ids: number[] } {
    return { buffer: this.#faiss.toBuffer(), ids: this.slotIds() };
  }

  /** The id at each position (DEAD: none). */
  slotIds(): number[] {
    return [...this.#slots];
  }

  /** The FAISS index, for builder.ts to copy and extend (it lends it; nothing else may change it). */
  get faiss(): FaissIndex {
    return this.#faiss;
  }

  get dim(): number {
    return this.#faiss.dim;
  }

  /** True once dispose() freed it; it must not be used then. */
  get disposed(): boolean {
    return this.#faiss.disposed;
  }

  /** Frees the FAISS index's memory now. */
  dispose(): void {
    this.#faiss.dispose();
  }

  /** Live ids. */
  get live(): number {
    return this.#positions.size;
  }

  /** Vectors held by FAISS, live or dead. */
  get stored(): number {
    return this.#slots.length;
  }

  get dead(): number {
    return this.#dead;
  }

  has(id: number): boolean {
    return this.#positions.has(id);
  }

  ids(): IterableIterator<number> {
    return this.#positions.keys();
  }

  /** Marks the slot of `id` dead; false when `id` is not here. */
  bury(id: number): boolean {
    const pos = this.#positions.get(id);
    if (pos === undefined) return false;
    this.#slots[pos] = DEAD;
    this.#positions.delete(id);
    this.#dead++;
    return true;
  }

  /** Adds unit vectors for ids that are in no segment. */
  append(entries: [number, Float32Array][]): void {
    const dim = this.dim;
    for (let start = 0; start < entries.length; start += ADD_CHUNK) {
      const chunk = entries.slice(start, start + ADD_CHUNK);
      const xs = new Float32Array(chunk.length * dim);
      for (let i = 0; i < chunk.length; i++) xs.set(chunk[i]![1], i * dim);
      this.#faiss.add(xs);
      for (const [id] of chunk) {
        this.#positions.set(id, this.#slots.length);
        this.#slots.push(id);
      }
    }
  }

  /** HNSW: the efSearch every search starts from (patched addon only; else ignored). */
  set efSearch(ef: number) {
    this.#baseEf = ef;
  }

  /** IVF: the lists searched per query from now on (patched addon only; else ignored). */
  set nprobe(n: number) {
    if (this.kind === 'ivf' && patched()) this.#faiss.setParam('nprobe', n);
  }

  /** HNSW: efSearch for a search of `fetch` hits (see the top of this file). */
  #widen(fetch: number): void {
    if (this.kind !== 'hnsw' || !patched()) return;
    const ef = Math.max(this.#baseEf, Math.min(fetch, WIDE_EF_MAX));
    if (ef === this.#ef) return;
    this.#faiss.setParam('efSearch', ef);
    this.#ef = ef;
  }

  /** Up to `want` live hits, best first; `q` is a unit vector of this.dim. */
  search(q: Float32Array, want: number): SearchHit[] {
    const live = this.live;
    want = Math.min(want, live);
    if (want === 0) return [];
    const stored = this.stored;
    // Tombstones are spread evenly, so ask for enough that `want` live ones are
    // expected among them, and ask again for twice as many when they were not.
    let fetch = this.#dead === 0 ? want : Math.min(stored, Math.ceil((want * stored) / live) + 16);
    for (;;) {
      this.#widen(fetch);
      const { distances, labels } = this.#faiss.search(q, fetch);
      const hits: SearchHit[] = [];
      let exhausted = false;
      for (let i = 0; i < labels.length && hits.length < want; i++) {
        const label = labels[i]!;
        // -1 pads the end of the answer when the index found fewer than asked.
        // For IVF that is all its probed lists hold: asking for more finds no
        // more. (An HNSW walk may go further for a larger k: ask again.)
        if (label < 0) {
          exhausted = this.kind === 'ivf';
          break;
        }
        const id = this.#slots[label]!;
        if (id === DEAD) continue;
        hits.push({ id, score: Math.max(-1, Math.min(1, distances[i]!)) });
      }
      // A wider HNSW search than WIDE_EF_MAX finds no more: the caller scans.
      const capped = this.kind === 'hnsw' && fetch >= WIDE_EF_MAX;
      if (hits.length === want || exhausted || capped || fetch === stored) return hits;
      fetch = Math.min(stored, fetch * 2);
    }
  }

  /** Flat only: drops every tombstone with one removeIds (O(stored x dead) in FAISS 1.7). */
  compact(): void {
    if (this.kind !== 'flat') throw new Error('only a flat segment can compact');
    const deadPositions: number[] = [];
    for (let pos = 0; pos < this.#slots.length; pos++) {
      if (this.#slots[pos] === DEAD) deadPositions.push(pos);
    }
    const removed = this.#faiss.removeIds(deadPositions);
    if (removed !== deadPositions.length) {
      throw new Error(`FAISS removed ${removed} of ${deadPositions.length} vectors`);
    }
    this.#slots = this.#slots.filter((id) => id !== DEAD);
    for (let pos = 0; pos < this.#slots.length; pos++) this.#positions.set(this.#slots[pos]!, pos);
    this.#dead = 0;
  }
}
