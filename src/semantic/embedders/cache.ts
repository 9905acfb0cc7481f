/*
 * An LRU cache of vectors in front of an Embedder.
 *
 * Popular prompts come back again and again; their vectors do not change, so
 * a hit skips the model entirely. The LRU is a Map, which iterates in
 * insertion order: a hit deletes and re-inserts its key (moving it to the
 * young end), and eviction drops the first key (the oldest). Both are O(1).
 *
 * Keys are the texts exactly as given: callers that want "Hello!" and
 * "hello" to share a vector normalize before asking (normalize.ts), because
 * for a transformer model they are not the same input.
 *
 * Concurrent misses for the same text share one inner call instead of
 * embedding it twice. Callers always get their own copy of a vector, so one
 * of them writing into it cannot corrupt the cache.
 */
import type { Embedder } from '../types.js';
import { WrappedEmbedder } from './wrapped.js';

export interface CacheOptions {
  /** Most vectors kept. Default 10000; 0 keeps none (every text is a miss). */
  maxEntries?: number;
}

export interface CacheStats {
  hits: number;
  misses: number;
  /** hits / (hits + misses), 0 before the first lookup. */
  hitRate: number;
  size: number;
  maxEntries: number;
}

export interface SourcedVector {
  vector: Float32Array;
  /** true when the vector came from the cache, without asking the embedder. */
  cached: boolean;
}

export class CachedEmbedder extends WrappedEmbedder {
  readonly #maxEntries: number;
  readonly #lru = new Map<string, Float32Array>();
  /** Texts being embedded right now, so a concurrent miss waits instead of asking again. */
  readonly #inFlight = new Map<string, Promise<Float32Array>>();
  #hits = 0;
  #misses = 0;

  constructor(inner: Embedder, options: CacheOptions = {}) {
    super(inner);
    const { maxEntries = 10_000 } = options;
    if (!Number.isInteger(maxEntries) || maxEntries < 0)
      throw new RangeError(`maxEntries must be a non-negative integer, got ${maxEntries}`);
    this.#maxEntries = maxEntries;
  }

  get stats(): CacheStats {
    const lookups = this.#hits + this.#misses;
    return {
      hits: this.#hits,
      misses: this.#misses,
      hitRate: lookups === 0 ? 0 : this.#hits / lookups,
      size: this.#lru.size,
      maxEntries: this.#maxEntries,
    };
  }

  /** Drops every cached vector (e.g. after switching models); stats are kept. */
  clear(): void {
    this.#lru.clear();
  }

  async embed(texts: string[]): Promise<Float32Array[]> {
    return (await this.embedWithSource(texts)).map((r) => r.vector);
  }

  /** Like embed(), saying for each text whether its vector was cached (SEMEMBED). */
  async embedWithSource(texts: string[]): Promise<SourcedVector[]> {
    // Everything up to the await runs without interruption, so the in-flight
    // map seen here is exactly what concurrent calls have registered.
    const found = new Array<Float32Array | undefined>(texts.length);
    const waits = new Map<string, Promise<Float32Array>>();
    const toEmbed = new Set<string>(); // distinct misses nobody is embedding yet
    for (const [i, text] of texts.entries()) {
      const hit = this.#get(text);
      if (hit) {
        this.#hits++;
        found[i] = hit;
        continue;
      }
      this.#misses++;
      if (waits.has(text) || toEmbed.has(text)) continue;
      const joined = this.#inFlight.get(text);
      if (joined) waits.set(text, joined);
      else toEmbed.add(text);
    }
    if (toEmbed.size > 0) {
      const list = [...toEmbed];
      // Deferred a tick so the in-flight entries below exist before the call
      // can finish (and remove them), even if the inner embed throws at once.
      const call = Promise.resolve().then(() => this.#embedAndStore(list));
      for (const [i, text] of list.entries()) {
        const one = call.then((vs) => vs[i]!);
        waits.set(text, one);
        this.#inFlight.set(text, one);
      }
    }
    const vectors = await Promise.all(texts.map((text, i) => found[i] ?? waits.get(text)!));
    return vectors.map((v, i) => ({ vector: v.slice(), cached: found[i] !== undefined }));
  }

  async #embedAndStore(texts: string[]): Promise<Float32Array[]> {
    try {
      const vectors = await this.inner.embed(texts);
      if (!Array.isArray(vectors) || vectors.length !== texts.length)
        throw new Error(`embedder returned ${vectors?.length} vectors for ${texts.length} texts`);
      for (const [i, text] of texts.entries()) this.#put(text, vectors[i]!);
      return vectors;
    } finally {
      for (const text of texts) this.#inFlight.delete(text);
    }
  }

  #get(text: string): Float32Array | undefined {
    const v = this.#lru.get(text);
    if (v) {
      this.#lru.delete(text);
      this.#lru.set(text, v);
    }
    return v;
  }

  #put(text: string, vector: Float32Array): void {
    if (this.#maxEntries === 0) return;
    this.#lru.delete(text);
    this.#lru.set(text, vector);
    if (this.#lru.size > this.#maxEntries) {
      this.#lru.delete(this.#lru.keys().next().value as string);
    }
  }
}
