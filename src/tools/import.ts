/*
 * `semcache import [--ns NAME]`: a dump (dump-format.ts) merged into a
 * namespace, read from a stream as it arrives.
 *
 * Model: lines are read and checked one at a time (lines.ts, dump-format.ts)
 * and gathered into batches (IMPORT_BATCH entries or BATCH_BYTES of values);
 * a batch is written whole, then the next is read, so memory stays bounded
 * whatever the dump's size. For a batch:
 *   1. entries recorded with another model than the configured embedder's
 *      are embedded again, as the rebuild on start does (rebuild.ts);
 *   2. one pipeline: EXISTS of each record (to count replaced entries) and
 *      `SET key value [PX pttl]`;
 *   3. each record and exact key through SemanticStore.put(), with the
 *      value's SHA-1: the one way records are written (the store's script
 *      gives them the value's TTL, and writes nothing if the key changed
 *      meanwhile, which is counted as skipped).
 * As in LangChain's FAISS merge_from, entries are added to what the
 * namespace holds and an entry at the same key is replaced. The namespace's
 * settings come from the dump only when it does not exist yet (no settings
 * and no entries); an existing namespace keeps its own.
 *
 * A line that cannot be read stops the import with its number (DumpError);
 * the entries of the lines before it are written first, nothing of it.
 * Import is not one transaction: after a failure, fix the dump and run it
 * again (every entry is overwritten, the result is the same). `check` reads
 * and checks the whole dump without writing anything.
 */
import { createHash } from 'node:crypto';
import { exactKey } from '../semantic/normalize.js';
import type { SemanticStore } from '../semantic/store.js';
import { type Embedder, modelIdOf } from '../semantic/types.js';
import type { RedisClient } from '../upstream/redis-client.js';
import {
  type DumpEntry,
  DumpError,
  type DumpHeader,
  MAX_LINE_BYTES,
  parseHeader,
  parseLine,
} from './dump-format.js';
import { readLines } from './lines.js';

/** Entries per batch, and the most value bytes a batch holds before it is written. */
const IMPORT_BATCH = 256;
const BATCH_BYTES = 16 * 1024 * 1024;

export interface ImportTarget {
  store: SemanticStore;
  redis: RedisClient;
  /** Loaded: its model id decides which entries are embedded again. */
  embedder: Embedder;
  /** Texts per embedder call. */
  embedBatch: number;
}

export interface ImportOptions {
  input: AsyncIterable<Buffer | string>;
  /** Namespace to import into; default the dump's. */
  ns: string | undefined;
  maxTextBytes: number;
  /** Undefined: check the dump only, write nothing. Called once the header is read. */
  target: ((header: DumpHeader) => Promise<ImportTarget>) | undefined;
}

export interface ImportResult {
  ns: string;
  header: DumpHeader;
  entries: number;
  reembedded: number;
  replaced: number;
  /** The key changed or expired between its SET and its record. */
  skipped: number;
  /** 'written': the namespace was new and got the dump's settings; 'kept': it existed. */
  settings: 'written' | 'kept' | 'none';
}

/** Redis refused a write; `line` is the dump line of the entry. */
export class ImportFailure extends Error {}

interface Pending {
  entry: DumpEntry;
  line: number;
}

