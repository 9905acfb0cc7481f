/*
 * The Redis layout of the semantic cache (docs/storage.md). Redis is the
 * source of truth; semcache's memory (index, exact-match map) is rebuilt from
 * it on start. Per entry, with P the prefix (default "semcache:"):
 *
 *   <key>                         the value, exactly as SET would store it
 *   P rec:<key>                   HASH ns, text, vec (FP32 LE), attrs (JSON), model, exact, ts
 *   P exact:<ns>:<sha256(norm)>   STRING <key>: the exact-match record
 *
 * The value is written by the client itself (a SET on its own connection,
 * so Redis checks its permissions: see writes.ts); the record and the
 * exact-match key are written after, by one Lua script with semcache's own
 * credentials, which gives them the value's TTL and writes nothing unless
 * the key still holds the value that was written (SHA-1 compared in Redis):
 * when two clients set one key at once, the record describes the value that
 * stayed.
 */
import { endianness } from 'node:os';
import { SemErr } from '../errors.js';
import type { RedisClient, RedisValue } from '../upstream/redis-client.js';
import { RedisReplyError } from '../upstream/redis-client.js';
import { SemanticError } from './types.js';

/**
 * Writes record and exact key for a key that holds a string, with its TTL.
 * ARGV[1]: the SHA-1 the value must have, or '' for any value; ARGV[8]: the
 * client's key. It is an argument, not one of KEYS, so semcache's own Redis
 * user needs only read access to clients' keys (EVALSHA asks for read and
 * write on every key in KEYS; docs/security.md).
 * Returns the key's PTTL, -3 when the key is gone or holds another value,
 * -4 when it holds no string.
 */
const SET_SCRIPT = `
local key, rec, exact = ARGV[8], KEYS[1], KEYS[2]
local t = redis.call('TYPE', key).ok
if t == 'none' then return -3 end
if t ~= 'string' then return -4 end
if ARGV[1] ~= '' and redis.sha1hex(redis.call('GET', key)) ~= ARGV[1] then return -3 end
local old = redis.call('HGET', rec, 'exact')
if old and old ~= exact and redis.call('GET', old) == key then redis.call('DEL', old) end
redis.call('DEL', rec)
redis.call('HSET', rec, 'ns', ARGV[2], 'text', ARGV[3], 'vec', ARGV[4], 'model', ARGV[5],
  'exact', exact, 'ts', ARGV[7])
if ARGV[6] ~= '' then redis.call('HSET', rec, 'attrs', ARGV[6]) end
redis.call('SET', exact, key)
local pttl = redis.call('PTTL', key)
if pttl > 0 then
  -- %.0f: tostring() would give exponent form for TTLs of 1e17 ms and more.
  local ms = string.format('%.0f', pttl)
  redis.call('PEXPIRE', rec, ms)
  redis.call('PEXPIRE', exact, ms)
end
return pttl
`;

/**
 * Removes record and exact key (if it still points here) of every key that
 * no longer exists; a key set again meanwhile keeps its new record. Returns
 * how many records were removed. The clients' keys are arguments (ARGV[2..]).
 */
const DEL_SCRIPT = `
local n = 0
for i = 2, #ARGV do
  local key = ARGV[i]
  if redis.call('EXISTS', key) == 0 then
    local rec = ARGV[1] .. 'rec:' .. key
    local exact = redis.call('HGET', rec, 'exact')
    if exact and redis.call('GET', exact) == key then redis.call('DEL', exact) end
    n = n + redis.call('DEL', rec)
  end
end
return n
`;

/** SEMINDEX of a key that holds a list, hash...: only strings can be cache values. */
export class WrongTypeError extends SemanticError {
  constructor() {
    super('WRONGTYPE', SemErr.WRONGTYPE());
  }
}

export type TtlMode = 'EX' | 'PX' | 'KEEPTTL' | '';

export interface StoredEntry {
  key: Buffer;
  ns: string;
  text: string;
  vector: Float32Array;
  attrs: string | undefined;
  model: string;
  /** The exact-match hash the record names (scan() only; undefined when it names none). */
  exactHash?: string | undefined;
}

const LITTLE_ENDIAN = endianness() === 'LE';

