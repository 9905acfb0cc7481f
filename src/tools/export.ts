/*
 * `semcache export --ns NAME`: one namespace of the cache as a dump
 * (dump-format.ts), written to a stream as it is read.
 *
 * Model: the records come from the store's own scan (SemanticStore.scan, the
 * one the rebuild on start reads), a batch at a time, filtered by namespace;
 * for each batch one pipeline reads every value and its PTTL. Only a batch
 * is in memory at a time, and the next waits while the output is full
 * (backpressure), so a namespace of any size goes out in bounded memory.
 *
 * What a dump holds is what the cache would answer: an entry whose value
 * expired or was deleted after the scan saw its record (GET nil, PTTL -2 or
 * 0) is left out, as is one whose key holds no string any more. TTLs are the
 * milliseconds left when the entry was read. The dump is not a snapshot:
 * entries written during the export may or may not be in it (SCAN's
 * guarantee: every entry there from start to end is).
 */
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import type { SemanticStore, StoredEntry } from '../semantic/store.js';
import type { RedisClient } from '../upstream/redis-client.js';
import {
  DUMP_VERSION,
  type DumpEntry,
  endLine,
  entryLine,
  headerLine,
  MAX_LINE_BYTES,
} from './dump-format.js';

export interface ExportOptions {
  store: SemanticStore;
  /** The same connection as the store's: values are read with semcache's credentials. */
  redis: RedisClient;
  ns: string;
  out: Writable;
  /** semcache's version, for the header. */
  version: string;
  /** Told of each entry left out because its line would pass MAX_LINE_BYTES. */
  warn(message: string): void;
}

export interface ExportResult {
  entries: number;
  /** Expired or deleted between the scan and the read, or no longer a string. */
  gone: number;
  /** Values too large for a dump line (MAX_LINE_BYTES): left out, with a warning each. */
  tooLarge: number;
}

/** The namespace has neither settings nor entries: nothing to export (no output written). */
export class UnknownNamespace extends Error {}

export async function exportNamespace(o: ExportOptions): Promise<ExportResult> {
  const settings = (await o.store.namespaces()).get(o.ns);
  const out = new Output(o.out);
  const result: ExportResult = { entries: 0, gone: 0, tooLarge: 0 };
  // The header names the first entry's model, so it waits for the first entry.
  let model: string | null | undefined;
  for await (const batch of o.store.scan()) {
    const mine = batch.filter((e) => e.ns === o.ns);
    if (mine.length === 0) continue;
    const entries = await readValues(o.redis, mine, result);
    if (entries.length === 0) continue;
    let chunk = '';
    if (model === undefined) {
      model = entries[0]!.model;
      chunk += header(o, settings ?? {}, model);
    }
    for (const e of entries) {
      const line = entryLine(e, model);
      if (Buffer.byteLength(line) > MAX_LINE_BYTES) {
        result.tooLarge++;
        o.warn(
          `key ${JSON.stringify(e.key.toString('latin1'))}: left out, its value (${e.value.length} bytes) makes a dump line over ${MAX_LINE_BYTES} bytes`,
        );
        continue;
      }
      chunk += line;
      result.entries++;
    }
    await out.write(chunk);
  }
  if (model === undefined) {
    if (settings === undefined) throw new UnknownNamespace(`namespace '${o.ns}' not found`);
    await out.write(header(o, settings, null));
  }
  await out.end(endLine(result.entries));
  return result;
}

function header(o: ExportOptions, settings: Record<string, string>, model: string | null) {
  return headerLine({
    version: DUMP_VERSION,
    semcache: o.version,
    model,
    ns: o.ns,
    settings,
    exportedAt: Date.now(),
  });
}

/** GET and PTTL of each entry's key in one pipeline; entries whose value is gone are counted. */
async function readValues(
  redis: RedisClient,
  records: StoredEntry[],
  result: ExportResult,
): Promise<DumpEntry[]> {
  const replies = await redis.pipeline(
    records.flatMap((r) => [['GET', r.key] as const, ['PTTL', r.key] as const]),
  );
  const out: DumpEntry[] = [];
  records.forEach((r, i) => {
    const value = replies[2 * i];
    const pttl = replies[2 * i + 1];
    // A WRONGTYPE reply is an Error value: the key holds no string now.
    if (!Buffer.isBuffer(value) || typeof pttl !== 'number' || (pttl < 1 && pttl !== -1)) {
      result.gone++;
      return;
    }
    out.push({
      key: r.key,
      text: r.text,
      vector: r.vector,
      model: r.model,
      attrs: r.attrs,
      value,
      pttl,
    });
  });
  return out;
}

/** A Writable with backpressure, and its first error kept for the next write. */
class Output {
  private failure: Error | undefined;

  constructor(private readonly stream: Writable) {
    stream.on('error', (err) => {
      this.failure ??= err;
    });
  }

  async write(text: string): Promise<void> {
    if (this.failure) throw this.failure;
    if (text !== '' && !this.stream.write(text)) await once(this.stream, 'drain');
  }

  /** Write the last text and wait until it is handed to the system. */
  async end(text: string): Promise<void> {
    if (this.failure) throw this.failure;
    await new Promise<void>((done, fail) =>
      this.stream.write(text, (err) => (err ? fail(err) : done())),
    );
  }
}
