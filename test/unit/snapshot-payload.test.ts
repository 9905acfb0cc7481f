// The snapshot payload (src/semantic/snapshot-payload.ts): what save() writes, chunk by chunk, is
// what load() decodes, and the chunks are views of the parts (FAISS's bytes are not copied).
import { describe, expect, it } from 'vitest';
import { chunksOf, decodePayload, encodePayload } from '../../src/semantic/snapshot-payload.js';

describe('snapshot payload', () => {
  it('round-trips through chunks of any size, dead slots and binary keys included', async () => {
    const slots = [
      { key: Buffer.from('k1'), ver: '1-0' },
      undefined,
      { key: Buffer.from([0, 255, 13, 10]), ver: '1733500000000-7' },
      { key: Buffer.alloc(0), ver: '' },
      ...Array.from({ length: 10_000 }, (_, i) => ({
        key: Buffer.from(`key:${i}`),
        ver: `${i}-0`,
      })),
    ];
    const faiss = Buffer.from(Array.from({ length: 1000 }, (_, i) => i % 251));
    const parts = encodePayload(slots, faiss);
    expect(parts[1]).toBe(faiss);
    for (const size of [1, 7, 4096, 1 << 20]) {
      const chunks = chunksOf(parts, size);
      expect(chunks.every((c) => c.length > 0 && c.length <= size)).toBe(true);
      // Views, not copies: each chunk lies in one part's memory.
      expect(chunks.every((c) => c.buffer === parts[0].buffer || c.buffer === faiss.buffer)).toBe(
        true,
      );
      const back = await decodePayload(Buffer.concat(chunks));
      expect(back.faiss.equals(faiss)).toBe(true);
      expect(back.slots).toEqual(slots);
    }
  });

  it('refuses a truncated payload', async () => {
    const [head, faiss] = encodePayload(
      [{ key: Buffer.from('abc'), ver: '1-0' }],
      Buffer.from('x'),
    );
    await expect(decodePayload(head.subarray(0, head.length - 2))).rejects.toThrow(/truncated/);
    expect((await decodePayload(Buffer.concat([head, faiss]))).faiss.toString()).toBe('x');
  });
});
