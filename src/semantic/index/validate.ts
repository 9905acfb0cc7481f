/*
 * Input checks for the vector index. FAISS aborts the process on input it
 * rejects (the binding does not catch C++ exceptions), so everything is
 * checked here, before any call into it, and bad input is a RangeError or
 * TypeError the caller can catch.
 */

export function checkId(id: unknown): number {
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0) {
    throw new RangeError(`vector id must be a non-negative safe integer, got ${String(id)}`);
  }
  return id;
}

export function checkK(k: unknown): number {
  if (typeof k !== 'number' || !Number.isInteger(k) || k < 1) {
    throw new RangeError(`k must be a positive integer, got ${String(k)}`);
  }
  return k;
}

/**
 * A unit-length copy of `v`. Storing unit vectors makes the inner product the
 * cosine similarity, in [-1, 1], whatever the caller passed.
 */
export function unitCopy(v: unknown, dim: number, what = 'vector'): Float32Array {
  const inv = 1 / Math.sqrt(sumOfSquares(v, dim, what));
  const u = v as Float32Array;
  const out = new Float32Array(dim);
  for (let i = 0; i < dim; i++) out[i] = u[i]! * inv;
  return out;
}

/**
 * `v` itself when it is of unit length already (as vectors read back from
 * Redis are), else unitCopy(v): for callers that copy what they keep (the
 * index's add copies into FAISS and the vector store) and read it in the
 * same turn.
 */
export function unitOrCopy(v: unknown, dim: number, what = 'vector'): Float32Array {
  const sq = sumOfSquares(v, dim, what);
  if (Math.abs(sq - 1) <= UNIT_TOLERANCE) return v as Float32Array;
  return unitCopy(v, dim, what);
}

/** |length² - 1| below which a vector counts as unit: float32 rounding of a normalized one. */
const UNIT_TOLERANCE = 1e-6;

/** The squared length of `v`, which must be a finite, non-zero vector of `dim` floats. */
function sumOfSquares(v: unknown, dim: number, what: string): number {
  if (!(v instanceof Float32Array)) throw new TypeError(`${what} must be a Float32Array`);
  if (v.length !== dim) {
    throw new RangeError(`${what} has dimension ${v.length}, the index has ${dim}`);
  }
  let sq = 0;
  for (let i = 0; i < dim; i++) sq += v[i]! * v[i]!;
  // NaN or an infinity anywhere makes the sum NaN or Infinity.
  if (!Number.isFinite(sq)) throw new RangeError(`${what} has a NaN or infinite component`);
  if (sq === 0) throw new RangeError(`${what} is all zeros and has no direction`);
  return sq;
}

/** An integer option in [min, max], or its default when undefined. */
export function intOption(
  name: string,
  v: unknown,
  dflt: number,
  min: number,
  max: number,
): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new RangeError(`${name} must be an integer in [${min}, ${max}], got ${String(v)}`);
  }
  return v;
}
