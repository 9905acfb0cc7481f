/*
 * Where the backing Redis is, decided once at start: the --upstream URL (with
 * rediss:// certificates loaded and --upstream-password-file read, so that the
 * password can stay out of the process list), or, without --upstream, an
 * embedded redis-server that semcache starts and later stops.
 */
import { readFileSync } from 'node:fs';
import { type Config, ConfigError, parseRedisUrl, type RedisAddress } from '../config.js';
import { type EmbeddedRedis, startEmbeddedRedis } from '../embedded-redis.js';
import type { Logger } from '../log.js';
import { loadUpstreamTls } from '../tls.js';

/** The password in a file: its first line (a trailing newline is not part of it). */
function readPasswordFile(path: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`--upstream-password-file: ${(err as Error).message}`);
  }
  return text.split(/\r?\n/)[0] ?? '';
}

export async function resolveUpstream(
  config: Config,
  logger: Logger,
): Promise<{ address: RedisAddress; embedded: EmbeddedRedis | undefined }> {
  let embedded: EmbeddedRedis | undefined;
  let address: RedisAddress;
  if (config.upstream === undefined) {
    embedded = await startEmbeddedRedis({
      executable: config.redisServer,
      dataDir: config.dataDir,
      logger,
    });
    address = {
      host: '127.0.0.1',
      port: embedded.port,
      username: undefined,
      password: undefined,
      db: 0,
    };
  } else {
    address = parseRedisUrl(config.upstream);
    if (address.tls !== undefined) address.tls = loadUpstreamTls(config, address.host, logger);
  }
  if (config.upstreamPasswordFile !== undefined) {
    address = { ...address, password: readPasswordFile(config.upstreamPasswordFile) };
  }
  return { address, embedded };
}
