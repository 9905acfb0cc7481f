// bench/stall-probe.cjs — preloaded into a semcache process (NODE_OPTIONS=--require ...) by
// `bench/fleet.mjs --stalls`: on the main thread only, a 5 ms timer; a turn that comes more
// than STALL_MS late is written to stderr (the instance's log) as `STALL <epoch ms> <ms late>`:
// the event loop, or the whole thread, was held that long (a long task, a GC pause, or no CPU).
'use strict';
const { isMainThread } = require('node:worker_threads');

if (isMainThread) {
  const STALL_MS = 40;
  let last = performance.now();
  setInterval(() => {
    const now = performance.now();
    const late = now - last - 5;
    if (late > STALL_MS) process.stderr.write(`STALL ${Date.now()} ${late.toFixed(0)}\n`);
    last = now;
  }, 5).unref();
}
