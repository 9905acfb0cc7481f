/*
 * Reads of the semantic cache: SEMGET's best hit and SEMSEARCH's top k.
 *
 * A lookup tries the exact-match map first (normalized text, no model call),
 * then embeds the text and searches the namespace's index. Every candidate
 * is confirmed by reading its key as the client (KeyAccess), at the moment of
 * the hit:
 *
 *   - a value the client may read is the answer;
 *   - a key that is gone (expired, deleted by anyone) drops its entry, and
 *     the next candidate is tried;
 *   - a key the client may not read is skipped as if it were absent, and kept
 *     (other clients may read it): a lookup never reveals a value, a text or
 *     a key name its client could not read itself.
 *
 * In a transaction a lookup reads once: its candidates are chosen at queue
 * time (the exact match if there is one, else the best few above the
 * threshold) and confirmed at EXEC.
 */

import { unit } from './dot.js';
import type { SemanticCache } from './engine.js';
import { fairTurn } from './fair-turn.js';
import { compileFilter, type Filter } from './filter.js';
import { WIDE_EF_MAX } from './index/segment.js';
import { mmrPool, rerankMmr } from './mmr.js';
import type { Entry, Hit, Namespace } from './namespace.js';
import { since } from './stats.js';
import type { KeyAccess } from './types.js';
import { semError } from './types.js';

/** Candidates read per round trip when checking that a hit still exists. */
const CHECK_BATCH = 4;
const PRESENT = Buffer.alloc(0);
/**
 * An approximate index's short answer is made exact by a scan up to this many
 * entries: at most about 40 ms of CPU, in slices of a millisecond (index/scan.ts).
 */
export const EXACT_SCAN_MAX = 100_000;

export interface GetRequest {
  text: string;
  ns?: string | undefined;
  threshold?: number | undefined;
  filter?: string | undefined;
}

export interface SearchRequest {
  text?: string | undefined;
  vector?: Float32Array | undefined;
  ns?: string | undefined;
  count: number;
  threshold?: number | undefined;
  filter?: string | undefined;
  fetchK?: number | undefined;
  mmr?: number | undefined;
  withValues: boolean;
}

/** What one lookup asks of the index: built once per command, read by each step. */
interface Plan {
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

export class Lookups {
  constructor(private readonly cache: SemanticCache) {}

  /** SEMGET: the best hit the client may read, at or above the threshold, exact match first. */
  async get(req: GetRequest, access: KeyAccess): Promise<Hit | undefined> {
    const cache = this.cache;
    cache.ready();
    const space = cache.namespace(req.ns);
    const filter = req.filter === undefined ? undefined : compileFilter(req.filter);
    const threshold = req.threshold ?? space.threshold ?? cache.opts.threshold;
    // performance.now(), not hrtime.bigint(): no BigInt garbage per exact hit.
    const t0 = performance.now();
    const exactKey = cache.entries.exactOf(req.text);
    const exact = space.exact.get(exactKey);
    let hit: Hit | undefined;
    if (exact && (filter === undefined || filter(exact.attrs))) {
      const [[value], [current]] = await Promise.all([
        access.read([exact.key]),
        cache.current([exact]),
      ]);
      if (value && current) {
        space.hits++;
        space.exactHits++;
        space.lookup.record(performance.now() - t0);
        return { entry: exact, score: 1, value, exact: true };
      }
      if (value === null && space.entries.get(exact.id) === exact) cache.entries.drop(exact);
      if (access.oneShot) {
        // In a transaction the exact match was the one candidate.
        space.misses++;
        return undefined;
      }
    }
    // A text that normalizes to nothing ("", "?!") means nothing to compare by
    // meaning: only its exact bytes can match (normalize.ts).
    if (space.entries.size > 0 && !exactKey.startsWith('raw:')) {
      const vector = await this.embedTimed(space, req.text);
      const plan: Plan = {
        space,
        query: vector,
        count: 1,
        threshold,
        filter,
        fetchK: 16,
        pin: undefined,
        withValues: true,
      };
      hit = (await this.liveTop(plan, access))[0];
    }
    if (hit) space.hits++;
    else space.misses++;
    space.lookup.record(performance.now() - t0);
    return hit;
  }

