/*
 * The semantic cache: namespaces of entries (key, text, attributes) with a
 * vector index and an exact-match map each, mirrored from Redis (store.ts),
 * which stays the source of truth.
 *
 * This file is the core: namespaces and entries in memory, the model and the
 * rebuild from Redis on start, and the sweep that drops entries whose key is
 * gone. Reads are in lookups.ts, writes in writes.ts; both reach the client's
 * keys only as the client (KeyAccess), and semcache's own records with its
 * own connection (store.ts).
 */
import { isUtf8 } from 'node:buffer';
import type { Logger } from '../log.js';
import { patched as faissPatched } from './index/faiss.js';
import { type GetRequest, Lookups, type SearchRequest } from './lookups.js';
import { exactKey } from './normalize.js';
import { LatencyStats, since } from './stats.js';
import type { SemanticStore } from './store.js';
import type { Embedder, IndexKind, KeyAccess, VectorIndex } from './types.js';
import {
  EmbedderUnavailableError,
  InvalidInputError,
  LoadingError,
  StorageUnavailableError,
  semError,
  UnknownNamespaceError,
} from './types.js';
import { createVectorIndex, type FaissVectorIndex } from './vector-index.js';
import { type IndexRequest, type SetRequest, Writes } from './writes.js';

export { InvalidInputError, LoadingError, UnknownNamespaceError };

export interface SourcedEmbedder extends Embedder {
  embedWithSource(texts: string[]): Promise<{ vector: Float32Array; cached: boolean }[]>;
}

export const DEFAULT_NAMESPACE = 'default';
const MAX_NAMESPACE_LENGTH = 256;
/** Texts whose exact-match hash is remembered (oldest forgotten first). */
const EXACT_MEMO_SIZE = 10_000;
/** Seconds between attempts to rebuild from Redis after semcache's own connection failed. */
const STORAGE_RETRY_MS = 5000;

export interface Entry {
  id: number;
  key: Buffer;
  ns: Namespace;
  text: string;
  attrs: Record<string, unknown> | undefined;
  attrsJson: string | undefined;
  exact: string;
}

const SHA256_OF_NOTHING = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

export class Namespace {
  index: FaissVectorIndex | undefined;
  readonly entries = new Map<number, Entry>();
  readonly exact = new Map<string, Entry>();
  threshold: number | undefined;
  indexKind: IndexKind | 'auto' | undefined;
  /** Created by SEMNS SET (its settings are kept in Redis): SEMFLUSH keeps it, SEMNS DEL drops it. */
  declared = false;
  hits = 0;
  exactHits = 0;
  misses = 0;
  /** Searches an approximate index answered short of, made exact by a scan (lookups.ts). */
  exactScans = 0;
  readonly lookup = new LatencyStats();
  readonly embedTime = new LatencyStats();
  readonly searchTime = new LatencyStats();
  constructor(readonly name: string) {}
}

export interface Hit {
  entry: Entry;
  score: number;
  value: Buffer | undefined;
  exact: boolean;
}

export interface EngineOptions {
  store: SemanticStore;
  /** The Redis database of the store: values must be in it too. */
  db?: number;
  embedder: SourcedEmbedder;
  threshold: number;
  indexKind: IndexKind | 'auto';
  /** HNSW efSearch and IVF nprobe of new indexes; the index's defaults when absent. */
  efSearch?: number;
  nprobe?: number;
  /** The longest text the commands take, in bytes (default 16384). */
  maxTextBytes?: number;
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
  private nextId = 1;
  state: 'loading' | 'ready' | 'failed' = 'loading';
  private failure: EmbedderUnavailableError | StorageUnavailableError | undefined;
  private readonly lookups = new Lookups(this);
  private readonly writes = new Writes(this);
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

