/*
 * semcache's own connections to the backing Redis, as opposed to its
 * clients' (shared-upstream.ts, proxy/connection.ts): the one that runs its
 * scripts and reads records ("semcache connection"), with the limits learned
 * on it (limits.ts), and a factory for the further ones the semantic cache
 * asks for by name (the change feed's reader, the pub/sub connection). Each
 * logs its link's state under its name (link-log.ts) and reaches Redis the
 * way resolve.ts found it (address, credentials, TLS).
 */
import type { Config, RedisAddress } from '../config.js';
import type { Logger } from '../log.js';
import type { ConnectFn } from '../semantic/subscriber.js';
import { UpstreamLimits } from './limits.js';
import { LinkLog } from './link-log.js';
import { RedisClient } from './redis-client.js';

export interface OwnLinks {
  own: RedisClient;
  limits: UpstreamLimits;
  connect: ConnectFn;
}

export async function openOwnLinks(
  config: Config,
  address: RedisAddress,
  logger: Logger,
): Promise<OwnLinks> {
  const connect: ConnectFn = (name, handlers) =>
    new RedisClient({
      ...address,
      connectTimeout: config.connectTimeout,
      monitor: new LinkLog(logger, name),
      ...handlers,
    });
  const own = connect('semcache connection');
  const limits = new UpstreamLimits(own, config.upstreamMaxBulkLen, logger);
  // Only requests on shared connections are checked against them.
  if (config.multiplex > 0) await limits.start();
  return { own, limits, connect };
}
