/*
 * Writes of the semantic cache: SEMSET, SEMINDEX, SEMDEL, SEMFLUSH, SEMNS SET.
 *
 * What a write does to the client's own keys it does as the client
 * (KeyAccess): SEMSET's value is a SET, SEMDEL's a DEL, SEMINDEX first reads
 * the key and proves it may write it, so Redis applies the client's
 * permissions, and in a transaction the write is part of it. Only then does
 * semcache write its own record (store.ts) with its own credentials and
 * index the entry in memory: a client can make semcache index only keys it
 * could write itself, and refused work costs no model call where it can be
 * refused first (SEMINDEX, SEMDEL, SEMFLUSH, SEMNS SET; SEMSET embeds first,
 * so that a value is never written without its entry).
 *
 * Writes of one key from one client run in order (the connection runs a
 * client's writes one at a time); between clients, Redis orders the values,
 * and the record is written only if the key still holds this write's value,
 * so it always describes the value that stayed. Outside a transaction,
 * writes to the same key also apply in the order they arrived, even when a
 * later one embeds faster (its text was cached): each waits for the previous.
 */
import { createHash } from 'node:crypto';
import type { SemanticCache } from './engine.js';
import type { NamespaceConfig } from './engine-types.js';
import {
  checkNamespaceName,
  clearSettings,
  DEFAULT_NAMESPACE,
  type Namespace,
  parseAttrs,
} from './namespace.js';
import type { TtlMode } from './store.js';
import type { KeyAccess } from './types.js';
import { semError } from './types.js';

/** Keys per record-removal script call. */
const REMOVE_BATCH = 500;

export interface SetRequest {
  key: Buffer;
  text: string;
  value: Buffer;
  ttlMode: TtlMode;
  /** EX seconds or PX milliseconds, as the client wrote them (already checked as Redis would). */
  ttl: string;
  ns?: string | undefined;
  attrs?: string | undefined;
}

export interface IndexRequest {
  key: Buffer;
  text: string;
  ns?: string | undefined;
  attrs?: string | undefined;
}

export class Writes {
  private readonly chains = new Map<string, Promise<unknown>>();

  constructor(private readonly cache: SemanticCache) {}

  /** SEMSET: SET the value as the client, then record and index its text. */
  async set(req: SetRequest, access: KeyAccess): Promise<void> {
    const cache = this.cache;
    cache.ready();
    const attrs = parseAttrs(req.attrs);
    checkNamespaceName(req.ns);
    const exactHash = cache.entries.exactOf(req.text);
    const embedded = cache.opts.embedder.embedWithSource([req.text]);
    embedded.catch(() => {}); // awaited in apply(), possibly after an earlier write
    const apply = async () => {
      const vector = (await embedded)[0]!.vector;
      await access.write(req.key, req.value, req.ttlMode, req.ttl);
      // Created only now: a refused write leaves no namespace behind.
      const space = cache.namespace(req.ns, true);
      await this.record(req, space, exactHash, attrs, vector, sha1(req.value));
    };
    // In a transaction the SET waits for EXEC: it must not hold up other writers.
    await (access.oneShot ? apply() : this.inOrder(req.key, apply));
  }

  /** SEMINDEX: index a key that already holds a value. False when there is no such key. */
  async index(req: IndexRequest, access: KeyAccess): Promise<boolean> {
    const cache = this.cache;
    cache.ready();
    const attrs = parseAttrs(req.attrs);
    const value = await access.readWritable(req.key);
    if (value === null) return false;
    const space = cache.namespace(req.ns, true);
    const vector = (await cache.opts.embedder.embedWithSource([req.text]))[0]!.vector;
    return this.inOrder(req.key, () =>
      this.record(req, space, cache.entries.exactOf(req.text), attrs, vector, sha1(value)),
    );
  }

  /** Re-embed an entry written with another model (the rebuild on start; no client). */
  async reindex(e: IndexRequest & { ns: string }): Promise<void> {
    const cache = this.cache;
    const vector = (await cache.opts.embedder.embedWithSource([e.text]))[0]!.vector;
    await this.record(
      e,
      cache.namespace(e.ns, true),
      cache.entries.exactOf(e.text),
      undefined,
      vector,
      '',
    );
  }

  /** Write record and exact key, then index in memory. False when the key changed or went. */
  private async record(
    req: IndexRequest,
    space: Namespace,
    exactHash: string,
    attrs: Record<string, unknown> | undefined,
    vector: Float32Array,
    sha: string,
  ): Promise<boolean> {
    const cache = this.cache;
    const written = await cache.opts.store.put(
      {
        key: req.key,
        ns: space.name,
        text: req.text,
        vector,
        attrs: req.attrs,
        model: cache.modelId,
        exactHash,
      },
      sha,
    );
    if (written === undefined) return false;
    // A newer record of the key, from another instance, may have arrived first (feed.ts).
    if (!cache.entries.isNewer(req.key, written.ver)) return true;
    const entry = cache.entries.remember(
      req.key,
      space,
      req.text,
      exactHash,
      attrs,
      req.attrs,
      written.ver,
    );
    cache.entries.indexOf(space).add(entry.id, vector);
    return true;
  }