export async function importDump(o: ImportOptions): Promise<ImportResult> {
  const lines = readLines(o.input, MAX_LINE_BYTES);
  const first = await lines.next();
  if (first.done) throw new DumpError(1, 'the input is empty, not a semcache dump');
  const header = parseHeader(first.value.text, 1);
  const ns = o.ns ?? header.ns;
  const result: ImportResult = {
    ns,
    header,
    entries: 0,
    reembedded: 0,
    replaced: 0,
    skipped: 0,
    settings: 'none',
  };
  const target = await o.target?.(header);
  if (target !== undefined) result.settings = await settle(target.store, ns, header);
  let batch: Pending[] = [];
  let bytes = 0;
  const flush = async () => {
    if (target !== undefined && batch.length > 0) await write(target, ns, batch, result);
    else if (target === undefined) result.entries += batch.length;
    batch = [];
    bytes = 0;
  };
  let end: { count: number; line: number } | undefined;
  let last = 1;
  try {
    for await (const { text, line } of lines) {
      last = line;
      if (end !== undefined)
        throw new DumpError(line, `data after the end line (line ${end.line})`);
      const parsed = parseLine(text, line, header, { maxTextBytes: o.maxTextBytes });
      if ('end' in parsed) {
        end = { count: parsed.end, line };
        continue;
      }
      batch.push({ entry: parsed, line });
      bytes += parsed.value.length;
      if (batch.length >= IMPORT_BATCH || bytes >= BATCH_BYTES) await flush();
    }
  } catch (err) {
    // The lines before the bad one were whole: they are written, as they would have been.
    if (err instanceof DumpError) await flush();
    throw err;
  }
  await flush();
  if (end === undefined) {
    throw new DumpError(last + 1, 'the dump ends without its end line (truncated)');
  }
  // Line 1 is the header: entries are the lines between it and the end line.
  const seen = end.line - 2;
  if (end.count !== seen) {
    throw new DumpError(end.line, `the end line counts ${end.count} entries, the dump has ${seen}`);
  }
  return result;
}

/** A new namespace gets the dump's settings; an existing one (settings or entries) keeps its own. */
async function settle(
  store: SemanticStore,
  ns: string,
  header: DumpHeader,
): Promise<ImportResult['settings']> {
  if ((await store.namespaces()).has(ns) || (await store.hasEntries(ns))) return 'kept';
  if (Object.keys(header.settings).length === 0) return 'none';
  await store.saveNamespace(ns, header.settings);
  return 'written';
}

async function write(
  t: ImportTarget,
  ns: string,
  batch: Pending[],
  result: ImportResult,
): Promise<void> {
  const modelId = modelIdOf(t.embedder);
  const stale = batch.filter((p) => p.entry.model !== modelId);
  for (let i = 0; i < stale.length; i += t.embedBatch) {
    const slice = stale.slice(i, i + t.embedBatch);
    const vectors = await t.embedder.embed(slice.map((p) => p.entry.text));
    slice.forEach((p, j) => {
      p.entry.vector = vectors[j]!;
    });
  }
  const replies = await t.redis.pipeline(
    batch.flatMap(({ entry: e }) => [
      ['EXISTS', t.store.recordKey(e.key)],
      e.pttl > 0 ? ['SET', e.key, e.value, 'PX', e.pttl] : ['SET', e.key, e.value],
    ]),
  );
  let refused: ImportFailure | undefined;
  const written: (Pending & { existed: boolean })[] = [];
  batch.forEach((p, i) => {
    const set = replies[2 * i + 1];
    if (set instanceof Error) {
      const remedy = set.message.startsWith('NOPERM')
        ? ' (import writes the values: its Redis user must be allowed to write these keys, docs/security.md)'
        : '';
      refused ??= new ImportFailure(
        `line ${p.line}: redis refused the SET: ${set.message}${remedy}`,
      );
    } else written.push({ ...p, existed: replies[2 * i] === 1 });
  });
  // Records of the values that were written, even when one was refused.
  const pttls = await Promise.all(
    written.map(({ entry: e }) =>
      t.store.put(
        {
          key: e.key,
          ns,
          text: e.text,
          vector: e.vector,
          attrs: e.attrs,
          model: modelId,
          exactHash: exactKey(e.text),
        },
        createHash('sha1').update(e.value).digest('hex'),
      ),
    ),
  );
  written.forEach((p, i) => {
    if (pttls[i] === undefined) {
      result.skipped++;
      return;
    }
    result.entries++;
    if (p.entry.model !== modelId) result.reembedded++;
    if (p.existed) result.replaced++;
  });
  if (refused !== undefined) throw refused;
}