  /** SEMSEARCH: top `count` the client may see, by text or vector, optional MMR re-ranking. */
  async search(req: SearchRequest, access: KeyAccess): Promise<Hit[]> {
    const cache = this.cache;
    cache.ready();
    const space = cache.namespace(req.ns);
    const filter = req.filter === undefined ? undefined : compileFilter(req.filter);
    let query: Float32Array;
    const dim = cache.opts.embedder.dim;
    if (req.vector !== undefined) {
      if (req.vector.length !== dim) {
        throw semError('VECTOR_DIM', req.vector.length, dim);
      }
      query = normalized(req.vector);
    } else query = await this.embedTimed(space, req.text ?? '');
    const fetchK = req.fetchK ?? Math.max(req.count * 10, 100);
    const plan: Plan = {
      space,
      query,
      count: req.count,
      threshold: req.threshold ?? -1,
      filter,
      fetchK,
      // An entry's own text always finds it, however the index is built.
      pin: req.text === undefined ? undefined : space.exact.get(cache.entries.exactOf(req.text)),
      withValues: req.withValues,
    };
    if (req.mmr === undefined) return this.liveTop(plan, access);
    // In a transaction the values are read with the pool (one read).
    const values = req.withValues && access.oneShot;
    const hits = await this.liveTop(
      { ...plan, count: mmrPool(req.count, fetchK), withValues: values },
      access,
    );
    let ranked = hits;
    if (hits.length > req.count) {
      // Only the hits whose vectors are still stored take part.
      const vectors = await cache.opts.store.vectors(hits.map((h) => h.entry.key));
      ranked = await rerankMmr(query, hits, vectors, req.count, req.mmr);
    }
    if (!req.withValues || values) return ranked;
    return this.live(ranked, req.count, true, access);
  }

  private async embedTimed(space: Namespace, text: string): Promise<Float32Array> {
    const t = process.hrtime.bigint();
    const [r] = await this.cache.opts.embedder.embedWithSource([text]);
    space.embedTime.record(since(t));
    return r!.vector;
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
  private async candidates(plan: Plan, count: number): Promise<Hit[]> {
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
      if (entry === undefined || entry === pin || (filter && !filter(entry.attrs)))
        return undefined;
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
        return entry === undefined
          ? []
          : [{ entry, score: h.score, value: undefined, exact: false }];
      });
      space.exactScans++;
    }
    space.searchTime.record(since(t));
    return head.concat(out);
  }

  /**
   * Keep the hits the client may see (reading values when asked): those whose
   * key is gone are dropped, those it may not read are skipped.
   */
  private async live(
    hits: Hit[],
    want: number,
    withValues: boolean,
    access: KeyAccess,
  ): Promise<Hit[]> {
    const out: Hit[] = [];
    const batch = access.oneShot ? Math.max(hits.length, 1) : CHECK_BATCH;
    for (let i = 0; i < hits.length && out.length < want; i += batch) {
      const slice = hits.slice(i, i + batch);
      const keys = slice.map((h) => h.entry.key);
      const [present, current] = await Promise.all([
        withValues
          ? access.read(keys)
          : access
              .exists(keys)
              .then((r) => r.map((e) => (e === undefined ? e : e ? PRESENT : null))),
        this.cache.current(slice.map((h) => h.entry)),
      ]);
      slice.forEach((h, j) => {
        const v = present[j];
        // Changed or removed by another instance since it was indexed here: not this answer.
        if (!current[j]) return;
        if (v === null) {
          if (h.entry.ns.entries.get(h.entry.id) === h.entry) this.cache.entries.drop(h.entry);
        } else if (v !== undefined && out.length < want) {
          out.push({ ...h, value: withValues ? v : undefined });
        }
      });
    }
    return out;
  }

  /**
   * The best `count` live entries: candidates whose key is gone are dropped
   * (which also removes them from the index) and the search repeated, a few
   * times at most, so deleted entries do not shorten the answer.
   */
  private async liveTop(plan: Plan, access: KeyAccess): Promise<Hit[]> {
    const { space, count } = plan;
    let hits: Hit[] = [];
    const rounds = access.oneShot ? 1 : 4;
    for (let round = 0; round < rounds; round++) {
      const candidates = await this.candidates(plan, count + CHECK_BATCH - 1);
      const before = space.entries.size;
      hits = await this.live(candidates, count, plan.withValues, access);
      if (hits.length >= count || space.entries.size === before) break;
    }
    return hits;
  }
}

function normalized(v: Float32Array): Float32Array {
  const u = unit(v);
  if (u === undefined) throw semError('VECTOR_INVALID');
  return u;
}