/** FP32 little-endian bytes (the layout Redis's VADD FP32 uses too). */
export function vectorToBytes(v: Float32Array): Buffer {
  if (LITTLE_ENDIAN) return Buffer.from(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength));
  const out = Buffer.allocUnsafe(v.length * 4);
  for (let i = 0; i < v.length; i++) out.writeFloatLE(v[i]!, i * 4);
  return out;
}

export function bytesToVector(b: Buffer): Float32Array {
  const n = b.length >>> 2;
  // One copy into an aligned buffer; per-float reads are ~50x slower on a rebuild.
  if (LITTLE_ENDIAN) return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + n * 4));
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = b.readFloatLE(i * 4);
  return v;
}

/**
 * What the engine keeps in Redis with its own connection: a record per entry,
 * namespace settings. SemanticStore below; the engine's unit tests keep it in
 * memory.
 */
export interface EntryStore {
  /**
   * Write the record and exact key of a key that holds a string (the value
   * with SHA-1 `sha`, or any value when sha is ''). Returns the key's PTTL,
   * or undefined when the key is gone or holds another value.
   */
  put(entry: StoredEntry & { exactHash: string }, sha: string): Promise<number | undefined>;
  /** Remove the records of keys that no longer exist; how many were removed. */
  remove(keys: Buffer[]): Promise<number>;
  exists(keys: Buffer[]): Promise<boolean[]>;
  /** The stored vector of each key's record (undefined: none). */
  vectors(keys: Buffer[]): Promise<(Float32Array | undefined)[]>;
  /** Every stored entry, in batches, for the rebuild on start. */
  scan(): AsyncGenerator<StoredEntry[]>;
  namespaces(): Promise<Map<string, Record<string, string>>>;
  saveNamespace(ns: string, settings: Record<string, string>): Promise<void>;
  deleteNamespace(ns: string): Promise<void>;
}

export class SemanticStore implements EntryStore {
  private shas = new Map<string, string>();

  constructor(
    private readonly redis: RedisClient,
    readonly prefix: string,
  ) {}

  recordKey(key: Buffer): Buffer {
    return Buffer.concat([Buffer.from(`${this.prefix}rec:`), key]);
  }

  exactKey(ns: string, hash: string): string {
    return `${this.prefix}exact:${ns}:${hash}`;
  }

  private async script(
    src: string,
    keys: (string | Buffer)[],
    args: (string | Buffer | number)[],
  ): Promise<RedisValue> {
    let sha = this.shas.get(src);
    if (sha === undefined) {
      sha = (await this.redis.call('SCRIPT', 'LOAD', src))!.toString();
      this.shas.set(src, sha);
    }
    try {
      return await this.redis.call('EVALSHA', sha, keys.length, ...keys, ...args);
    } catch (err) {
      // The script cache was flushed (SCRIPT FLUSH, restart): load it again.
      if (err instanceof RedisReplyError && err.message.startsWith('NOSCRIPT')) {
        this.shas.delete(src);
        return this.script(src, keys, args);
      }
      throw err;
    }
  }

  /**
   * Write the record and exact key of a key that holds a string (the value
   * with SHA-1 `sha`, or any value when sha is ''). Returns the key's PTTL,
   * or undefined when the key is gone or holds another value.
   */
  async put(entry: StoredEntry & { exactHash: string }, sha: string): Promise<number | undefined> {
    const reply = await this.script(
      SET_SCRIPT,
      [this.recordKey(entry.key), this.exactKey(entry.ns, entry.exactHash)],
      [
        sha,
        entry.ns,
        entry.text,
        vectorToBytes(entry.vector),
        entry.model,
        entry.attrs ?? '',
        Date.now(),
        entry.key,
      ],
    );
    if (reply === -4) throw new WrongTypeError();
    return reply === -3 ? undefined : (reply as number);
  }

  /** Remove the records of keys that no longer exist. Returns how many were removed. */
  async remove(keys: Buffer[]): Promise<number> {
    if (keys.length === 0) return 0;
    return (await this.script(DEL_SCRIPT, [], [this.prefix, ...keys])) as number;
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
    if (fields.length > 0) await this.redis.call('HSET', this.namespaceKey(ns), ...fields);
  }

  async deleteNamespace(ns: string): Promise<void> {
    await this.redis.call('DEL', this.namespaceKey(ns));
  }

