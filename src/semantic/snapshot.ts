/*
 * Shared index snapshots (docs/fleet.md, "Snapshots"): the built main
 * segment of a namespace's index (HNSW or IVF, FAISS's own serialization),
 * kept in Redis so that an instance that starts or joins loads it instead of
 * building a graph for minutes. Layout, with P the prefix and N the
 * namespace:
 *
 *   P snap:N             HASH    the manifest: gen, model, kind, dim, ef, vectors,
 *                                chunks, bytes, head, entries, feed, origin, ts
 *   P snapchunk:<gen>:i  STRING  chunk i of the payload, CHUNK_BYTES at most
 *   P snaplease:N        STRING  the instance that builds N's graph now
 *   P snaps              SET     the namespaces that have one, and '' once complete
 *
 * The payload names the entry at each FAISS position by its key and the
 * version (`ver`) its vector was indexed from; a loader uses a position only
 * for an entry it holds at that same version, so a snapshot older than the
 * records, or written while writes raced with it, costs tail entries, never
 * a wrong answer (the payload's layout: snapshot-payload.ts). Chunks are
 * written first, under a generation of their own; the manifest then points
 * at them (SWAP_SCRIPT) and the previous generation's chunks are deleted. A
 * loader that finds a chunk missing (a newer snapshot replaced it meanwhile)
 * gives up and keeps what it has.
 *
 * The lease (SET NX PX, renewed while the build runs) decides which instance
 * builds a namespace's graph when several start at once; the others serve
 * from their flat tail or interim IVF and adopt the snapshot when it comes.
 */
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { RedisClient } from '../upstream/redis-client.js';
import { listedNames } from './record-scan.js';
import { ScriptRunner } from './scripts.js';
import {
  chunksOf,
  decodePayload,
  type EntryFields,
  encodeHeld,
  encodePayload,
  type HeldEntry,
  type SlotEntry,
} from './snapshot-payload.js';
import type { IndexKind, MainExport } from './types.js';

/** Bytes per chunk: far below Redis's proto-max-bulk-len (512 MB by default). */
export const CHUNK_BYTES = 8 << 20;

export interface SnapshotManifest {
  gen: string;
  model: string;
  kind: IndexKind;
  dim: number;
  efSearch: number;
  vectors: number;
  chunks: number;
  bytes: number;
  /** Bytes of the slots at the payload's start, in chunks of their own (undefined: older snapshots). */
  head?: number | undefined;
  /** How many entries the head holds after the slots (undefined: older snapshots, none). */
  entries?: number | undefined;
  /** The newest feed event applied by the instance when it saved. */
  feed: string;
  origin: string;
  ts: number;
}

export interface Snapshot {
  manifest: SnapshotManifest;
  kind: IndexKind;
  efSearch: number;
  /** FAISS's bytes, in order: the chunks as read, joined only where FAISS reads them. */
  faiss: Buffer[];
  /** The entry at each position; undefined: dead. */
  slots: (SlotEntry | undefined)[];
}

/** A snapshot being read (SnapshotStore.fetch). */
export interface SnapshotFetch {
  manifest: SnapshotManifest;
  /** The entry at each position, as soon as the chunks that hold them came. */
  slots: Promise<(SlotEntry | undefined)[] | undefined>;
  /** The namespace's entries as the saver held them, with the slots (undefined: none). */
  entries: Promise<HeldEntry[] | undefined>;
  snapshot: Promise<Snapshot | undefined>;
}

/** Replies that are all strings, or undefined (a chunk was missing). */
function buffers(replies: unknown[]): Buffer[] | undefined {
  return replies.every((c) => Buffer.isBuffer(c)) ? (replies as Buffer[]) : undefined;
}

const length = (chunks: Buffer[]) => chunks.reduce((n, c) => n + c.length, 0);

/** Point the manifest at a new generation; returns the old gen and chunk count. */
const SWAP_SCRIPT = `
local old = redis.call('HMGET', KEYS[1], 'gen', 'chunks')
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV))
return old
`;

/** Delete the lease KEYS[1] if ARGV[1] holds it. */
const RELEASE_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

