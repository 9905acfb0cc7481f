/*
 * The semantic cache: namespaces of entries (key, text, attributes) with a
 * vector index and an exact-match map each, mirrored from Redis (store.ts),
 * which stays the source of truth.
 *
 * Lookups: the normalized text is tried against the exact-match map first (no
 * model call); otherwise the text is embedded and the index searched. Either
 * way the value is read from Redis at the moment of the hit: an entry whose
 * key expired or was deleted by anyone is dropped on the spot and the next
 * candidate tried, and a periodic sweep drops the ones nobody asks for.
 *
 * Writes to the same key are applied in the order they arrived, even when a
 * later one embeds faster (its text was cached): each waits for the previous.
 */
import type { Logger } from '../log.js';
import { compileFilter, type Filter } from './filter.js';
import { patched as faissPatched } from './index/faiss.js';
import { exactKey } from './normalize.js';
import { LatencyStats, since } from './stats.js';
import type { SemanticStore, TtlMode } from './store.js';
import type { Embedder, IndexKind, VectorIndex } from './types.js';
import { EmbedderUnavailableError } from './types.js';
import { createVectorIndex, type FaissVectorIndex } from './vector-index.js';

export interface SourcedEmbedder extends Embedder {
  embedWithSource(texts: string[]): Promise<{ vector: Float32Array; cached: boolean }[]>;
}

export class LoadingError extends Error {}
export class UnknownNamespaceError extends Error {}
export class InvalidInputError extends Error {}

export const DEFAULT_NAMESPACE = 'default';
const MAX_NAMESPACE_LENGTH = 256;
/** Texts whose exact-match hash is remembered (oldest forgotten first). */
const EXACT_MEMO_SIZE = 10_000;
/** Candidates read from Redis per round trip when checking that a hit still exists. */
const CHECK_BATCH = 4;

export interface Entry {
  id: number;
  key: Buffer;
  ns: Namespace;
  text: string;
  attrs: Record<string, unknown> | undefined;
  attrsJson: string | undefined;
  exact: string;
}

export class Namespace {
  index: FaissVectorIndex | undefined;
  readonly entries = new Map<number, Entry>();
  readonly exact = new Map<string, Entry>();
  threshold: number | undefined;
  indexKind: IndexKind | 'auto' | undefined;
  hits = 0;
  exactHits = 0;
  misses = 0;
  readonly lookup = new LatencyStats();
  readonly embedTime = new LatencyStats();
  readonly searchTime = new LatencyStats();
  constructor(readonly name: string) {}
}

interface EntryRequest {
  key: Buffer;
  text: string;
  ns?: string | undefined;
  attrs?: string | undefined;
}

export interface Hit {
  entry: Entry;
  score: number;
  value: Buffer | undefined;
  exact: boolean;
}

export interface EngineOptions {
  store: SemanticStore;
  embedder: SourcedEmbedder;
  threshold: number;
  indexKind: IndexKind | 'auto';
  /** HNSW efSearch and IVF nprobe of new indexes; the index's defaults when absent. */
  efSearch?: number;
  nprobe?: number;
  logger: Logger;
  /** Counters of the embedding chain (batching, cache), for SEMINFO. */
  embedStats?: () => EmbedStats;
}

export interface EmbedStats {
  /** Calls into the model (one per batch). */
  modelCalls: number;
  /** Texts the model embedded. */
  modelTexts: number;
  /** Embedding cache hits and misses. */
  cacheHits: number;
  cacheMisses: number;
}

export class SemanticCache {
  readonly namespaces = new Map<string, Namespace>();
  private readonly byKey = new Map<string, Entry>();
  private readonly writes = new Map<string, Promise<unknown>>();
  private nextId = 1;
  state: 'loading' | 'ready' | 'failed' = 'loading';
  private failure: EmbedderUnavailableError | undefined;
  loadingWhat = 'the embedding model';
  private sweepCursor: Iterator<Entry> | undefined;
  private readonly exactMemo = new Map<string, string>();
  private stopped = false;
  private faissChecked = false;

  constructor(readonly opts: EngineOptions) {
    this.namespaces.set(DEFAULT_NAMESPACE, new Namespace(DEFAULT_NAMESPACE));
  }

  get modelId(): string {
    const e = this.opts.embedder;
    return `${e.kind}:${e.model}:${e.dim}`;
  }

