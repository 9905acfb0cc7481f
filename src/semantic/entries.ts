/*
 * The engine's memory: every namespace and entry mirrored from Redis, found
 * by key, by id (in its namespace) and by exact-match hash, each namespace
 * with a vector index made on first use (by the IndexFactory).
 *
 * remember() and forget() keep the three maps and the index in step; drop()
 * also removes the entry's record from Redis (its key is gone). The sweep
 * walks the entries a slice at a time and drops those whose key no longer
 * exists. Nothing here talks to the client's keys: that is lookups.ts and
 * writes.ts, as the client.
 */
import type { Logger } from '../log.js';
import {
  checkNamespaceName,
  compareVer,
  DEFAULT_NAMESPACE,
  Entry,
  Namespace,
  parseAttrs,
} from './namespace.js';
import { exactKey } from './normalize.js';
import type { EntryStore, ScannedEntry } from './store.js';
import type { BuildEvent, IndexFactory, IndexKind, Quant, VectorIndex } from './types.js';
import { semError } from './types.js';

/** Texts whose exact-match hash is remembered (oldest forgotten first). */
const EXACT_MEMO_SIZE = 10_000;
/** What records written before texts that normalize to nothing had keys of their own named. */
const SHA256_OF_NOTHING = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

export interface EntryTableOptions {
  store: EntryStore;
  /** The vectors' dimension (known once the model is loaded). */
  dim: () => number;
  /** The kind of a namespace's index unless SEMNS SET INDEX chose one. */
  indexKind: IndexKind | 'auto';
  quant: Quant;
  indexFactory: IndexFactory;
  logger: Logger;
  /** True while the engine rebuilds from Redis: new indexes bulk load meanwhile. */
  loading: () => boolean;
  /** True once the engine stopped: builds are no longer logged. */
  stopped: () => boolean;
}

/** Where a fleet shares built indexes (snapshot-sync.ts). */
export interface BuildHooks {
  mayBuild(space: Namespace, kind: IndexKind): boolean;
  built(space: Namespace, event: BuildEvent): void;
}

export class EntryTable {
  readonly namespaces = new Map<string, Namespace>();
  readonly #byKey = new Map<string, Entry>();
  #nextId = 1;
  readonly #exactMemo = new Map<string, string>();
  #sweepCursor: Iterator<Entry> | undefined;
  /** Keys whose records were read since a full resync began (feed.ts). */
  #resyncSeen: Set<string> | undefined;
  /** Set once by the engine when the fleet shares snapshots. */
  hooks: BuildHooks | undefined;

  constructor(private readonly opts: EntryTableOptions) {
    this.namespaces.set(DEFAULT_NAMESPACE, new Namespace(DEFAULT_NAMESPACE));
  }

  /** Entries in all namespaces. */
  get size(): number {
    return this.#byKey.size;
  }

  /** The namespace `name` (default when undefined); UnknownNamespaceError unless `create`. */
  namespace(name: string | undefined, create = false): Namespace {
    const n = name ?? DEFAULT_NAMESPACE;
    let space = this.namespaces.get(n);
    if (space === undefined) {
      if (!create) throw semError('UNKNOWN_NAMESPACE', n);
      checkNamespaceName(n);
      space = new Namespace(n);
      this.namespaces.set(n, space);
    }
    return space;
  }

