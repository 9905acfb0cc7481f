/*
 * Base of the embedders that wrap another (batching, cache): identity and
 * loading are the inner embedder's.
 */
import type { Embedder } from '../types.js';

export abstract class WrappedEmbedder implements Embedder {
  constructor(protected readonly inner: Embedder) {}

  get kind(): string {
    return this.inner.kind;
  }
  get model(): string {
    return this.inner.model;
  }
  get dim(): number {
    return this.inner.dim;
  }
  load(): Promise<void> {
    return this.inner.load();
  }

  abstract embed(texts: string[]): Promise<Float32Array[]>;
}
