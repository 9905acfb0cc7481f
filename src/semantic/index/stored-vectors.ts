/*
 * The vectors inside a serialized fp32 HNSW index, read without FAISS: an
 * instance that joins takes the vectors of the entries a snapshot covers
 * from it instead of reading every record's `vec` from Redis (docs/fleet.md,
 * "Joining").
 *
 * Model: FAISS writes an IndexHNSWFlat as its fourcc 'IHNf', header and
 * graph, then its storage, an IndexFlatIP: fourcc 'IxFI', the index header
 * (d: i32, ntotal: i64, two i64 placeholders, is_trained: u8, metric: i32),
 * then the vectors as one array (u64 count of floats, then the floats, in
 * position order), which ends the bytes. Each of those fields is checked
 * against what the snapshot says (dimension, positions, inner product)
 * before a vector is read; anything else (q8, another FAISS layout) gives
 * no reader, and the caller reads the vectors from Redis as before.
 */

/** Bytes of FAISS's index header after the fourcc: d, ntotal, 2 placeholders, is_trained, metric. */
const HEADER = 4 + 8 + 8 + 8 + 1 + 4;
const METRIC_INNER_PRODUCT = 0;

/** Bytes at absolute offsets of a list of chunks. */
class Chunked {
  readonly #starts: number[] = [];
  readonly length: number;

  constructor(readonly chunks: readonly Buffer[]) {
    let n = 0;
    for (const c of chunks) {
      this.#starts.push(n);
      n += c.length;
    }
    this.length = n;
  }

  /** Copies bytes [at, at + length) into `out` from `offset` on (no views made: one per vector cost more than the copy). */
  copy(at: number, out: Buffer, offset = 0, length = out.length - offset): void {
    let i = this.#chunkAt(at);
    let done = 0;
    while (done < length) {
      const c = this.chunks[i]!;
      const from = at + done - this.#starts[i]!;
      done += c.copy(out, offset + done, from, Math.min(c.length, from + length - done));
      i++;
    }
  }

  #chunkAt(at: number): number {
    let [lo, hi] = [0, this.#starts.length - 1];
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.#starts[mid]! <= at) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  bytes(at: number, n: number): Buffer {
    const out = Buffer.alloc(n);
    this.copy(at, out);
    return out;
  }
}

/**
 * A reader of the vector at each position of the fp32 HNSW index serialized
 * in `chunks` (in order), which must hold `positions` vectors of `dim`
 * floats, copying into `out` and returning it; undefined when the bytes are
 * not laid out as expected.
 */
export function storedVectors(
  chunks: readonly Buffer[],
  positions: number,
  dim: number,
): ((pos: number, out: Float32Array) => Float32Array) | undefined {
  const b = new Chunked(chunks);
  const floats = positions * dim;
  const data = b.length - floats * 4;
  const count = data - 8;
  const header = count - HEADER;
  const fourcc = header - 4;
  if (positions < 1 || dim < 1 || fourcc < 4) return undefined;
  if (b.bytes(0, 4).toString('latin1') !== 'IHNf') return undefined;
  if (b.bytes(fourcc, 4).toString('latin1') !== 'IxFI') return undefined;
  const h = b.bytes(header, HEADER);
  if (h.readInt32LE(0) !== dim || h.readBigInt64LE(4) !== BigInt(positions)) return undefined;
  if (h.readInt32LE(HEADER - 4) !== METRIC_INNER_PRODUCT) return undefined;
  if (b.bytes(count, 8).readBigUInt64LE(0) !== BigInt(floats)) return undefined;
  // A Buffer over the caller's memory, made again only when it passes other memory.
  let bytes: Buffer = Buffer.alloc(0);
  return (pos, out) => {
    if (!Number.isInteger(pos) || pos < 0 || pos >= positions || out.length !== dim) {
      throw new RangeError(`no position ${pos} of ${positions}, or not ${dim} floats`);
    }
    if (bytes.buffer !== out.buffer) bytes = Buffer.from(out.buffer);
    b.copy(data + pos * dim * 4, bytes, out.byteOffset, dim * 4);
    return out;
  };
}
