/*
 * The index side of a lookup (lookups.ts): the best entries of a namespace
 * for a query vector, before anything is read from Redis. A filter makes the
 * search wider until enough pass; an approximate index that stays short is
 * scanned exactly, up to EXACT_SCAN_MAX entries (docs/index.md). Searches of
 * one event-loop turn take turns (fair-turn.ts).
 */
import { fairTurn } from './fair-turn.js';
import type { Filter } from './filter.js';
import { WIDE_EF_MAX } from './index/segment.js';
import type { Entry, Hit, Namespace } from './namespace.js';
import { since } from './stats.js';

/**
 * An approximate index's short answer is made exact by a scan up to this many
 * entries: at most about 40 ms of CPU, in slices of a millisecond (index/scan.ts).
 */
export const EXACT_SCAN_MAX = 100_000;

/** What one lookup asks of the index: built once per command, read by each step. */
export interface Plan {
  space: Namespace;
  query: Float32Array;
  /** Hits wanted. */
  count: number;
  /** Lowest score kept. */
  threshold: number;
  filter: Filter | undefined;
  /** With a filter, how many hits the index is asked for at first. */
  fetchK: number;
  /** The entry whose text is the question's: first, with score 1. */
  pin: Entry | undefined;
  /** Read the values (else only check the keys exist). */
  withValues: boolean;
}

/**
 * The best `count` entries at or above `threshold` that pass `filter`,
 * `pin` first (the entry whose text is the question's, score 1, as SEMGET's
 * exact tier). The index is searched for max(count, fetchK with a filter)
 * hits, doubling while too few pass; an approximate index (HNSW, IVF) whose
 * answer stays short once the search is WIDE_EF_MAX wide is scanned exactly
 * when the namespace has at most EXACT_SCAN_MAX entries. So COUNT k gives k
 * whenever k entries pass, up to that size (docs/index.md).
 */
export async function candidates(plan: Plan, count: number): Promise<Hit[]> {
  const { space, query, threshold, filter, fetchK, pin } = plan;
  const head: Hit[] = [];
  if (pin !== undefined && (filter === undefined || filter(pin.attrs))) {
    head.push({ entry: pin, score: 1, value: undefined, exact: true });
  }
  const index = space.index;
  const want = count - head.length;
  if (index === undefined || index.size === 0 || want <= 0) return head;
  const t = process.hrtime.bigint();
  const accept = (id: number): Entry | undefined => {
    const entry = space.entries.get(id);
    if (entry === undefined || entry === pin || (filter && !filter(entry.attrs))) return undefined;
    return entry;
  };
  let k = Math.min(index.size, Math.max(count, filter ? fetchK : count));
  let out: Hit[];
  let exhausted: boolean;
  let complete: boolean;
  for (;;) {
    out = [];
    exhausted = false;
    // Behind other lookups' searches in this turn, wait for a later one.
    const turn = fairTurn();
    if (turn !== undefined) await turn;
    // Usually an array: no promise unless a long flat tail made the search yield.
    const pending = index.searchYielding(query, k);
    const found = Array.isArray(pending) ? pending : await pending;
    // Every live vector came back: nothing left to find.
    complete = found.length >= index.size;
    for (const h of found) {
      if (h.score < threshold) {
        exhausted = true;
        break;
      }
      const entry = accept(h.id);
      if (entry === undefined) continue;
      out.push({ entry, score: h.score, value: undefined, exact: false });
      if (out.length >= want) break;
    }
    if (out.length >= want || exhausted || k >= index.size) break;
    if (index.approximate && k >= WIDE_EF_MAX && index.size <= EXACT_SCAN_MAX) break;
    k = Math.min(index.size, k * 2);
  }
  const short = out.length < want && !exhausted && !complete;
  if (short && index.approximate && index.size <= EXACT_SCAN_MAX) {
    const hits = await index.scan(query, want, {
      accept: (id) => accept(id) !== undefined,
      minScore: threshold,
    });
    out = hits.flatMap((h) => {
      const entry = accept(h.id); // it may have gone while the scan waited
      return entry === undefined ? [] : [{ entry, score: h.score, value: undefined, exact: false }];
    });
    space.exactScans++;
  }
  space.searchTime.record(since(t));
  return head.concat(out);
}