/** Take the lease (KEYS[1]) for ARGV[1], or renew it if it holds it; PX ARGV[2]. */
const LEASE_SCRIPT = `
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
`;

export class SnapshotStore {
  private readonly scripts: ScriptRunner;

  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    private readonly origin: string,
  ) {
    this.scripts = new ScriptRunner(redis);
  }

  /** The set of namespaces that have a snapshot (list()). */
  private get listKey(): string {
    return `${this.prefix}snaps`;
  }

  manifestKey(ns: string): string {
    return `${this.prefix}snap:${ns}`;
  }

  private chunkKey(gen: string, i: number): string {
    return `${this.prefix}snapchunk:${gen}:${i}`;
  }

  private leaseKey(ns: string): string {
    return `${this.prefix}snaplease:${ns}`;
  }

  /** The manifest of `ns`'s snapshot, or undefined. */
  async manifest(ns: string): Promise<SnapshotManifest | undefined> {
    const r = (await this.redis.call('HGETALL', this.manifestKey(ns))) as Buffer[];
    if (!Array.isArray(r) || r.length === 0) return undefined;
    const h: Record<string, string> = {};
    for (let i = 0; i + 1 < r.length; i += 2) h[String(r[i])] = String(r[i + 1]);
    const num = (k: string) => Number(h[k]);
    if (h.gen === undefined || !Number.isInteger(num('chunks'))) return undefined;
    return {
      gen: h.gen,
      model: h.model ?? '',
      kind: h.kind as IndexKind,
      dim: num('dim'),
      efSearch: num('ef'),
      vectors: num('vectors'),
      chunks: num('chunks'),
      bytes: num('bytes'),
      head: h.head === undefined ? undefined : num('head'),
      entries: h.entries === undefined ? undefined : num('entries'),
      feed: h.feed ?? '0-0',
      origin: h.origin ?? '',
      ts: num('ts'),
    };
  }

  /** Write `ns`'s snapshot: chunks first, then the manifest; the old chunks go. */
  async save(
    ns: string,
    m: MainExport,
    slots: (SlotEntry | undefined)[],
    meta: { model: string; dim: number; feed: string },
    held?: readonly EntryFields[],
  ): Promise<SnapshotManifest> {
    const parts = encodePayload(slots, m.buffer);
    if (held !== undefined) parts[0] = Buffer.concat([parts[0], await encodeHeld(held)]);
    const gen = `${this.origin}-${Date.now().toString(36)}`;
    const list = chunksOf(parts, CHUNK_BYTES);
    for (const [i, chunk] of list.entries()) {
      await this.redis.call('SET', this.chunkKey(gen, i), chunk);
    }
    const chunks = list.length;
    const manifest: SnapshotManifest = {
      gen,
      model: meta.model,
      kind: m.kind,
      dim: meta.dim,
      efSearch: m.efSearch,
      vectors: slots.length,
      chunks,
      bytes: parts[0].length + parts[1].length,
      head: parts[0].length,
      entries: held?.length,
      feed: meta.feed,
      origin: this.origin,
      ts: Date.now(),
    };
    const fields = Object.entries({ ...manifest, ef: manifest.efSearch, efSearch: undefined })
      .filter(([, v]) => v !== undefined)
      .flatMap(([k, v]) => [k, String(v)]);
    const old = (await this.scripts.run(
      SWAP_SCRIPT,
      [this.manifestKey(ns)],
      fields,
    )) as (Buffer | null)[];
    const [oldGen, oldChunks] = [old?.[0], Number(old?.[1])];
    await this.redis.call('SADD', this.listKey, ns);
    if (oldGen && oldGen.toString() !== gen) await this.dropChunks(oldGen.toString(), oldChunks);
    return manifest;
  }

  /**
   * The namespaces that have a snapshot: the members of P snaps, which
   * save() and drop() keep, once it is complete (it holds LISTED). Before
   * that (snapshots saved by an earlier version, or none yet), a walk over
   * the keyspace (SCAN, as many calls as keys / 1,000), which then makes it
   * complete.
   */
  async list(): Promise<string[]> {
    return listedNames(this.redis, this.prefix, this.listKey, 'snap:', true);
  }

  /** `ns`'s snapshot, or undefined when there is none or it changed while read. */
  async load(ns: string, m?: SnapshotManifest): Promise<Snapshot | undefined> {
    return (await this.fetch(ns, m))?.snapshot;
  }

  /**
   * Start reading `ns`'s snapshot: the chunks that hold its slots are asked
   * for first, so `slots` is known (undefined: not apart, or gone) long
   * before `snapshot`, the whole, comes; undefined when there is none.
   */
  async fetch(ns: string, m?: SnapshotManifest): Promise<SnapshotFetch | undefined> {
    const manifest = m ?? (await this.manifest(ns));
    if (manifest === undefined) return undefined;
    const get = (from: number, to: number) =>
      this.redis.pipeline(
        Array.from({ length: to - from }, (_, i) => ['GET', this.chunkKey(manifest.gen, from + i)]),
      );
    // The slots end where a chunk ends (save() chunks the two parts apart), in the
    // chunks of CHUNK_BYTES that hold `head` bytes, unless they were saved in others.
    const h = Math.min(manifest.chunks, Math.ceil((manifest.head ?? 0) / CHUNK_BYTES));
    const first = get(0, h).then(buffers);
    // Asked for once the slots came: else they wait behind FAISS's bytes in the replies' stream.
    const rest = first.then(() => get(h, manifest.chunks)).then(buffers);
    const held = manifest.entries !== undefined;
    // With entries, decoded once every chunk came: V8 marks the heap again for every 64 MB
    // of new buffers (74 against 640 MB/s beside 1,000,000 entries, bench/fetch-heap.mjs).
    const head = (held ? rest.then(() => first) : first).then(async (heads) => {
      if (heads === undefined || h === 0 || length(heads) !== manifest.head) return undefined;
      const joined = Buffer.concat(heads);
      await yieldToLoop(); // the copy above and the decoding below in turns of their own
      return decodePayload(joined, held);
    });
    const slots = head.then((d) => d?.slots);
    const entries = head.then((d) => d?.entries);
    entries.catch(() => {}); // as `slots`
    const snapshot = Promise.all([first, rest, slots]).then(async ([heads, tail, decoded]) => {
      if (heads === undefined || tail === undefined) return undefined; // replaced meanwhile
      if (length(heads) + length(tail) !== manifest.bytes) return undefined;
      const whole = { manifest, kind: manifest.kind, efSearch: manifest.efSearch };
      // Apart: only the slots were joined here; FAISS's chunks are joined by the worker
      // that reads them (index/builder.ts). Else (older snapshots) all is joined.
      if (decoded !== undefined) return { ...whole, slots: decoded, faiss: tail };
      const payload = Buffer.concat([...heads, ...tail]);
      await yieldToLoop();
      const { slots: all, faiss } = await decodePayload(payload, held);
      return { ...whole, slots: all, faiss: faiss.length > 0 ? [faiss] : [] };
    });
    slots.catch(() => {}); // also rejects `snapshot`, where it is awaited
    return { manifest, slots, entries, snapshot };
  }

  /** Remove `ns`'s snapshot (SEMFLUSH, SEMNS DEL). */
  async drop(ns: string): Promise<void> {
    const m = await this.manifest(ns);
    await this.redis.call('DEL', this.manifestKey(ns));
    await this.redis.call('SREM', this.listKey, ns);
    if (m !== undefined) await this.dropChunks(m.gen, m.chunks);
  }

  /** Take or renew the lease on building `ns`'s graph for `ms`; true when this instance holds it. */
  async lease(ns: string, ms: number): Promise<boolean> {
    return (await this.scripts.run(LEASE_SCRIPT, [this.leaseKey(ns)], [this.origin, ms])) === 1;
  }

  /** Give the lease on `ns` up, if this instance holds it. */
  async release(ns: string): Promise<void> {
    await this.scripts.run(RELEASE_SCRIPT, [this.leaseKey(ns)], [this.origin]);
  }

  private async dropChunks(gen: string, chunks: number): Promise<void> {
    const keys = Array.from({ length: Number.isInteger(chunks) ? chunks : 0 }, (_, i) =>
      this.chunkKey(gen, i),
    );
    if (keys.length > 0) await this.redis.call('DEL', ...keys);
  }
}
