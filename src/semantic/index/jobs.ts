/*
 * The background work of a vector index (vector-index.ts): at most one job
 * at a time, either a build of the main segment (build.ts, in a worker
 * thread) or the load of one another instance built (adopt.ts, read in a
 * worker thread too). The index tells this file of every id it adds or
 * removes while a job runs; the job's segment holds those as they were when
 * it started, so at the install they are buried in it and their live vectors
 * form the new tail.
 *
 * When a build starts: after a write, unless bulk loading is on (the rebuild
 * from Redis), a build failed less than retryAfterMs ago, or a job runs;
 * policy.ts says whether one is due and of what kind; mayBuild may defer an
 * HNSW build to another instance of the fleet (it then adopts the snapshot).
 * An extension of the HNSW graph with its tail (policy.ts extendable())
 * costs the tail's inserts only, and is deferred alike: in a fleet, one
 * instance extending and sharing beats every instance extending its own
 * (docs/benchmarks.md §7).
 * A rebuild of the main segment's own kind first rests, after the previous
 * one, as long as that one took (REST_MAX_MS at most): builds of a small
 * namespace take at most half of the time, and a fleet's instances no
 * longer rebuild back to back while it grows fast (docs/benchmarks.md §7).
 * reset() (the index cleared) and a new load abandon what runs: its result is
 * thrown away when it comes back.
 */
import type { IndexKind, MainImport } from '../types.js';
import { loadSegment } from './adopt.js';
import { buildSegment } from './build.js';
import type { Settings } from './options.js';
import { buildDue, extendable } from './policy.js';
import type { Segment } from './segment.js';
import type { VectorStore } from './vector-store.js';

/** What the index lends its jobs. */
export interface JobHost {
  /** What policy.ts reads to decide on a build. */
  state(): { size: number; tail: number; main: Segment | undefined };
  /** `segment` becomes the main one; `dirty` ids are buried in it, the live ones go to the tail. */
  install(segment: Segment, dirty: Iterable<number>): void;
}

interface Job {
  kind: IndexKind;
  /** Ids added or removed since the job took its view of the vectors. */
  dirty: Set<number>;
  done: Promise<void>;
}

/**
 * The longest rest: a graph that took minutes (100k vectors) is rebuilt
 * soon after anyway, as a tail twice as long would cost every search.
 */
const REST_MAX_MS = 10_000;

export class Jobs {
  #job: Job | undefined;
  /** Bumped by reset() and by each load: what started before is thrown away. */
  #generation = 0;
  #failedAt = Number.NEGATIVE_INFINITY;
  /** While bulk loading (the rebuild from Redis), no build starts. */
  #bulk = false;
  /** A build is due but mayBuild said not now (another instance builds it). */
  #deferred = false;
  /** The last build of the main segment's kind: when it ended and how long it took. */
  #last = { kind: undefined as IndexKind | undefined, end: Number.NEGATIVE_INFINITY, ms: 0 };
  /** A due rebuild resting (see check()): resolves when check() runs again. */
  #rest: { timer: NodeJS.Timeout; over: Promise<void>; end: () => void } | undefined;

  constructor(
    private readonly o: Settings,
    private readonly vectors: VectorStore,
    private readonly host: JobHost,
  ) {}

  /** A job runs. */
  get running(): boolean {
    return this.#job !== undefined;
  }

  /** A job runs, or a build is due and waits (for mayBuild to allow it, or its rest). */
  get busy(): boolean {
    return this.#job !== undefined || this.#deferred || this.#rest !== undefined;
  }