  /** Load the model, then rebuild the index from Redis. Never rejects: failure is a state. */
  async start(): Promise<void> {
    const { logger, embedder } = this.opts;
    try {
      const t = process.hrtime.bigint();
      await embedder.load();
      logger.info(
        `embedder ${embedder.kind} ${embedder.model} ready (dim ${embedder.dim}, ${since(t).toFixed(0)} ms)`,
      );
      this.loadingWhat = 'the index from redis';
      await this.rebuild();
      this.state = 'ready';
      for (const space of this.namespaces.values()) space.index?.bulkLoad(false);
    } catch (err) {
      this.state = 'failed';
      this.failure =
        err instanceof EmbedderUnavailableError
          ? err
          : new EmbedderUnavailableError((err as Error).message, 'check the log');
      logger.error(`semantic cache unavailable: ${this.failure.message}`);
    }
  }

  private async rebuild(): Promise<void> {
    const t = process.hrtime.bigint();
    for (const [name, settings] of await this.opts.store.namespaces()) {
      const space = this.namespace(name, true);
      const threshold = Number(settings.threshold);
      if (settings.threshold !== undefined && threshold >= -1 && threshold <= 1)
        space.threshold = threshold;
      const kind = settings.index;
      if (kind === 'flat' || kind === 'hnsw' || kind === 'ivf' || kind === 'auto') {
        space.indexKind = kind;
      }
    }
    let n = 0;
    let stale: { key: Buffer; text: string; ns: string; attrs: string | undefined }[] = [];
    for await (const batch of this.opts.store.scan()) {
      const fresh = batch.filter((e) => e.model === this.modelId);
      for (const e of batch) if (e.model !== this.modelId) stale.push(e);
      this.addEntries(fresh);
      n += fresh.length;
      if (n > 0 && n % 10_000 < fresh.length)
        this.opts.logger.info(`rebuilding index: ${n} entries`);
    }
    // Entries written with another model: embed their text again with this one.
    while (stale.length > 0) {
      const chunk = stale.slice(0, 256);
      stale = stale.slice(256);
      for (const e of chunk) await this.persist(e, undefined, 'INDEX', 0);
      n += chunk.length;
    }
    const ms = since(t);
    this.opts.logger.info(
      `index rebuilt from redis: ${n} entries in ${ms.toFixed(0)} ms (${Math.round(n / Math.max(ms / 1000, 1e-3))}/s)`,
    );
  }

  private ready(): void {
    if (this.state === 'loading') throw new LoadingError(`semcache is loading ${this.loadingWhat}`);
    if (this.state === 'failed') throw this.failure!;
  }

  namespace(name: string | undefined, create = false): Namespace {
    const n = name ?? DEFAULT_NAMESPACE;
    let space = this.namespaces.get(n);
    if (space === undefined) {
      if (!create) throw new UnknownNamespaceError(`unknown namespace '${n}'`);
      if (n.length === 0 || n.length > MAX_NAMESPACE_LENGTH) {
        throw new InvalidInputError(`namespace must be 1 to ${MAX_NAMESPACE_LENGTH} bytes`);
      }
      space = new Namespace(n);
      this.namespaces.set(n, space);
    }
    return space;
  }

  static parseAttrs(json: string | undefined): Record<string, unknown> | undefined {
    if (json === undefined) return undefined;
    let parsed: unknown;
    try {
      parsed = JSON.parse(json);
    } catch (err) {
      throw new InvalidInputError(`invalid JSON in ATTRS: ${(err as Error).message}`);
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
      throw new InvalidInputError('ATTRS must be a JSON object');
    }
    return parsed as Record<string, unknown>;
  }

  // ---- writes -----------------------------------------------------------

  /** SEMSET: store the value like SET and index its text. */
  set(req: {
    key: Buffer;
    text: string;
    value: Buffer;
    ttlMode: TtlMode;
    ttl: number;
    ns?: string | undefined;
    attrs?: string | undefined;
  }): Promise<void> {
    this.ready();
    return this.persist(req, req.value, req.ttlMode, req.ttl).then(() => undefined);
  }

  /** SEMINDEX: index a key that already holds a value. Resolves false when there is no such key. */
  index(req: EntryRequest): Promise<boolean> {
    this.ready();
    return this.persist(req, undefined, 'INDEX', 0);
  }

