/*
 * Setting HNSW's efConstruction and efSearch through faiss-node, which has no
 * setter for them: serialize the (empty) index, overwrite the two ints, and
 * read it back. FAISS 1.7.x's defaults (efConstruction 40, efSearch 16) are
 * too low for 384-d embeddings, and asking search() for more results does not
 * make up for it: in 1.7.3 the stopping rule of the graph walk uses the
 * index's efSearch, whatever k is.
 *
 * Layout, from faiss/impl/index_write.cpp (write_index for IndexHNSWFlat,
 * write_index_header, write_HNSW), little-endian:
 *   "IHNf"  d:i32  ntotal:i64  dummy:i64  dummy:i64  is_trained:u8  metric:i32
 *   [metric_arg:f32 when metric > 1]
 *   five vectors, each size:u64 then items: assign_probas (f64),
 *   cum_nneighbor_per_level (i32), levels (i32), offsets (u64), neighbors (i32)
 *   entry_point:i32  max_level:i32  efConstruction:i32  efSearch:i32 ...
 * The same in FAISS 1.7.4, which faiss-node's prebuilt binaries use.
 */

const VECTOR_ITEM_BYTES = [8, 4, 4, 8, 4] as const;

/** Returns `buf` with efConstruction and efSearch set; throws if `buf` is not an empty IHNf. */
export function setHnswParams(buf: Buffer, efConstruction: number, efSearch: number): Buffer {
  const fail = (why: string): never => {
    throw new Error(`unexpected FAISS HNSW serialization (${why}); cannot set efSearch`);
  };
  if (buf.length < 33 || buf.toString('latin1', 0, 4) !== 'IHNf') fail('not IndexHNSWFlat');
  if (buf.readBigInt64LE(8) !== 0n) fail('index not empty');
  let off = 4 + 4 + 8 + 8 + 8 + 1;
  const metric = buf.readInt32LE(off);
  off += metric > 1 ? 8 : 4;
  for (const itemBytes of VECTOR_ITEM_BYTES) {
    if (off + 8 > buf.length) fail('truncated');
    const n = buf.readBigUInt64LE(off);
    if (n > 1024n) fail('vector too long for an empty index');
    off += 8 + Number(n) * itemBytes;
  }
  off += 8; // entry_point, max_level
  if (off + 8 > buf.length) fail('truncated');
  buf.writeInt32LE(efConstruction, off);
  buf.writeInt32LE(efSearch, off + 4);
  return buf;
}
