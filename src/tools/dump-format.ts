/*
 * The dump format of `semcache export` and `semcache import`
 * (docs/storage.md#export-and-import): JSON lines, one namespace per dump.
 *
 *   line 1      header  {"semcache_dump":1,"semcache":"0.1.0","model":"hash:hash-v1-384:384",
 *                        "ns":"default","settings":{"threshold":"0.8"},"exported_at":1764950000000}
 *   line 2..n   entry   {"key":"<base64>","text":"...","attrs":"{\"lang\":\"de\"}",
 *                        "value":"<base64>","pttl":-1,"vec":"<base64 FP32 LE>"}
 *   last line   end     {"end":true,"entries":N}
 *
 * Why these choices: a stream of lines is written and read one entry at a
 * time (a 1M-entry namespace is never in memory), and survives `gzip`, `ssh`
 * and `split`. Keys and values are base64 because Redis keys and values are
 * binary; texts are JSON strings because the SEM commands take UTF-8 only.
 * `attrs` is the JSON text as SEMSET got it, kept as a string so it comes
 * back byte for byte. The header cannot know the entry count without a
 * scan of its own, so the count comes last: a dump that lacks its end line
 * was cut off, and import says so. The header's `model` is the first
 * entry's; an entry recorded with another model names its own (`"model"`).
 *
 * Every check of a line is here, so a line either parses whole or is
 * refused with its number (DumpError), before anything of it is written.
 */
import { unitCopy } from '../semantic/index/validate.js';
import { checkNamespaceName, parseAttrs } from '../semantic/namespace.js';
import { bytesToVector, vectorToBytes } from '../semantic/store.js';

export const DUMP_VERSION = 1;
/** Longest line import reads (and export writes): base64 makes a value about 4/3 its size. */
export const MAX_LINE_BYTES = 64 * 1024 * 1024;

export interface DumpHeader {
  version: number;
  semcache: string;
  /** `kind:model:dim` of the first entry (null in a dump without entries). */
  model: string | null;
  ns: string;
  /** The namespace's settings hash (`P ns:<name>`), every field. */
  settings: Record<string, string>;
  exportedAt: number;
}

export interface DumpEntry {
  key: Buffer;
  text: string;
  vector: Float32Array;
  /** The model the vector was made with. */
  model: string;
  attrs: string | undefined;
  value: Buffer;
  /** Milliseconds left at export, or -1: no expiry. */
  pttl: number;
}

/** A line that cannot be read; `line` counts from 1. */
export class DumpError extends Error {
  constructor(
    readonly line: number,
    message: string,
  ) {
    super(`line ${line}: ${message}`);
  }
}

export function headerLine(h: DumpHeader): string {
  return `${JSON.stringify({
    semcache_dump: h.version,
    semcache: h.semcache,
    model: h.model,
    ns: h.ns,
    settings: h.settings,
    exported_at: h.exportedAt,
  })}\n`;
}

export function entryLine(e: DumpEntry, headerModel: string | null): string {
  return `${JSON.stringify({
    key: e.key.toString('base64'),
    text: e.text,
    ...(e.attrs === undefined ? {} : { attrs: e.attrs }),
    value: e.value.toString('base64'),
    pttl: e.pttl,
    ...(e.model === headerModel ? {} : { model: e.model }),
    // Last: the longest field, and the one a reader needs least.
    vec: vectorToBytes(e.vector).toString('base64'),
  })}\n`;
}

export function endLine(entries: number): string {
  return `${JSON.stringify({ end: true, entries })}\n`;
}

/** The vector dimension a model id names (`kind:model:dim`), or undefined. */
export function dimOf(model: string): number | undefined {
  const m = /:(\d+)$/.exec(model);
  const dim = m === null ? Number.NaN : Number(m[1]);
  return Number.isSafeInteger(dim) && dim > 0 ? dim : undefined;
}

function object(text: string, line: number): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new DumpError(line, `not valid JSON (${(err as Error).message})`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new DumpError(line, 'not a JSON object');
  }
  return parsed as Record<string, unknown>;
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Strict base64: Buffer.from() would skip stray characters and read garbage as data. */
function base64(v: unknown, field: string, line: number): Buffer {
  if (typeof v !== 'string' || !BASE64.test(v)) {
    throw new DumpError(line, `'${field}' is not a base64 string`);
  }
  return Buffer.from(v, 'base64');
}