  /**
   * Embed, write value (unless INDEX), record and exact key to Redis, then
   * index in memory. Resolves false when INDEX found no key.
   */
  private persist(
    req: EntryRequest,
    value: Buffer | undefined,
    mode: TtlMode,
    ttl: number,
  ): Promise<boolean> {
    const attrs = SemanticCache.parseAttrs(req.attrs);
    const space = this.namespace(req.ns, true);
    const exactHash = this.exactOf(req.text);
    return this.write(req.key, req.text, async (vector) => {
      const pttl = await this.opts.store.put(
        {
          key: req.key,
          ns: space.name,
          text: req.text,
          vector,
          attrs: req.attrs,
          model: this.modelId,
          exactHash,
          value,
        },
        mode,
        ttl,
      );
      if (pttl === undefined) return false;
      const entry = this.remember(req.key, space, req.text, exactHash, attrs, req.attrs);
      this.indexOf(space).add(entry.id, vector);
      return true;
    });
  }

  /** Embed now (in parallel with other writes), apply after earlier writes to the same key. */
  private write<T>(key: Buffer, text: string, apply: (v: Float32Array) => Promise<T>): Promise<T> {
    const k = key.toString('latin1');
    const embedded = this.opts.embedder.embedWithSource([text]);
    const previous = this.writes.get(k);
    const run = (async () => {
      const vector = (await embedded)[0]!.vector;
      if (previous) await previous.catch(() => {});
      return apply(vector);
    })();
    this.writes.set(k, run);
    const cleanup = () => {
      if (this.writes.get(k) === run) this.writes.delete(k);
    };
    run.then(cleanup, cleanup);
    return run;
  }

  private addEntries(
    entries: {
      key: Buffer;
      ns: string;
      text: string;
      exactHash?: string | undefined;
      vector: Float32Array;
      attrs: string | undefined;
    }[],
  ): void {
    const groups = new Map<Namespace, { ids: number[]; vectors: Float32Array[] }>();
    for (const e of entries) {
      let attrs: Record<string, unknown> | undefined;
      try {
        attrs = SemanticCache.parseAttrs(e.attrs);
      } catch {
        attrs = undefined;
      }
      const space = this.namespace(e.ns, true);
      // The record's own exact-match hash, as written; computed when it has none.
      const exact = e.exactHash ?? exactKey(e.text);
      const entry = this.remember(e.key, space, e.text, exact, attrs, e.attrs);
      let g = groups.get(space);
      if (g === undefined) groups.set(space, (g = { ids: [], vectors: [] }));
      g.ids.push(entry.id);
      g.vectors.push(e.vector);
    }
    for (const [space, g] of groups) this.indexOf(space).addBatch(g.ids, g.vectors);
  }

  private remember(
    key: Buffer,
    space: Namespace,
    text: string,
    exact: string,
    attrs: Record<string, unknown> | undefined,
    attrsJson: string | undefined,
  ): Entry {
    const k = key.toString('latin1');
    const old = this.byKey.get(k);
    if (old) this.forget(old);
    const entry: Entry = {
      id: this.nextId++,
      key: Buffer.from(key),
      ns: space,
      text,
      attrs,
      attrsJson,
      exact,
    };
    this.byKey.set(k, entry);
    space.entries.set(entry.id, entry);
    space.exact.set(entry.exact, entry);
    return entry;
  }

  private indexOf(space: Namespace): VectorIndex {
    if (space.index !== undefined) return space.index;
    const kind = space.indexKind ?? this.opts.indexKind;
    const { logger } = this.opts;
    if (!this.faissChecked) {
      this.faissChecked = true;
      if (!faissPatched()) {
        logger.warn(
          "faiss-node lacks semcache's patch (a prebuilt binary?): HNSW builds run on the event loop and IVF is unavailable; run `bash scripts/build-faiss.sh` with libfaiss-dev installed",
        );
      }
    }
    const index = createVectorIndex({
      dim: this.opts.embedder.dim,
      kind,
      ...(this.opts.efSearch === undefined ? {} : { efSearch: this.opts.efSearch }),
      ...(this.opts.nprobe === undefined ? {} : { nprobe: this.opts.nprobe }),
      onBuild: ({ kind, vectors, ms, error }) => {
        if (this.stopped) return;
        if (error) {
          logger.warn(
            `namespace ${space.name}: ${kind} index build of ${vectors} vectors failed, retrying in a minute: ${error.message}`,
          );
        } else {
          logger.info(
            `namespace ${space.name}: ${kind} index of ${vectors} vectors built in ${(ms / 1000).toFixed(1)} s`,
          );
        }
      },
    });
    if (this.state === 'loading') index.bulkLoad(true);
    space.index = index;
    return index;
  }

