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
import { applySettings } from './namespace.js';
import { since } from './stats.js';
import type { EntryStore } from './store.js';
import { StorageUnavailableError } from './types.js';

export interface RebuildDeps {
  store: EntryStore;
  entries: EntryTable;
  /** Records of another model are embedded again. */
  modelId: string;
  logger: Logger;
  /** Embed and record an entry again (writes.ts). */
  reindex(e: { key: Buffer; text: string; ns: string; attrs: string | undefined }): Promise<void>;
}

/** Namespaces and entries from Redis into memory; throws when Redis cannot be read. */
export async function rebuildFromRedis(d: RebuildDeps): Promise<void> {
  const t = process.hrtime.bigint();
  for (const [name, settings] of await d.store.namespaces()) {
    applySettings(d.entries.namespace(name, true), settings);
  }
  let n = 0;
  let stale: { key: Buffer; text: string; ns: string; attrs: string | undefined }[] = [];
  for await (const batch of d.store.scan()) {
    const fresh = batch.filter((e) => e.model === d.modelId);
    for (const e of batch) if (e.model !== d.modelId) stale.push(e);
    d.entries.addStored(fresh);
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
  d.logger.info(
    `index rebuilt from redis: ${n} entries in ${ms.toFixed(0)} ms (${Math.round(n / Math.max(ms / 1000, 1e-3))}/s)`,
  );
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
