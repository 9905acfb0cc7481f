/*
 * The JS copy of a namespace's live vectors, which HNSW and IVF builds
 * (build.ts), the swap (the new tail) and the exact scan (scan.ts) read.
 *
 * Model: slots in slabs of SLAB_SLOTS vectors each, one id -> slot map, and
 * a free list, so a vector costs its bytes plus a map entry rather than a
 * typed array of its own (about 260 bytes of object and backing-store
 * bookkeeping each before). Two encodings:
 * - 'fp32': the unit vector as given (dim * 4 bytes);
 * - 'q8': one signed byte per component, code[i] = round(127 x[i] / max|x|)
 *   (dim bytes; the scale need not be kept: the vectors are unit length, so
 *   a vector read back is the codes scaled to length 1). Its inner product
 *   with a unit query is off by about 1e-3 at 384 dimensions (test/unit).
 * Slabs are never shrunk, only reused; clear() drops them all. reserve()
 * makes the slabs for many vectors at once, as views of few large buffers:
 * V8 runs a full garbage collection each time 64 MB more of such memory is
 * made, so 1,000 slabs one by one (1.5 GB, a million fp32 vectors) cost 22
 * of them, each marking the whole heap (seconds with a million entries).
 * The slabs are views of SharedArrayBuffers: a build's worker reads them
 * where they are (source(), slab-reader.ts) instead of a copy of them all.
 */
import { dot } from '../dot.js';
import type { Quant } from '../types.js';
import { readSlot, type SlabSource } from './slab-reader.js';

export type { Quant } from '../types.js';

/** Vectors per slab: 1.5 MB of fp32 or 0.4 MB of q8 at 384 dimensions. */
export const SLAB_SLOTS = 1024;
/** The largest buffer reserve() makes its slabs in. */
const RESERVE_BLOCK_BYTES = 1 << 30;

export class VectorStore {
  readonly #slot = new Map<number, number>();
  readonly #free: number[] = [];
  /** Float32Array slabs for fp32, Int8Array for q8. */
  readonly #slabs: (Float32Array | Int8Array)[] = [];
  /** What readSlot() reads: the slabs above. */
  readonly #src: SlabSource;
  /** Bytes a vector takes in a slab: dim x 4 for fp32, dim for q8. */
  readonly #vectorBytes: number;
  #slots = 0;

  constructor(
    readonly dim: number,
    readonly quant: Quant,
  ) {
    this.#src = { dim, quant, slabSlots: SLAB_SLOTS, slabs: this.#slabs, slots: new Int32Array(0) };
    this.#vectorBytes = quant === 'fp32' ? dim * 4 : dim;
  }

  get #f32(): Float32Array[] {
    return this.#slabs as Float32Array[];
  }

  get #i8(): Int8Array[] {
    return this.#slabs as Int8Array[];
  }

  /**
   * Where vectors are, for a build's worker to read (slab-reader.ts): the
   * slabs themselves (shared memory) and `slots` (slotOf() of each id).
   */
  source(slots: Int32Array): SlabSource {
    return { ...this.#src, slabs: [...this.#slabs], slots };
  }

  /** The slot id's vector is in, -1 when it has none. */
  slotOf(id: number): number {
    return this.#slot.get(id) ?? -1;
  }

  get size(): number {
    return this.#slot.size;
  }

  /** Bytes of vector data allocated (slabs, free slots included). */
  get bytes(): number {
    const per = this.#vectorBytes;
    return Math.ceil(this.#slots / SLAB_SLOTS) * SLAB_SLOTS * per;
  }

  has(id: number): boolean {
    return this.#slot.has(id);
  }

  keys(): IterableIterator<number> {
    return this.#slot.keys();
  }

  /** Stores `v` (unit length, dim components) for `id`, replacing what it had. */
  set(id: number, v: Float32Array): void {
    let slot = this.#slot.get(id);
    if (slot === undefined) {
      slot = this.#free.pop() ?? this.#grow();
      this.#slot.set(id, slot);
    }
    const dim = this.dim;
    const s = slot % SLAB_SLOTS;
    const slab = (slot - s) / SLAB_SLOTS;
    if (this.quant === 'fp32') {
      this.#f32[slab]!.set(v, s * dim);
      return;
    }
    let max = 0;
    for (let i = 0; i < dim; i++) max = Math.max(max, Math.abs(v[i]!));
    const k = max === 0 ? 0 : 127 / max;
    const codes = this.#i8[slab]!;
    const at = s * dim;
    for (let i = 0; i < dim; i++) codes[at + i] = Math.round(v[i]! * k);
  }

  delete(id: number): boolean {
    const slot = this.#slot.get(id);
    if (slot === undefined) return false;
    this.#slot.delete(id);
    this.#free.push(slot);
    return true;
  }

  /** Writes id's vector (unit length) into `out` at `offset`; false when it has none. */
  read(id: number, out: Float32Array, offset = 0): boolean {
    const slot = this.#slot.get(id);
    if (slot === undefined) return false;
    readSlot(this.#src, slot, out, offset);
    return true;
  }

  /** id's vector in a fresh array, or undefined. */
  get(id: number): Float32Array | undefined {
    const out = new Float32Array(this.dim);
    return this.read(id, out) ? out : undefined;
  }

  /** Inner product of id's vector with `q`; undefined when it has none. */
  dot(id: number, q: Float32Array): number | undefined {
    const slot = this.#slot.get(id);
    if (slot === undefined) return undefined;
    const dim = this.dim;
    const s = slot % SLAB_SLOTS;
    const slab = (slot - s) / SLAB_SLOTS;
    if (this.quant === 'fp32') return dot(q, this.#f32[slab]!.subarray(s * dim, (s + 1) * dim));
    const codes = this.#i8[slab]!;
    const at = s * dim;
    let sum = 0;
    let norm = 0;
    for (let i = 0; i < dim; i++) {
      const c = codes[at + i]!;
      sum += c * q[i]!;
      norm += c * c;
    }
    return norm === 0 ? 0 : sum / Math.sqrt(norm);
  }

  clear(): void {
    this.#slot.clear();
    this.#free.length = 0;
    this.#slabs.length = 0;
    this.#slots = 0;
  }

  /** Slabs for `n` more vectors than are stored, made now, in few buffers. */
  reserve(n: number): void {
    const slabs = this.#slabs;
    const want = Math.ceil((this.#slots + Math.max(0, n - this.#free.length)) / SLAB_SLOTS);
    const slabBytes = SLAB_SLOTS * this.#vectorBytes;
    const perBlock = Math.max(1, Math.floor(RESERVE_BLOCK_BYTES / slabBytes));
    while (slabs.length < want) {
      const count = Math.min(perBlock, want - slabs.length);
      const block = new SharedArrayBuffer(count * slabBytes);
      for (let i = 0; i < count; i++) slabs.push(this.#slab(block, i * slabBytes));
    }
  }

  #grow(): number {
    const slot = this.#slots++;
    if (slot % SLAB_SLOTS === 0 && slot / SLAB_SLOTS >= this.#slabs.length) {
      this.#slabs.push(this.#slab(new SharedArrayBuffer(SLAB_SLOTS * this.#vectorBytes), 0));
    }
    return slot;
  }

  #slab(block: SharedArrayBuffer, at: number): Float32Array | Int8Array {
    const n = SLAB_SLOTS * this.dim;
    return this.quant === 'fp32' ? new Float32Array(block, at, n) : new Int8Array(block, at, n);
  }
}
