// A seeded pseudo-random generator whose output is bit-identical on every
// platform and Node version: only 32-bit integer arithmetic and exactly
// rounded float operations (no Math.log/cos, whose last bits may differ).

/** mulberry32: 32-bit state, period 2^32, good enough for weights. */
export function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

const SQRT3 = Math.sqrt(3);

/**
 * Fills `out` with approximately normal values (Irwin-Hall: the sum of four
 * 16-bit uniforms, rescaled to mean 0 and standard deviation `std`).
 */
export function fillNormal(next, out, std) {
  const scale = (SQRT3 * std) / 65536;
  for (let i = 0; i < out.length; i++) {
    const a = next();
    const b = next();
    // four uniforms in [0, 65535], each with mean 32767.5
    const sum = (a & 0xffff) + (a >>> 16) + (b & 0xffff) + (b >>> 16);
    out[i] = (sum - 131070) * scale;
  }
  return out;
}
