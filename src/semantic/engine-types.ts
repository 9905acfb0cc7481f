/*
 * The engine's options and what it reports (SEMINFO, SEMNS GET), as plain
 * data: the commands turn these into replies (commands/semantic/admin.ts,
 * semns.ts) and never read the engine's parts.
 */

import type { Logger } from '../log.js';
import type { RedisClient } from '../upstream/redis-client.js';
import type { FeedInfo } from './feed.js';
import type { FeedStream } from './feed-stream.js';
import type { SnapshotStore } from './snapshot.js';
import type { SnapshotInfo } from './snapshot-sync.js';
import type { LatencySummary } from './stats.js';
import type { EntryStore } from './store.js';
import type { Subscriber } from './subscriber.js';
import type { Embedder, IndexFactory, IndexKind, Quant } from './types.js';

export interface SourcedEmbedder extends Embedder {
  embedWithSource(texts: string[]): Promise<{ vector: Float32Array; cached: boolean }[]>;
}

export interface EngineOptions {
  store: EntryStore;
  /** The Redis database of the store: values must be in it too. */
  db?: number;
  embedder: SourcedEmbedder;
  threshold: number;
  indexKind: IndexKind | 'auto';
  /** How HNSW and IVF indexes hold vectors unless SEMNS SET QUANT chose (--quant). */
  quant: Quant;
  /** Makes each namespace's vector index (index/factory.ts). */
  indexFactory: IndexFactory;
  /** The longest text the commands take, in bytes (default 16384). */
  maxTextBytes?: number;
  logger: Logger;
  /** Counters of the embedding chain (batching, cache), for SEMINFO. */
  embedStats?: () => EmbedStats;
  /**
   * The change feed shared with the other instances in front of this Redis
   * (feed.ts): a connection of its own for XREAD BLOCK, the stream, and this
   * instance's id, as the store writes it. Without it the instance applies
   * no one else's changes (unit tests).
   */
  feed?: { reader: RedisClient; subscriber?: Subscriber; stream: FeedStream; origin: string };
  /** Where built HNSW graphs are shared with the fleet (snapshot.ts); none: not shared. */
  snapshots?: { store: SnapshotStore; minEntries: number };
}

export interface EmbedStats {
  /** Calls into the model (one per batch). */
  modelCalls: number;
  /** Texts the model embedded. */
  modelTexts: number;
  /** Embedding cache hits and misses. */
  cacheHits: number;
  cacheMisses: number;
}

/** SEMINFO without NS. */
export interface CacheInfo {
  state: 'loading' | 'ready' | 'failed';
  embedder: string;
  model: string;
  dimension: number;
  entries: number;
  defaultThreshold: number;
  namespaces: string[];
  embed: EmbedStats | undefined;
  /** This instance's id and its position in the change feed (undefined without one). */
  instance: string | undefined;
  feed: FeedInfo | undefined;
  /** Keyspace notifications: subscribed, and entries dropped on them (undefined: not tried). */
  keyspace: { on: boolean; drops: number } | undefined;
  /** Shared graphs (snapshot-sync.ts; undefined: --snapshots off). */
  snapshots: SnapshotInfo | undefined;
}

/** SEMINFO NS ns. */
export interface NamespaceInfo {
  name: string;
  entries: number;
  dimension: number;
  model: string;
  /** The kind answering now ('none' before the first entry). */
  index: string;
  quant: Quant;
  indexBuilding: boolean;
  indexTail: number;
  threshold: number;
  hits: number;
  exactHits: number;
  misses: number;
  exactScans: number;
  lookup: LatencySummary;
  embed: LatencySummary;
  search: LatencySummary;
}

/** SEMNS GET ns. */
export interface NamespaceSettings {
  name: string;
  threshold: number;
  index: IndexKind | 'auto';
  quant: Quant;
  entries: number;
}

/** SEMNS SET's settings (undefined: unchanged). */
export interface NamespaceConfig {
  threshold?: number | undefined;
  index?: IndexKind | 'auto' | undefined;
  quant?: Quant | undefined;
}
