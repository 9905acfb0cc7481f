/*
 * The flat tail of a vector index: every add lands here (an exact flat
 * segment takes a vector in microseconds), in shards of SHARD_SIZE vectors
 * so that a search can yield to the event loop between shards. Removing an
 * id buries it in its shard; tidy() then drops emptied shards and compacts
 * those with many tombstones. The owner (vector-index.ts) empties the tail
 * into each background build and refills it with what changed meanwhile.
 * While the owner bulk loads, ids may be held (hold()): live here, but in
 * no shard, hence not searched, until flush() adds their vectors; a
 * snapshot loaded meanwhile takes them into its segment instead, and the
 * copy into a shard is never made.
 */
import type { SearchHit } from '../types.js';
import { newFlatIP } from './faiss.js';
import { Segment } from './segment.js';

/** Vectors per tail shard: searching one takes well under a millisecond. */
export const SHARD_SIZE = 4096;
/** A shard compacts at this many tombstones at the latest: removeIds costs O(stored x dead). */
const FLAT_COMPACT_AT = 256;

export class FlatTail {
  #shards: Segment[] = [];
  /** The shard holding each id. */
  readonly #shardOf = new Map<number, Segment>();
  /** Shards that lost vectors since the last tidy(). */
  readonly #touched = new Set<Segment>();
  /** Ids held, in no shard yet (hold()). */
  readonly #held = new Set<number>();

  constructor(
    readonly dim: number,
    /** Tombstones, as a fraction of a shard, that make it compact. */
    readonly maxDeadRatio: number,
  ) {}

  /** Live vectors (held ones included). */
  get live(): number {
    return this.#shardOf.size + this.#held.size;
  }

  /** Vectors held by FAISS, live or tombstoned. */
  get stored(): number {
    let n = 0;
    for (const s of this.#shards) n += s.stored;
    return n;
  }

  get dead(): number {
    let n = 0;
    for (const s of this.#shards) n += s.dead;
    return n;
  }

  /** The shards, in order (a search walks them, maybe across turns of the event loop). */
  get shards(): readonly Segment[] {
    return this.#shards;
  }

  has(id: number): boolean {
    return this.#shardOf.has(id) || this.#held.has(id);
  }

  /** Marks `id` dead in its shard (or no longer held); false when it is not in the tail. */
  bury(id: number): boolean {
    if (this.#held.delete(id)) return true;
    const shard = this.#shardOf.get(id);
    if (shard === undefined) return false;
    shard.bury(id);
    this.#shardOf.delete(id);
    this.#touched.add(shard);
    return true;
  }

  /** Adds to the last shard, and to new ones when it is full. Ids must be in no segment. */
  append(entries: [number, Float32Array][]): void {
    for (let at = 0; at < entries.length; ) {
      let shard = this.#shards.at(-1);
      if (shard === undefined || shard.stored >= SHARD_SIZE) {
        shard = new Segment('flat', newFlatIP(this.dim));
        this.#shards.push(shard);
      }
      const chunk = entries.slice(at, at + SHARD_SIZE - shard.stored);
      shard.append(chunk);
      for (const [id] of chunk) this.#shardOf.set(id, shard);
      at += chunk.length;
    }
  }

  /** Of the shards that lost vectors: drops the emptied, compacts those with many tombstones. */
  tidy(): void {
    if (this.#touched.size === 0) return;
    let emptied = false;
    for (const s of this.#touched) {
      if (s.disposed) continue;
      if (s.live === 0) {
        s.dispose();
        emptied = true;
      } else if (s.dead >= FLAT_COMPACT_AT || s.dead > this.maxDeadRatio * s.stored) {
        s.compact();
      }
    }
    this.#touched.clear();
    if (emptied) this.#shards = this.#shards.filter((s) => !s.disposed);
  }

  /** Ids that are in no segment, in the tail without a vector in a shard yet. */
  hold(ids: Iterable<number>): void {
    for (const id of ids) this.#held.add(id);
  }

  /** The held ids into shards, each with its vector. */
  flush(vectorOf: (id: number) => Float32Array): this {
    const held = [...this.#held];
    this.#held.clear();
    // A shard at a time: the vectors' copies are garbage once FAISS has them.
    for (let at = 0; at < held.length; at += SHARD_SIZE) {
      this.append(held.slice(at, at + SHARD_SIZE).map((id) => [id, vectorOf(id)]));
    }
    return this;
  }

  /** Frees every shard and forgets every id. */
  clear(): void {
    this.#held.clear();
    for (const s of this.#shards) s.dispose();
    this.#shards = [];
    this.#touched.clear();
    this.#shardOf.clear();
  }
}

/** The best `want` of two lists sorted best first. */
export function merge(a: SearchHit[], b: SearchHit[], want: number): SearchHit[] {
  if (b.length === 0) return a;
  if (a.length === 0) return b;
  return a
    .concat(b)
    .sort((x, y) => y.score - x.score)
    .slice(0, want);
}
