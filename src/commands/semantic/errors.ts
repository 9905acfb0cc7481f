/*
 * Domain errors → Redis-style error replies, in one place: the engine throws
 * errors with stable codes (SemErr in src/errors.ts), the commands never
 * format them themselves.
 */
import { Err } from '../../errors.js';
import { R, type Reply } from '../../resp/writer.js';
import type { EmbedderUnavailableError, StorageUnavailableError } from '../../semantic/types.js';
import { SemanticError } from '../../semantic/types.js';
import { RedisReplyError } from '../../upstream/redis-client.js';
import { CommandError } from '../args.js';

export function errorReply(err: unknown): Reply {
  if (err instanceof CommandError) return R.error(err.message);
  if (err instanceof SemanticError) {
    // By the error's stable code (src/errors.ts), not by its text.
    switch (err.code) {
      case 'LOADING':
        return R.error(`LOADING ${err.message}`);
      case 'WRONGTYPE':
        return R.error(`WRONGTYPE ${err.message}`);
      case 'ACCESS_REFUSED':
        // Redis refused the client: its own words, exactly as for the plain command.
        return R.error(err.message);
      case 'EMBEDDER_UNAVAILABLE':
        return R.error(
          `ERR embedding model unavailable: ${err.message} (${(err as EmbedderUnavailableError).remedy})`,
        );
      case 'STORAGE_UNAVAILABLE':
        return R.error(
          `ERR semcache storage unavailable: ${err.message} (${(err as StorageUnavailableError).remedy})`,
        );
      default:
        return R.error(`ERR ${err.message}`);
    }
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
