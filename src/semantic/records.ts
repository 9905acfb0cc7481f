/*
 * A record as Redis holds it (store.ts): the fields of P rec:<key>, the
 * vector as FP32 little-endian bytes, and how a reply of HMGET over them
 * becomes a StoredEntry.
 */
import { endianness } from 'node:os';
import type { RedisValue } from '../upstream/redis-client.js';

export interface StoredEntry {
  key: Buffer;
  ns: string;
  text: string;
  vector: Float32Array;
  attrs: string | undefined;
  model: string;
  /** The exact-match hash the record names (scan() only; undefined when it names none). */
  exactHash?: string | undefined;
  /** The feed id of the record's last change ('' for records written before the feed). */
  ver?: string;
}

/** A record as a join reads it: its vector left out where a snapshot has it (store.ts scan()). */
export type ScannedEntry = Omit<StoredEntry, 'vector'> & { vector: Float32Array | undefined };

const LITTLE_ENDIAN = endianness() === 'LE';

/** FP32 little-endian bytes (the layout Redis's VADD FP32 uses too). */
export function vectorToBytes(v: Float32Array): Buffer {
  if (LITTLE_ENDIAN) return Buffer.from(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength));
  const out = Buffer.allocUnsafe(v.length * 4);
  for (let i = 0; i < v.length; i++) out.writeFloatLE(v[i]!, i * 4);
  return out;
}

export function bytesToVector(b: Buffer): Float32Array {
  const n = b.length >>> 2;
  // One copy into an aligned buffer; per-float reads are ~50x slower on a rebuild.
  if (LITTLE_ENDIAN) return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + n * 4));
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = b.readFloatLE(i * 4);
  return v;
}

export const RECORD_FIELDS = ['ns', 'text', 'vec', 'attrs', 'model', 'exact', 'ver'];
/** RECORD_FIELDS but the vector (scan() of a join, leanEntry()). */
export const LEAN_FIELDS = ['ns', 'text', 'attrs', 'model', 'exact', 'ver'];

/** A record read with HMGET RECORD_FIELDS; undefined when there is none (or it is damaged). */
export function toEntry(key: Buffer, r: RedisValue, prefix: string): StoredEntry | undefined {
  if (!Array.isArray(r)) return undefined;
  const [ns, text, vec, attrs, model, exact, ver] = r;
  if (!Buffer.isBuffer(vec)) return undefined;
  const e = fields(key, [ns, text, attrs, model, exact, ver], prefix);
  return e === undefined ? undefined : { ...e, vector: bytesToVector(vec) };
}

/** A record read with HMGET LEAN_FIELDS, without its vector; undefined as toEntry(). */
export function leanEntry(
  key: Buffer,
  r: RedisValue,
  prefix: string,
): Omit<StoredEntry, 'vector'> | undefined {
  return Array.isArray(r) ? fields(key, r, prefix) : undefined;
}

/** The last exact-match key prefix made: records come a namespace at a time, mostly. */
let lastPrefix = { prefix: '', space: '', bytes: Buffer.alloc(0) };

function exactPrefixOf(prefix: string, space: string): Buffer {
  if (lastPrefix.prefix !== prefix || lastPrefix.space !== space) {
    lastPrefix = { prefix, space, bytes: Buffer.from(`${prefix}exact:${space}:`) };
  }
  return lastPrefix.bytes;
}

function fields(
  key: Buffer,
  [ns, text, attrs, model, exact, ver]: (RedisValue | undefined)[],
  prefix: string,
): Omit<StoredEntry, 'vector'> | undefined {
  if (!Buffer.isBuffer(ns) || !Buffer.isBuffer(text)) return undefined;
  const space = ns.toString();
  // The hash after the record's exact-match key's prefix, as a string of its own (a slice
  // of the key's string would keep the whole key alive: 104 bytes more per entry).
  const exactPrefix = exactPrefixOf(prefix, space);
  const plen = exactPrefix.length;
  const exactHash =
    Buffer.isBuffer(exact) && exact.length > plen && exactPrefix.compare(exact, 0, plen) === 0
      ? exact.toString('utf8', plen)
      : undefined;
  return {
    key,
    ns: space,
    text: text.toString(),
    attrs: Buffer.isBuffer(attrs) ? attrs.toString() : undefined,
    model: Buffer.isBuffer(model) ? model.toString() : '',
    exactHash,
    ver: Buffer.isBuffer(ver) ? ver.toString() : '',
  };
}

/** HGETALL's flat reply as an object. */
export function pairs(r: RedisValue[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let j = 0; j + 1 < r.length; j += 2) out[String(r[j])] = String(r[j + 1]);
  return out;
}
