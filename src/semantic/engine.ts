/*
 * The semantic cache, as the commands see it: a facade over the engine's
 * parts, mirrored from Redis (store.ts), which stays the source of truth.
 *
 * - entries.ts: namespaces and entries in memory, their indexes, the sweep;
 * - lookups.ts: SEMGET and SEMSEARCH; writes.ts: SEMSET, SEMINDEX, SEMDEL,
 *   SEMFLUSH, SEMNS SET and DEL. Both reach the client's keys only as the
 *   client (KeyAccess), and semcache's own records with its own connection.
 * This file holds the life cycle (load the model, rebuild from Redis:
 * rebuild.ts, retry while Redis is unreachable) and the checks every
 * command's text goes through; reports.ts says what SEMINFO and SEMNS GET
 * report. Commands ask the engine, they do not read its parts.
 */
import { isUtf8 } from 'node:buffer';
import type {
  CacheInfo,
  EngineOptions,
  NamespaceConfig,
  NamespaceInfo,
  NamespaceSettings,
} from './engine-types.js';
import { EntryTable } from './entries.js';
import { ChangeFeed } from './feed.js';
import { type GetRequest, Lookups, type SearchRequest } from './lookups.js';
import { DEFAULT_NAMESPACE, type Entry, type Hit, type Namespace } from './namespace.js';
import { type RebuildDeps, rebuildFromRedis, resyncFromRedis, storageError } from './rebuild.js';
import { cacheInfo, namespaceInfo, namespaceSettings } from './reports.js';
import { SnapshotSync } from './snapshot-sync.js';
import { since } from './stats.js';
import type { KeyAccess } from './types.js';
import {
  EmbedderUnavailableError,
  InvalidInputError,
  LoadingError,
  modelIdOf,
  type StorageUnavailableError,
  semError,
  UnknownNamespaceError,
} from './types.js';
import { VersionCheck } from './version-check.js';
import { type IndexRequest, type SetRequest, Writes } from './writes.js';

export type {
  CacheInfo,
  EmbedStats,
  EngineOptions,
  NamespaceInfo,
  NamespaceSettings,
  SourcedEmbedder,
} from './engine-types.js';
export {
  DEFAULT_NAMESPACE,
  type Entry,
  type Hit,
  InvalidInputError,
  LoadingError,
  type Namespace,
  UnknownNamespaceError,
};

/** Milliseconds between attempts to rebuild from Redis after semcache's own connection failed. */
const STORAGE_RETRY_MS = 5000;

export class SemanticCache {
  state: 'loading' | 'ready' | 'failed' = 'loading';
  loadingWhat = 'the embedding model';
  /** Namespaces and entries in memory (entries.ts). */
  readonly entries: EntryTable;
  private failure: EmbedderUnavailableError | StorageUnavailableError | undefined;
  private readonly lookups = new Lookups(this);
  private readonly writes = new Writes(this);
  /** The others' changes, applied here (feed.ts); undefined without a feed. */
  readonly feed: ChangeFeed | undefined;
  /** Deleted and expired keys, told by Redis (keyspace.ts; set by create.ts). */
  keyspace: { readonly on: boolean; readonly drops: number } | undefined;
  private stopped = false;
  private readonly versionCheck: VersionCheck;
  /** Built graphs shared with the fleet (snapshot-sync.ts); undefined: not shared. */
  readonly snapshots: SnapshotSync | undefined;

  constructor(readonly opts: EngineOptions) {
    this.entries = new EntryTable({
      store: opts.store,
      dim: () => opts.embedder.dim,
      indexKind: opts.indexKind,
      quant: opts.quant,
      indexFactory: opts.indexFactory,
      logger: opts.logger,
      loading: () => this.state === 'loading',
      stopped: () => this.stopped,
    });
    this.versionCheck = new VersionCheck(opts.store, this.entries, () => this.feed);
    this.snapshots =
      opts.snapshots &&
      new SnapshotSync({
        ...opts.snapshots,
        entries: this.entries,
        modelId: () => this.modelId,
        dim: () => opts.embedder.dim,
        applied: () => this.feed?.applied ?? '0-0',
        logger: opts.logger,
      });
    this.entries.hooks = this.snapshots;
    const f = opts.feed;
    this.feed =
      f &&
      new ChangeFeed({
        ...f,
        store: opts.store,
        entries: this.entries,
        modelId: () => this.modelId,
        logger: opts.logger,
        resync: () => resyncFromRedis(this.rebuildDeps(), () => this.feed!.head()),
      });
  }

