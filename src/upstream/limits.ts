/*
 * What the backing Redis refuses by closing the connection, learned from it,
 * so that a request one client sends over a shared connection can be refused
 * for that client alone (src/proxy/request-limits.ts) instead of costing
 * every client on that connection its replies.
 *
 *   proto-max-bulk-len          a longer bulk: `-ERR Protocol error: invalid
 *                               bulk length`, then the connection is closed
 *   client-query-buffer-limit   a query buffer past it: closed, no reply
 *
 * The first two are read with CONFIG GET on semcache's own connection, at
 * start and every LIMITS_REFRESH_MS after. Where CONFIG is not allowed (ACL,
 * renamed command, a managed Redis), proto-max-bulk-len is taken from
 * --upstream-max-bulk-len and the query buffer limit is Redis's default; if
 * that flag is not given either, the limits are unknown, and a request with a
 * bulk over SAFE_BULK (which no configuration of Redis refuses: both limits
 * are at least 1 MB) goes on its client's own connection instead.
 * (Whether the default user must authenticate, the other thing Redis's
 * limits depend on, is auth-state.ts's.)
 */
import type { Logger } from '../log.js';
import { type Arg, RedisReplyError, type RedisValue } from '../resp/client-codec.js';

export const LIMITS_REFRESH_MS = 10_000;
/** A bulk Redis accepts whatever its limits (their smallest values are 1 MB), with room to spare. */
export const SAFE_BULK = 512 * 1024;
/** Redis's default client-query-buffer-limit (1 GB). */
const DEFAULT_QUERY_BUFFER_LIMIT = 1024 * 1024 * 1024;

export interface LimitsSource {
  pipeline(commands: readonly (readonly Arg[])[]): Promise<RedisValue[]>;
}

export class UpstreamLimits {
  /** proto-max-bulk-len: read, else the flag; Infinity when neither (see `known`). */
  maxBulkLength: number;
  queryBufferLimit = DEFAULT_QUERY_BUFFER_LIMIT;
  /** Read from the upstream's CONFIG. */
  learned = false;
  /** Read, or given by the flag: when not, only bulks up to SAFE_BULK are known to be safe. */
  known: boolean;
  private warned = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly source: LimitsSource,
    private readonly flagMaxBulkLength: number,
    private readonly logger: Logger,
    private readonly refreshMs = LIMITS_REFRESH_MS,
  ) {
    this.known = flagMaxBulkLength > 0;
    this.maxBulkLength = this.known ? flagMaxBulkLength : Number.POSITIVE_INFINITY;
  }

  /** Read the limits now (never rejects), then again every refreshMs. */
  start(): Promise<void> {
    this.timer ??= setInterval(() => void this.refresh(), this.refreshMs);
    this.timer.unref();
    return this.refresh();
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  async refresh(): Promise<void> {
    let replies: RedisValue[];
    try {
      replies = await this.source.pipeline([
        ['CONFIG', 'GET', 'proto-max-bulk-len'],
        ['CONFIG', 'GET', 'client-query-buffer-limit'],
      ]);
    } catch {
      return; // the connection logs its own trouble; keep what we know
    }
    const bulk = configNumber(replies[0]);
    if (typeof bulk === 'number') {
      if (!this.learned || bulk !== this.maxBulkLength) {
        this.logger.info(`upstream proto-max-bulk-len: ${bulk}`);
      }
      this.maxBulkLength = bulk;
      this.learned = true;
      this.known = true;
    } else {
      const flag = this.flagMaxBulkLength;
      if (!this.warned) {
        this.warned = true;
        this.logger.warn(
          `cannot read the upstream's proto-max-bulk-len (${bulk}); ${
            flag > 0
              ? `assuming ${flag} (--upstream-max-bulk-len)`
              : `requests with a bulk over ${SAFE_BULK} bytes get a connection of their own (see --upstream-max-bulk-len)`
          }`,
        );
      }
      this.learned = false;
      this.known = flag > 0;
      this.maxBulkLength = this.known ? flag : Number.POSITIVE_INFINITY;
    }
    const qbuf = configNumber(replies[1]);
    this.queryBufferLimit = typeof qbuf === 'number' ? qbuf : DEFAULT_QUERY_BUFFER_LIMIT;
  }
}

/** CONFIG GET's [name, value] as a number, or why not. */
function configNumber(reply: RedisValue | undefined): number | string {
  if (reply instanceof RedisReplyError) return reply.message;
  if (!Array.isArray(reply) || !Buffer.isBuffer(reply[1])) return 'unexpected reply';
  const n = Number(reply[1].toString('latin1'));
  return Number.isSafeInteger(n) && n > 0 ? n : 'unexpected value';
}