  async namespaces(): Promise<Map<string, Record<string, string>>> {
    const out = new Map<string, Record<string, string>>();
    for await (const keys of this.keys('ns:', 1000)) {
      const replies = await this.redis.pipeline(keys.map((k) => ['HGETALL', k]));
      replies.forEach((r, i) => {
        if (!Array.isArray(r)) return;
        const settings: Record<string, string> = {};
        for (let j = 0; j + 1 < r.length; j += 2) settings[String(r[j])] = String(r[j + 1]);
        out.set(keys[i]!.subarray(Buffer.byteLength(`${this.prefix}ns:`)).toString(), settings);
      });
    }
    return out;
  }

  /** Every stored entry, in batches, for the rebuild on start. */
  async *scan(batch = 1000): AsyncGenerator<StoredEntry[]> {
    // One batch ahead: Redis scans and reads the next batch while the caller
    // indexes this one.
    let next = this.fetchRecords('0', batch);
    for (;;) {
      const { cursor, entries } = await next;
      if (cursor !== '0') next = this.fetchRecords(cursor, batch);
      if (entries.length > 0) yield entries;
      if (cursor === '0') return;
    }
  }

  /** One SCAN step over the records, and the records it found (HMGET, pipelined). */
  private async fetchRecords(
    from: string,
    count: number,
  ): Promise<{ cursor: string; entries: StoredEntry[] }> {
    const [cursor, keys] = await this.scanStep('rec:', from, count);
    if (keys.length === 0) return { cursor, entries: [] };
    const skip = Buffer.byteLength(`${this.prefix}rec:`);
    const replies = await this.redis.pipeline(
      keys.map((k) => ['HMGET', k, 'ns', 'text', 'vec', 'attrs', 'model', 'exact']),
    );
    const entries: StoredEntry[] = [];
    replies.forEach((r, i) => {
      if (!Array.isArray(r)) return;
      const [ns, text, vec, attrs, model, exact] = r;
      if (!Buffer.isBuffer(ns) || !Buffer.isBuffer(text) || !Buffer.isBuffer(vec)) return;
      const space = ns.toString();
      const exactPrefix = `${this.prefix}exact:${space}:`;
      const exactName = Buffer.isBuffer(exact) ? exact.toString() : '';
      entries.push({
        key: keys[i]!.subarray(skip),
        ns: space,
        text: text.toString(),
        vector: bytesToVector(vec),
        attrs: Buffer.isBuffer(attrs) ? attrs.toString() : undefined,
        model: Buffer.isBuffer(model) ? model.toString() : '',
        exactHash: exactName.startsWith(exactPrefix)
          ? exactName.slice(exactPrefix.length)
          : undefined,
      });
    });
    return { cursor, entries };
  }

  // Namespace filter for `semcache import` (src/tools/import.ts), kept apart
  // from the scripts above so that changes to them merge cleanly.

  /** Whether any record names namespace `ns`: SCAN and HGET ns, up to the first. */
  async hasEntries(ns: string): Promise<boolean> {
    for await (const keys of this.keys('rec:', 1000)) {
      const owners = await this.redis.pipeline(keys.map((k) => ['HGET', k, 'ns']));
      if (owners.some((o) => Buffer.isBuffer(o) && o.toString() === ns)) return true;
    }
    return false;
  }

  /** Our keys of one kind ('rec:', 'ns:'), by SCAN, in non-empty batches. */
  private async *keys(kind: string, count: number): AsyncGenerator<Buffer[]> {
    let cursor = '0';
    do {
      let keys: Buffer[];
      [cursor, keys] = await this.scanStep(kind, cursor, count);
      if (keys.length > 0) yield keys;
    } while (cursor !== '0');
  }

  /** One SCAN step over our keys of one kind: the next cursor and the keys. */
  private async scanStep(kind: string, cursor: string, count: number): Promise<[string, Buffer[]]> {
    const pattern = `${this.prefix.replace(/[*?[\]\\]/g, '\\$&')}${kind}*`;
    const [next, keys] = (await this.redis.call(
      'SCAN',
      cursor,
      'MATCH',
      pattern,
      'COUNT',
      count,
    )) as [Buffer, Buffer[]];
    return [next.toString(), keys];
  }
}
