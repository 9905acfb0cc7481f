/*
 * Giving the C heap's free pages back to the system after the events that
 * free many at once: a built or loaded segment swapped in (the old one, the
 * tail shards and the worker's buffers freed), an index cleared, the end of
 * the load from Redis (every record's reply buffer freed). glibc keeps such
 * pages (in the middle of its heaps, and in the arenas of worker threads)
 * until malloc_trim asks for them: about 360 bytes per entry after a load of
 * 100,000 records, 12% of the process (docs/index.md, "Memory").
 *
 * Coalesced: a trim runs TRIM_DELAY_MS after the first request, once for
 * every request made meanwhile, on a timer that holds no process open. Much
 * of what a load or a build frees is only freed when V8 collects the Buffers
 * that held it, which its memory reducer does some seconds later (about 13 s
 * after a load of 100,000 records here): so for TRIM_WINDOW_MS after a
 * request, each major garbage collection asks for a trim too (observed with
 * perf_hooks; the observer is dropped after the window). A trim walks the
 * heaps' free chunks: about 8 ms for 165 MB of holes (test/unit); trims()
 * tells how many ran and how long they took.
 */
import { constants, type PerformanceEntry, PerformanceObserver } from 'node:perf_hooks';
import { trimHeap } from './faiss.js';

/** Delay from the first request to the trim that serves it. */
export const TRIM_DELAY_MS = 1000;
/** How long after a request major garbage collections are followed by a trim. */
export const TRIM_WINDOW_MS = 60_000;

let timer: NodeJS.Timeout | undefined;
let observer: PerformanceObserver | undefined;
let until = 0;
let count = 0;
let totalMs = 0;

/** Ask for a trim soon (a no-op without the patched addon or glibc). */
export function trimSoon(): void {
  until = performance.now() + TRIM_WINDOW_MS;
  schedule();
  if (observer !== undefined) return;
  observer = new PerformanceObserver((list) => {
    const major = list.getEntries().some((e) => isMajor(e as GcEntry));
    if (!major) return;
    if (performance.now() <= until) schedule();
    else {
      observer?.disconnect();
      observer = undefined;
    }
  });
  observer.observe({ entryTypes: ['gc'] });
}

type GcEntry = PerformanceEntry & { detail?: { kind?: number } };
const isMajor = (e: GcEntry) => e.detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR;

function schedule(): void {
  if (timer !== undefined) return;
  timer = setTimeout(() => {
    timer = undefined;
    const t0 = performance.now();
    if (trimHeap()) {
      count++;
      totalMs += performance.now() - t0;
    }
  }, TRIM_DELAY_MS);
  timer.unref();
}

/** Trims run so far in this process, and the ms they took in all. */
export function trims(): { count: number; ms: number } {
  return { count, ms: totalMs };
}