  /**
   * Load the model, then rebuild the index from Redis. Never rejects: failure
   * is a state. If semcache's own connection to Redis fails (unreachable,
   * refused credentials), the rebuild is tried again every few seconds.
   */
  async start(): Promise<void> {
    const { logger, embedder } = this.opts;
    try {
      const t = process.hrtime.bigint();
      await embedder.load();
      logger.info(
        `embedder ${embedder.kind} ${embedder.model} ready (dim ${embedder.dim}, ${since(t).toFixed(0)} ms)`,
      );
    } catch (err) {
      this.fail(
        err instanceof EmbedderUnavailableError
          ? err
          : new EmbedderUnavailableError((err as Error).message, 'check the log'),
      );
      return;
    }
    this.loadingWhat = 'the index from redis';
    while (!this.stopped) {
      try {
        await this.rebuild();
        break;
      } catch (err) {
        this.fail(storageError(err as Error));
        await new Promise((r) => setTimeout(r, STORAGE_RETRY_MS).unref());
      }
    }
    if (this.stopped) return;
    this.state = 'ready';
    this.failure = undefined;
    for (const space of this.namespaces.values()) space.index?.bulkLoad(false);
  }

  private fail(failure: EmbedderUnavailableError | StorageUnavailableError): void {
    const again = this.failure?.message === failure.message;
    this.state = 'failed';
    this.failure = failure;
    if (!again) this.opts.logger.error(`semantic cache unavailable: ${failure.message}`);
  }

  private async rebuild(): Promise<void> {
    const t = process.hrtime.bigint();
    for (const [name, settings] of await this.opts.store.namespaces()) {
      const space = this.namespace(name, true);
      space.declared = true;
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
      for (const e of chunk) await this.writes.reindex(e);
      n += chunk.length;
    }
    const ms = since(t);
    this.opts.logger.info(
      `index rebuilt from redis: ${n} entries in ${ms.toFixed(0)} ms (${Math.round(n / Math.max(ms / 1000, 1e-3))}/s)`,
    );
  }

  /** Throws unless commands can be served (LoadingError, or why it failed). */
  ready(): void {
    if (this.state === 'loading') throw semError('LOADING', this.loadingWhat);
    if (this.state === 'failed') throw this.failure!;
  }

  namespace(name: string | undefined, create = false): Namespace {
    const n = name ?? DEFAULT_NAMESPACE;
    let space = this.namespaces.get(n);
    if (space === undefined) {
      if (!create) throw semError('UNKNOWN_NAMESPACE', n);
      this.checkNamespaceName(n);
      space = new Namespace(n);
      this.namespaces.set(n, space);
    }
    return space;
  }

  /** A name a namespace may have (InvalidInputError if not). */
  checkNamespaceName(name: string | undefined): void {
    if (name !== undefined && (name.length === 0 || name.length > MAX_NAMESPACE_LENGTH)) {
      throw semError('NAMESPACE_NAME', MAX_NAMESPACE_LENGTH);
    }
  }

  parseAttrs(json: string | undefined): Record<string, unknown> | undefined {
    return SemanticCache.parseAttrs(json);
  }

  static parseAttrs(json: string | undefined): Record<string, unknown> | undefined {
    if (json === undefined) return undefined;
    let parsed: unknown;
    try {
      parsed = JSON.parse(json);
    } catch (err) {
      throw semError('ATTRS_JSON', (err as Error).message);
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
      throw semError('ATTRS_NOT_OBJECT');
    }
    return parsed as Record<string, unknown>;
  }

  // ---- commands (reads in lookups.ts, writes in writes.ts) ---------------

  /** SEMGET */
  get(req: GetRequest, access: KeyAccess): Promise<Hit | undefined> {
    return this.lookups.get(req, access);
  }

  /** SEMSEARCH */
  search(req: SearchRequest, access: KeyAccess): Promise<Hit[]> {
    return this.lookups.search(req, access);
  }

  /** SEMSET */
  set(req: SetRequest, access: KeyAccess): Promise<void> {
    return this.writes.set(req, access);
  }

  /** SEMINDEX */
  index(req: IndexRequest, access: KeyAccess): Promise<boolean> {
    return this.writes.index(req, access);
  }

  /** SEMDEL */
  del(keys: Buffer[], access: KeyAccess): Promise<number> {
    return this.writes.del(keys, access);
  }

