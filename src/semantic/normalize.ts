/*
 * Text normalization for the exact-match tier of the cache.
 *
 * Two prompts that differ only in compatibility forms (full-width letters,
 * ligatures), case, runs of whitespace or the punctuation around them should
 * hit the same entry without asking the embedder. normalizeText() is that
 * equivalence; exactKey() hashes it so the key has a fixed size whatever the
 * prompt's length.
 *
 * Inner punctuation is kept on purpose: "let's eat, grandma" and "let's eat
 * grandma" are different requests, and the semantic tier is there for the
 * fuzzy cases. Every step is locale-independent so a key computed on one host
 * is the key on every other.
 */
import { createHash } from 'node:crypto';

// \s misses U+0085 (NEL); Unicode's White_Space property does not, and U+FEFF
// (a BOM pasted into the middle of a prompt) is whitespace to a reader too.
const WHITESPACE_RUN = /[\p{White_Space}\uFEFF]+/gu;
const EDGE_JUNK = /^[\p{P}\p{S}\p{White_Space}\uFEFF]+|[\p{P}\p{S}\p{White_Space}\uFEFF]+$/gu;

/**
 * NFKC, lower case (locale-independent), whitespace runs collapsed to one
 * space, leading and trailing punctuation, symbols and whitespace removed.
 * Idempotent: normalizeText(normalizeText(t)) === normalizeText(t).
 */
export function normalizeText(text: string): string {
  // NFKC again after lowercasing: lowercasing can leave a sequence that NFKC
  // would still rewrite (e.g. U+0130 becomes i + U+0307), and the key must
  // be a fixed point.
  const folded = text.normalize('NFKC').toLowerCase().normalize('NFKC');
  return folded.replace(WHITESPACE_RUN, ' ').replace(EDGE_JUNK, '');
}

/**
 * Hex SHA-256 of the normalized text: the exact-match key. A text that
 * normalizes to nothing ("", "?!", "!!!") matches only itself: its key is
 * `raw:` and the SHA-256 of the text as given (a form no normalized key has).
 */
export function exactKey(text: string): string {
  const normalized = normalizeText(text);
  if (normalized === '') return `raw:${createHash('sha256').update(text, 'utf8').digest('hex')}`;
  return createHash('sha256').update(normalized, 'utf8').digest('hex');
}
