/*
 * What SEMINFO and SEMNS GET report of the engine (engine.ts): the cache as
 * a whole (state, model, entries, the change feed's position and lag,
 * keyspace notifications) and each namespace (entries, index, settings,
 * hit counters, latency summaries). Read-only.
 */
import type { SemanticCache } from './engine.js';
import type { CacheInfo, NamespaceInfo, NamespaceSettings } from './engine-types.js';

/** SEMINFO */
export function cacheInfo(cache: SemanticCache): CacheInfo {
  const { embedder, threshold, embedStats } = cache.opts;
  return {
    state: cache.state,
    embedder: embedder.kind,
    model: cache.modelId,
    dimension: embedder.dim,
    entries: cache.entries.size,
    defaultThreshold: threshold,
    namespaces: [...cache.namespaces.keys()],
    embed: embedStats?.(),
    instance: cache.opts.feed?.origin,
    feed: cache.feed?.info(),
    keyspace: cache.keyspace && { on: cache.keyspace.on, drops: cache.keyspace.drops },
    snapshots: cache.snapshots?.info(),
  };
}

/** SEMINFO NS ns */
export function namespaceInfo(cache: SemanticCache, ns: string): NamespaceInfo {
  const space = cache.namespace(ns);
  const index = space.index;
  return {
    name: space.name,
    entries: space.entries.size,
    dimension: cache.opts.embedder.dim,
    model: cache.modelId,
    index: index?.kind ?? 'none',
    quant: space.quant ?? cache.opts.quant,
    indexBuilding: index?.building ?? false,
    indexTail: index?.tail ?? 0,
    threshold: space.threshold ?? cache.opts.threshold,
    hits: space.hits,
    exactHits: space.exactHits,
    misses: space.misses,
    exactScans: space.exactScans,
    lookup: space.lookup.summary(),
    embed: space.embedTime.summary(),
    search: space.searchTime.summary(),
  };
}

/** SEMNS GET ns */
export function namespaceSettings(cache: SemanticCache, ns: string): NamespaceSettings {
  const space = cache.namespace(ns);
  return {
    name: space.name,
    threshold: space.threshold ?? cache.opts.threshold,
    index: space.indexKind ?? cache.opts.indexKind,
    quant: space.quant ?? cache.opts.quant,
    entries: space.entries.size,
  };
}
