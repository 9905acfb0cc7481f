/*
 * SEMDEL key [key ...]
 * SEMFLUSH [NS namespace]
 * SEMEMBED text
 * SEMINFO [NS namespace]
 */
import { R, type Reply } from '../../resp/writer.js';
import type { CacheInfo, NamespaceInfo, SemanticCache } from '../../semantic/engine.js';
import type { LatencySummary } from '../../semantic/stats.js';
import { parseOptions } from '../options.js';
import { accessOf, NS_ARG, spec } from './common.js';
import { guarded } from './errors.js';

const NS_ONLY = [NS_ARG];
const nsOption = (args: Buffer[]) => parseOptions(args, 1, NS_ONLY).string('namespace');

export const semdel = (engine: SemanticCache) =>
  spec(
    {
      name: 'semdel',
      arity: -2,
      flags: ['write'],
      firstKey: 1,
      lastKey: -1,
      keyStep: 1,
      summary: 'Delete keys and their semantic index entries; the number of keys that existed.',
      complexity: 'O(N) for N keys',
      arguments: [{ name: 'key', type: 'key', multiple: true }],
    },
    (args, ctx) =>
      guarded(async () => R.int(await engine.del(args.slice(1), accessOf(engine, ctx)))),
  );

export const semflush = (engine: SemanticCache) =>
  spec(
    {
      name: 'semflush',
      arity: -1,
      flags: ['write'],
      summary:
        'Delete every entry (value and index) of a namespace, or of all; the number deleted.',
      complexity: 'O(N) for the N entries',
      arguments: NS_ONLY,
    },
    (args, ctx) =>
      guarded(async () => R.int(await engine.flush(nsOption(args), accessOf(engine, ctx)))),
  );

export const semembed = (engine: SemanticCache) =>
  spec(
    {
      name: 'semembed',
      arity: 2,
      flags: ['readonly'],
      summary:
        'The embedding of a text, and whether it was computed or served from the embedding cache.',
      complexity: 'O(d)',
      arguments: [{ name: 'text', type: 'string' }],
    },
    (args) =>
      guarded(async () => {
        const { vector, cached } = await engine.embed(engine.text(args[1]!));
        return R.map([
          [R.bulk('vector'), R.array(Array.from(vector, (x) => R.double(x)))],
          [R.bulk('dim'), R.int(vector.length)],
          [R.bulk('source'), R.bulk(cached ? 'cached' : 'computed')],
          [R.bulk('model'), R.bulk(engine.modelId)],
        ]);
      }),
  );

function latency(name: string, s: LatencySummary) {
  return [
    [R.bulk(`${name}_count`), R.int(s.count)],
    [R.bulk(`${name}_mean_ms`), R.double(round(s.mean))],
    [R.bulk(`${name}_p50_ms`), R.double(round(s.p50))],
    [R.bulk(`${name}_p99_ms`), R.double(round(s.p99))],
  ] as Array<[Reply, Reply]>;
}

const round = (x: number) => Math.round(x * 1000) / 1000;

function namespaceInfo(i: NamespaceInfo): Reply {
  return R.map([
    [R.bulk('namespace'), R.bulk(i.name)],
    [R.bulk('entries'), R.int(i.entries)],
    [R.bulk('dimension'), R.int(i.dimension)],
    [R.bulk('model'), R.bulk(i.model)],
    [R.bulk('index'), R.bulk(i.index)],
    [R.bulk('quant'), R.bulk(i.quant)],
    // 1 while an index is built in a worker thread (index_tail: entries added since the last build).
    [R.bulk('index_building'), R.int(i.indexBuilding ? 1 : 0)],
    [R.bulk('index_tail'), R.int(i.indexTail)],
    [R.bulk('threshold'), R.double(i.threshold)],
    [R.bulk('hits'), R.int(i.hits)],
    [R.bulk('exact_hits'), R.int(i.exactHits)],
    [R.bulk('misses'), R.int(i.misses)],
    // Searches the approximate index answered short of, completed by an exact scan.
    [R.bulk('exact_scans'), R.int(i.exactScans)],
    ...latency('lookup', i.lookup),
    ...latency('embed', i.embed),
    ...latency('search', i.search),
  ]);
}

function cacheInfo(i: CacheInfo): Reply {
  const e = i.embed;
  const embedFields: Array<[Reply, Reply]> = e
    ? [
        [R.bulk('embed_model_calls'), R.int(e.modelCalls)],
        [R.bulk('embed_model_texts'), R.int(e.modelTexts)],
        [
          R.bulk('embed_batch_mean'),
          R.double(e.modelCalls === 0 ? 0 : round(e.modelTexts / e.modelCalls)),
        ],
        [R.bulk('embed_cache_hits'), R.int(e.cacheHits)],
        [R.bulk('embed_cache_misses'), R.int(e.cacheMisses)],
      ]
    : [];
  const f = i.feed;
  // This instance's position in the change feed the fleet shares (docs/fleet.md).
  const feedFields: Array<[Reply, Reply]> = f
    ? [
        [R.bulk('instance_id'), R.bulk(i.instance ?? '')],
        [R.bulk('feed_applied_id'), R.bulk(f.applied)],
        [R.bulk('feed_newest_id'), R.bulk(f.newest)],
        [R.bulk('feed_lag_ms'), R.int(f.lagMs)],
        [R.bulk('feed_events'), R.int(f.events)],
        [R.bulk('feed_resyncs'), R.int(f.resyncs)],
      ]
    : [];
  const k = i.keyspace;
  const keyspaceFields: Array<[Reply, Reply]> = k
    ? [
        [R.bulk('keyspace_events'), R.bulk(k.on ? 'on' : 'off')],
        [R.bulk('keyspace_drops'), R.int(k.drops)],
      ]
    : [];
  const s = i.snapshots;
  const snapshotFields: Array<[Reply, Reply]> = s
    ? [
        [R.bulk('snapshot_loads'), R.int(s.loads)],
        [R.bulk('snapshot_saves'), R.int(s.saves)],
        [R.bulk('snapshot_leases'), R.int(s.leases)],
        [R.bulk('snapshot_waiting'), R.int(s.waiting)],
      ]
    : [];
  return R.map([
    [R.bulk('state'), R.bulk(i.state)],
    [R.bulk('embedder'), R.bulk(i.embedder)],
    [R.bulk('model'), R.bulk(i.model)],
    [R.bulk('dimension'), R.int(i.dimension)],
    [R.bulk('entries'), R.int(i.entries)],
    [R.bulk('default_threshold'), R.double(i.defaultThreshold)],
    [R.bulk('namespaces'), R.array(i.namespaces.map((n) => R.bulk(n)))],
    ...embedFields,
    ...feedFields,
    ...keyspaceFields,
    ...snapshotFields,
  ]);
}

export const seminfo = (engine: SemanticCache) =>
  spec(
    {
      name: 'seminfo',
      arity: -1,
      flags: ['readonly', 'fast'],
      summary: 'Statistics of the semantic cache, or of one namespace.',
      complexity: 'O(number of namespaces)',
      arguments: NS_ONLY,
    },
    (args, ctx) =>
      guarded(async () => {
        await accessOf(engine, ctx).mayInfo();
        const ns = nsOption(args);
        return ns === undefined
          ? cacheInfo(engine.info())
          : namespaceInfo(engine.namespaceInfo(ns));
      }),
  );
