/*
 * The rebuild on start: semcache's memory (entries.ts) is made again from
 * what Redis holds (store.ts), namespace settings first, then every record
 * in batches; records written with another model are embedded again. The
 * same read, while answering, is the full resync of an instance the change
 * feed's record no longer covers (resyncFromRedis). And what to say when
 * semcache's own connection to Redis fails, which the engine retries
 * (engine.ts).
 */
import type { Logger } from '../log.js';
import type { EntryTable } from './entries.js';
import type { Entry } from './namespace.js';
import { applySettings } from './namespace.js';
import { since } from './stats.js';
import type { Covered, EntryStore, Held } from './store.js';
import { StorageUnavailableError } from './types.js';

/** Vectors read per round trip by indexFromRedis(). */
const FROM_REDIS_BATCH = 1000;

export interface RebuildDeps {
  store: EntryStore;
  entries: EntryTable;
  /** Records of another model are embedded again. */
  modelId: string;
  logger: Logger;
  /** Embed and record an entry again (writes.ts). */
  reindex(e: { key: Buffer; text: string; ns: string; attrs: string | undefined }): Promise<void>;
}

/** How a rebuild reads (rebuildFromRedis()). */
export interface RebuildRead {
  /** A join beside snapshots (snapshot-join.ts): the records it covers are read without their vectors. */
  covered?: Covered | undefined;
  /** A join whose snapshots held entries whole: their records are not read (snapshot-join.ts). */
  held?: Held | undefined;
  /** Where the entries read without their vectors go, as they are read (also when it throws later). */
  unindexed?: Entry[];
  /** The namespaces' settings, when already asked for. */
  namespaces?: Promise<Map<string, Record<string, string>>> | undefined;
}

/**
 * Namespaces and entries from Redis into memory; throws when Redis cannot
 * be read. The entries of records read without their vectors are in no
 * index: indexFromRedis() or the snapshot gives them their vectors.
 */
export async function rebuildFromRedis(d: RebuildDeps, r: RebuildRead = {}): Promise<void> {
  const { covered, held, unindexed = [] } = r;
  const t = process.hrtime.bigint();
  for (const [name, settings] of await (r.namespaces ?? d.store.namespaces())) {
    applySettings(d.entries.namespace(name, true), settings);
  }
  let n = 0;
  let stale: { key: Buffer; text: string; ns: string; attrs: string | undefined }[] = [];
  const before = unindexed.length;
  const scan = covered || held ? d.store.scan(covered, held) : d.store.scan();
  for await (const batch of scan) {
    const fresh = batch.filter((e) => e.model === d.modelId);
    for (const e of batch) if (e.model !== d.modelId) stale.push(e);
    for (const e of d.entries.addStored(fresh)) unindexed.push(e);
    n += fresh.length;
    if (n > 0 && n % 10_000 < fresh.length) d.logger.info(`rebuilding index: ${n} entries`);
  }
  // Entries written with another model: embed their text again with this one.
  while (stale.length > 0) {
    const chunk = stale.slice(0, 256);
    stale = stale.slice(256);
    for (const e of chunk) await d.reindex(e);
    n += chunk.length;
  }
  const ms = since(t);
  const lean =
    unindexed.length > before ? `, ${unindexed.length - before} without their vectors` : '';
  d.logger.info(
    `index rebuilt from redis: ${n} entries${lean} in ${ms.toFixed(0)} ms (${Math.round(n / Math.max(ms / 1000, 1e-3))}/s)`,
  );
}

/**
 * The vectors of entries in no index, read from their records (HGET vec)
 * and indexed; an entry whose record is gone is forgotten. One that changed
 * since it was read gets the newer vector until the feed, applied from
 * before the read, brings the change. Throws when Redis cannot be read;
 * `entries` is emptied as they are done, so calling it again with the same
 * array goes on where it stopped.
 */
export async function indexFromRedis(d: RebuildDeps, entries: Entry[]): Promise<void> {
  while (entries.length > 0) {
    const batch = entries.slice(0, FROM_REDIS_BATCH).filter((e) => e.ns.entries.get(e.id) === e);
    const vectors = await d.store.vectors(batch.map((e) => e.key));
    const found: [Entry, Float32Array][] = [];
    for (const [i, e] of batch.entries()) {
      const v = vectors[i];
      if (v === undefined) d.entries.forget(e);
      else found.push([e, v]);
    }
    d.entries.indexAll(found);
    entries.splice(0, FROM_REDIS_BATCH);
  }
}

/**
 * Read every record again while answering from what is in memory (the feed
 * was trimmed past this instance, or Redis lost it): records are mirrored
 * as they are read, and entries neither read nor written meanwhile are
 * forgotten at the end. Resolves with the feed id the result covers.
 */
export async function resyncFromRedis(
  d: RebuildDeps,
  head: () => Promise<string>,
): Promise<string> {
  // Marking starts before the head is read: a write of this instance that
  // lands meanwhile counts as seen.
  d.entries.beginResync();
  let covered: string;
  try {
    covered = await head();
    await rebuildFromRedis(d);
  } catch (err) {
    d.entries.endResync(false);
    throw err;
  }
  const gone = d.entries.endResync(true);
  d.logger.info(`resync: ${gone} entries whose record is gone forgotten`);
  return covered;
}

/** semcache's own connection failed: name the cause and what to check. */
export function storageError(err: Error): StorageUnavailableError {
  const m = err.message;
  const remedy = /^(NOAUTH|WRONGPASS)/.test(m)
    ? 'give semcache credentials Redis accepts: --upstream redis://user:password@host:port, or the password in --upstream-password-file'
    : /^NOPERM/.test(m)
      ? "semcache's own Redis user needs its commands on its keys (docs/security.md)"
      : 'check that Redis is reachable at --upstream';
  return new StorageUnavailableError(`semcache's own connection to redis: ${m}`, remedy);
}
