/*
 * The Redis layout of the semantic cache (docs/storage.md). Redis is the
 * source of truth; semcache's memory (index, exact-match map) is rebuilt from
 * it on start. Per entry, with P the prefix (default "semcache:"):
 *
 *   <key>                         the value, exactly as SET would store it
 *   P rec:<key>                   HASH ns, text, vec (FP32 LE), attrs (JSON), model, exact, ts
 *   P exact:<ns>:<sha256(norm)>   STRING <key>: the exact-match record
 *   P feed                        STREAM of changes (scripts.ts, feed.ts)
 *
 * The value is written by the client itself (a SET on its own connection,
 * so Redis checks its permissions: see writes.ts); the record and the
 * exact-match key are written after, by one Lua script with semcache's own
 * credentials, which gives them the value's TTL and writes nothing unless
 * the key still holds the value that was written (SHA-1 compared in Redis):
 * when two clients set one key at once, the record describes the value that
 * stayed. Every change of records and namespace settings is also an event in
 * the change feed, appended by the same script (scripts.ts).
 */
import { SemErr } from '../errors.js';
import type { RedisClient, RedisValue } from '../upstream/redis-client.js';
import { type Covered, type Held, listedNames, scanKeys, scanRecords } from './record-scan.js';
import type { ScannedEntry, StoredEntry } from './records.js';
import { bytesToVector, pairs, RECORD_FIELDS, toEntry, vectorToBytes } from './records.js';
import { DEL_SCRIPT, NS_SCRIPT, ScriptRunner, SET_SCRIPT, VERSIONS_SCRIPT } from './scripts.js';
import { SemanticError } from './types.js';

/** SEMINDEX of a key that holds a list, hash...: only strings can be cache values. */
export class WrongTypeError extends SemanticError {
  constructor() {
    super('WRONGTYPE', SemErr.WRONGTYPE());
  }
}

export type TtlMode = 'EX' | 'PX' | 'KEEPTTL' | '';
export type { Covered, Held } from './record-scan.js';
export type { ScannedEntry, StoredEntry } from './records.js';
export { bytesToVector, vectorToBytes } from './records.js';

/** What put() wrote: the key's PTTL and the record's version (its feed id). */
export interface Written {
  pttl: number;
  ver: string;
}

/**
 * What the engine keeps in Redis with its own connection: a record per entry,
 * namespace settings. SemanticStore below; the engine's unit tests keep it in
 * memory.
 */
export interface EntryStore {
  /**
   * Write the record and exact key of a key that holds a string (the value
   * with SHA-1 `sha`, or any value when sha is ''). Returns the key's PTTL
   * and the record's version, or undefined when the key is gone or holds
   * another value.
   */
  put(entry: StoredEntry & { exactHash: string }, sha: string): Promise<Written | undefined>;
  /** Remove the records of keys that no longer exist; how many were removed. */
  remove(keys: Buffer[]): Promise<number>;
  exists(keys: Buffer[]): Promise<boolean[]>;
  /** The stored vector of each key's record (undefined: none). */
  vectors(keys: Buffer[]): Promise<(Float32Array | undefined)[]>;
  /** The records of these keys (undefined: none), with their versions. */
  records(keys: Buffer[]): Promise<(StoredEntry | undefined)[]>;
  /**
   * The version of each key's record ('' when it has none; undefined when
   * there is no record), or 'current' when `applied` (the last feed event
   * this instance applied) is the newest event: nothing changed since.
   */
  versions(keys: Buffer[], applied: string): Promise<(string | undefined)[] | 'current'>;
  /** Every stored entry, in batches, for the rebuild on start. */
  scan(): AsyncGenerator<StoredEntry[]>;
  /**
   * The same, without the vectors of the records `covered` says a snapshot
   * holds, and without the records of keys `held` says a snapshot holds whole.
   */
  scan(covered: Covered | undefined, held?: Held): AsyncGenerator<ScannedEntry[]>;
  namespaces(complete?: boolean): Promise<Map<string, Record<string, string>>>;
  /** One namespace's settings; undefined when it has none. */
  namespaceSettings(ns: string): Promise<Record<string, string> | undefined>;
  saveNamespace(ns: string, settings: Record<string, string>): Promise<void>;
  deleteNamespace(ns: string): Promise<void>;
}

/** Events kept in the change feed by default (--feed-maxlen; docs/fleet.md). */
export const DEFAULT_FEED_MAXLEN = 100_000;

export interface FeedSettings {
  /** This instance's id, written with each of its events. */
  origin: string;
  /** The feed is trimmed to about this many events. */
  maxlen: number;
}

export class SemanticStore implements EntryStore {
  private readonly scripts: ScriptRunner;

  constructor(
    private readonly redis: RedisClient,
    readonly prefix: string,
    readonly feed: FeedSettings = { origin: '', maxlen: DEFAULT_FEED_MAXLEN },
  ) {
    this.scripts = new ScriptRunner(redis);
  }

  /** The change feed's key. */
  get feedKey(): string {
    return `${this.prefix}feed`;
  }

  recordKey(key: Buffer): Buffer {
    return Buffer.concat([Buffer.from(`${this.prefix}rec:`), key]);
  }

  exactKey(ns: string, hash: string): string {
    return `${this.prefix}exact:${ns}:${hash}`;
  }

  private script(
    src: string,
    keys: (string | Buffer)[],
    args: (string | Buffer | number)[],
  ): Promise<RedisValue> {
    return this.scripts.run(src, keys, args);
  }

