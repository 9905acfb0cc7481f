/*
 * The payload of a shared index snapshot (snapshot.ts stores it in Redis):
 * the slots, i.e. for each FAISS position the key of the entry indexed there
 * and the version its vector came from (a u32 count; then per slot a u32 key
 * length, 0xffffffff for a dead slot, the key, a u8 version length and the
 * version); since manifests name `entries`, the namespace's entries as the
 * saver held them (a u32 count; then per entry a u32 key length and the key,
 * a u8 version length and the version, a u32 text length and the text
 * (UTF-8), a u32 attributes length, 0xffffffff for none, and their JSON, a
 * u8 length and the exact-match hash); then FAISS's own serialization of
 * the index. The slots and the entries are the payload's head.
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

/** An entry as a snapshot holds it: what a joining instance takes instead of reading its record. */
export interface HeldEntry {
  key: Buffer;
  ver: string;
  text: string;
  attrs: string | undefined;
  /** The exact-match hash (hex). */
  exact: string;
}

/** What encodeHeld() reads of an entry (an Entry: its key as a latin1 string). */
export interface EntryFields {
  readonly name: string;
  readonly ver: string;
  readonly text: string;
  readonly attrsJson: string | undefined;
  readonly exact: string;
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

/** Entries encoded per turn of the event loop. */
const ENCODE_CHUNK = 4096;

/** The entries' section of a payload's head (it follows the slots'). Yields between ENCODE_CHUNK entries. */
export async function encodeHeld(entries: readonly EntryFields[]): Promise<Buffer> {
  let size = 4;
  for (const e of entries) {
    const attrs = e.attrsJson === undefined ? 0 : Buffer.byteLength(e.attrsJson);
    size += 4 + e.name.length + 1 + e.ver.length + 4 + Buffer.byteLength(e.text);
    size += 4 + attrs + 1 + e.exact.length;
  }
  const out = Buffer.allocUnsafe(size);
  let at = out.writeUInt32LE(entries.length, 0);
  for (const [i, e] of entries.entries()) {
    if (i > 0 && i % ENCODE_CHUNK === 0) await yieldToLoop();
    at = out.writeUInt32LE(e.name.length, at);
    at += out.write(e.name, at, 'latin1');
    at = out.writeUInt8(e.ver.length, at);
    at += out.write(e.ver, at, 'latin1');
    at = out.writeUInt32LE(Buffer.byteLength(e.text), at);
    at += out.write(e.text, at, 'utf8');
    if (e.attrsJson === undefined) at = out.writeUInt32LE(DEAD_KEY, at);
    else {
      at = out.writeUInt32LE(Buffer.byteLength(e.attrsJson), at);
      at += out.write(e.attrsJson, at, 'utf8');
    }
    at = out.writeUInt8(e.exact.length, at);
    at += out.write(e.exact, at, 'latin1');
  }
  return out;
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

/** A payload decoded: the slots, the entries (when it has them), FAISS's bytes. */
export interface DecodedPayload {
  slots: (SlotEntry | undefined)[];
  entries: HeldEntry[] | undefined;
  faiss: Buffer;
}

/**
 * encodePayload()'s inverse (with the entries' section when `held`, as its
 * manifest says); rejects on a malformed payload. Yields between DECODE_CHUNK
 * slots or entries.
 */
export async function decodePayload(p: Buffer, held = false): Promise<DecodedPayload> {
  const need = (at: number, n: number) => {
    if (at + n > p.length) throw new Error('snapshot payload truncated');
  };
  const u32 = (at: number) => {
    need(at, 4);
    return p.readUInt32LE(at);
  };
  const n = u32(0);
  const slots: (SlotEntry | undefined)[] = [];
  let at = 4;
  for (let i = 0; i < n; i++) {
    if (i > 0 && i % DECODE_CHUNK === 0) await yieldToLoop();
    const len = u32(at);
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
  if (!held) return { slots, entries: undefined, faiss: p.subarray(at) };
  const count = u32(at);
  at += 4;
  const entries: HeldEntry[] = [];
  const short = (): string => {
    need(at, 1);
    const len = p[at]!;
    need(at + 1, len);
    at += 1 + len;
    return p.toString('latin1', at - len, at);
  };
  for (let i = 0; i < count; i++) {
    if (i > 0 && i % DECODE_CHUNK === 0) await yieldToLoop();
    const klen = u32(at);
    need(at + 4, klen);
    const key = Buffer.from(p.subarray(at + 4, at + 4 + klen));
    at += 4 + klen;
    const ver = short();
    const tlen = u32(at);
    need(at + 4, tlen);
    const text = p.toString('utf8', at + 4, at + 4 + tlen);
    at += 4 + tlen;
    const alen = u32(at);
    at += 4;
    let attrs: string | undefined;
    if (alen !== DEAD_KEY) {
      need(at, alen);
      attrs = p.toString('utf8', at, at + alen);
      at += alen;
    }
    entries.push({ key, ver, text, attrs, exact: short() });
  }
  return { slots, entries, faiss: p.subarray(at) };
}
