/*
 * Everything a test starts is stopped after it, whatever happened: register
 * a stop function as soon as the thing exists, and they run after each test,
 * newest first (a proxy before the redis behind it). One that fails (already
 * gone) does not keep the others from running.
 */
import { afterEach } from 'vitest';

/** The list a test file's stop functions go in; emptied after each test. */
export function stopAfterEach(): (() => unknown)[] {
  const cleanups: (() => unknown)[] = [];
  afterEach(async () => {
    for (const f of cleanups.splice(0).reverse()) {
      try {
        await f();
      } catch {
        // already gone
      }
    }
  });
  return cleanups;
}
