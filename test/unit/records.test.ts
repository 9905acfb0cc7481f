/*
 * Records as HMGET returns them (records.ts): the exact-match hash is what
 * follows the record's own namespace's exact-match key prefix, whichever
 * namespace came before (the prefix made for the last one is reused), and
 * none when the record names another namespace's key or none at all.
 */
import { describe, expect, it } from 'vitest';
import { leanEntry, toEntry } from '../../src/semantic/records.js';

const P = 'semcache:';
const HASH = 'ab'.repeat(32);
const b = (s: string) => Buffer.from(s);
const vec = Buffer.from(new Float32Array([0.6, 0.8]).buffer);

describe('records read from redis', () => {
  it('take the exact-match hash after their own namespace prefix, in any order of namespaces', () => {
    for (const ns of ['de', 'wöhnung', 'de', 'x:y', 'wöhnung']) {
      const e = toEntry(
        b('k'),
        [b(ns), b('text'), vec, null, b('m'), b(`${P}exact:${ns}:${HASH}`), b('1-0')],
        P,
      );
      expect(e?.exactHash).toBe(HASH);
      expect(e?.ns).toBe(ns);
      expect(Array.from(e?.vector ?? [])).toEqual([Math.fround(0.6), Math.fround(0.8)]);
    }
  });

  it("name no hash when the key is another namespace's, truncated, or missing", () => {
    const lean = (ns: string, exact: Buffer | null) =>
      leanEntry(b('k'), [b(ns), b('text'), null, b('m'), exact, null], P)?.exactHash;
    expect(lean('de', b(`${P}exact:en:${HASH}`))).toBeUndefined();
    expect(lean('de', b(`${P}exact:de:`))).toBeUndefined();
    expect(lean('de', b(`${P}exact:d`))).toBeUndefined();
    expect(lean('de', null)).toBeUndefined();
    expect(lean('de', b(`other:exact:de:${HASH}`))).toBeUndefined();
    expect(lean('de', b(`${P}exact:de:${HASH}`))).toBe(HASH);
  });
});
