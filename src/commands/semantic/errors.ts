/*
 * Domain errors → Redis-style error replies, in one place: the engine throws
 * typed errors, the commands never format them themselves.
 */
import { Err } from '../../errors.js';
import { R, type Reply } from '../../resp/writer.js';
import { InvalidInputError, LoadingError, UnknownNamespaceError } from '../../semantic/engine.js';
import { FilterSyntaxError } from '../../semantic/filter.js';
import { WrongTypeError } from '../../semantic/store.js';
import {
  AccessRefusedError,
  EmbedderUnavailableError,
  StorageUnavailableError,
} from '../../semantic/types.js';
import { RedisReplyError } from '../../upstream/redis-client.js';
import { CommandError } from '../args.js';

export function errorReply(err: unknown): Reply {
  if (err instanceof CommandError) return R.error(err.message);
  if (err instanceof LoadingError) return R.error(`LOADING ${err.message}`);
  if (err instanceof EmbedderUnavailableError) {
    return R.error(`ERR embedding model unavailable: ${err.message} (${err.remedy})`);
  }
  if (err instanceof UnknownNamespaceError || err instanceof InvalidInputError) {
    return R.error(`ERR ${err.message}`);
  }
  if (err instanceof FilterSyntaxError) return R.error(`ERR ${err.message}`);
  if (err instanceof WrongTypeError) return R.error(`WRONGTYPE ${err.message}`);
  // Redis refused the client: its own words, exactly as for the plain command.
  if (err instanceof AccessRefusedError) return R.error(err.message);
  if (err instanceof StorageUnavailableError) {
    return R.error(`ERR semcache storage unavailable: ${err.message} (${err.remedy})`);
  }
  if (err instanceof RedisReplyError) {
    // From semcache's own connection (a record write...), not the client's.
    return R.error(`ERR semcache: its own connection to redis was refused: ${err.message}`);
  }
  // Anything else is a fault of ours: the one internal-error text (src/errors.ts).
  return R.error(Err.internal((err as Error).message));
}

/** Run a command body, turning any thrown error into its reply. */
export async function guarded(body: () => Promise<Reply> | Reply): Promise<Reply> {
  try {
    return await body();
  } catch (err) {
    return errorReply(err);
  }
}