  /**
   * Records read from Redis (the rebuild, the feed): remembered, and indexed
   * a namespace at a time. A record this table already mirrors at the same
   * or a newer version is skipped, so reading one again costs no index work.
   * Returns the entries read without their vector (a join's, which a
   * snapshot holds): remembered, in no index yet.
   */
  addStored(entries: Omit<ScannedEntry, 'model'>[]): Entry[] {
    const unindexed: Entry[] = [];
    const indexed: [Entry, Float32Array][] = [];
    for (const e of entries) {
      const ver = e.ver ?? '';
      const old = this.#byKey.get(e.key.toString('latin1'));
      this.#resyncSeen?.add(e.key.toString('latin1'));
      if (old !== undefined && old.ns.name === e.ns && compareVer(old.ver, ver) >= 0) continue;
      let attrs: Record<string, unknown> | undefined;
      try {
        attrs = parseAttrs(e.attrs);
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
      const entry = this.remember(e.key, space, e.text, exact, attrs, e.attrs, ver);
      if (e.vector === undefined) unindexed.push(entry);
      else indexed.push([entry, e.vector]);
    }
    this.indexAll(indexed);
    return unindexed;
  }

  /** Entries' vectors into their namespaces' indexes, one addBatch per namespace. */
  indexAll(vectors: [Entry, Float32Array][]): void {
    const groups = new Map<Namespace, { ids: number[]; vectors: Float32Array[] }>();
    for (const [e, v] of vectors) {
      let g = groups.get(e.ns);
      if (g === undefined) groups.set(e.ns, (g = { ids: [], vectors: [] }));
      g.ids.push(e.id);
      g.vectors.push(v);
    }
    for (const [space, g] of groups) this.indexOf(space).addBatch(g.ids, g.vectors);
  }

  /** A new entry for `key` (replacing its old one); not yet in the index. */
  remember(
    key: Buffer,
    space: Namespace,
    text: string,
    exact: string,
    attrs: Record<string, unknown> | undefined,
    attrsJson: string | undefined,
    ver: string,
  ): Entry {
    const k = key.toString('latin1');
    const old = this.#byKey.get(k);
    if (old) this.forget(old);
    this.#resyncSeen?.add(k);
    const entry = new Entry(this.#nextId++, k, space, text, attrs, attrsJson, exact, ver);
    this.#byKey.set(k, entry);
    space.entries.set(entry.id, entry);
    space.exact.set(entry.exact, entry);
    return entry;
  }

  /** The namespace's index, made on first use. */
  indexOf(space: Namespace): VectorIndex {
    if (space.index !== undefined) return space.index;
    const { logger } = this.opts;
    const index = this.opts.indexFactory({
      dim: this.opts.dim(),
      kind: space.indexKind ?? this.opts.indexKind,
      quant: space.quant ?? this.opts.quant,
      onBuild: (event) => {
        const { kind, vectors, ms, added, error } = event;
        if (this.opts.stopped()) return;
        const what = added === undefined ? 'built' : `extended by ${added}`;
        if (error) {
          logger.warn(
            `namespace ${space.name}: ${kind} index of ${vectors} vectors not ${what}, retrying in a minute: ${error.message}`,
          );
        } else {
          logger.info(
            `namespace ${space.name}: ${kind} index of ${vectors} vectors ${what} in ${(ms / 1000).toFixed(1)} s`,
          );
          this.hooks?.built(space, event);
        }
      },
      mayBuild: (kind) => this.hooks?.mayBuild(space, kind) ?? true,
    });
    if (this.opts.loading()) index.bulkLoad(true);
    space.index = index;
    return index;
  }

  /**
   * The exact-match hash of a text, memoized: the same prompts come back (that
   * is what a cache is for), and NFKC plus SHA-256 cost more than the lookup.
   */
  exactOf(text: string): string {
    let h = this.#exactMemo.get(text);
    if (h === undefined) {
      h = exactKey(text);
      if (this.#exactMemo.size >= EXACT_MEMO_SIZE) {
        this.#exactMemo.delete(this.#exactMemo.keys().next().value as string);
      }
      this.#exactMemo.set(text, h);
    }
    return h;
  }

  /** The entry of a key, if it has one. */
  entryOf(key: Buffer): Entry | undefined {
    return this.#byKey.get(key.toString('latin1'));
  }

  /** Drop an entry from memory only. */
  forget(entry: Entry): void {
    const space = entry.ns;
    const k = entry.name;
    if (this.#byKey.get(k) === entry) this.#byKey.delete(k);
    space.entries.delete(entry.id);
    if (space.exact.get(entry.exact) === entry) space.exact.delete(entry.exact);
    space.index?.remove(entry.id);
  }

  /**
   * Would a record of `key` at version `ver` be newer than what this table
   * mirrors? (A write's own record may arrive after a newer one from the feed.)
   */
  isNewer(key: Buffer, ver: string): boolean {
    const old = this.#byKey.get(key.toString('latin1'));
    return old === undefined || compareVer(ver, old.ver) > 0;
  }

  /** The record of `key` is gone as of feed id `ver`: forget an entry older than that. */
  forgetOlder(key: Buffer, ver: string): boolean {
    const old = this.#byKey.get(key.toString('latin1'));
    if (old === undefined || compareVer(old.ver, ver) >= 0) return false;
    this.forget(old);
    return true;
  }

  /**
   * A full resync (feed.ts) starts: the entries read from here on are
   * marked, and endResync() forgets those whose record was not seen.
   */
  beginResync(): void {
    this.#resyncSeen = new Set();
  }

  /**
   * Forget the entries neither read nor written since beginResync() (none
   * when the resync failed). Versions do not decide here: after Redis lost
   * its data the feed starts again from '0-0', below every version held.
   */
  endResync(completed: boolean): number {
    const seen = this.#resyncSeen;
    this.#resyncSeen = undefined;
    if (seen === undefined || !completed) return 0;
    let n = 0;
    for (const [k, e] of this.#byKey) {
      if (!seen.has(k)) {
        this.forget(e);
        n++;
      }
    }
    return n;
  }

  /** The key is gone from Redis: forget the entry and remove its leftovers there. */
  drop(entry: Entry): void {
    this.forget(entry);
    this.opts.store.remove([entry.key]).catch(() => {});
  }

  /** Drop up to `limit` entries whose key no longer exists, resuming where the last sweep stopped. */
  async sweep(limit: number): Promise<number> {
    const entries: Entry[] = [];
    for (let restarted = false; entries.length < Math.min(limit, this.#byKey.size); ) {
      this.#sweepCursor ??= this.#byKey.values();
      const next = this.#sweepCursor.next();
      if (next.done) {
        this.#sweepCursor = undefined;
        if (restarted) break;
        restarted = true;
      } else entries.push(next.value);
    }
    let dropped = 0;
    for (let i = 0; i < entries.length; i += 200) {
      const slice = entries.slice(i, i + 200);
      const exists = await this.opts.store.exists(slice.map((e) => e.key));
      for (const [j, e] of slice.entries()) {
        if (!exists[j] && this.#byKey.get(e.name) === e) {
          this.drop(e);
          dropped++;
        }
      }
    }
    return dropped;
  }
}
