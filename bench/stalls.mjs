// bench/stalls.mjs — the stall probe (bench/stall-probe.cjs) from a benchmark's side: the
// environment that preloads it into a semcache process, and what its lines in that process's
// log say about a time window.
import path from 'node:path';
import { ROOT } from './lib.mjs';

/** process.env with NODE_OPTIONS preloading the probe (kept: what NODE_OPTIONS had). */
export function stallProbeEnv() {
  const probe = `--require ${path.join(ROOT, 'bench', 'stall-probe.cjs')}`;
  return { ...process.env, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} ${probe}`.trim() };
}

/** The probe's lines in `log` between `from` and `to` (epoch ms), summed up in words. */
export function stallsOf(log, from, to) {
  const late = [];
  for (const line of log.split('\n')) {
    const m = /^STALL (\d+) (\d+)/.exec(line);
    if (m && Number(m[1]) >= from && Number(m[1]) <= to) late.push(Number(m[2]));
  }
  const over100 = late.filter((ms) => ms > 100).length;
  return `main thread held over 40 ms ${late.length} times (over 100 ms: ${over100}; longest ${late.length ? Math.max(...late) : 0} ms)`;
}
