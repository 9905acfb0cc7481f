/*
 * A main segment another index serialized (exportMain(), snapshot.ts shares
 * them across a fleet), read back as a Segment of this index: checked to be
 * of the kind, quantization and dimension expected before FAISS reads it
 * (FAISS's four-character code says which index class wrote the bytes),
 * with a position whose id is not live here made dead. FAISS reads it in a
 * worker thread.
 */
import type { MainImport, Quant } from '../types.js';
import { loadIndex } from './builder.js';
import { patched } from './faiss.js';
import { DEAD, Segment } from './segment.js';

/** The four-character code FAISS writes first, per kind and quantization. */
const FOURCC = { hnsw: { fp32: 'IHNf', q8: 'IHNs' }, ivf: { fp32: 'IwFl', q8: 'IwSq' } } as const;

/** The first four bytes of FAISS's serialization, whole or in (non-empty) pieces. */
function fourcc(bytes: Buffer | readonly Buffer[]): string {
  const head = Buffer.isBuffer(bytes)
    ? bytes
    : Buffer.concat(bytes.slice(0, 4).map((p) => p.subarray(0, 4)));
  return head.toString('latin1', 0, 4);
}

/** The quantization of a serialized HNSW or IVF index, from its four-character code. */
export function quantOf(bytes: Buffer | readonly Buffer[]): Quant | undefined {
  const code = fourcc(bytes);
  if (code === 'IHNf' || code === 'IwFl') return 'fp32';
  if (code === 'IHNs' || code === 'IwSq') return 'q8';
  return undefined;
}

/**
 * The segment `m` describes, read in a worker thread (builder.ts loadIndex:
 * FAISS's read of a large graph would stop the event loop for seconds).
 * `live` is asked once the index is read, so what was removed meanwhile is
 * dead. `transfer`: m.buffer may be moved to the worker (then unusable).
 */
export async function loadSegment(
  m: MainImport,
  o: { dim: number; quant: Quant; nprobe: number },
  live: (id: number) => boolean,
  transfer = false,
): Promise<Segment> {
  if (m.kind === 'flat') throw new Error('only HNSW and IVF are adopted');
  // Unpatched, a FAISS exception on bytes it cannot read would abort the process.
  if (!patched())
    throw new Error("loading a snapshot needs faiss-node built with semcache's patch");
  const want = FOURCC[m.kind][o.quant];
  if (fourcc(m.buffer) !== want)
    throw new Error(`not a ${o.quant} ${m.kind} index (FAISS ${want} expected)`);
  const { kind, efSearch, ids: given } = m;
  const faiss = await loadIndex(m.buffer, o.dim, transfer);
  try {
    // Saved as its last search left it: start from the base again.
    if (kind === 'hnsw') faiss.setParam('efSearch', efSearch);
    const ids = given.map((id) => (id >= 0 && live(id) ? id : DEAD));
    const segment = new Segment(kind, faiss, ids, efSearch);
    if (kind === 'ivf') segment.nprobe = o.nprobe;
    return segment;
  } catch (err) {
    faiss.dispose();
    throw err;
  }
}
