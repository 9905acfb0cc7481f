/*
 * Commands that may travel over a shared upstream connection: they neither
 * read nor change per-connection state (database, auth, protocol, MULTI,
 * WATCH, subscriptions, client name or flags) and never block. An allowlist:
 * a command missing here only costs the client its own connection, while a
 * wrong entry would leak state between clients. Clients on a shared
 * connection are always in database 0, unauthenticated and in RESP2, because
 * SELECT, AUTH and HELLO pin them to their own connection first.
 *
 * Scripts (EVAL, EVALSHA, FCALL and their _RO forms) are not here: a script
 * can run past busy-reply-threshold, and while it runs Redis reads nothing
 * more from its connection. On a shared one, every other client's commands
 * would wait behind it where Redis answers them -BUSY, and a SCRIPT KILL sent
 * through semcache would wait there too (found with Redis's "Timedout
 * scripts" scenario, which its own suite skips against an external server).
 */
const SHAREABLE = `
get set setnx setex psetex getset getdel getex mget mset msetnx append strlen incr incrby
incrbyfloat decr decrby getrange setrange substr lcs
del unlink exists expire pexpire expireat pexpireat expiretime pexpiretime ttl pttl persist type
rename renamenx keys scan randomkey touch dump restore copy sort sort_ro
hget hset hsetnx hmset hmget hgetall hdel hexists hincrby hincrbyfloat hkeys hvals hlen hstrlen
hscan hrandfield
lpush rpush lpushx rpushx lpop rpop llen lrange lindex lset linsert lrem ltrim lpos lmove rpoplpush
lmpop
sadd srem smembers sismember smismember scard spop srandmember smove sinter sintercard sinterstore
sunion sunionstore sdiff sdiffstore sscan
zadd zrem zcard zcount zscore zmscore zincrby zrange zrangestore zrangebyscore zrevrangebyscore
zrangebylex zrevrangebylex zrevrange zrank zrevrank zremrangebyrank zremrangebyscore
zremrangebylex zlexcount zpopmin zpopmax zmpop zrandmember zscan zunion zunionstore zinter
zinterstore zintercard zdiff zdiffstore
pfadd pfcount pfmerge
setbit getbit bitcount bitpos bitop bitfield bitfield_ro
geoadd geodist geohash geopos georadius georadius_ro georadiusbymember georadiusbymember_ro
geosearch geosearchstore
xadd xlen xrange xrevrange xdel xtrim xack xpending xclaim xautoclaim xsetid
ping echo time dbsize lastsave publish spublish
`;

export const shareableCommands: ReadonlySet<string> = new Set(
  SHAREABLE.split(/\s+/).filter(Boolean),
);
