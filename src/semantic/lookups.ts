/*
 * Reads of the semantic cache: SEMGET's best hit and SEMSEARCH's top k.
 *
 * A lookup tries the exact-match map first (normalized text, no model call),
 * then embeds the text and searches the namespace's index (candidates.ts).
 * Every candidate is confirmed by reading its key as the client (KeyAccess),
 * at the moment of the hit:
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

import { candidates, type Plan } from './candidates.js';
import { unit } from './dot.js';
import type { SemanticCache } from './engine.js';
import { compileFilter } from './filter.js';
import { mmrPool, rerankMmr } from './mmr.js';
import type { Hit, Namespace } from './namespace.js';
import { since } from './stats.js';
import type { KeyAccess } from './types.js';
import { semError } from './types.js';

/** Candidates read per round trip when checking that a hit still exists. */
const CHECK_BATCH = 4;
const PRESENT = Buffer.alloc(0);
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
      const found = await candidates(plan, count + CHECK_BATCH - 1);
      const before = space.entries.size;
      hits = await this.live(found, count, plan.withValues, access);
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
