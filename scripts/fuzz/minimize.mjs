// Shrinks a failing fuzz case for scripts/fuzz-protocol.mjs: first fewer writes, then fewer bytes
// (delta debugging: drop ever smaller slices while the difference persists), re-running both
// servers each time, each after deleting the keys the try touches. A try that would run a
// command outside the safe set, or touch a key of another case, is skipped.
import { compare, documentedException, redisLeg, semcacheLeg } from './exchange.mjs';

const MAX_TRIES = 300;

/** Removes input[i, i + n) and moves the write boundaries along. */
function cut({ input, cuts }, i, n) {
  const out = Buffer.concat([input.subarray(0, i), input.subarray(i + n)]);
  const moved = cuts.map((c) => (c <= i ? c : Math.max(i, c - n)));
  return { input: out, cuts: [...new Set(moved)].filter((c) => c > 0 && c < out.length) };
}

/** A smaller case showing the same kind of difference, with both answers; undefined if it did not reproduce. */
export async function minimize(m, redisPort, { accept, reset, expectReplies }, legOpts) {
  let tries = 0;
  const fails = async (c) => {
    const keys = tries++ < MAX_TRIES ? accept(c.input, m.kase.id) : undefined;
    if (keys === undefined) return undefined;
    await reset(keys);
    const redis = await redisLeg(redisPort, c, expectReplies(c.input), legOpts.timeoutMs);
    await reset(keys);
    const got = await semcacheLeg(m.px.port, c, redis, legOpts);
    if (compare(got, redis) !== 'differ' || documentedException(c.input, got, redis))
      return undefined;
    return { ...c, redis, got };
  };
  let best = await fails({ input: m.kase.input, cuts: m.kase.cuts });
  if (best === undefined) return undefined; // timing-dependent: did not show again
  for (let i = best.cuts.length - 1; i >= 0; i--) {
    const t = await fails({ input: best.input, cuts: best.cuts.filter((_, j) => j !== i) });
    if (t) best = t;
  }
  for (let n = Math.max(1, best.input.length >> 1); n >= 1; n >>= 1) {
    for (let i = 0; i + n <= best.input.length && tries < MAX_TRIES; ) {
      const t = await fails(cut(best, i, n));
      if (t) best = t;
      else i += n;
    }
  }
  return best;
}