  /** SEMFLUSH */
  flush(ns: string | undefined, access: KeyAccess): Promise<number> {
    return this.writes.flush(ns, access);
  }

  /** SEMNS SET */
  /** SEMNS DEL (writes.ts). */
  dropNamespace(ns: string, flush: boolean, access: KeyAccess): Promise<number> {
    return this.writes.dropNamespace(ns, flush, access);
  }

  configure(
    ns: string,
    settings: { threshold?: number | undefined; index?: IndexKind | 'auto' | undefined },
    access: KeyAccess,
  ): Promise<void> {
    return this.writes.configure(ns, settings, access);
  }

  /** The longest text the commands take, in bytes (--max-text-bytes). */
  get maxTextBytes(): number {
    return this.opts.maxTextBytes ?? 16_384;
  }

  /**
   * A command's text argument, decoded; over maxTextBytes it is refused
   * before any work is done on it (normalizing, hashing or embedding a long
   * text would hold up every other client).
   */
  text(arg: Buffer): string {
    if (arg.length > this.maxTextBytes) {
      throw semError('TEXT_TOO_LONG', this.maxTextBytes);
    }
    // Decoding invalid UTF-8 would turn different bytes into the same text.
    if (!isUtf8(arg)) throw semError('TEXT_NOT_UTF8');
    return arg.toString();
  }

  /**
   * The entry whose text is exactly this one (normalized), for SEMGET's fast
   * path; undefined when there is none or the cache cannot serve now.
   */
  exactMatch(text: string, ns: string | undefined): Entry | undefined {
    if (this.state !== 'ready') return undefined;
    return this.namespaces.get(ns ?? DEFAULT_NAMESPACE)?.exact.get(this.exactOf(text));
  }

  /** Count an exact hit answered on the fast path, `ms` after it was asked. */
  exactHit(entry: Entry, ms: number): void {
    const space = entry.ns;
    space.hits++;
    space.exactHits++;
    space.lookup.record(ms);
  }

  // ---- entries in memory ------------------------------------------------

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
      // Before texts that normalize to nothing had keys of their own, they shared SHA-256("").
      const exact =
        e.exactHash === undefined || e.exactHash === SHA256_OF_NOTHING
          ? exactKey(e.text)
          : e.exactHash;
      const entry = this.remember(e.key, space, e.text, exact, attrs, e.attrs);
      let g = groups.get(space);
      if (g === undefined) groups.set(space, (g = { ids: [], vectors: [] }));
      g.ids.push(entry.id);
      g.vectors.push(e.vector);
    }
    for (const [space, g] of groups) this.indexOf(space).addBatch(g.ids, g.vectors);
  }

  remember(
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

  indexOf(space: Namespace): VectorIndex {
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
  exactOf(text: string): string {
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

  /** The entry of a key, if it has one. */
  entryOf(key: Buffer): Entry | undefined {
    return this.byKey.get(key.toString('latin1'));
  }

  /** Drop an entry from memory only. */
  forget(entry: Entry): void {
    const space = entry.ns;
    if (this.byKey.get(entry.key.toString('latin1')) === entry)
      this.byKey.delete(entry.key.toString('latin1'));
    space.entries.delete(entry.id);
    if (space.exact.get(entry.exact) === entry) space.exact.delete(entry.exact);
    space.index?.remove(entry.id);
  }

  /** The key is gone from Redis: forget the entry and remove its leftovers there. */
  drop(entry: Entry): void {
    this.forget(entry);
    this.opts.store.remove([entry.key]).catch(() => {});
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

/** semcache's own connection failed: name the cause and what to check. */
function storageError(err: Error): StorageUnavailableError {
  const m = err.message;
  const remedy = /^(NOAUTH|WRONGPASS)/.test(m)
    ? 'give semcache credentials Redis accepts: --upstream redis://user:password@host:port, or the password in --upstream-password-file'
    : /^NOPERM/.test(m)
      ? "semcache's own Redis user needs its commands on its keys (docs/security.md)"
      : 'check that Redis is reachable at --upstream';
  return new StorageUnavailableError(`semcache's own connection to redis: ${m}`, remedy);
}
