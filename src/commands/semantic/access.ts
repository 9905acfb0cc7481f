/*
 * KeyAccess over the client's own path to Redis (ctx.redis): the plain Redis
 * commands each SEM command stands for, run as the client, so that Redis
 * itself decides what the client may do (docs/security.md):
 *
 *   read        GET per key          NOPERM: skipped (undefined)
 *   exists      EXISTS per key       NOPERM: skipped (undefined)
 *   write       SET key value [EX|PX|KEEPTTL]
 *   readWritable GET key + SETRANGE key 0 ""   (reads it, proves it may write
 *               it; SETRANGE with an empty string changes nothing)
 *   del         DEL key [key ...]
 *   delAll      one DEL of every key (Redis checks all keys before it
 *               deletes any: all or none)
 *   mayDelAll   MULTI, DEL of every key, DISCARD (queued, never run)
 *   mayInfo     INFO semcache (an unknown section: an empty reply)
 *
 * Any other refusal (NOAUTH, OOM, READONLY, LOADING...) is thrown as an
 * AccessRefusedError carrying Redis's own text, which the command returns.
 */
import type { Arg } from '../../resp/client-codec.js';
import { decode, RedisReplyError, type RedisValue } from '../../resp/client-codec.js';
import { WrongTypeError } from '../../semantic/store.js';
import { AccessRefusedError, type KeyAccess } from '../../semantic/types.js';
import type { ClientRedis } from '../types.js';

/** Keys per DEL in a dry run: one queued command each. */
const DRY_RUN_KEYS = 1000;

function value(reply: Buffer): RedisValue {
  return decode(reply, 0);
}

function refused(v: RedisValue): v is RedisReplyError {
  return v instanceof RedisReplyError;
}

function fail(v: RedisReplyError): never {
  throw new AccessRefusedError(v.message);
}

/** A value read as the client: NOPERM skips it, WRONGTYPE means no string there. */
function readable(reply: Buffer): Buffer | null | undefined {
  const v = value(reply);
  if (refused(v)) {
    if (v.message.startsWith('NOPERM')) return undefined;
    if (v.message.startsWith('WRONGTYPE')) return null;
    fail(v);
  }
  return Buffer.isBuffer(v) ? v : null;
}

function integer(reply: Buffer): number {
  const v = value(reply);
  if (refused(v)) fail(v);
  return typeof v === 'number' ? v : 0;
}

/**
 * The client's access for a SEM command. semcache's records live in one
 * database (--upstream's), and so must the values they index: a client that
 * selected another one is refused rather than mixing databases.
 */
export function clientAccess(redis: ClientRedis, db: number): KeyAccess {
  if (redis.db !== db) {
    throw new AccessRefusedError(
      `ERR semcache: SEM commands work in database ${db} only (this connection selected ${redis.db})`,
    );
  }
  return {
    oneShot: redis.queued,

    async read(keys) {
      return (await redis.send(keys.map((k) => ['GET', k]))).map(readable);
    },

    async exists(keys) {
      return (await redis.send(keys.map((k) => ['EXISTS', k]))).map((r) => {
        const v = value(r);
        if (refused(v)) {
          if (v.message.startsWith('NOPERM')) return undefined;
          fail(v);
        }
        return v === 1;
      });
    },

    async write(key, val, ttlMode, ttl) {
      const cmd: Arg[] = ['SET', key, val];
      if (ttlMode === 'EX' || ttlMode === 'PX') cmd.push(ttlMode, ttl);
      else if (ttlMode === 'KEEPTTL') cmd.push('KEEPTTL');
      const [reply] = await redis.send([cmd]);
      const v = value(reply!);
      if (refused(v)) fail(v);
    },

    async readWritable(key) {
      const [got, setrange] = await redis.send([
        ['GET', key],
        ['SETRANGE', key, 0, ''],
      ]);
      const v = value(got!);
      if (refused(v)) {
        if (v.message.startsWith('WRONGTYPE')) throw new WrongTypeError();
        fail(v);
      }
      integer(setrange!);
      return Buffer.isBuffer(v) ? v : null;
    },

    async del(keys) {
      const [reply] = await redis.send([['DEL', ...keys]]);
      return integer(reply!);
    },

    async delAll(keys) {
      if (keys.length === 0) return 0;
      const [reply] = await redis.send([['DEL', ...keys]]);
      return integer(reply!);
    },

    async mayDelAll(keys) {
      if (keys.length === 0) return;
      const dels: Arg[][] = [];
      for (let i = 0; i < keys.length; i += DRY_RUN_KEYS) {
        dels.push(['DEL', ...keys.slice(i, i + DRY_RUN_KEYS)]);
      }
      for (const reply of await redis.dryRun(dels)) {
        const v = value(reply);
        if (refused(v)) fail(v);
      }
    },

    async mayInfo() {
      const [reply] = await redis.send([['INFO', 'semcache']]);
      const v = value(reply!);
      if (refused(v)) fail(v);
    },
  };
}