  /**
   * The exact-match hash of a text, memoized: the same prompts come back (that
   * is what a cache is for), and NFKC plus SHA-256 cost more than the lookup.
   */
  private exactOf(text: string): string {
    let h = this.exactMemo.get(text);
    if (h === undefined) {
      h = exactKey(text);
      if (this.exactMemo.size >= EXACT_MEMO_SIZE) {
        this.exactMemo.delete(this.exactMemo.keys().next().value as string);
      }
      this.exactMemo.set(text, h);
    }
    return h;
  }

  /** Drop an entry from memory only. */
  private forget(entry: Entry): void {
    const space = entry.ns;
    if (this.byKey.get(entry.key.toString('latin1')) === entry)
      this.byKey.delete(entry.key.toString('latin1'));
    space.entries.delete(entry.id);
    if (space.exact.get(entry.exact) === entry) space.exact.delete(entry.exact);
    space.index?.remove(entry.id);
  }

  /** The key is gone from Redis: forget the entry and remove its leftovers there. */
  private drop(entry: Entry): void {
    this.forget(entry);
    this.opts.store.remove([entry.key], false).catch(() => {});
  }

  /** SEMDEL: entries and their values. */
  async del(keys: Buffer[]): Promise<number> {
    this.ready();
    const n = await this.opts.store.remove(keys, true);
    for (const key of keys) {
      const entry = this.byKey.get(key.toString('latin1'));
      if (entry) this.forget(entry);
    }
    return n;
  }

  /** SEMFLUSH: every entry (and value) of one namespace, or of all. */
  async flush(ns: string | undefined): Promise<number> {
    this.ready();
    const spaces = ns === undefined ? [...this.namespaces.values()] : [this.namespace(ns)];
    let n = 0;
    for (const space of spaces) {
      const entries = [...space.entries.values()];
      for (let i = 0; i < entries.length; i += 500) {
        const slice = entries.slice(i, i + 500);
        n += await this.opts.store.remove(
          slice.map((e) => e.key),
          true,
        );
        for (const e of slice) this.forget(e);
      }
      space.index?.clear();
      if (space.name !== DEFAULT_NAMESPACE) {
        this.namespaces.delete(space.name);
        await this.opts.store.deleteNamespace(space.name);
      }
    }
    return n;
  }

  /** SEMNS SET: create a namespace or change its settings (persisted in Redis). */
  async configure(
    ns: string,
    settings: { threshold?: number | undefined; index?: IndexKind | 'auto' | undefined },
  ): Promise<void> {
    this.ready();
    const space = this.namespace(ns, true);
    if (
      settings.index !== undefined &&
      settings.index !== (space.indexKind ?? this.opts.indexKind)
    ) {
      if (space.entries.size > 0) {
        throw new InvalidInputError(
          `cannot change the INDEX of namespace '${ns}' while it has entries (SEMFLUSH NS ${ns} first)`,
        );
      }
      space.index = undefined;
    }
    const saved: Record<string, string> = {};
    if (settings.threshold !== undefined) saved.threshold = String(settings.threshold);
    if (settings.index !== undefined) saved.index = settings.index;
    saved.created = String(Date.now());
    await this.opts.store.saveNamespace(ns, saved);
    if (settings.threshold !== undefined) space.threshold = settings.threshold;
    if (settings.index !== undefined) space.indexKind = settings.index;
  }

  // ---- reads ------------------------------------------------------------