export function parseHeader(text: string, line: number): DumpHeader {
  const o = object(text, line);
  if (!('semcache_dump' in o)) {
    throw new DumpError(line, 'not a semcache dump (no "semcache_dump" header)');
  }
  const version = o.semcache_dump;
  if (typeof version !== 'number' || !Number.isInteger(version) || version < 1) {
    throw new DumpError(line, "'semcache_dump' is not a format version");
  }
  if (version > DUMP_VERSION) {
    throw new DumpError(
      line,
      `dump format ${version} is newer than this semcache reads (${DUMP_VERSION})`,
    );
  }
  const { model, ns, settings } = o;
  if (model !== null && (typeof model !== 'string' || dimOf(model) === undefined)) {
    throw new DumpError(line, "'model' is not a model id kind:model:dim");
  }
  if (typeof ns !== 'string' || !validNamespace(ns)) {
    throw new DumpError(line, "'ns' is not a namespace name");
  }
  if (settings === null || typeof settings !== 'object' || Array.isArray(settings)) {
    throw new DumpError(line, "'settings' is not an object");
  }
  for (const v of Object.values(settings)) {
    if (typeof v !== 'string') throw new DumpError(line, "'settings' values must be strings");
  }
  return {
    version,
    semcache: typeof o.semcache === 'string' ? o.semcache : 'unknown',
    model,
    ns,
    settings: settings as Record<string, string>,
    exportedAt: typeof o.exported_at === 'number' ? o.exported_at : 0,
  };
}

export function validNamespace(ns: string): boolean {
  try {
    checkNamespaceName(ns);
    return true;
  } catch {
    return false;
  }
}

export interface EntryLimits {
  /** --max-text-bytes: what the SEM commands take. */
  maxTextBytes: number;
}

/** An entry line, or the end line (its count checked against `seen`). */
export function parseLine(
  text: string,
  line: number,
  header: DumpHeader,
  limits: EntryLimits,
): DumpEntry | { end: number } {
  const o = object(text, line);
  if (o.end === true) {
    if (typeof o.entries !== 'number' || !Number.isSafeInteger(o.entries) || o.entries < 0) {
      throw new DumpError(line, "end line without an entry count ('entries')");
    }
    return { end: o.entries };
  }
  const key = base64(o.key, 'key', line);
  if (key.length === 0) throw new DumpError(line, "'key' is empty");
  if (typeof o.text !== 'string') throw new DumpError(line, "'text' is not a string");
  if (Buffer.byteLength(o.text) > limits.maxTextBytes) {
    throw new DumpError(line, `'text' is longer than --max-text-bytes (${limits.maxTextBytes})`);
  }
  const model = o.model ?? header.model;
  const dim = typeof model === 'string' ? dimOf(model) : undefined;
  if (typeof model !== 'string' || dim === undefined) {
    throw new DumpError(line, "'model' is not a model id kind:model:dim");
  }
  const vec = base64(o.vec, 'vec', line);
  if (vec.length !== dim * 4) {
    throw new DumpError(
      line,
      `'vec' has ${vec.length} bytes, model ${model} needs ${dim * 4} (${dim} FP32)`,
    );
  }
  const vector = bytesToVector(vec);
  try {
    // Checked only (finite, not all zeros): kept as written, so a round trip is byte for byte.
    unitCopy(vector, dim, "'vec'");
  } catch (err) {
    throw new DumpError(line, (err as Error).message);
  }
  if (o.attrs !== undefined) {
    if (typeof o.attrs !== 'string') throw new DumpError(line, "'attrs' is not a JSON string");
    try {
      parseAttrs(o.attrs);
    } catch (err) {
      throw new DumpError(line, `'attrs': ${(err as Error).message}`);
    }
  }
  const value = base64(o.value, 'value', line);
  const pttl = o.pttl;
  if (typeof pttl !== 'number' || !Number.isSafeInteger(pttl) || (pttl < 1 && pttl !== -1)) {
    throw new DumpError(line, "'pttl' is not a positive number of milliseconds or -1");
  }
  return { key, text: o.text, vector, model, attrs: o.attrs, value, pttl };
}
