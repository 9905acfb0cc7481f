/*
 * Micro-batching in front of an Embedder.
 *
 * A model embeds 32 texts in little more time than one, so concurrent
 * embed() calls (one per client's SEMGET) are queued and sent as one inner
 * call. Ordering model:
 *   - at most one inner call is in flight at a time;
 *   - the first request to find the embedder idle starts a timer of
 *     maxWaitMs, the longest it waits for company; the batch leaves when the
 *     timer fires or as soon as it holds maxBatch distinct texts;
 *   - while an inner call is in flight, requests accumulate and the next
 *     batch leaves the moment it returns (the flight time was the wait);
 *   - a batch holds at most maxBatch distinct texts; a duplicate text in the
 *     same batch rides along for free; a request larger than maxBatch spans
 *     several batches;
 *   - a failed inner call rejects the requests with texts in that batch and
 *     no others.
 * With `enabled: false` every call goes straight through, for benchmarks.
 */
import type { Embedder } from '../types.js';
import { WrappedEmbedder } from './wrapped.js';

export interface BatchingOptions {
  /** Most distinct texts per inner call. Default 32. */
  maxBatch?: number;
  /** Longest the first request of a batch waits for company. Default 2. */
  maxWaitMs?: number;
  /** false: no batching, each call is one inner call. Default true. */
  enabled?: boolean;
}

export interface BatchingStats {
  /** embed() calls. */
  requests: number;
  /** Texts asked for, duplicates included. */
  texts: number;
  /** Inner embed() calls. */
  batches: number;
  /** Texts sent to the inner embedder, after merging duplicates. */
  embedded: number;
  /** embedded / batches, 0 before the first batch. */
  avgBatchSize: number;
}

/** One embed() call waiting for its vectors. */
interface Pending {
  texts: string[];
  vectors: Float32Array[];
  /** Texts of this request not yet placed in a batch. */
  next: number;
  /** Texts of this request still without a vector. */
  missing: number;
  failed: boolean;
  resolve(vectors: Float32Array[]): void;
  reject(err: unknown): void;
}

/** Where a batch's vector goes: a text of a pending request. */
interface Slot {
  request: Pending;
  at: number;
}

export class BatchingEmbedder extends WrappedEmbedder {
  readonly #maxBatch: number;
  readonly #maxWaitMs: number;
  readonly #enabled: boolean;
  readonly #queue: Pending[] = [];
  /** Distinct texts queued but not yet in a batch (to flush at maxBatch without waiting). */
  #queuedDistinct = new Set<string>();
  #timer: NodeJS.Timeout | undefined;
  #inFlight = false;
  readonly #stats = { requests: 0, texts: 0, batches: 0, embedded: 0 };

  constructor(inner: Embedder, options: BatchingOptions = {}) {
    super(inner);
    const { maxBatch = 32, maxWaitMs = 2, enabled = true } = options;
    if (!Number.isInteger(maxBatch) || maxBatch < 1)
      throw new RangeError(`maxBatch must be a positive integer, got ${maxBatch}`);
    if (!(maxWaitMs >= 0)) throw new RangeError(`maxWaitMs must be >= 0, got ${maxWaitMs}`);
    this.#maxBatch = maxBatch;
    this.#maxWaitMs = maxWaitMs;
    this.#enabled = enabled;
  }

  get stats(): BatchingStats {
    const s = this.#stats;
    return { ...s, avgBatchSize: s.batches === 0 ? 0 : s.embedded / s.batches };
  }

