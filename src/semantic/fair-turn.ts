/*
 * Taking turns on the event loop. Many lookups often become ready in one
 * turn (a batch of embeddings comes back for 16 clients at once), and each
 * then searches its index synchronously: an HNSW search costs 0.1-3 ms, so
 * 16 or 32 of them back to back held every other client for 50-450 ms at
 * 100k entries (bench/stall.mjs, docs/benchmarks.md §5).
 *
 * fairTurn() before such a step: the first caller in a turn of the event
 * loop starts a slice and goes on at once; a later one goes on only while
 * the slice is under SLICE_MS old, else it waits for a later turn (a
 * setImmediate), after the I/O of this one has been served. So other
 * clients wait behind at most one step (plus SLICE_MS), whatever the number
 * of lookups ready; the total work is the same.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';

/** Synchronous work a turn of the event loop may take before the next step waits. */
export const SLICE_MS = 1;

/** When the current slice began, and whether a turn is pending that ends it. */
let sliceStart = 0;
let armed = false;

/** Resolves (at once, or in a later turn) when it is this step's turn. */
export function fairTurn(): Promise<void> | undefined {
  if (!armed) {
    startSlice();
    return undefined;
  }
  if (performance.now() - sliceStart < SLICE_MS) return undefined;
  return waitTurn();
}

function startSlice(): void {
  armed = true;
  sliceStart = performance.now();
  setImmediate(() => {
    armed = false;
  });
}

async function waitTurn(): Promise<void> {
  for (;;) {
    await nextTurn();
    if (!armed) {
      startSlice();
      return;
    }
    if (performance.now() - sliceStart < SLICE_MS) return;
  }
}
