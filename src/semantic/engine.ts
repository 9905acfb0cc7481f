/*
 * The semantic cache, as the commands see it: a facade over the engine's
 * parts, mirrored from Redis (store.ts), which stays the source of truth.
 *
 * - entries.ts: namespaces and entries in memory, their indexes, the sweep;
 * - lookups.ts: SEMGET and SEMSEARCH; writes.ts: SEMSET, SEMINDEX, SEMDEL,
 *   SEMFLUSH, SEMNS SET and DEL. Both reach the client's keys only as the
 *   client (KeyAccess), and semcache's own records with its own connection.
 * - lifecycle.ts: load the model, rebuild from Redis (rebuild.ts), retry
 *   while Redis is unreachable, then the snapshots and the change feed.
 * This file wires the parts and holds the checks every command's text goes
 * through; reports.ts says what SEMINFO and SEMNS GET report. Commands ask
 * the engine, they do not read its parts.
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
import { Lifecycle } from './lifecycle.js';
import { type GetRequest, Lookups, type SearchRequest } from './lookups.js';
import { DEFAULT_NAMESPACE, type Entry, type Hit, type Namespace } from './namespace.js';
import { type RebuildDeps, resyncFromRedis } from './rebuild.js';
import { cacheInfo, namespaceInfo, namespaceSettings } from './reports.js';
import { SnapshotSync } from './snapshot-sync.js';
import type { KeyAccess } from './types.js';
import {
  InvalidInputError,
  LoadingError,
  modelIdOf,
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

export class SemanticCache {
  /** Namespaces and entries in memory (entries.ts). */
  readonly entries: EntryTable;
  private readonly lookups = new Lookups(this);
  private readonly writes = new Writes(this);
  /** The others' changes, applied here (feed.ts); undefined without a feed. */
  readonly feed: ChangeFeed | undefined;
  /** Deleted and expired keys, told by Redis (keyspace.ts; set by create.ts). */
  keyspace: { readonly on: boolean; readonly drops: number } | undefined;
  /** Loading, ready or failed, and the start that gets there (lifecycle.ts). */
  private readonly life: Lifecycle;
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
      loading: () => this.life.state === 'loading',
      stopped: () => this.life.stopped,
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
    this.life = new Lifecycle({
      opts,
      snapshots: this.snapshots,
      feed: this.feed,
      namespaces: () => this.namespaces.values(),
      rebuildDeps: () => this.rebuildDeps(),
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
   * Load the model, then rebuild the index from Redis (lifecycle.ts). Never
   * rejects: failure is a state.
   */
  start(): Promise<void> {
    return this.life.start();
  }

  /** 'loading', 'ready' or 'failed' (SEMINFO). */
  get state(): Lifecycle['state'] {
    return this.life.state;
  }

  /** Throws unless commands can be served (LoadingError, or why it failed). */
  ready(): void {
    this.life.ready();
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
    if (this.life.state !== 'ready') return undefined;
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
    this.life.stop();
    this.feed?.stop();
    this.snapshots?.stop();
  }

  /** Periodic sweep: drop up to `limit` entries whose key no longer exists. */
  async sweep(limit = 1000): Promise<number> {
    if (this.life.state !== 'ready') return 0;
    return this.entries.sweep(limit);
  }
}
