/*
 * The payload of a shared index snapshot (snapshot.ts stores it in Redis):
 * the slots, i.e. for each FAISS position the key of the entry indexed there
 * and the version its vector came from (a u32 count; then per slot a u32 key
 * length, 0xffffffff for a dead slot, the key, a u8 version length and the
 * version), followed by FAISS's own serialization of the index.
 *
 * The two parts are stored in chunks of their own, so saving never copies
 * FAISS's bytes (the chunks are views of them), and a loader joins only the
 * slots on its event loop, decoding them DECODE_CHUNK per turn; FAISS's
 * chunks are joined by the worker thread that reads them (index/builder.ts).
 */
import { setImmediate as yieldToLoop } from 'node:timers/promises';

const DEAD_KEY = 0xffff_ffff;

/** An entry at a position of a snapshot: its key and the version indexed. */
export interface SlotEntry {
  key: Buffer;
  ver: string;
}

/** The payload: the slots, then FAISS's bytes, as two parts (save() chunks each). */
export function encodePayload(slots: (SlotEntry | undefined)[], faiss: Buffer): [Buffer, Buffer] {
  let size = 4;
  for (const s of slots) size += s === undefined ? 4 : 4 + s.key.length + 1 + s.ver.length;
  const head = Buffer.allocUnsafe(size);
  let at = head.writeUInt32LE(slots.length, 0);
  for (const s of slots) {
    if (s === undefined) {
      at = head.writeUInt32LE(DEAD_KEY, at);
      continue;
    }
    at = head.writeUInt32LE(s.key.length, at);
    at += s.key.copy(head, at);
    at = head.writeUInt8(s.ver.length, at);
    at += head.write(s.ver, at, 'latin1');
  }
  return [head, faiss];
}

/** Chunks of at most `size` bytes, each a view of one part (no copy). */
export function chunksOf(parts: Buffer[], size: number): Buffer[] {
  const out: Buffer[] = [];
  for (const p of parts)
    for (let at = 0; at < p.length; at += size) out.push(p.subarray(at, at + size));
  return out;
}

/** Slots decoded per turn of the event loop (20,000 took 11-43 ms in one go). */
const DECODE_CHUNK = 4096;

/** encodePayload()'s inverse; rejects on a malformed payload. Yields between DECODE_CHUNK slots. */
export async function decodePayload(
  p: Buffer,
): Promise<{ slots: (SlotEntry | undefined)[]; faiss: Buffer }> {
  const need = (at: number, n: number) => {
    if (at + n > p.length) throw new Error('snapshot payload truncated');
  };
  need(0, 4);
  const n = p.readUInt32LE(0);
  const slots: (SlotEntry | undefined)[] = [];
  let at = 4;
  for (let i = 0; i < n; i++) {
    if (i > 0 && i % DECODE_CHUNK === 0) await yieldToLoop();
    need(at, 4);
    const len = p.readUInt32LE(at);
    at += 4;
    if (len === DEAD_KEY) {
      slots.push(undefined);
      continue;
    }
    need(at, len + 1);
    const key = p.subarray(at, at + len);
    at += len;
    const vlen = p[at]!;
    at += 1;
    need(at, vlen);
    slots.push({ key: Buffer.from(key), ver: p.toString('latin1', at, at + vlen) });
    at += vlen;
  }
  return { slots, faiss: p.subarray(at) };
}
