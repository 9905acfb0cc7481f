/*
 * Feature-hashing embedder: deterministic, offline, no model to download.
 *
 * It captures LEXICAL OVERLAP ONLY, not meaning: "car" and "automobile" are
 * as far apart as "car" and "tax". It is the fallback when no model is
 * available, the embedder of the tests and benchmarks (fast and the same on
 * every machine), and good enough for caches whose near-duplicates are
 * rephrasings with the same words (reordered, a word added, a typo, a plural).
 *
 * Model (the "hashing trick", Weinberger et al. 2009, with fastText-style
 * subwords):
 *   - the text is normalized (normalize.ts) and split into words, runs of
 *     letters, marks and digits;
 *   - features: each word (weight 1), each pair of adjacent words (weight
 *     0.5: word order matters a little, not much), and the character 3- and
 *     4-grams of each word wrapped in boundary markers, "<house>" giving
 *     "<ho", "hou", ..., "se>" (weight 0.35 each, so one typo costs a few
 *     grams instead of the whole word);
 *   - a feature's weight is scaled by 1 + ln(count) (sub-linear tf: a word
 *     repeated ten times is not ten times as important);
 *   - each feature is hashed (FNV-1a, 32 bit, over UTF-16 code units, seeded
 *     per feature kind, then a murmur3 finalizer for avalanche) to a bucket
 *     (hash mod dim) and a sign (the top bit), so collisions cancel out in
 *     expectation instead of piling up;
 *   - the vector is L2-normalized, so the inner product is the cosine.
 *
 * A text without any letter or digit (empty, only punctuation or emoji) gets
 * the unit vector e0: the index never sees a zero vector, all such texts are
 * identical to one another, and nearly orthogonal to everything else.
 */

import { normalizeText } from '../normalize.js';
import type { Embedder } from '../types.js';

export interface HashEmbedderOptions {
  /** Vector dimension, default 384 (the size of MiniLM, so indexes are interchangeable in size). */
  dim?: number;
}

const WORD = /[\p{L}\p{M}\p{N}]+/gu;

// Feature kinds are told apart by the seed, so "ab" the word and "ab" the
// gram land in unrelated buckets.
const SEED_WORD = 0x811c9dc5; // the FNV offset basis
const SEED_BIGRAM = 0x9e3779b9;
const SEED_GRAM = 0x85ebca6b;
const FNV_PRIME = 0x01000193;
// Weights chosen so that one shared word weighs about as much as its grams
// together; see the similarity checks in test/unit/hash-embedder.test.ts.
const W_WORD = 1;
const W_BIGRAM = 0.5;
const W_GRAM = 0.35;

/** FNV-1a over s[start, end), continuing from state h. */
function fnv(h: number, s: string, start: number, end: number): number {
  for (let i = start; i < end; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, FNV_PRIME);
  }
  return h;
}

/** The murmur3 fmix32 finalizer: FNV alone has weak low bits, and mod dim reads those. */
function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * A growable list of feature hashes of one kind. Counting by sorting the list
 * and walking its runs is several times faster than a Map: the hashes are
 * unsigned 32-bit, which V8 would box as heap numbers in a Map key.
 */
class FeatureList {
  buf = new Uint32Array(64);
  n = 0;
  push(h: number): void {
    if (this.n === this.buf.length) {
      const grown = new Uint32Array(this.buf.length * 2);
      grown.set(this.buf);
      this.buf = grown;
    }
    this.buf[this.n++] = h;
  }
  /** Adds each distinct feature, weight * (1 + ln count), signed, into v; empties the list. */
  drainInto(v: Float64Array, weight: number): void {
    const hs = this.buf.subarray(0, this.n).sort();
    const dim = v.length;
    for (let i = 0; i < hs.length; ) {
      const h = hs[i]!;
      let j = i + 1;
      while (j < hs.length && hs[j] === h) j++;
      const w = weight * (1 + Math.log(j - i));
      v[h % dim]! += h & 0x80000000 ? -w : w;
      i = j;
    }
    this.n = 0;
  }
}

export function createHashEmbedder(options: HashEmbedderOptions = {}): Embedder {
  const dim = options.dim ?? 384;
  if (!Number.isInteger(dim) || dim < 1)
    throw new RangeError(`dim must be a positive integer, got ${dim}`);

  // Scratch state reused across texts: embedding is synchronous, so no two
  // texts are ever in flight at once.
  const words = new FeatureList();
  const bigrams = new FeatureList();
  const grams = new FeatureList();
  const acc = new Float64Array(dim);

  function embedOne(text: string): Float32Array {
    const tokens = normalizeText(text).match(WORD) ?? [];
    const out = new Float32Array(dim);
    if (tokens.length === 0) {
      out[0] = 1;
      return out;
    }
    for (let t = 0; t < tokens.length; t++) {
      const word = tokens[t]!;
      words.push(fmix(fnv(SEED_WORD, word, 0, word.length)));
      if (t > 0) {
        const prev = tokens[t - 1]!;
        const h = fnv(SEED_BIGRAM, prev, 0, prev.length) ^ 0x20; // the space between
        bigrams.push(fmix(fnv(Math.imul(h, FNV_PRIME), word, 0, word.length)));
      }
      const marked = `<${word}>`;
      for (let n = 3; n <= 4; n++) {
        for (let i = 0; i + n <= marked.length; i++) {
          grams.push(fmix(fnv(SEED_GRAM, marked, i, i + n)));
        }
      }
    }
    acc.fill(0);
    words.drainInto(acc, W_WORD);
    bigrams.drainInto(acc, W_BIGRAM);
    grams.drainInto(acc, W_GRAM);
    let norm = 0;
    for (let i = 0; i < dim; i++) norm += acc[i]! * acc[i]!;
    if (norm === 0) {
      // Every feature cancelled out in the buckets: vanishingly rare, but the
      // contract is a unit vector.
      out[0] = 1;
      return out;
    }
    const inv = 1 / Math.sqrt(norm);
    for (let i = 0; i < dim; i++) out[i] = acc[i]! * inv;
    return out;
  }

  return {
    kind: 'hash',
    model: `hash-v1-${dim}`,
    dim,
    async load() {},
    async embed(texts) {
      return texts.map(embedOne);
    },
  };
}
