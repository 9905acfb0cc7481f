/*
 * Vectors for index tests, from fixed seeds: uniformly random unit vectors,
 * and clustered ones (points around 100 random centres), which look more like
 * sentence embeddings; and the exact top k by brute force.
 */
export const DIM = 384;

export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function gaussian(rand: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
}

export function unit(v: Float32Array): Float32Array {
  let s = 0;
  for (const x of v) s += x * x;
  return v.map((x) => x / Math.sqrt(s));
}

export function randomVectors(n: number, seed: number): Float32Array[] {
  const rand = mulberry32(seed);
  return Array.from({ length: n }, () =>
    unit(Float32Array.from({ length: DIM }, () => gaussian(rand))),
  );
}

/** Points around 100 random centres, cosine to their centre about 0.7. */
export function clusteredVectors(n: number, seed: number): Float32Array[] {
  const centres = randomVectors(100, 7);
  const rand = mulberry32(seed);
  return Array.from({ length: n }, () => {
    const c = centres[Math.floor(rand() * centres.length)]!;
    return unit(c.map((x) => x + 0.05 * gaussian(rand)));
  });
}

export function dot(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

/** Exact top k of `live` (id -> vector) by inner product, best first. */
export function bruteForce(live: Map<number, Float32Array>, q: Float32Array, k: number) {
  const top: { id: number; score: number }[] = [];
  for (const [id, v] of live) {
    const score = dot(v, q);
    if (top.length === k && score <= top[k - 1]!.score) continue;
    let i = top.length;
    while (i > 0 && top[i - 1]!.score < score) i--;
    top.splice(i, 0, { id, score });
    if (top.length > k) top.pop();
  }
  return top;
}