  embed(texts: string[]): Promise<Float32Array[]> {
    this.#stats.requests++;
    this.#stats.texts += texts.length;
    if (texts.length === 0) return Promise.resolve([]);
    if (!this.#enabled) {
      this.#stats.batches++;
      this.#stats.embedded += texts.length;
      return this.inner.embed(texts);
    }
    return new Promise((resolve, reject) => {
      this.#queue.push({
        texts,
        vectors: new Array<Float32Array>(texts.length),
        next: 0,
        missing: texts.length,
        failed: false,
        resolve,
        reject,
      });
      for (const t of texts) this.#queuedDistinct.add(t);
      this.#schedule();
    });
  }

  #schedule(): void {
    if (this.#inFlight || this.#queue.length === 0) return;
    if (this.#queuedDistinct.size >= this.#maxBatch) {
      this.#flush();
    } else if (!this.#timer) {
      // 0: no waiting beyond this turn of the event loop (requests read from
      // sockets in the same turn still share the call; later ones queue up
      // while it runs and go in the next).
      this.#timer =
        this.#maxWaitMs === 0
          ? (setImmediate(() => this.#flush()) as unknown as NodeJS.Timeout)
          : setTimeout(() => this.#flush(), this.#maxWaitMs);
    }
  }

  #flush(): void {
    if (this.#maxWaitMs === 0) clearImmediate(this.#timer as unknown as NodeJS.Immediate);
    else clearTimeout(this.#timer);
    this.#timer = undefined;
    const { texts, slots } = this.#take();
    this.#recount();
    if (texts.length === 0) return;
    this.#inFlight = true;
    this.#stats.batches++;
    this.#stats.embedded += texts.length;
    // The inner embedder may throw synchronously; treat it as a rejection.
    Promise.resolve()
      .then(() => this.inner.embed(texts))
      .then(
        (vectors) => this.#deliver(texts, slots, vectors),
        (err: unknown) => this.#fail(slots, err),
      )
      .finally(() => {
        this.#inFlight = false;
        // What queued up during the flight goes now: it has waited already.
        if (this.#queue.length > 0) this.#flush();
      });
  }

  /** Takes up to maxBatch distinct texts off the queue, FIFO. */
  #take(): { texts: string[]; slots: Slot[][] } {
    const index = new Map<string, number>();
    const texts: string[] = [];
    const slots: Slot[][] = [];
    while (this.#queue.length > 0) {
      const request = this.#queue[0]!;
      if (request.failed) {
        this.#queue.shift();
        continue;
      }
      while (request.next < request.texts.length) {
        const text = request.texts[request.next]!;
        let i = index.get(text);
        if (i === undefined) {
          if (texts.length === this.#maxBatch) return { texts, slots };
          i = texts.push(text) - 1;
          index.set(text, i);
          slots.push([]);
        }
        slots[i]!.push({ request, at: request.next++ });
      }
      this.#queue.shift();
    }
    return { texts, slots };
  }

  #deliver(texts: string[], slots: Slot[][], vectors: Float32Array[]): void {
    if (!Array.isArray(vectors) || vectors.length !== texts.length) {
      const got = Array.isArray(vectors) ? vectors.length : typeof vectors;
      this.#fail(slots, new Error(`embedder returned ${got} vectors for ${texts.length} texts`));
      return;
    }
    const done = new Set<Pending>();
    for (const [i, targets] of slots.entries()) {
      for (const [k, { request, at }] of targets.entries()) {
        // A duplicate gets its own copy: callers may not expect to share.
        request.vectors[at] = k === 0 ? vectors[i]! : vectors[i]!.slice();
        if (--request.missing === 0) done.add(request);
      }
    }
    for (const request of done) if (!request.failed) request.resolve(request.vectors);
  }

  #fail(slots: Slot[][], err: unknown): void {
    for (const targets of slots) {
      for (const { request } of targets) {
        if (request.failed) continue;
        request.failed = true;
        request.reject(err);
      }
    }
    // Their texts still queued for later batches are dropped: the caller has its answer.
    this.#recount();
  }

  /** Recomputes the distinct texts still queued, after a take or a failure. */
  #recount(): void {
    this.#queuedDistinct = new Set();
    for (const r of this.#queue) {
      if (r.failed) continue;
      for (let i = r.next; i < r.texts.length; i++) this.#queuedDistinct.add(r.texts[i]!);
    }
  }
}
