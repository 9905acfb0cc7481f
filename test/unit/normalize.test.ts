import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { exactKey, normalizeText } from '../../src/semantic/normalize.js';

describe('normalizeText', () => {
  const table: [string, string][] = [
    ['Hello, World!!', 'hello, world'],
    ['  ¿Qué?  ', 'qué'],
    ['', ''],
    ['   ', ''],
    ['?!...', ''],
    ['plain', 'plain'],
    ['Tabs\tand\nnew\r\nlines', 'tabs and new lines'],
    ['a\u00a0\u2003\u3000b', 'a b'], // no-break, em and ideographic spaces
    ['a\u0085b', 'a b'], // NEL is Unicode whitespace though \s misses it
    ['\ufeffbom', 'bom'],
    ['ＨＥＬＬＯ　ｗｏｒｌｄ', 'hello world'], // full-width forms (NFKC)
    ['ﬁle', 'file'], // ligature (NFKC)
    ['e\u0301', 'é'], // combining acute composes
    ['Straße', 'straße'],
    ['ÀÉÎÕÜ', 'àéîõü'],
    ['İstanbul', 'i̇stanbul'], // locale-independent: not the Turkish dotless rule
    ['"quoted"', 'quoted'],
    ['«Bonjour»', 'bonjour'],
    ['$100', '100'], // a leading symbol is edge junk too
    ['C++', 'c'],
    ['what is 2+2?', 'what is 2+2'],
    ['let’s go… now!', 'let’s go... now'], // NFKC spells out the ellipsis
    ['👋 hi there 👋', 'hi there'],
    ['(a)  -  (b)', 'a) - (b'],
    ['ΟΔΟΣ', 'οδος'], // final sigma: toLowerCase is context-aware, still deterministic
  ];
  for (const [input, expected] of table) {
    it(`${JSON.stringify(input)} -> ${JSON.stringify(expected)}`, () => {
      expect(normalizeText(input)).toBe(expected);
    });
  }

  it('is idempotent on arbitrary Unicode', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 40 }), (s) => {
        const once = normalizeText(s);
        expect(normalizeText(once)).toBe(once);
      }),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 40 }), (s) => {
        const once = normalizeText(s);
        expect(normalizeText(once)).toBe(once);
      }),
      { numRuns: 2000 },
    );
  });

  const letter = fc.constantFrom(...'abcdefghijklmnopqrstuvwxyzéüçñ0123456789'.split(''));
  const word = fc
    .array(letter, { minLength: 1, maxLength: 8 })
    .map((cs) => cs.join(''))
    .chain((w) =>
      fc.array(fc.boolean(), { minLength: w.length, maxLength: w.length }).map((up) =>
        w
          .split('')
          .map((c, i) => (up[i] ? c.toUpperCase() : c))
          .join(''),
      ),
    );
  const words = fc.array(word, { minLength: 1, maxLength: 6 });
  const space = fc
    .array(fc.constantFrom(' ', '\t', '\n', '\r', '\u00a0', '\u2009', '\u3000', '\u0085'), {
      minLength: 1,
      maxLength: 4,
    })
    .map((cs) => cs.join(''));
  const junk = fc
    .array(fc.constantFrom(' ', '!', '?', '.', ',', '¿', '¡', '"', '…', '*', '#', '€', '→', '\n'), {
      maxLength: 5,
    })
    .map((cs) => cs.join(''));

  it('is whitespace-insensitive between words', () => {
    fc.assert(
      fc.property(words, fc.array(space, { minLength: 6, maxLength: 6 }), (ws, seps) => {
        const spaced = ws.map((w, i) => (i === 0 ? w : seps[i - 1] + w)).join('');
        expect(normalizeText(spaced)).toBe(normalizeText(ws.join(' ')));
      }),
    );
  });

  it('is case-insensitive', () => {
    fc.assert(
      fc.property(words, (ws) => {
        const s = ws.join(' ');
        expect(normalizeText(s)).toBe(normalizeText(s.toUpperCase()));
        expect(normalizeText(s)).toBe(normalizeText(s.toLowerCase()));
      }),
    );
  });

  it('ignores punctuation, symbols and whitespace around the text', () => {
    fc.assert(
      fc.property(words, junk, junk, (ws, before, after) => {
        const s = ws.join(' ');
        expect(normalizeText(before + s + after)).toBe(normalizeText(s));
      }),
    );
  });
});

describe('exactKey', () => {
  it('is the hex SHA-256 of the normalized text', () => {
    const expected = createHash('sha256').update('hello, world').digest('hex');
    expect(exactKey('  Hello, World!! ')).toBe(expected);
    expect(exactKey('Hello, World!!')).toMatch(/^[0-9a-f]{64}$/);
  });

  it('equates texts that normalize alike and separates those that do not', () => {
    expect(exactKey('ＨＥＬＬＯ world?')).toBe(exactKey('hello   WORLD'));
    expect(exactKey('hello, world')).not.toBe(exactKey('hello world'));
    // Texts that normalize to nothing are keyed by their own bytes, in a form of their own.
    expect(exactKey('')).not.toBe(exactKey('?!'));
    expect(exactKey('!!!')).not.toBe(exactKey('?!'));
    expect(exactKey('?!')).toBe(exactKey('?!'));
    expect(exactKey('?!')).toMatch(/^raw:[0-9a-f]{64}$/);
    expect(exactKey('hello')).toMatch(/^[0-9a-f]{64}$/);
  });
});
