/*
 * How often the holder of a namespace's lease saves its graph after an
 * extension (index/jobs.ts: a graph is extended with its tail every maxTail
 * writes, seconds apart while writes come): at most once per
 * max(MIN_GAP_MS, GAP_PER_SAVE x the last save's time, FULL_BUILDS x the
 * last full build's time), and the latest graph is saved when the gap is
 * over, so the snapshot of a namespace that went quiet ends up current.
 * Every save is fetched and loaded by every other instance and moves the
 * whole graph through Redis, which serves everyone else meanwhile: saved
 * every 10 s, a warm fleet's propagation p99 was 3-5x that of full builds
 * saved as they came (one a build and a rest apart, docs/benchmarks.md §7),
 * so extensions are saved no more often than full builds were. A save moves the whole graph through Redis
 * (about 170 MB at 100,000 fp32 vectors); between saves, an instance that
 * joins reads what the snapshot lacks from the records and extends the
 * graph with it. A full build is saved at once (snapshot-sync.ts).
 */

/** The shortest gap between two saves of a namespace after extensions (ms). */
export const MIN_GAP_MS = 10_000;
/** ...and the gap in multiples of the last save's own time. */
const GAP_PER_SAVE = 20;
/** ...and in multiples of the last full build's time (a build and its rest: index/jobs.ts). */
const FULL_BUILDS = 2;

export class SavePace {
  readonly #last = new Map<string, { end: number; ms: number }>();
  readonly #fullMs = new Map<string, number>();
  readonly #due = new Map<string, NodeJS.Timeout>();

  /** `save` now, or once the gap since `ns`'s last save is over (one pending per namespace). */
  after(ns: string, save: () => void): void {
    if (this.#due.has(ns)) return;
    const last = this.#last.get(ns);
    const wait =
      last === undefined
        ? 0
        : last.end +
          Math.max(MIN_GAP_MS, GAP_PER_SAVE * last.ms, FULL_BUILDS * (this.#fullMs.get(ns) ?? 0)) -
          performance.now();
    if (wait <= 0) {
      save();
      return;
    }
    const timer = setTimeout(() => {
      this.#due.delete(ns);
      save();
    }, wait).unref();
    this.#due.set(ns, timer);
  }

  /** A full build of `ns` took `ms`. */
  built(ns: string, ms: number): void {
    this.#fullMs.set(ns, ms);
  }

  /** A save of `ns` that took `ms` ended now. */
  saved(ns: string, ms: number): void {
    this.#last.set(ns, { end: performance.now(), ms });
  }

  /** Forget `ns` (its snapshot was dropped), or every namespace (stop). */
  clear(ns?: string): void {
    for (const [name, timer] of this.#due) {
      if (ns !== undefined && name !== ns) continue;
      clearTimeout(timer);
      this.#due.delete(name);
    }
    if (ns === undefined) {
      this.#last.clear();
      this.#fullMs.clear();
    } else {
      this.#last.delete(ns);
      this.#fullMs.delete(ns);
    }
  }
}