  /** SEMGET: the best live hit at or above the threshold, exact match first. */
  async get(req: {
    text: string;
    ns?: string | undefined;
    threshold?: number | undefined;
    filter?: string | undefined;
  }): Promise<Hit | undefined> {
    this.ready();
    const space = this.namespace(req.ns);
    const filter = req.filter === undefined ? undefined : compileFilter(req.filter);
    const threshold = req.threshold ?? space.threshold ?? this.opts.threshold;
    // performance.now(), not hrtime.bigint(): no BigInt garbage per exact hit.
    const t0 = performance.now();
    const exact = space.exact.get(this.exactOf(req.text));
    if (exact && (filter === undefined || filter(exact.attrs))) {
      const value = (await this.opts.store.values([exact.key]))[0];
      if (value) {
        space.hits++;
        space.exactHits++;
        space.lookup.record(performance.now() - t0);
        return { entry: exact, score: 1, value, exact: true };
      }
      if (space.entries.get(exact.id) === exact) this.drop(exact);
    }
    let hit: Hit | undefined;
    if (space.entries.size > 0) {
      const vector = await this.embedTimed(space, req.text);
      hit = (await this.liveTop(space, vector, 1, threshold, filter, 16, true))[0];
    }
    if (hit) space.hits++;
    else space.misses++;
    space.lookup.record(performance.now() - t0);
    return hit;
  }

  private async embedTimed(space: Namespace, text: string): Promise<Float32Array> {
    const t = process.hrtime.bigint();
    const [r] = await this.opts.embedder.embedWithSource([text]);
    space.embedTime.record(since(t));
    return r!.vector;
  }

  /**
   * The best `count` entries at or above `threshold` that pass `filter`. With
   * a filter the index is searched deeper (fetchK, doubling up to the whole
   * namespace) until enough entries pass.
   */
  async candidates(
    space: Namespace,
    query: Float32Array,
    count: number,
    threshold: number,
    filter: Filter | undefined,
    fetchK: number,
  ): Promise<Hit[]> {
    const index = space.index;
    if (index === undefined || index.size === 0) return [];
    const t = process.hrtime.bigint();
    let k = Math.min(index.size, Math.max(count, filter ? fetchK : count));
    let out: Hit[] = [];
    for (;;) {
      out = [];
      let exhausted = false;
      // Usually an array: no promise (and no wait behind other lookups) unless
      // a long flat tail made the search yield.
      const found = index.searchYielding(query, k);
      for (const h of Array.isArray(found) ? found : await found) {
        if (h.score < threshold) {
          exhausted = true;
          break;
        }
        const entry = space.entries.get(h.id);
        if (entry === undefined || (filter && !filter(entry.attrs))) continue;
        out.push({ entry, score: h.score, value: undefined, exact: false });
        if (out.length >= count) break;
      }
      if (out.length >= count || exhausted || k >= index.size) break;
      k = Math.min(index.size, k * 2);
    }
    space.searchTime.record(since(t));
    return out;
  }

  /** Keep the hits whose key still exists (reading values when asked); drop the others. */
  private async live(hits: Hit[], want: number, withValues: boolean): Promise<Hit[]> {
    const out: Hit[] = [];
    for (let i = 0; i < hits.length && out.length < want; i += CHECK_BATCH) {
      const batch = hits.slice(i, i + CHECK_BATCH);
      const keys = batch.map((h) => h.entry.key);
      const present = withValues
        ? await this.opts.store.values(keys)
        : (await this.opts.store.exists(keys)).map((e) => (e ? Buffer.alloc(0) : null));
      batch.forEach((h, j) => {
        const v = present[j];
        if (v === null || v === undefined) {
          if (h.entry.ns.entries.get(h.entry.id) === h.entry) this.drop(h.entry);
        } else if (out.length < want) out.push({ ...h, value: withValues ? v : undefined });
      });
    }
    return out;
  }

  /** SEMSEARCH: top `count` by text or vector, optional MMR re-ranking. */
  async search(req: {
    text?: string | undefined;
    vector?: Float32Array | undefined;
    ns?: string | undefined;
    count: number;
    threshold?: number | undefined;
    filter?: string | undefined;
    fetchK?: number | undefined;
    mmr?: number | undefined;
    withValues: boolean;
  }): Promise<Hit[]> {
    this.ready();
    const space = this.namespace(req.ns);
    const filter = req.filter === undefined ? undefined : compileFilter(req.filter);
    let query: Float32Array;
    if (req.vector !== undefined) {
      if (req.vector.length !== this.opts.embedder.dim) {
        throw new InvalidInputError(
          `vector has ${req.vector.length} dimensions, the index has ${this.opts.embedder.dim}`,
        );
      }
      query = normalized(req.vector);
    } else query = await this.embedTimed(space, req.text ?? '');
    const threshold = req.threshold ?? -1;
    const fetchK = req.fetchK ?? Math.max(req.count * 10, 100);
    const pool = req.mmr === undefined ? req.count : Math.max(req.count, fetchK);
    if (req.mmr === undefined) {
      return this.liveTop(space, query, req.count, threshold, filter, fetchK, req.withValues);
    }
    const hits = await this.liveTop(space, query, pool, threshold, filter, fetchK, false);
    const ranked = hits.length > req.count ? await this.mmr(query, hits, req.count, req.mmr) : hits;
    return req.withValues ? this.live(ranked, req.count, true) : ranked;
  }

