/*
 * Reading vectors out of the vector store's slabs (vector-store.ts), here
 * and in the build worker (builder.ts), which runs the same code from source.
 *
 * A build used to copy every live vector into one Float32Array (150 MB at
 * 100,000 fp32 vectors, on the event loop) and move it to the worker. The
 * slabs are views of SharedArrayBuffers instead, and a build sends the
 * worker a SlabSource: the slabs (shared, not copied) and, for each
 * position of the index to build, the slot its vector is in. The worker
 * reads CHUNK vectors at a time into a buffer of its own and adds them, so
 * a build needs no second copy of the vectors (at 1,000,000 fp32 vectors:
 * 1.5 GB less at the peak, and seconds of copying off the event loop).
 *
 * The store may change while the worker reads: a slot freed and given to
 * another id, or a vector replaced. Either way the ids involved changed
 * during the build, so they are in its dirty set, buried in the built index
 * at the swap (jobs.ts), exactly as when a removed id left zeros in the old
 * snapshot. A slot of -1 (the id was gone when the build started) reads as
 * zeros, and is dirty too.
 *
 * q8 slabs hold codes (one signed byte per component, vector-store.ts); a
 * vector read back is the codes scaled to length 1.
 */

export const SLAB_READER_SOURCE = `
function readSlot(src, slot, out, off) {
  const dim = src.dim;
  if (slot < 0) {
    out.fill(0, off, off + dim);
    return;
  }
  const s = slot % src.slabSlots;
  const slab = src.slabs[(slot - s) / src.slabSlots];
  const at = s * dim;
  if (src.quant === 'fp32') {
    out.set(slab.subarray(at, at + dim), off);
    return;
  }
  let norm = 0;
  for (let i = 0; i < dim; i++) norm += slab[at + i] * slab[at + i];
  const k = norm === 0 ? 0 : 1 / Math.sqrt(norm);
  for (let i = 0; i < dim; i++) out[off + i] = slab[at + i] * k;
}
function eachChunk(src, chunk, fn) {
  const n = src.slots.length;
  const dim = src.dim;
  const buf = new Float32Array(Math.max(1, Math.min(n, chunk)) * dim);
  for (let at = 0; at < n; at += chunk) {
    const end = Math.min(n, at + chunk);
    for (let i = at; i < end; i++) readSlot(src, src.slots[i], buf, (i - at) * dim);
    fn(buf.subarray(0, (end - at) * dim));
  }
}
function sampleOf(src, count) {
  const n = src.slots.length;
  const take = Math.min(n, count);
  const out = new Float32Array(take * src.dim);
  for (let i = 0; i < take; i++) readSlot(src, src.slots[Math.floor((i * n) / take)], out, i * src.dim);
  return out;
}
function trainingSet(train, src, count) {
  return train || (src && count ? sampleOf(src, count) : undefined);
}
`;

/** Vectors the worker reads and adds per FAISS add() call. */
export const SOURCE_CHUNK = 4096;

/** Where a build's vectors are: the store's slabs, and a slot per position (-1: none). */
export interface SlabSource {
  dim: number;
  quant: 'fp32' | 'q8';
  slabSlots: number;
  slabs: (Float32Array | Int8Array)[];
  slots: Int32Array;
}

const compiled = new Function(
  `${SLAB_READER_SOURCE}; return { readSlot, eachChunk, sampleOf, trainingSet };`,
)() as {
  readSlot(src: SlabSource, slot: number, out: Float32Array, off: number): void;
  eachChunk(src: SlabSource, chunk: number, fn: (xs: Float32Array) => void): void;
  sampleOf(src: SlabSource, count: number): Float32Array;
  trainingSet(
    train: Float32Array | undefined,
    src: SlabSource | undefined,
    count: number | undefined,
  ): Float32Array | undefined;
};

/** The vector in `slot` into `out` at `off` (zeros for slot -1). */
export const readSlot = compiled.readSlot;
/** Every position's vector, `chunk` at a time, into `fn` (the buffer is reused). */
export const eachChunk = compiled.eachChunk;
/** About `count` vectors, evenly strided over the positions, in a fresh array. */
export const sampleOf = compiled.sampleOf;
/** `train` when given, else about `count` vectors of `src` (sampleOf), else undefined. */
export const trainingSet = compiled.trainingSet;
