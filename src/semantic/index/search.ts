/*
 * A search of the vector index (vector-index.ts): the main segment and each
 * shard of the flat tail are asked for the best `want`, and the answers are
 * merged (an id lives in exactly one of them). The yielding form goes on
 * after a turn of the event loop once it has run for YIELD_AFTER_MS, between
 * shards, so a long flat tail never stops the loop for long; writes may
 * happen while it waits (see searchYielding).
 */
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { SearchHit } from '../types.js';
import type { Segment } from './segment.js';
import { merge } from './tail.js';

/** searchYielding() yields to the event loop once it has searched this long. */
const YIELD_AFTER_MS = 1;

/** The best `want` hits of `main` and `shards`, merged, in one go. */
export function searchAll(
  main: Segment | undefined,
  shards: readonly Segment[],
  q: Float32Array,
  want: number,
): SearchHit[] {
  let hits = main?.search(q, want) ?? [];
  for (const shard of shards) hits = merge(hits, shard.search(q, want), want);
  return hits;
}

/**
 * searchAll(), but once it has run for YIELD_AFTER_MS it goes on after the
 * event loop's next turn, before each remaining shard. The hits come back as
 * they are when it never had to wait, and as a promise when it did; then
 * what `live` no longer holds is left out, and a shard freed meanwhile (a
 * build was swapped in) makes it search everything again with `again`.
 */
export function searchYielding(
  main: Segment | undefined,
  shards: readonly Segment[],
  q: Float32Array,
  want: number,
  live: (id: number) => boolean,
  again: () => SearchHit[],
): SearchHit[] | Promise<SearchHit[]> {
  const t0 = performance.now();
  let hits = main?.search(q, want) ?? [];
  for (let i = 0; i < shards.length; i++) {
    if (performance.now() - t0 >= YIELD_AFTER_MS)
      return searchRest(q, want, hits, shards.slice(i), live, again);
    hits = merge(hits, shards[i]!.search(q, want), want);
  }
  return hits;
}

async function searchRest(
  q: Float32Array,
  want: number,
  hits: SearchHit[],
  shards: Segment[],
  live: (id: number) => boolean,
  again: () => SearchHit[],
): Promise<SearchHit[]> {
  let t0 = Number.NEGATIVE_INFINITY;
  for (const shard of shards) {
    if (performance.now() - t0 >= YIELD_AFTER_MS) {
      await yieldToLoop();
      t0 = performance.now();
    }
    // A build was swapped in meanwhile and freed this shard: its vectors are
    // elsewhere now, so search everything as it is (rare; not yielding).
    if (shard.disposed) return again();
    hits = merge(hits, shard.search(q, want), want);
  }
  // An id removed, or moved to a shard searched before, while this one waited.
  const seen = new Set<number>();
  return hits.filter((h) => live(h.id) && !seen.has(h.id) && seen.add(h.id) !== undefined);
}
