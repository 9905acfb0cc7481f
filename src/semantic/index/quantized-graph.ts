/*
 * QUANT q8 graphs: an HNSW graph built on the float32 vectors, then given
 * 8-bit storage. Built on SQ8 distances instead (FAISS's `HNSW16,SQ8`),
 * the graph found 0.936 of the true top 10 at 100k clustered vectors and
 * took twice as long to build.
 *
 * FAISS reads a serialized IndexHNSWSQ ("IHNs") as its header, the HNSW
 * struct, then any index as its storage; so the built IndexHNSWFlat
 * ("IHNf") is serialized, its float32 storage (after the HNSW struct, whose
 * last fields are entry_point, max_level, efConstruction, efSearch and
 * upper_beam: five i32; layout in hnsw-params.ts) replaced by a serialized
 * IndexScalarQuantizer ("IxSQ") holding the same vectors in the same order,
 * and read back.
 *
 * The code is a string of plain JavaScript because the build worker
 * (builder.ts) runs it from source; this thread compiles the same source
 * for builds without the patched addon (inline) and for tests.
 */

export const QUANTIZED_GRAPH_SOURCE = `
function hnswStorageOffset(buf) {
  const items = [8, 4, 4, 8, 4];
  let off = 4 + 4 + 8 + 8 + 8 + 1;
  off += buf.readInt32LE(off) > 1 ? 8 : 4;
  for (const itemBytes of items) off += 8 + Number(buf.readBigUInt64LE(off)) * itemBytes;
  off += 20;
  if (off > buf.length) throw new Error('unexpected FAISS HNSW serialization (truncated)');
  return off;
}
function quantizedGraph(fromBuffer, graph, sq, vectors, train) {
  // vectors: all of them in one array, or a function that calls its argument with each chunk.
  const each = typeof vectors === 'function' ? vectors : (fn) => { if (vectors.length > 0) fn(vectors); };
  if (!train && typeof vectors === 'function') throw new Error('a q8 graph built from chunks needs a training sample');
  each((xs) => graph.add(xs));
  sq.train(train || vectors);
  each((xs) => sq.add(xs));
  const g = graph.toBuffer();
  if (graph.dispose) graph.dispose();
  const codes = sq.toBuffer();
  if (sq.dispose) sq.dispose();
  if (g.toString('latin1', 0, 4) !== 'IHNf' || codes.toString('latin1', 0, 4) !== 'IxSQ')
    throw new Error('a q8 graph needs an IHNf graph and an IxSQ storage');
  const out = Buffer.concat([g.subarray(0, hnswStorageOffset(g)), codes]);
  out.write('IHNs', 0, 'latin1');
  return fromBuffer(out);
}
`;

interface Buildable {
  add(x: Float32Array): void;
  train(x: Float32Array): void;
  toBuffer(): Buffer;
  dispose?(): void;
}

/**
 * `graph` (an empty IHNf) filled with `vectors`, its storage then replaced by
 * `sq` (an empty SQ8) trained on `train` and filled alike; read back with
 * `fromBuffer`. Both inputs are disposed of.
 */
export const quantizedGraph = new Function(
  `${QUANTIZED_GRAPH_SOURCE}; return quantizedGraph;`,
)() as <T extends Buildable>(
  fromBuffer: (b: Buffer) => T,
  graph: Buildable,
  sq: Buildable,
  vectors: Float32Array | ((fn: (xs: Float32Array) => void) => void),
  train: Float32Array | undefined,
) => T;
