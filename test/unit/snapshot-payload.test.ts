// The snapshot payload (src/semantic/snapshot-payload.ts): what save() writes, chunk by chunk, is
// what load() decodes, and the chunks are views of the parts (FAISS's bytes are not copied).
import { describe, expect, it } from 'vitest';
import {
  chunksOf,
  decodePayload,
  encodeHeld,
  encodePayload,
} from '../../src/semantic/snapshot-payload.js';

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

  it("holds the saver's entries after the slots: texts in any script, attributes or none, binary keys", async () => {
    const entries = [
      {
        name: 'k1',
        ver: '1-0',
        text: 'house near ostsee',
        attrsJson: undefined,
        exact: 'ab'.repeat(32),
      },
      {
        name: '\u0000\u00ff\r\n',
        ver: '',
        text: 'Wohnung 🏠 an der Ostsee',
        attrsJson: '{"a":1,"b":"ü"}',
        exact: '',
      },
      { name: '', ver: '1733500000000-7', text: '', attrsJson: '', exact: 'cd'.repeat(32) },
      ...Array.from({ length: 9000 }, (_, i) => ({
        name: `key:${i}`,
        ver: `${i}-1`,
        text: `text ${i}`,
        attrsJson: i % 2 ? undefined : `{"i":${i}}`,
        exact: i.toString(16).padStart(64, '0'),
      })),
    ];
    const slots = [{ key: Buffer.from('k1'), ver: '1-0' }, undefined];
    const [head, faiss] = encodePayload(slots, Buffer.from('FAISS'));
    const payload = Buffer.concat([head, await encodeHeld(entries), faiss]);
    for (const size of [3, 1 << 16]) {
      const back = await decodePayload(Buffer.concat(chunksOf([payload], size)), true);
      expect(back.slots).toEqual(slots);
      expect(back.faiss.toString()).toBe('FAISS');
      expect(back.entries).toEqual(
        entries.map((e) => ({
          key: Buffer.from(e.name, 'latin1'),
          ver: e.ver,
          text: e.text,
          attrs: e.attrsJson,
          exact: e.exact,
        })),
      );
    }
    // Read as an older payload (no entries): they are taken as FAISS's bytes, which is why the
    // manifest says whether they are there.
    expect((await decodePayload(payload)).entries).toBeUndefined();
    // Truncated anywhere in the entries: refused.
    const held = await encodeHeld(entries.slice(0, 3));
    for (const cut of [1, 5, 20, held.length - 1]) {
      const p = Buffer.concat([head, held.subarray(0, cut)]);
      await expect(decodePayload(p, true)).rejects.toThrow(/truncated/);
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
