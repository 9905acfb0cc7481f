/*
 * Interfaces of the semantic-cache domain. Nothing here knows RESP: the
 * domain returns values and typed errors, command modules turn them into
 * replies (Principle 2).
 */
import { SemErr, type SemErrCode } from '../errors.js';

/** Turns texts into L2-normalized vectors of a fixed dimension. */
export interface Embedder {
  /** 'transformers' | 'openai' | 'hash' (or a test double's name). */
  readonly kind: string;
  /** Model identifier, e.g. 'Xenova/all-MiniLM-L6-v2'. */
  readonly model: string;
  /** Vector dimension; 0 until load() has resolved when it depends on the model. */
  readonly dim: number;
  /** Idempotent. Rejects with EmbedderUnavailableError when the model cannot be had. */
  load(): Promise<void>;
  /** One L2-normalized Float32Array per text, in order. */
  embed(texts: string[]): Promise<Float32Array[]>;
}

/**
 * The model id a record names (`kind:model:dim`): records of another id are
 * embedded again, on start (rebuild.ts) and on import (src/tools/import.ts).
 */
export function modelIdOf(e: Embedder): string {
  return `${e.kind}:${e.model}:${e.dim}`;
}

/**
 * Every error of the semantic domain carries a stable `code`: SemErr's (its
 * texts are in src/errors.ts; FILTER_SYNTAX and FILTER_TOO_LONG come as
 * filter.ts's FilterSyntaxError, which also says where), or the class's own
 * for the errors below that wrap a cause (EMBEDDER_UNAVAILABLE,
 * STORAGE_UNAVAILABLE, ACCESS_REFUSED).
 */
