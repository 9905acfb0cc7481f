/*
 * One background build of a vector index's main segment (vector-index.ts
 * decides when): where the live vectors are (their slots in the vector
 * store's shared slabs, looked up LOOKUP_CHUNK at a time with a turn of
 * the event loop between chunks; the worker reads the vectors there,
 * slab-reader.ts); an empty FAISS index of the kind (HNSW with its efSearch, IVF
 * with nlist = sqrt(n) and a strided training sample; with quant q8, SQ8
 * storage, whose per-dimension ranges are trained on such a sample too,
 * HNSW's included); the build itself in
 * a worker thread (builder.ts); and the segment that maps FAISS positions
 * back to ids. The caller buries what changed meanwhile at the swap.
 *
 * An extension (`base`: the main HNSW segment, whose tail outgrew its
 * bound) snapshots only the tail's vectors; the worker adds them to a copy
 * of the base's graph, and the new segment holds the base's slots (its
 * tombstones too) followed by the tail's ids.
 */
import { setImmediate as yieldToLoop } from 'node:timers/promises';

import type { IndexKind } from '../types.js';
import { type FaissIndex, newHnswIP, newIvfIP, newSq8IP, patched } from './faiss.js';
import { autoEfSearch, IVF_TRAIN_PER_LIST, type Settings } from './options.js';
import { Segment } from './segment.js';
import type { SlabSource } from './slab-reader.js';
import type { VectorStore } from './vector-store.js';

/** Slots looked up for a build per turn of the event loop. */
const LOOKUP_CHUNK = 4096;
/** Vectors SQ8 learns its per-dimension ranges from (HNSW; IVF trains on its own sample). */
const SQ_TRAIN = 65_536;

export interface BuildRequest {
  kind: IndexKind;
  /** The ids to build from, in the order their vectors go to FAISS (after `base`'s). */
  ids: number[];
  /** An HNSW segment to copy and extend with `ids`, instead of building from them alone. */
  base?: Segment | undefined;
  /** Live vectors by id (read while the snapshot is copied). */
  vectors: VectorStore;
  settings: Settings;
  /** False once the index was cleared: the build is thrown away. */
  alive: () => boolean;
}

/** The built segment, or undefined when the index was cleared meanwhile. */
export async function buildSegment(req: BuildRequest): Promise<Segment | undefined> {
  const { kind, ids, settings: o } = req;
  const n = ids.length;
  const dim = o.dim;
  if (req.base !== undefined) return extend(req, req.base);
  const source = await locate(req);
  if (source === undefined) return undefined;
  const efSearch = o.efSearch ?? autoEfSearch(n, o.quant);
  let template: FaissIndex;
  let trainCount: number | undefined;
  let storage: Buffer | undefined;
  if (kind === 'ivf') {
    const nlist = Math.max(1, Math.min(o.nlist ?? Math.round(Math.sqrt(n)), Math.floor(n / 39)));
    template = newIvfIP(dim, { nlist, nprobe: o.nprobe }, o.quant);
    trainCount = Math.min(n, Math.max(nlist * IVF_TRAIN_PER_LIST, sqTrain(o)));
  } else {
    // q8: the graph is built on the float32 vectors, then stored in SQ8 (builder.ts).
    template = newHnswIP(dim, { ...o.hnsw, efSearch });
    if (o.quant === 'q8') {
      trainCount = Math.min(n, SQ_TRAIN);
      const sq = newSq8IP(dim);
      storage = sq.toBuffer();
      sq.dispose();
    }
  }
  const faiss = await o.builder({ template, source, trainCount, storage });
  if (!req.alive()) {
    faiss.dispose();
    return undefined;
  }
  return new Segment(kind, faiss, ids, efSearch);
}

/** `base`'s graph copied and extended with the vectors of `req.ids` (builder.ts). */
async function extend(req: BuildRequest, base: Segment): Promise<Segment | undefined> {
  const slots = base.slotIds(); // the job's view: what is buried from now on is dirty
  const source = await locate(req);
  // A load or a clear meanwhile replaced or freed the base: abandoned.
  if (source === undefined || !req.alive() || base.disposed) return undefined;
  const faiss = await req.settings.builder({ template: base.faiss, source, extend: true });
  if (!req.alive()) {
    faiss.dispose();
    return undefined;
  }
  const efSearch =
    req.settings.efSearch ?? autoEfSearch(base.live + req.ids.length, req.settings.quant);
  if (patched()) faiss.setParam('efSearch', efSearch);
  return new Segment('hnsw', faiss, [...slots, ...req.ids], efSearch);
}

/**
 * Where the vectors of `ids` are (slab-reader.ts): the store's slabs and
 * each id's slot. An id removed meanwhile, or replaced, is in the build's
 * dirty set and buried in the built index at the swap, whatever the worker
 * reads for it. Undefined when the index was cleared meanwhile.
 */
async function locate(req: BuildRequest): Promise<SlabSource | undefined> {
  const { ids, vectors } = req;
  const slots = new Int32Array(ids.length);
  for (let at = 0; at < ids.length; at += LOOKUP_CHUNK) {
    if (at > 0) {
      await yieldToLoop();
      if (!req.alive()) return undefined;
    }
    const end = Math.min(ids.length, at + LOOKUP_CHUNK);
    for (let i = at; i < end; i++) slots[i] = vectors.slotOf(ids[i]!);
  }
  return vectors.source(slots);
}

function sqTrain(o: Settings): number {
  return o.quant === 'q8' ? SQ_TRAIN : 0;
}
