/*
 * Builds the semantic cache from the configuration: the embedder chain
 * (model → micro-batching → LRU of embeddings), the store over semcache's
 * own Redis connection, the change feed shared with other instances (on a
 * connection of its own), the keyspace notifications' listener, and the
 * engine, and starts loading in the background
 * so pass-through traffic is served while the model loads.
 */
import { randomBytes } from 'node:crypto';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import type { RedisClient } from '../upstream/redis-client.js';
import { BatchingEmbedder } from './embedders/batching.js';
import { CachedEmbedder } from './embedders/cache.js';
import { createHashEmbedder } from './embedders/hash.js';
import { createOpenAIEmbedder } from './embedders/openai.js';
import { createTransformersEmbedder, type TransformersDtype } from './embedders/transformers.js';
import { SemanticCache } from './engine.js';
import { FeedStream } from './feed-stream.js';
import { faissIndexFactory } from './index/factory.js';
import { KeyspaceListener } from './keyspace.js';
import { SnapshotStore } from './snapshot.js';
import { SemanticStore } from './store.js';
import { type ConnectFn, Subscriber } from './subscriber.js';
import type { Embedder } from './types.js';

export interface SemanticRuntime {
  engine: SemanticCache;
  close(): Promise<void>;
}

export function createEmbedder(config: Config): Embedder & { close?: () => Promise<void> } {
  switch (config.embedder) {
    case 'hash':
      return createHashEmbedder({});
    case 'openai':
      if (config.embedUrl === undefined) {
        throw new Error('--embedder openai needs --embed-url (an OpenAI-compatible base URL)');
      }
      return createOpenAIEmbedder({
        url: config.embedUrl,
        model: config.embedModel,
        apiKey: process.env[config.embedKeyEnv],
        keyEnv: config.embedKeyEnv,
      });
    default:
      return createTransformersEmbedder({
        model: config.model,
        modelDir: config.modelDir,
        cacheDir: config.cacheDir,
        dtype: config.dtype as TransformersDtype,
        maxBatch: config.embedBatch,
        ...(config.embedThreads > 0 ? { threads: config.embedThreads } : {}),
      });
  }
}

export function createSemanticCache(
  config: Config,
  /** semcache's own connection to Redis; its owner closes it. */
  redis: RedisClient,
  /** The database of that connection: values must be in it too. */
  db: number,
  logger: Logger,
  embedder: Embedder & { close?: () => Promise<void> } = createEmbedder(config),
  /**
   * Makes semcache's further connections to the same Redis: the change
   * feed's reader and the pub/sub connection (the feed's wake-ups and the
   * keyspace notifications). None: no feed, no notifications (in-process
   * tests). close() closes them.
   */
  connect?: ConnectFn,
): SemanticRuntime {
  const feedReader = connect?.('semcache feed connection');
  const subscriber = connect && new Subscriber(connect, logger);
  const origin = randomBytes(6).toString('hex');
  const store = new SemanticStore(redis, config.prefix, { origin, maxlen: config.feedMaxlen });
  const batching = new BatchingEmbedder(embedder, {
    maxBatch: config.embedBatch,
    maxWaitMs: config.embedWait,
    enabled: config.embedBatch > 1,
  });
  const chain = new CachedEmbedder(batching, { maxEntries: config.embedCache });
  // Snapshots move tens of MB: a connection of their own keeps them off the hit path.
  const snapshotLink =
    config.snapshots === 'redis' ? connect?.('semcache snapshot connection') : undefined;
  const engine = new SemanticCache({
    store,
    feed: feedReader && {
      reader: feedReader,
      subscriber,
      stream: new FeedStream(feedReader, store.feedKey),
      origin,
    },
    snapshots: snapshotLink && {
      store: new SnapshotStore(snapshotLink, config.prefix, origin),
      minEntries: config.snapshotMinEntries,
    },
    db,
    embedder: chain,
    threshold: config.threshold,
    indexKind: config.index,
    quant: config.quant,
    indexFactory: faissIndexFactory({
      efSearch: config.efSearch > 0 ? config.efSearch : undefined,
      nprobe: config.nprobe,
      extendGraph: config.hnswExtend === 'on',
      logger,
    }),
    maxTextBytes: config.maxTextBytes,
    logger,
    embedStats: () => {
      const b = batching.stats;
      const c = chain.stats;
      return {
        modelCalls: b.batches,
        modelTexts: b.embedded,
        cacheHits: c.hits,
        cacheMisses: c.misses,
      };
    },
  });
  void engine.start();
  let keyspace: KeyspaceListener | undefined;
  if (subscriber !== undefined && config.keyspaceEvents === 'auto') {
    keyspace = new KeyspaceListener({
      redis,
      subscriber,
      db,
      entries: engine.entries,
      store,
      logger,
    });
    engine.keyspace = keyspace;
    keyspace.start().catch((err: Error) => logger.warn(`keyspace notifications: ${err.message}`));
  }
  let sweeping = false;
  const timer =
    config.sweepInterval > 0
      ? setInterval(() => {
          if (sweeping) return;
          sweeping = true;
          engine
            .sweep()
            .then((n) => n > 0 && logger.info(`sweep: dropped ${n} entries whose key is gone`))
            .catch((err: Error) => logger.warn(`sweep failed: ${err.message}`))
            .finally(() => {
              sweeping = false;
            });
        }, config.sweepInterval)
      : undefined;
  timer?.unref();
  return {
    engine,
    async close() {
      if (timer) clearInterval(timer);
      engine.stop();
      feedReader?.close();
      // The next instance that wants a build need not wait for the leases to run out.
      await engine.snapshots?.release();
      snapshotLink?.close();
      subscriber?.close();
      await embedder.close?.();
    },
  };
}
