/*
 * Reading every record of the cache (store.ts scan()): for the rebuild on
 * start, a full resync, `semcache export`. SCAN over P rec:*, and HMGET of
 * each batch of keys found, pipelined, READ_AHEAD batches asked for ahead of
 * the one the caller indexes. A joining instance that holds a snapshot
 * passes `covered`: records are then read without their vector first, and
 * read whole only where the snapshot does not hold the vector of the
 * record's version (docs/fleet.md, "Joining"); with `held`, the records of
 * keys whose entries it took from snapshots are not read at all (SCAN only
 * tells the caller that they are still there).
 */
import type { RedisClient } from '../upstream/redis-client.js';
import {
  LEAN_FIELDS,
  leanEntry,
  RECORD_FIELDS,
  type ScannedEntry,
  type StoredEntry,
  toEntry,
} from './records.js';

/** Batches of records asked for before the first is indexed. */
const READ_AHEAD = 8;

/** Whether a snapshot holds the vector of a record at this version. */
export type Covered = (e: Omit<StoredEntry, 'vector'>) => boolean;
/** Whether a snapshot held the entry of this key (latin1, without the prefix): its record is not read. */
export type Held = (name: string) => boolean;

/** Every record under `prefix`, in batches of about `batch`. */
export async function* scanRecords(
  redis: RedisClient,
  prefix: string,
  covered?: Covered,
  held?: Held,
  batch = 1000,
): AsyncGenerator<ScannedEntry[]> {
  // With one batch asked for at a time, Redis and the caller each waited for the other.
  const reads: Promise<ScannedEntry[]>[] = [];
  let cursor = '0';
  let done = false;
  const ahead = async (): Promise<void> => {
    while (!done && reads.length < READ_AHEAD) {
      // COUNT stays at `batch` when most keys are held: 10,000 made the walk a little
      // shorter (276 against 335 ms at 100,000 entries) but held Redis 7 ms per call.
      const [next, keys] = await scanStep(redis, prefix, 'rec:', cursor, batch);
      [cursor, done] = [next, next === '0'];
      const read = held === undefined ? keys : keys.filter((k) => !held(name(prefix, k)));
      if (read.length === 0) continue;
      const records = readRecords(redis, prefix, read, covered);
      records.catch(() => {}); // thrown where it is awaited
      reads.push(records);
    }
  };
  await ahead();
  while (reads.length > 0) {
    const entries = await reads.shift()!;
    const refill = ahead();
    refill.catch(() => {}); // thrown where it is awaited
    if (entries.length > 0) yield entries;
    await refill;
  }
}

/** The key of a record's key (P rec:<key>), as latin1. */
function name(prefix: string, recordKey: Buffer): string {
  return recordKey.toString('latin1', Buffer.byteLength(`${prefix}rec:`));
}

/**
 * The records of keys SCAN found (HMGET, pipelined); with `covered`, first
 * without their vectors, then whole where no snapshot holds them.
 */
async function readRecords(
  redis: RedisClient,
  prefix: string,
  keys: Buffer[],
  covered?: Covered,
): Promise<ScannedEntry[]> {
  const skip = Buffer.byteLength(`${prefix}rec:`);
  const key = (i: number) => keys[i]!.subarray(skip);
  const entries: ScannedEntry[] = [];
  let whole = keys.map((_, i) => i);
  if (covered !== undefined) {
    const lean = await redis.pipeline(keys.map((k) => ['HMGET', k, ...LEAN_FIELDS]));
    whole = [];
    lean.forEach((r, i) => {
      const e = leanEntry(key(i), r, prefix);
      if (e !== undefined && covered(e)) entries.push({ ...e, vector: undefined });
      else if (e !== undefined) whole.push(i);
    });
  }
  if (whole.length === 0) return entries;
  const replies = await redis.pipeline(whole.map((i) => ['HMGET', keys[i]!, ...RECORD_FIELDS]));
  replies.forEach((r, j) => {
    const e = toEntry(key(whole[j]!), r, prefix);
    if (e !== undefined) entries.push(e);
  });
  return entries;
}

/** Our keys of one kind ('rec:', 'ns:'), by SCAN, in non-empty batches. */
export async function* scanKeys(
  redis: RedisClient,
  prefix: string,
  kind: string,
  count: number,
): AsyncGenerator<Buffer[]> {
  let cursor = '0';
  do {
    let keys: Buffer[];
    [cursor, keys] = await scanStep(redis, prefix, kind, cursor, count);
    if (keys.length > 0) yield keys;
  } while (cursor !== '0');
}

/** One SCAN step over our keys of one kind: the next cursor and the keys. */
async function scanStep(
  redis: RedisClient,
  prefix: string,
  kind: string,
  cursor: string,
  count: number,
): Promise<[string, Buffer[]]> {
  const pattern = `${prefix.replace(/[*?[\]\\]/g, '\\$&')}${kind}*`;
  const [next, keys] = (await redis.call('SCAN', cursor, 'MATCH', pattern, 'COUNT', count)) as [
    Buffer,
    Buffer[],
  ];
  return [next.toString(), keys];
}

/** The member of a names set (P namespaces, P snaps) that says it is complete ('' is no name). */
const LISTED = '';

/**
 * The names in the set `setKey` once it is complete (it holds LISTED);
 * before that (names written by an earlier version, or none yet), the keys
 * of `kind` found by a walk over the keyspace, which then completes the set
 * if it found any, or if `complete` (a resync after FLUSHALL writes nothing).
 */
export async function listedNames(
  redis: RedisClient,
  prefix: string,
  setKey: string,
  kind: string,
  complete: boolean,
): Promise<string[]> {
  const members = ((await redis.call('SMEMBERS', setKey)) as Buffer[]).map(String);
  if (members.includes(LISTED)) return members.filter((m) => m !== LISTED);
  const skip = Buffer.byteLength(`${prefix}${kind}`);
  const out: string[] = [];
  for await (const keys of scanKeys(redis, prefix, kind, 1000))
    for (const k of keys) out.push(k.subarray(skip).toString());
  if (complete || out.length > 0) await redis.call('SADD', setKey, LISTED, ...out);
  return out;
}