  get modelId(): string {
    return modelIdOf(this.opts.embedder);
  }

  /** The Redis database the client's keys are read in. */
  get db(): number {
    return this.opts.db ?? 0;
  }

  /** Every namespace, by name. */
  get namespaces(): ReadonlyMap<string, Namespace> {
    return this.entries.namespaces;
  }

  /** The namespace `name` (default when undefined); UnknownNamespaceError unless `create`. */
  namespace(name: string | undefined, create = false): Namespace {
    return this.entries.namespace(name, create);
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
    this.snapshots?.prefetch();
    let head = '0-0';
    while (!this.stopped) {
      try {
        // Changes made while the rebuild reads are applied after it, from here.
        head = (await this.feed?.head()) ?? head;
        await rebuildFromRedis(this.rebuildDeps());
        break;
      } catch (err) {
        this.fail(storageError(err as Error));
        await new Promise((r) => setTimeout(r, STORAGE_RETRY_MS).unref());
      }
    }
    if (this.stopped) return;
    // Before any build may start: another instance's graph, where there is one.
    await this.snapshots?.loadAll();
    this.state = 'ready';
    this.failure = undefined;
    for (const space of this.namespaces.values()) space.index?.bulkLoad(false);
    this.feed?.start(head);
  }

  private rebuildDeps(): RebuildDeps {
    return {
      store: this.opts.store,
      entries: this.entries,
      modelId: this.modelId,
      logger: this.opts.logger,
      reindex: (e) => this.writes.reindex(e),
    };
  }

  private fail(failure: EmbedderUnavailableError | StorageUnavailableError): void {
    const again = this.failure?.message === failure.message;
    this.state = 'failed';
    this.failure = failure;
    if (!again) this.opts.logger.error(`semantic cache unavailable: ${failure.message}`);
  }

  /** Throws unless commands can be served (LoadingError, or why it failed). */
  ready(): void {
    if (this.state === 'loading') throw semError('LOADING', this.loadingWhat);
    if (this.state === 'failed') throw this.failure!;
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

  /** SEMNS DEL */
  dropNamespace(ns: string, flush: boolean, access: KeyAccess): Promise<number> {
    return this.writes.dropNamespace(ns, flush, access);
  }

  /** SEMNS SET */
  configure(ns: string, settings: NamespaceConfig, access: KeyAccess): Promise<void> {
    return this.writes.configure(ns, settings, access);
  }

  /** SEMEMBED */
  async embed(text: string): Promise<{ vector: Float32Array; cached: boolean }> {
    this.ready();
    const [r] = await this.opts.embedder.embedWithSource([text]);
    return r!;
  }

  /** SEMINFO */
  info(): CacheInfo {
    return cacheInfo(this);
  }

  /** SEMINFO NS ns */
  namespaceInfo(ns: string): NamespaceInfo {
    return namespaceInfo(this, ns);
  }

  /** SEMNS GET ns */
  namespaceSettings(ns: string): NamespaceSettings {
    return namespaceSettings(this, ns);
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
    return this.namespaces.get(ns ?? DEFAULT_NAMESPACE)?.exact.get(this.entries.exactOf(text));
  }

  /** Which of these entries still mirror their record (version-check.ts). */
  current(entries: Entry[]): Promise<boolean[]> {
    return this.versionCheck.current(entries);
  }

  /** current() for one entry, by callback (SEMGET's fast path). */
  currentThen(entry: Entry): (done: (ok: boolean) => void) => void {
    return this.versionCheck.currentThen(entry);
  }

  /** Count an exact hit answered on the fast path, `ms` after it was asked. */
  exactHit(entry: Entry, ms: number): void {
    const space = entry.ns;
    space.hits++;
    space.exactHits++;
    space.lookup.record(ms);
  }

  stop(): void {
    this.stopped = true;
    this.feed?.stop();
    this.snapshots?.stop();
  }

  /** Periodic sweep: drop up to `limit` entries whose key no longer exists. */
  async sweep(limit = 1000): Promise<number> {
    if (this.state !== 'ready') return 0;
    return this.entries.sweep(limit);
  }
}
