/*
 * When the vector index (vector-index.ts) builds, and what: pure decisions
 * from its options and its state. A build is due when the kind it should
 * have changed (an 'auto' index outgrowing autoThreshold, an 'ivf' index
 * reaching IVF_MIN_VECTORS), when the flat tail outgrew its bound (searching
 * it costs like a flat index of its size), or when tombstones passed
 * maxDeadRatio of the main segment. A due HNSW rebuild whose only reason
 * is the tail extends the graph instead (extendable()). docs/index.md has
 * the measurements behind the numbers.
 */
import type { IndexKind } from '../types.js';
import { patched } from './faiss.js';
import { IVF_MIN_VECTORS, type Settings } from './options.js';

/** The kind the main segment should be, at `size` live vectors. */
export function targetKind(o: Settings, size: number, hasMain: boolean): IndexKind {
  switch (o.kind) {
    case 'flat':
      return 'flat';
    case 'hnsw':
      return 'hnsw';
    case 'ivf':
      // Too few vectors to train on: the tail (flat, exact) serves them.
      return size >= IVF_MIN_VECTORS ? 'ivf' : 'flat';
    case 'auto':
      if (!hasMain && size <= o.autoThreshold) return 'flat';
      // IVF in the meantime needs the patched addon (so does any off-thread build).
      if (!hasMain && size > o.interimIvfAbove && patched()) return 'ivf';
      return 'hnsw';
  }
}

/** The longest the flat tail may grow beside a main segment. */
export function maxTail(o: Settings, size: number): number {
  return o.tailMax ?? Math.min(4096, Math.max(1024, Math.floor(size / 10)));
}

/** What to build now, if anything. */
export function buildDue(
  o: Settings,
  state: {
    size: number;
    tail: number;
    main: { kind: IndexKind; dead: number; stored: number } | undefined;
  },
): IndexKind | undefined {
  const { size, tail, main } = state;
  const kind = targetKind(o, size, main !== undefined);
  if (kind === 'flat' || size === 0) return undefined;
  const due =
    main === undefined ||
    main.kind !== kind ||
    tail > maxTail(o, size) ||
    main.dead > o.maxDeadRatio * main.stored;
  return due ? kind : undefined;
}

/**
 * Whether a due HNSW build may extend `main` with the tail instead of
 * building from every vector (build.ts): the graph is already HNSW, float32
 * (a q8 graph's links come from a float32 build, builder.ts), has no more
 * tombstones than allowed (an extension keeps them; a build drops them),
 * and the addon can copy it in a worker (patch v4).
 */
export function extendable(
  o: Settings,
  main: { kind: IndexKind; dead: number; stored: number } | undefined,
): boolean {
  return (
    o.extendGraph &&
    o.quant === 'fp32' &&
    main?.kind === 'hnsw' &&
    main.dead <= o.maxDeadRatio * main.stored &&
    patched()
  );
}
