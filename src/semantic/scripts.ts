/*
 * The Lua scripts by which semcache changes its own keys in Redis
 * (store.ts). Each change of the cache is appended to the change feed (a
 * Redis Stream, P feed) by the same script that makes it, so a change and
 * its record in the feed are one atomic step: no instance can see one
 * without the other (docs/fleet.md). A feed event names what changed, not
 * its new state: `op` s (a record written), d (a record removed) or n (a
 * namespace's settings), `key` or `ns`, and `o`, the instance that wrote
 * it. Readers read the state itself (the record, the settings) when they
 * apply the event, so applying one twice, or late, is harmless.
 *
 * The feed is trimmed as it grows (MAXLEN ~ n, --feed-maxlen). The stream
 * ID of a record's last change is kept in the record as `ver`: an instance
 * compares it with the one it indexed before answering from an entry.
 *
 * After appending, a script PUBLISHes on a channel named like the stream,
 * which wakes the other instances' readers (feed.ts). redis.pcall: a user
 * without the channel in its ACL loses the wake-ups, never the write.
 */
import type { RedisClient, RedisValue } from '../upstream/redis-client.js';
import { RedisReplyError } from '../upstream/redis-client.js';

/** Runs scripts by EVALSHA, loading each once (and again after SCRIPT FLUSH or a restart). */
export class ScriptRunner {
  private readonly shas = new Map<string, string>();

  constructor(private readonly redis: RedisClient) {}

  async run(
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
      if (err instanceof RedisReplyError && err.message.startsWith('NOSCRIPT')) {
        this.shas.delete(src);
        return this.run(src, keys, args);
      }
      throw err;
    }
  }
}

/**
 * Writes record and exact key for a key that holds a string, with its TTL.
 * KEYS: record, exact key, feed. ARGV[1]: the SHA-1 the value must have, or
 * '' for any value; ARGV[8]: the client's key, an argument rather than one
 * of KEYS, so semcache's own Redis user needs only read access to clients'
 * keys (EVALSHA asks for read and write on every key in KEYS;
 * docs/security.md); ARGV[9]: the writer's instance id; ARGV[10]: the feed's
 * MAXLEN. Returns {PTTL, ver}, or -3 when the key is gone or holds another
 * value, -4 when it holds no string.
 */
export const SET_SCRIPT = `
local key, rec, exact, feed = ARGV[8], KEYS[1], KEYS[2], KEYS[3]
local t = redis.call('TYPE', key).ok
if t == 'none' then return -3 end
if t ~= 'string' then return -4 end
if ARGV[1] ~= '' and redis.sha1hex(redis.call('GET', key)) ~= ARGV[1] then return -3 end
local old = redis.call('HGET', rec, 'exact')
if old and old ~= exact and redis.call('GET', old) == key then redis.call('DEL', old) end
local ver = redis.call('XADD', feed, 'MAXLEN', '~', ARGV[10], '*', 'op', 's', 'key', key, 'o', ARGV[9])
redis.pcall('PUBLISH', feed, ver)
redis.call('DEL', rec)
redis.call('HSET', rec, 'ns', ARGV[2], 'text', ARGV[3], 'vec', ARGV[4], 'model', ARGV[5],
  'exact', exact, 'ts', ARGV[7], 'ver', ver)
if ARGV[6] ~= '' then redis.call('HSET', rec, 'attrs', ARGV[6]) end
redis.call('SET', exact, key)
local pttl = redis.call('PTTL', key)
if pttl > 0 then
  -- %.0f: tostring() would give exponent form for TTLs of 1e17 ms and more.
  local ms = string.format('%.0f', pttl)
  redis.call('PEXPIRE', rec, ms)
  redis.call('PEXPIRE', exact, ms)
end
return {pttl, ver}
`;

/**
 * Removes record and exact key (if it still points here) of every key that
 * no longer exists; a key set again meanwhile keeps its new record. KEYS:
 * the feed. ARGV: prefix, instance id, MAXLEN, then the clients' keys.
 * Returns how many records were removed; each removal is a feed event.
 */
export const DEL_SCRIPT = `
local n = 0
for i = 4, #ARGV do
  local key = ARGV[i]
  if redis.call('EXISTS', key) == 0 then
    local rec = ARGV[1] .. 'rec:' .. key
    local exact = redis.call('HGET', rec, 'exact')
    if exact and redis.call('GET', exact) == key then redis.call('DEL', exact) end
    if redis.call('DEL', rec) == 1 then
      n = n + 1
      redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*', 'op', 'd', 'key', key, 'o', ARGV[2])
    end
  end
end
if n > 0 then redis.pcall('PUBLISH', KEYS[1], 'd') end
return n
`;

/**
 * Sets (ARGV[3..] field value pairs) or, with no pairs, deletes a
 * namespace's settings, and names it in (or removes it from) the set of
 * namespaces with settings. KEYS: the settings hash, the feed, the set.
 * ARGV: namespace name, instance id, MAXLEN, then the pairs. Returns the
 * feed event's id.
 */
export const NS_SCRIPT = `
if #ARGV > 3 then
  redis.call('HSET', KEYS[1], unpack(ARGV, 4))
  redis.call('SADD', KEYS[3], ARGV[1])
else
  redis.call('DEL', KEYS[1])
  redis.call('SREM', KEYS[3], ARGV[1])
end
local ver = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'op', 'n', 'ns', ARGV[1], 'o', ARGV[2])
redis.pcall('PUBLISH', KEYS[2], ver)
return ver
`;

/**
 * The versions of records, for the check before a hit is answered
 * (version-check.ts). KEYS: the feed. ARGV: prefix, the id of the last
 * event the instance applied, then the clients' keys. When that id is the
 * newest in the feed, every entry the instance holds is current: returns 1
 * without reading a record. Else one `ver` per key ('' for a record from
 * before the feed, nil for no record).
 */
export const VERSIONS_SCRIPT = `
local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)[1]
if newest and newest[1] == ARGV[2] then return 1 end
local out = {}
for i = 3, #ARGV do
  local r = redis.call('HMGET', ARGV[1] .. 'rec:' .. ARGV[i], 'ns', 'ver')
  if r[1] then out[i - 2] = r[2] or '' else out[i - 2] = false end
end
return out
`;