export class SemanticError extends Error {
  constructor(
    readonly code: SemErrCode | 'EMBEDDER_UNAVAILABLE' | 'STORAGE_UNAVAILABLE' | 'ACCESS_REFUSED',
    message: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** The model or the index from Redis is not loaded yet. */
export class LoadingError extends SemanticError {}
export class UnknownNamespaceError extends SemanticError {}
export class InvalidInputError extends SemanticError {}

/** The catalogue's error `code` with its text, as the class its reply needs. */
export function semError<C extends SemErrCode>(
  code: C,
  ...args: Parameters<(typeof SemErr)[C]>
): SemanticError {
  const text = (SemErr[code] as (...a: Parameters<(typeof SemErr)[C]>) => string)(...args);
  if (code === 'LOADING') return new LoadingError(code, text);
  if (code === 'UNKNOWN_NAMESPACE') return new UnknownNamespaceError(code, text);
  return new InvalidInputError(code, text);
}

/** The model cannot be loaded or reached; `remedy` says what the user can do. */
export class EmbedderUnavailableError extends SemanticError {
  constructor(
    message: string,
    readonly remedy: string,
  ) {
    super('EMBEDDER_UNAVAILABLE', message);
    this.name = 'EmbedderUnavailableError';
  }
}

export interface SearchHit {
  /** The caller's id for the vector (see VectorIndex.add). */
  id: number;
  /** Cosine similarity in [-1, 1] (inner product of normalized vectors). */
  score: number;
}

export type IndexKind = 'flat' | 'hnsw' | 'ivf';

/** How HNSW and IVF segments hold vectors: float32, or 8-bit scalar quantized (FAISS SQ8). */
export type Quant = 'fp32' | 'q8';
export const QUANTS: readonly Quant[] = ['fp32', 'q8'];

/**
 * A vector index keyed by the caller's own integer ids (FAISS renumbers on
 * removal and HNSW cannot remove; implementations hide both). Every method
 * validates its input so FAISS never sees anything it could throw on.
 */
export interface VectorIndex {
  readonly dim: number;
  /** The kind answering now (flat until an HNSW or IVF build is swapped in). */
  readonly kind: IndexKind;
  /** How its HNSW and IVF segments hold vectors (fp32 when it does not say). */
  readonly quant?: Quant;
  /** Live vectors. */
  readonly size: number;
  /** True when search() may miss vectors (HNSW, IVF); scan() is then exact. */
  readonly approximate: boolean;
  /** True while an index is built in the background. */
  readonly building: boolean;
  /** Live vectors added since the last build, searched exactly beside it. */
  readonly tail: number;
  /** Adds or replaces the vector of `id`. */
  add(id: number, vector: Float32Array): void;
  /**
   * `hold`: while bulk loading, vectors a snapshot about to be loaded holds:
   * kept for the load to take (fp32 HNSW, IVF, auto), not copied into the
   * tail; bulkLoad(false) adds to the tail those it did not take.
   */
  addBatch(ids: number[], vectors: Float32Array[], hold?: boolean): void;
  /** Room for `n` more vectors, made at once: for bulk adds of known size. */
  reserve?(n: number): void;
  remove(id: number): boolean;
  has(id: number): boolean;
  /** Up to k live hits, best first. */
  search(query: Float32Array, k: number): SearchHit[];
  /** search(), but may yield to the event loop (a long flat tail): then a promise. */
  searchYielding(query: Float32Array, k: number): SearchHit[] | Promise<SearchHit[]>;
  /** The exact best k, yielding as it goes; `accept` and `minScore` leave vectors out first. */
  scan(
    query: Float32Array,
    k: number,
    opts?: { accept?: (id: number) => boolean; minScore?: number },
  ): Promise<SearchHit[]>;
  /** On: no background build starts (the rebuild from Redis); off: one starts if due. */
  bulkLoad(on: boolean): void;
  /** The built main segment, serialized (undefined without one, or not supported). */
  exportMain?(): MainExport | undefined;
  /**
   * Make a serialized main segment this index's, read off the event loop;
   * resolves to the ids it covers. `transfer`: m.buffer may be moved away.
   */
  adoptMain?(m: MainImport, transfer?: boolean): Promise<number>;
  /** Resolves when no build runs (builds started meanwhile included). */
  settled(): Promise<void>;
  clear(): void;
}

/** A main segment as FAISS serializes it, with the id at each position (-1: dead). */
export interface MainExport {
  kind: IndexKind;
  efSearch: number;
  buffer: Buffer;
  ids: number[];
}

/** A MainExport to load, whose FAISS bytes may come in pieces (a snapshot's chunks, in order). */
export type MainImport = Omit<MainExport, 'buffer'> & { buffer: Buffer | readonly Buffer[] };

/** A background index build that ended (error: it failed). */
export interface BuildEvent {
  kind: IndexKind;
  vectors: number;
  ms: number;
  /** An extension: vectors added to a copy of the previous graph (the tail). */
  added?: number;
  error?: Error;
}

/** What the engine needs to make a namespace's index. */
export interface IndexSpec {
  dim: number;
  kind: IndexKind | 'auto';
  quant?: Quant;
  /** Told about every background build, for the log. */
  onBuild?: (event: BuildEvent) => void;
  /** Asked before an HNSW build starts (index/options.ts). */
  mayBuild?: (kind: IndexKind) => boolean;
}

/** Makes a namespace's index (index/vector-index.ts by default; tests may pass their own). */
export type IndexFactory = (spec: IndexSpec) => VectorIndex;

/**
 * Redis as the client that sent a command sees it: the keys a command reads
 * and writes for a client are read and written through this, as that client
 * (its ACL user, its database, its transaction), so Redis decides what the
 * client may do. Implemented by the command glue over the client's
 * connection (src/commands/semantic/access.ts).
 */
export interface KeyAccess {
  /** In a transaction: each command may ask once, and the answers come at EXEC. */
  readonly oneShot: boolean;
  /**
   * The value of each key as GET gives it to the client: null when it is
   * missing or holds no string, undefined when the client may not read it.
   */
  read(keys: Buffer[]): Promise<(Buffer | null | undefined)[]>;
  /** Whether each key exists, as EXISTS tells the client (undefined: may not read it). */
  exists(keys: Buffer[]): Promise<(boolean | undefined)[]>;
  /** SET as the client, with EX / PX / KEEPTTL. */
  write(key: Buffer, value: Buffer, ttlMode: string, ttl: string): Promise<void>;
  /** SEMINDEX: the client may read and write the key; its value (null: no such key). */
  readWritable(key: Buffer): Promise<Buffer | null>;
  /** DEL as the client; how many existed. */
  del(keys: Buffer[]): Promise<number>;
  /** DEL every key as the client, all or none (any refused: none); how many existed. */
  delAll(keys: Buffer[]): Promise<number>;
  /** Could the client DEL every key? Nothing is deleted. */
  mayDelAll(keys: Buffer[]): Promise<void>;
  /** May the client read server statistics (INFO)? */
  mayInfo(): Promise<void>;
}

/** Redis refused the client (NOAUTH, NOPERM, OOM, ...): `message` is Redis's own error text. */
export class AccessRefusedError extends SemanticError {
  constructor(message: string) {
    super('ACCESS_REFUSED', message);
  }
}

/** semcache's own connection to Redis fails or is refused; `remedy` says what to check. */
export class StorageUnavailableError extends SemanticError {
  constructor(
    message: string,
    readonly remedy: string,
  ) {
    super('STORAGE_UNAVAILABLE', message);
    this.name = 'StorageUnavailableError';
  }
}