  /** Run `apply` after every earlier write of the same key (outside transactions). */
  private inOrder<T>(key: Buffer, apply: () => Promise<T>): Promise<T> {
    const k = key.toString('latin1');
    const previous = this.chains.get(k);
    const run = (previous ? previous.catch(() => {}).then(apply) : apply()) as Promise<T>;
    this.chains.set(k, run);
    const cleanup = () => {
      if (this.chains.get(k) === run) this.chains.delete(k);
    };
    run.then(cleanup, cleanup);
    return run;
  }

  /** SEMDEL: DEL as the client, then drop the entries of the keys that are gone. */
  async del(keys: Buffer[], access: KeyAccess): Promise<number> {
    this.cache.ready();
    const n = await access.del(keys);
    await this.forgetGone(keys);
    return n;
  }

  /**
   * SEMFLUSH: DEL every key of a namespace (or of all) as the client, all or
   * none. A namespace's settings stay (SEMNS DEL drops them); a namespace
   * that only existed through its entries goes with them.
   */
  async flush(ns: string | undefined, access: KeyAccess): Promise<number> {
    const cache = this.cache;
    cache.ready();
    const spaces = ns === undefined ? [...cache.namespaces.values()] : [cache.namespace(ns)];
    const entries = spaces.flatMap((s) => [...s.entries.values()]);
    const n = await access.delAll(entries.map((e) => e.key));
    await this.forgetGone(entries.map((e) => e.key));
    for (const space of spaces) {
      if (space.entries.size > 0) continue;
      space.index?.clear();
      await cache.snapshots?.drop(space.name);
      if (space.name !== DEFAULT_NAMESPACE && !space.declared)
        cache.entries.namespaces.delete(space.name);
    }
    return n;
  }

  /**
   * SEMNS DEL: drop a namespace and its settings. One with entries is
   * refused unless `flush` (then its keys are deleted first, as SEMFLUSH
   * would, all or none). The client must be one that could delete every key
   * of the namespace. The default namespace stays, with default settings.
   */
  async dropNamespace(ns: string, flush: boolean, access: KeyAccess): Promise<number> {
    const cache = this.cache;
    cache.ready();
    const space = cache.namespace(ns);
    const keys = [...space.entries.values()].map((e) => e.key);
    if (keys.length > 0 && !flush) {
      throw semError('NAMESPACE_NOT_EMPTY', ns, keys.length);
    }
    await access.mayDelAll(keys);
    const n = keys.length > 0 ? await this.flush(ns, access) : 0;
    if (space.entries.size > 0) {
      // Written meanwhile: refused as above rather than dropping live entries' settings.
      throw semError('NAMESPACE_CHANGED', ns);
    }
    await cache.opts.store.deleteNamespace(ns);
    space.index?.clear();
    space.index = undefined;
    clearSettings(space);
    if (space.name !== DEFAULT_NAMESPACE) cache.entries.namespaces.delete(space.name);
    return n;
  }

  /** Remove the records of keys that no longer exist, and forget their entries. */
  private async forgetGone(keys: Buffer[]): Promise<void> {
    const cache = this.cache;
    for (let i = 0; i < keys.length; i += REMOVE_BATCH) {
      const slice = keys.slice(i, i + REMOVE_BATCH);
      await cache.opts.store.remove(slice);
      const exists = await cache.opts.store.exists(slice);
      slice.forEach((key, j) => {
        const entry = cache.entries.entryOf(key);
        if (entry !== undefined && !exists[j]) cache.entries.forget(entry);
      });
    }
  }

  /**
   * SEMNS SET: create a namespace or change its settings (persisted in Redis).
   * Changing them changes every entry's lookups: the client must be one that
   * could delete every key of the namespace.
   */
  async configure(ns: string, settings: NamespaceConfig, access: KeyAccess): Promise<void> {
    const cache = this.cache;
    cache.ready();
    const existing = cache.namespaces.get(ns);
    await access.mayDelAll(existing ? [...existing.entries.values()].map((e) => e.key) : []);
    const space = cache.namespace(ns, true);
    // The kind or the quantization of an index changes only while it is empty.
    const changes: ['INDEX' | 'QUANT', boolean][] = [
      [
        'INDEX',
        settings.index !== undefined &&
          settings.index !== (space.indexKind ?? cache.opts.indexKind),
      ],
      [
        'QUANT',
        settings.quant !== undefined && settings.quant !== (space.quant ?? cache.opts.quant),
      ],
    ];
    for (const [what, changed] of changes) {
      if (!changed) continue;
      if (space.entries.size > 0) throw semError('INDEX_CHANGE_NOT_EMPTY', ns, what);
      space.index = undefined;
    }
    const saved: Record<string, string> = {};
    if (settings.threshold !== undefined) saved.threshold = String(settings.threshold);
    if (settings.index !== undefined) saved.index = settings.index;
    if (settings.quant !== undefined) saved.quant = settings.quant;
    saved.created = String(Date.now());
    await cache.opts.store.saveNamespace(ns, saved);
    space.declared = true;
    if (settings.threshold !== undefined) space.threshold = settings.threshold;
    if (settings.index !== undefined) space.indexKind = settings.index;
    if (settings.quant !== undefined) space.quant = settings.quant;
  }
}

function sha1(value: Buffer): string {
  return createHash('sha1').update(value).digest('hex');
}