  /**
   * The best `count` live entries: candidates whose key is gone are dropped
   * (which also removes them from the index) and the search repeated, a few
   * times at most, so deleted entries do not shorten the answer.
   */
  private async liveTop(
    space: Namespace,
    query: Float32Array,
    count: number,
    threshold: number,
    filter: Filter | undefined,
    fetchK: number,
    withValues: boolean,
  ): Promise<Hit[]> {
    let hits: Hit[] = [];
    for (let round = 0; round < 4; round++) {
      const pool = count + CHECK_BATCH - 1;
      const candidates = await this.candidates(space, query, pool, threshold, filter, fetchK);
      const before = space.entries.size;
      hits = await this.live(candidates, count, withValues);
      if (hits.length >= count || space.entries.size === before) break;
    }
    return hits;
  }

  /** Maximal marginal relevance: lambda * relevance - (1 - lambda) * redundancy. */
  private async mmr(
    query: Float32Array,
    hits: Hit[],
    count: number,
    lambda: number,
  ): Promise<Hit[]> {
    const vectors = await this.opts.store.vectors(hits.map((h) => h.entry.key));
    const pool = hits.map((h, i) => ({ h, v: vectors[i] })).filter((p) => p.v !== undefined) as {
      h: Hit;
      v: Float32Array;
    }[];
    const chosen: { h: Hit; v: Float32Array }[] = [];
    while (chosen.length < count && pool.length > 0) {
      let best = 0;
      let bestScore = Number.NEGATIVE_INFINITY;
      pool.forEach((p, i) => {
        let redundancy = 0;
        for (const c of chosen) redundancy = Math.max(redundancy, dot(p.v, c.v));
        const s = lambda * dot(p.v, query) - (1 - lambda) * redundancy;
        if (s > bestScore) {
          bestScore = s;
          best = i;
        }
      });
      chosen.push(pool.splice(best, 1)[0]!);
    }
    return chosen.map((c) => c.h);
  }

  /** SEMEMBED */
  async embed(text: string): Promise<{ vector: Float32Array; cached: boolean }> {
    this.ready();
    const [r] = await this.opts.embedder.embedWithSource([text]);
    return r!;
  }

  stop(): void {
    this.stopped = true;
  }

  /** Periodic sweep: drop up to `limit` entries whose key no longer exists. */
  async sweep(limit = 1000): Promise<number> {
    if (this.state !== 'ready') return 0;
    // Resume where the last sweep stopped, so every entry is visited in turn.
    const entries: Entry[] = [];
    for (let restarted = false; entries.length < Math.min(limit, this.byKey.size); ) {
      this.sweepCursor ??= this.byKey.values();
      const next = this.sweepCursor.next();
      if (next.done) {
        this.sweepCursor = undefined;
        if (restarted) break;
        restarted = true;
      } else entries.push(next.value);
    }
    let dropped = 0;
    for (let i = 0; i < entries.length; i += 200) {
      const slice = entries.slice(i, i + 200);
      const exists = await this.opts.store.exists(slice.map((e) => e.key));
      slice.forEach((e, j) => {
        if (!exists[j] && this.byKey.get(e.key.toString('latin1')) === e) {
          this.drop(e);
          dropped++;
        }
      });
    }
    return dropped;
  }
}

function dot(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

function normalized(v: Float32Array): Float32Array {
  const n = Math.sqrt(dot(v, v));
  if (!Number.isFinite(n) || n === 0)
    throw new InvalidInputError('vector must be finite and non-zero');
  return v.map((x) => x / n);
}
