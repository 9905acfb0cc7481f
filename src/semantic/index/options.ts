/*
 * A vector index's options (vector-index.ts), their defaults and checks, and
 * the efSearch HNSW gets when none is set. docs/index.md has the
 * measurements behind the defaults.
 */
import { type BuildEvent, type IndexKind, QUANTS, type Quant } from '../types.js';
import { type BuildInput, buildIndex } from './builder.js';
import { type FaissIndex, type HnswParams, patched } from './faiss.js';
import { intOption } from './validate.js';

export interface VectorIndexOptions {
  dim: number;
  kind: IndexKind | 'auto';
  /**
   * How HNSW and IVF segments and the JS copy hold vectors: float32, or 8-bit
   * scalar quantized (FAISS SQ8); default fp32. The flat tail is float32 always.
   */
  quant?: Quant;
  /** HNSW graph degree (FAISS's M); default 16. */
  hnswM?: number;
  /** Candidate list size while searching HNSW; default autoEfSearch() of the vectors built. */
  efSearch?: number;
  /** Candidate list size while inserting into HNSW; default 40. */
  efConstruction?: number;
  /** IVF lists; default: the square root of the vectors at build time. */
  nlist?: number;
  /** IVF lists searched per query; default 16. */
  nprobe?: number;
  /** 'auto' switches to HNSW when more vectors than this are live; default 2048. */
  autoThreshold?: number;
  /** Tombstones, as a fraction of the main segment, that trigger a rebuild; default 0.3. */
  maxDeadRatio?: number;
  /** Largest tail before a rebuild; default: a tenth of the live vectors, within [1024, 4096]. */
  tailMax?: number;
  /** 'auto' builds IVF before its first graph when more vectors than this are live; default 4096. */
  interimIvfAbove?: number;
  /** Told about every background build, for the log. */
  onBuild?: (event: BuildEvent) => void;
  /**
   * Asked before an HNSW build starts; false: not now (another instance of
   * the fleet builds it, snapshot-sync.ts), asked again on the next write or
   * bulkLoad(false).
   */
  mayBuild?: (kind: IndexKind) => boolean;
  /** After a failed build, no new one starts for this long; default 60 s. */
  retryAfterMs?: number;
  /**
   * A rebuild of the main segment's kind waits, after the last, this many
   * times as long as that took (10 s at most, jobs.ts); default 1, 0: none.
   */
  buildRest?: number;
  /** Builds an index off the event loop; default index/builder.ts (tests inject faults). */
  builder?: (input: BuildInput) => Promise<FaissIndex>;
  /**
   * A float32 HNSW graph whose tail outgrew its bound is extended with the
   * tail in a worker (policy.ts extendable()) rather than built again from
   * every vector; default false (docs/index.md, "Extending the graph").
   */
  extendGraph?: boolean;
}

export const DEFAULT_AUTO_THRESHOLD = 2048;
/** IVF below this many vectors would be trained on too little. */
export const IVF_MIN_VECTORS = 1024;
/** FAISS's k-means wants at least 39 training points per list; we give up to 64. */
export const IVF_TRAIN_PER_LIST = 64;
export const DEFAULT_INTERIM_IVF_ABOVE = 4096;
const DEFAULT_RETRY_AFTER_MS = 60_000;
/**
 * HNSW's efSearch when none is set, by the vectors in the graph: the lowest
 * of 64/128/256 with recall@10 >= 0.95 on both clustered and low-rank data in
 * bench/recall.mjs at 10k (64: 1.000 / 0.967), 20k-50k (128: 0.984-0.999 /
 * 0.968-0.990) and 100k (256: 0.957 / 0.987); docs/index.md, "Recall as
 * shipped". Not measured beyond 100k. 256 costs 0.6-2.4 ms per search at
 * 100k on that data (3 ms on uniformly random vectors). A q8 graph (its
 * walk over SQ8 distances) needs 384 above 50k: recall@10 0.946 with 256,
 * 0.954 with 384, 0.955 with 512 at 100k clustered vectors (bench/quant.mjs
 * --ef-search, 2026-12-07); at 10k and 50k the fp32 values give it 0.985
 * and 0.967.
 */
