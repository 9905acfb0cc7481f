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
 * every request made meanwhile, on a timer that holds no process open. It
 * walks the heaps' free chunks (a few ms at 100,000 entries); trims() tells
 * how many ran and how long they took.
 */
import { trimHeap } from './faiss.js';

/** Delay from the first request to the trim that serves it. */
export const TRIM_DELAY_MS = 1000;

let timer: NodeJS.Timeout | undefined;
let count = 0;
let totalMs = 0;

/** Ask for a trim soon (a no-op without the patched addon or glibc). */
export function trimSoon(): void {
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