  /**
   * Write the record and exact key of a key that holds a string (the value
   * with SHA-1 `sha`, or any value when sha is ''). Returns the key's PTTL,
   * or undefined when the key is gone or holds another value.
   */
  async put(entry: StoredEntry & { exactHash: string }, sha: string): Promise<Written | undefined> {
    const reply = await this.script(
      SET_SCRIPT,
      [this.recordKey(entry.key), this.exactKey(entry.ns, entry.exactHash), this.feedKey],
      [
        sha,
        entry.ns,
        entry.text,
        vectorToBytes(entry.vector),
        entry.model,
        entry.attrs ?? '',
        Date.now(),
        entry.key,
        this.feed.origin,
        this.feed.maxlen,
      ],
    );
    if (reply === -4) throw new WrongTypeError();
    if (!Array.isArray(reply)) return undefined;
    return { pttl: reply[0] as number, ver: String(reply[1]) };
  }

  /** Remove the records of keys that no longer exist. Returns how many were removed. */
  async remove(keys: Buffer[]): Promise<number> {
    if (keys.length === 0) return 0;
    return (await this.script(
      DEL_SCRIPT,
      [this.feedKey],
      [this.prefix, this.feed.origin, this.feed.maxlen, ...keys],
    )) as number;
  }

  /**
   * Values of keys (null where gone), one round trip. Reads asked for in the
   * same turn share one MGET (RedisClient.mget): concurrent cache hits cost
   * Redis one command.
   */
  values(keys: Buffer[]): Promise<(Buffer | null)[]> {
    return this.redis.mget(keys);
  }

  async exists(keys: Buffer[]): Promise<boolean[]> {
    const replies = await this.redis.pipeline(keys.map((k) => ['EXISTS', k]));
    return replies.map((r) => r === 1);
  }

  async vectors(keys: Buffer[]): Promise<(Float32Array | undefined)[]> {
    const replies = await this.redis.pipeline(keys.map((k) => ['HGET', this.recordKey(k), 'vec']));
    return replies.map((r) => (Buffer.isBuffer(r) ? bytesToVector(r) : undefined));
  }

  private namespaceKey(ns: string): string {
    return `${this.prefix}ns:${ns}`;
  }

  /** Namespace settings (threshold, index kind), kept without TTL at P ns:<name>. */
  async saveNamespace(ns: string, settings: Record<string, string>): Promise<void> {
    const fields = Object.entries(settings).flat();
    if (fields.length > 0) await this.nsScript(ns, fields);
  }

  async deleteNamespace(ns: string): Promise<void> {
    await this.nsScript(ns, []);
  }

  private nsScript(ns: string, fields: string[]): Promise<RedisValue> {
    const { origin, maxlen } = this.feed;
    return this.script(
      NS_SCRIPT,
      [this.namespaceKey(ns), this.feedKey, this.namespacesKey],
      [ns, origin, maxlen, ...fields],
    );
  }

  async namespaceSettings(ns: string): Promise<Record<string, string> | undefined> {
    const r = await this.redis.call('HGETALL', this.namespaceKey(ns));
    return Array.isArray(r) && r.length > 0 ? pairs(r) : undefined;
  }

  async records(keys: Buffer[]): Promise<(StoredEntry | undefined)[]> {
    const replies = await this.redis.pipeline(
      keys.map((k) => ['HMGET', this.recordKey(k), ...RECORD_FIELDS]),
    );
    return replies.map((r, i) => toEntry(keys[i]!, r, this.prefix));
  }

  async versions(keys: Buffer[], applied: string): Promise<(string | undefined)[] | 'current'> {
    const r = await this.script(VERSIONS_SCRIPT, [this.feedKey], [this.prefix, applied, ...keys]);
    if (!Array.isArray(r)) return 'current';
    return keys.map((_, i) => (Buffer.isBuffer(r[i]) ? r[i].toString() : undefined));
  }

  /**
   * Every namespace's settings. Their names are the members of P
   * namespaces, which the settings script keeps, once it is complete (it
   * holds LISTED); before that (settings written by an earlier version, or
   * none yet), a walk over the keyspace, which then makes it complete if it
   * found any, or if `complete` (at start: a resync after FLUSHALL writes
   * nothing).
   */
  async namespaces(complete = false): Promise<Map<string, Record<string, string>>> {
    const names = await listedNames(this.redis, this.prefix, this.namespacesKey, 'ns:', complete);
    const replies = await this.redis.pipeline(names.map((n) => ['HGETALL', this.namespaceKey(n)]));
    const out = new Map<string, Record<string, string>>();
    names.forEach((n, i) => {
      const r = replies[i];
      if (Array.isArray(r) && r.length > 0) out.set(n, pairs(r));
    });
    return out;
  }

  private get namespacesKey(): string {
    return `${this.prefix}namespaces`;
  }

  /** Every stored entry, in batches, for the rebuild on start. */
  scan(): AsyncGenerator<StoredEntry[]>;
  /** The same, without what snapshots hold (`covered`: vectors, `held`: whole records). */
  scan(covered: Covered | undefined, held?: Held): AsyncGenerator<ScannedEntry[]>;
  scan(covered?: Covered, held?: Held): AsyncGenerator<ScannedEntry[]> {
    return scanRecords(this.redis, this.prefix, covered, held);
  }

  // Namespace filter for `semcache import` (src/tools/import.ts), kept apart
  // from the scripts above so that changes to them merge cleanly.

  /** Whether any record names namespace `ns`: SCAN and HGET ns, up to the first. */
  async hasEntries(ns: string): Promise<boolean> {
    for await (const keys of scanKeys(this.redis, this.prefix, 'rec:', 1000)) {
      const owners = await this.redis.pipeline(keys.map((k) => ['HGET', k, 'ns']));
      if (owners.some((o) => Buffer.isBuffer(o) && o.toString() === ns)) return true;
    }
    return false;
  }
}