export function autoEfSearch(vectors: number, quant: Quant = 'fp32'): number {
  if (vectors <= 10_000) return 64;
  if (vectors <= 50_000) return 128;
  return quant === 'q8' ? 384 : 256;
}

/** The options as the index uses them: checked, with their defaults. */
export interface Settings {
  dim: number;
  kind: IndexKind | 'auto';
  quant: Quant;
  /** HNSW's M and efConstruction (efSearch below). */
  hnsw: Omit<HnswParams, 'efSearch'>;
  /** Set by the caller, or undefined: autoEfSearch() of each build. */
  efSearch: number | undefined;
  nlist: number | undefined;
  nprobe: number;
  autoThreshold: number;
  maxDeadRatio: number;
  tailMax: number | undefined;
  interimIvfAbove: number;
  onBuild: ((e: BuildEvent) => void) | undefined;
  mayBuild: ((kind: IndexKind) => boolean) | undefined;
  retryAfterMs: number;
  buildRest: number;
  builder: (input: BuildInput) => Promise<FaissIndex>;
  extendGraph: boolean;
}

/** Checks every option (RangeError) and fills in the defaults. */
export function resolveOptions(opts: VectorIndexOptions): Settings {
  const kind = opts.kind;
  if (kind !== 'flat' && kind !== 'hnsw' && kind !== 'ivf' && kind !== 'auto') {
    throw new RangeError(`index kind must be flat, hnsw, ivf or auto, got ${String(kind)}`);
  }
  const maxDeadRatio = opts.maxDeadRatio ?? 0.3;
  if (!(maxDeadRatio > 0 && maxDeadRatio < 1)) {
    throw new RangeError('maxDeadRatio must be in (0, 1)');
  }
  if (kind === 'ivf' && !patched()) {
    throw new RangeError(
      "index kind ivf needs faiss-node built with semcache's patch (bash scripts/build-faiss.sh)",
    );
  }
  const quant = opts.quant ?? 'fp32';
  if (!QUANTS.includes(quant)) {
    throw new RangeError(`quant must be ${QUANTS.join(' or ')}, got ${String(quant)}`);
  }
  const MAX = Number.MAX_SAFE_INTEGER;
  return {
    dim: intOption('dim', opts.dim ?? Number.NaN, 0, 1, 65536),
    kind,
    quant,
    hnsw: {
      m: intOption('hnswM', opts.hnswM, 16, 2, 256),
      efConstruction: intOption('efConstruction', opts.efConstruction, 40, 1, 100_000),
    },
    efSearch:
      opts.efSearch === undefined ? undefined : intOption('efSearch', opts.efSearch, 0, 1, 100_000),
    nlist: opts.nlist === undefined ? undefined : intOption('nlist', opts.nlist, 0, 1, 1 << 20),
    nprobe: intOption('nprobe', opts.nprobe, 16, 1, 1 << 20),
    autoThreshold: intOption('autoThreshold', opts.autoThreshold, DEFAULT_AUTO_THRESHOLD, 1, MAX),
    maxDeadRatio,
    tailMax: opts.tailMax === undefined ? undefined : intOption('tailMax', opts.tailMax, 0, 1, MAX),
    interimIvfAbove: intOption(
      'interimIvfAbove',
      opts.interimIvfAbove,
      DEFAULT_INTERIM_IVF_ABOVE,
      IVF_MIN_VECTORS,
      MAX,
    ),
    onBuild: opts.onBuild,
    mayBuild: opts.mayBuild,
    retryAfterMs: intOption('retryAfterMs', opts.retryAfterMs, DEFAULT_RETRY_AFTER_MS, 0, MAX),
    buildRest: intOption('buildRest', opts.buildRest, 1, 0, 100),
    builder: opts.builder ?? buildIndex,
    extendGraph: opts.extendGraph ?? false,
  };
}