  /** Resolves when no job runs or rests (jobs started meanwhile included). */
  async settled(): Promise<void> {
    while (this.#job || this.#rest) await (this.#job?.done ?? this.#rest?.over);
  }

  /** The index added or removed `id`. */
  touched(id: number): void {
    this.#job?.dirty.add(id);
  }

  get bulk(): boolean {
    return this.#bulk;
  }

  bulkLoad(on: boolean): void {
    this.#bulk = on;
    if (!on) this.check();
  }

  /** The index was cleared: whatever runs is abandoned. */
  reset(): void {
    this.#generation++;
    this.#job = undefined;
    this.#deferred = false;
    this.#failedAt = Number.NEGATIVE_INFINITY;
    this.#last = { kind: undefined, end: Number.NEGATIVE_INFINITY, ms: 0 };
    if (this.#rest) {
      clearTimeout(this.#rest.timer);
      this.#rest.end();
    }
    this.#rest = undefined;
  }

  /** Start a build if one is due and nothing stops it. */
  check(): void {
    if (this.#bulk || this.#job || performance.now() - this.#failedAt < this.o.retryAfterMs) return;
    const state = this.host.state();
    const kind = buildDue(this.o, state);
    this.#deferred = false;
    if (kind === undefined) return;
    // A rebuild of the kind the main segment already is waits, after the last one, buildRest
    // times as long as that one took (1: builds take at most half of the time however fast
    // writes come); the tail grows meanwhile (about writes/s x build time), as during a build.
    const rest =
      this.#last.end + Math.min(this.#last.ms * this.o.buildRest, REST_MAX_MS) - performance.now();
    if (state.main?.kind === kind && this.#last.kind === kind && rest > 0) {
      if (this.#rest === undefined) {
        let end = () => {};
        const over = new Promise<void>((r) => {
          end = r;
        });
        const timer = setTimeout(() => {
          this.#rest = undefined;
          this.check();
          end();
        }, rest).unref();
        this.#rest = { timer, over, end };
      }
      return;
    }
    this.#deferred = kind === 'hnsw' && this.o.mayBuild?.(kind) === false;
    const base = kind === 'hnsw' && extendable(this.o, state.main) ? state.main : undefined;
    if (!this.#deferred) this.#build(kind, base);
  }

  /**
   * Load `m` (another instance's main segment, ids mapped to this index's)
   * and make it the main one; a job running now is abandoned. Resolves to
   * the ids it covers; rejects when it cannot be read, or when the index was
   * cleared or another load started meanwhile (nothing changed then).
   */
  async load(m: MainImport, transfer: boolean): Promise<number> {
    const generation = ++this.#generation;
    this.#deferred = false;
    const job: Job = { kind: m.kind, dirty: new Set(), done: Promise.resolve() };
    this.#job = job;
    const loading = loadSegment(m, this.o, (id) => this.vectors.has(id), transfer);
    job.done = loading.then(
      () => undefined,
      () => undefined,
    );
    let segment: Segment;
    try {
      segment = await loading;
    } catch (err) {
      if (generation === this.#generation) {
        this.#job = undefined;
        this.check();
      }
      throw err;
    }
    if (generation !== this.#generation) {
      segment.dispose();
      throw new Error('snapshot not used: the index was cleared or replaced while it loaded');
    }
    for (const id of this.vectors.keys()) if (!segment.has(id)) job.dirty.add(id);
    this.#job = undefined;
    this.host.install(segment, job.dirty);
    this.check();
    return segment.live;
  }

  /** A build of `kind` from every live vector, or `base` extended with those it lacks. */
  #build(kind: IndexKind, base?: Segment): void {
    const live = [...this.vectors.keys()];
    const ids = base === undefined ? live : live.filter((id) => !base.has(id));
    const generation = this.#generation;
    const t0 = performance.now();
    const job: Job = { kind, dirty: new Set(), done: Promise.resolve() };
    this.#job = job;
    const event = (error?: Error) => ({
      kind,
      vectors: live.length,
      ms: performance.now() - t0,
      ...(base ? { added: ids.length } : {}),
      ...(error ? { error } : {}),
    });
    job.done = buildSegment({
      kind,
      ids,
      base,
      vectors: this.vectors,
      settings: this.o,
      alive: () => generation === this.#generation,
    }).then(
      (segment) => {
        if (segment === undefined) return; // abandoned meanwhile
        this.#job = undefined;
        this.#last = { kind, end: performance.now(), ms: performance.now() - t0 };
        this.host.install(segment, job.dirty);
        this.o.onBuild?.(event());
        this.check();
      },
      (err: Error) => {
        if (generation !== this.#generation) return;
        this.#job = undefined;
        this.#failedAt = performance.now();
        this.o.onBuild?.(event(err));
      },
    );
  }
}
