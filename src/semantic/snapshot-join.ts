/*
 * What an instance that starts beside a fleet's snapshots takes from them
 * besides the graph (docs/fleet.md, "Joining"): the entries, where the
 * snapshot holds them (its saver's, as of the feed id its manifest names:
 * takeHeld(); snapshot-held.ts takes them, their records are not read, the
 * feed replays the changes after that id, and the keys SCAN no longer finds
 * are forgotten; the graph's model, dimension and kind must fit), and the
 * vectors. Each snapshot's
 * slots (its keys and versions, fetched first: snapshot.ts fetch()) say
 * which records' vectors it holds, so the rebuild reads those records
 * without their `vec` (covered(); record-scan.ts) and remembers them in no
 * index yet; fill() then reads their vectors from the snapshot's FAISS bytes
 * (index/stored-vectors.ts, fp32 graphs) into the namespace's index, before
 * the graph is adopted. Whatever it cannot fill (a q8 graph, another layout,
 * a snapshot that was replaced or failed to come) is left to the caller,
 * which reads those vectors from Redis: a snapshot saves transfer, it never
 * decides what an entry is.
 */
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { storedVectors } from './index/stored-vectors.js';
import type { Entry, Namespace } from './namespace.js';
import type { Snapshot, SnapshotFetch, SnapshotManifest } from './snapshot.js';
import type { HeldEntry, SlotEntry } from './snapshot-payload.js';
import type { StoredEntry } from './store.js';
import type { VectorIndex } from './types.js';

/** Positions mapped, or vectors filled, per turn of the event loop. */
const CHUNK = 4096;
/** |length² - 1| above which a vector read from a snapshot is taken as damaged. */
const UNIT_TOLERANCE = 1e-4;

interface Covering {
  slots: (SlotEntry | undefined)[];
  /** Position by key (latin1). */
  pos: Map<string, number>;
}

/** A namespace's entries as its snapshot holds them, as of the feed id `feed`. */
export interface HeldSpace {
  entries: HeldEntry[];
  feed: string;
}

export class JoinCoverage {
  readonly #byNs = new Map<string, Covering>();
  #held = new Map<string, HeldSpace>();

  constructor(
    private readonly modelId: string,
    private readonly dim: number,
  ) {}

  /** The coverage of fetches whose slots come first (snapshot.ts fetch()); never rejects. */
  static async of(
    fetches: Map<string, Promise<SnapshotFetch | undefined>>,
    modelId: string,
    dim: number,
  ): Promise<JoinCoverage> {
    const join = new JoinCoverage(modelId, dim);
    for (const [ns, f] of fetches) {
      try {
        const head = await f;
        const slots = await head?.slots;
        const entries = await head?.entries;
        if (head !== undefined && slots !== undefined)
          await join.add(ns, head.manifest, slots, entries);
      } catch {
        // A snapshot whose slots do not come covers nothing; reported when it is adopted.
      }
    }
    return join;
  }

  /** Entries by namespace; those forgotten since they were read are left out. */
  static byNamespace(entries: Entry[]): Map<Namespace, Entry[]> {
    const out = new Map<Namespace, Entry[]>();
    for (const e of entries) {
      if (e.ns.entries.get(e.id) !== e) continue;
      const list = out.get(e.ns);
      if (list === undefined) out.set(e.ns, [e]);
      else list.push(e);
    }
    return out;
  }

  /** What the log says of a fill. */
  static said(ns: string, entries: Entry[], left: Entry[]): string {
    return `namespace ${ns}: ${entries.length - left.length} vectors taken from the snapshot, ${left.length} read from redis`;
  }

  /** Namespaces whose snapshot may hold vectors. */
  get size(): number {
    return this.#byNs.size;
  }

  /**
   * The entries held by snapshots, by namespace, once (the caller keeps them
   * from there).
   */
  takeHeld(): Map<string, HeldSpace> {
    const held = this.#held;
    this.#held = new Map();
    return held;
  }

  /**
   * A namespace's snapshot slots, and the entries it holds, if the snapshot
   * is a graph of this model that may be adopted.
   */
  async add(
    ns: string,
    m: SnapshotManifest,
    slots: (SlotEntry | undefined)[],
    entries?: HeldEntry[],
  ): Promise<void> {
    if (m.model !== this.modelId || m.dim !== this.dim || m.kind !== 'hnsw') return;
    // F = 0-0: whether events were trimmed since cannot be told (snapshot-held.ts).
    if (entries !== undefined && m.feed !== '0-0') this.#held.set(ns, { entries, feed: m.feed });
    const pos = new Map<string, number>();
    for (const [i, s] of slots.entries()) {
      if (i > 0 && i % CHUNK === 0) await yieldToLoop();
      if (s !== undefined) pos.set(s.key.toString('latin1'), i);
    }
    this.#byNs.set(ns, { slots, pos });
  }

  /** Whether the record's vector, at its version, is in its namespace's snapshot. */
  readonly covered = (e: Omit<StoredEntry, 'vector'>): boolean => {
    if (e.model !== this.modelId) return false;
    return this.#position(e.ns, e.key.toString('latin1'), e.ver ?? '') !== undefined;
  };

  /** `name`: the key as latin1. */
  #position(ns: string, name: string, ver: string): number | undefined {
    const c = this.#byNs.get(ns);
    const at = c?.pos.get(name);
    return at !== undefined && c!.slots[at]?.ver === ver ? at : undefined;
  }

  /**
   * Add the vectors of `entries` (of one namespace, in no index) to `index`
   * from the snapshot's bytes, which must be the ones covered() was asked
   * about; resolves with the entries it could not fill.
   */
  async fill(index: VectorIndex, entries: Entry[], snap: Snapshot): Promise<Entry[]> {
    const ns = entries[0]?.ns.name;
    const c = ns === undefined ? undefined : this.#byNs.get(ns);
    const read =
      c?.slots === snap.slots ? storedVectors(snap.faiss, snap.slots.length, this.dim) : undefined;
    if (read === undefined) return entries;
    const left: Entry[] = [];
    const dim = this.dim;
    const buffer = new Float32Array(CHUNK * dim);
    index.reserve?.(entries.length);
    for (let at = 0; at < entries.length; at += CHUNK) {
      if (at > 0) await yieldToLoop();
      const ids: number[] = [];
      const vectors: Float32Array[] = [];
      for (const e of entries.slice(at, at + CHUNK)) {
        const pos = this.#position(e.ns.name, e.name, e.ver);
        const v = buffer.subarray(ids.length * dim, (ids.length + 1) * dim);
        if (pos === undefined || e.ns.entries.get(e.id) !== e || !isUnit(read(pos, v), dim)) {
          left.push(e);
          continue;
        }
        ids.push(e.id);
        vectors.push(v);
      }
      // Held for the load (not copied into the tail); copied: the buffer is used again.
      index.addBatch(ids, vectors, true);
    }
    return left;
  }
}

function isUnit(v: Float32Array, dim: number): boolean {
  let sq = 0;
  for (let i = 0; i < dim; i++) sq += v[i]! * v[i]!;
  return Math.abs(sq - 1) <= UNIT_TOLERANCE; // false for NaN
}
