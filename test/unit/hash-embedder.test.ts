import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createHashEmbedder } from '../../src/semantic/embedders/hash.js';

const embedder = createHashEmbedder();

function dot(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

async function cos(a: string, b: string): Promise<number> {
  const [va, vb] = await embedder.embed([a, b]);
  return dot(va!, vb!);
}

describe('hash embedder: identity', () => {
  it('names its kind, model and dimension', async () => {
    expect(embedder.kind).toBe('hash');
    expect(embedder.model).toBe('hash-v1-384');
    expect(embedder.dim).toBe(384);
    await expect(embedder.load()).resolves.toBeUndefined();
  });

  it('honours the dim option', async () => {
    const small = createHashEmbedder({ dim: 64 });
    expect(small.dim).toBe(64);
    expect(small.model).toBe('hash-v1-64');
    const [v] = await small.embed(['house near ostsee']);
    expect(v).toHaveLength(64);
    expect(() => createHashEmbedder({ dim: 0 })).toThrow(RangeError);
    expect(() => createHashEmbedder({ dim: 1.5 })).toThrow(RangeError);
  });
});

describe('hash embedder: vectors', () => {
  it('returns one unit vector per text, in order', async () => {
    const texts = ['one', 'two words', 'a house near the ostsee', 'ÜBER straße'];
    const vs = await embedder.embed(texts);
    expect(vs).toHaveLength(texts.length);
    for (const [i, v] of vs.entries()) {
      expect(v).toBeInstanceOf(Float32Array);
      expect(dot(v, v)).toBeCloseTo(1, 5);
      const [alone] = await embedder.embed([texts[i]!]);
      expect(v).toEqual(alone);
    }
    expect(await embedder.embed([])).toEqual([]);
  });

  it('is deterministic across instances', async () => {
    const other = createHashEmbedder();
    const [a] = await embedder.embed(['deterministic across processes']);
    const [b] = await other.embed(['deterministic across processes']);
    expect(Array.from(a!)).toEqual(Array.from(b!));
  });

  it('maps text without letters or digits to the fixed unit vector e0', async () => {
    const e0 = new Float32Array(384);
    e0[0] = 1;
    for (const text of ['', '   ', '?!', '👋👋', '...']) {
      const [v] = await embedder.embed([text]);
      expect(v).toEqual(e0);
    }
  });

  it('gives unit vectors for arbitrary text', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ unit: 'grapheme', maxLength: 60 }), async (s) => {
        const [v] = await embedder.embed([s]);
        expect(v).toHaveLength(384);
        expect(dot(v!, v!)).toBeCloseTo(1, 4);
        expect(v!.every(Number.isFinite)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('ignores what normalization ignores', async () => {
    expect(await cos('Hello, World!!', '  hello   world ')).toBeCloseTo(1, 5);
  });
});

describe('hash embedder: lexical similarity', () => {
  it('scores the reference pair above 0.5 and unrelated text below 0.2', async () => {
    expect(await cos('a house near the ostsee', 'house near ostsee')).toBeGreaterThanOrEqual(0.5);
    expect(await cos('quarterly tax report for 2024', 'house near ostsee')).toBeLessThan(0.2);
  });

  const similar: [string, string, string][] = [
    ['typo', 'house near ostsee', 'hosue near ostsee'],
    ['typo', 'how do I reset my password', 'how do I rest my pasword'],
    ['word order', 'house near ostsee', 'ostsee near house'],
    ['word order', 'recipe for chocolate cake', 'chocolate cake recipe'],
    ['plural', 'cheap flights to berlin', 'cheap flight to berlin'],
    ['plural', 'best hotel in rome', 'best hotels in rome'],
    ['added words', 'how do I reset my password', 'how can I reset my password please'],
    ['case and punctuation', 'What is the capital of France?', 'what is the capital of france'],
  ];
  for (const [why, a, b] of similar) {
    it(`keeps near-duplicates close (${why}): ${a} ~ ${b}`, async () => {
      expect(await cos(a, b)).toBeGreaterThanOrEqual(0.5);
    });
  }

  const unrelated: [string, string][] = [
    ['how do I reset my password', 'what is the weather in paris'],
    ['python list comprehension', 'javascript array map'],
    ['quarterly tax report for 2024', 'recipe for chocolate cake'],
    ['cheap flights to berlin', 'symptoms of the common cold'],
  ];
  for (const [a, b] of unrelated) {
    it(`keeps unrelated texts apart: ${a} / ${b}`, async () => {
      expect(await cos(a, b)).toBeLessThan(0.2);
    });
  }

  it('ranks a closer rephrasing above a looser one', async () => {
    const q = 'house near the ostsee';
    expect(await cos(q, 'a house near ostsee')).toBeGreaterThan(await cos(q, 'a flat by the sea'));
  });

  it('captures lexical overlap only, not meaning (documented limitation)', async () => {
    expect(await cos('car', 'automobile')).toBeLessThan(0.2);
  });
});
