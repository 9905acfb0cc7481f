/*
 * Interfaces of the semantic-cache domain. Nothing here knows RESP: the
 * domain returns values and typed errors, command modules turn them into
 * replies (Principle 2).
 */

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

/** The model cannot be loaded or reached; `remedy` says what the user can do. */
export class EmbedderUnavailableError extends Error {
  constructor(
    message: string,
    readonly remedy: string,
  ) {
    super(message);
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

/**
 * A vector index keyed by the caller's own integer ids (FAISS renumbers on
 * removal and HNSW cannot remove; implementations hide both). Every method
 * validates its input so FAISS never sees anything it could throw on.
 */
export interface VectorIndex {
  readonly dim: number;
  readonly kind: IndexKind;
  /** Live vectors. */
  readonly size: number;
  /** Adds or replaces the vector of `id`. */
  add(id: number, vector: Float32Array): void;
  addBatch(ids: number[], vectors: Float32Array[]): void;
  remove(id: number): boolean;
  has(id: number): boolean;
  /** Up to k live hits, best first. */
  search(query: Float32Array, k: number): SearchHit[];
  clear(): void;
}
