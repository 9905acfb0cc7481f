/*
 * A search of the vector index (vector-index.ts): the main segment and each
 * shard of the flat tail are asked for the best `want`, and the answers are
 * merged (an id lives in exactly one of them). The yielding form goes on
 * after a turn of the event loop once it has run for YIELD_AFTER_MS, between
 * shards, so a long flat tail never stops the loop for long; writes may
 * happen while it waits (see searchYielding).
 *
 * With QUANT q8, FAISS's SQ8 scores are off by up to about 0.02 and rank
 * near neighbours wrongly (recall@10 0.936 at 100k clustered vectors,
 * HNSW): the index asks for RERANK_EXTRA more hits and rerank() scores them
 * again from the JS copy's 8-bit codes, whose per-vector scale is finer
 * (about 1e-3 off; exact search over them alone finds 0.988 of the true top
 * 10): docs/index.md, "Quantization".
 */
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { SearchHit } from '../types.js';
import type { Segment } from './segment.js';
import { merge } from './tail.js';

/** Hits asked of a q8 index beyond the k wanted, for rerank(). */
export const RERANK_EXTRA = 30;

/** The best k of `hits` scored again by `score` (undefined: gone), best first. */
export function rerank(
  hits: SearchHit[],
  k: number,
  score: (id: number) => number | undefined,
): SearchHit[] {
  const out: SearchHit[] = [];
  for (const h of hits) {
    const s = score(h.id);
    if (s !== undefined) out.push({ id: h.id, score: Math.max(-1, Math.min(1, s)) });
  }
  return out.sort((a, b) => b.score - a.score).slice(0, k);
}

/** What a search of a vector index reads. */
export interface Parts {
  main: Segment | undefined;
  shards: readonly Segment[];
  /** Live vectors in all. */
  size: number;
  /** Set for q8: an id's score from the JS copy (undefined: gone). */
  rescore: ((id: number, q: Float32Array) => number | undefined) | undefined;
}

/** Hits to ask for: RERANK_EXTRA more when a q8 main segment's hits are scored again. */
function fetchFor(p: Parts, want: number): number {
  return p.main && p.rescore ? Math.min(p.size, want + RERANK_EXTRA) : want;
}

/** The best k of a vector index's parts for unit query q, in one go. */
export function searchParts(p: Parts, q: Float32Array, k: number): SearchHit[] {
  const want = Math.min(k, p.size);
  if (want === 0) return [];
  const fetch = fetchFor(p, want);
  const hits = searchAll(p.main, p.shards, q, fetch);
  return fetch === want ? hits : rerank(hits, want, (id) => p.rescore!(id, q));
}

/** searchParts() through searchYielding(); `again(n)` searches everything anew. */
export function searchPartsYielding(
  p: Parts,
  q: Float32Array,
  k: number,
  live: (id: number) => boolean,
  again: (n: number) => SearchHit[],
): SearchHit[] | Promise<SearchHit[]> {
  const want = Math.min(k, p.size);
  if (want === 0) return [];
  const fetch = fetchFor(p, want);
  const hits = searchYielding(p.main, p.shards, q, fetch, live, () => again(fetch));
  if (fetch === want) return hits;
  const best = (h: SearchHit[]) => rerank(h, want, (id) => p.rescore!(id, q));
  return hits instanceof Promise ? hits.then(best) : best(hits);
}

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
