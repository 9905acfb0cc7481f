/*
 * How the instances of a fleet share built HNSW graphs (docs/fleet.md,
 * "Snapshots"; the Redis side is snapshot.ts, the leases snapshot-lease.ts):
 *
 * - On start, after the rebuild from Redis has read every record and before
 *   any build may start, each namespace's snapshot is loaded and adopted:
 *   a position is used for the entry held here at the version it indexed,
 *   the other entries go to the flat tail; one covering less than half of
 *   them is not used.
 * - Before an HNSW build of a namespace of minEntries or more (smaller ones
 *   build their own) starts, the instance takes its lease. Holding it,
 *   it builds, saves the graph, and renews the lease every RENEW_MS; without
 *   it, it serves from its tail (or an interim IVF) and polls the manifest
 *   every POLL_MS until a newer snapshot comes, which it adopts. A holder
 *   gone, its lease runs out (LEASE_MS; a graceful stop gives it up).
 * - An extension of a graph with its tail (index/jobs.ts) is leased alike;
 *   the holder saves extended graphs at the pace of snapshot-pace.ts.
 * - Redis refusing the lease (an error, not one held elsewhere): it builds alone.
 */
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { Logger } from '../log.js';
import type { BuildHooks, EntryTable } from './entries.js';
import { quantOf } from './index/adopt.js';
import type { Entry, Namespace } from './namespace.js';
import type { Snapshot, SnapshotFetch, SnapshotManifest, SnapshotStore } from './snapshot.js';
import { JoinCoverage } from './snapshot-join.js';
import { Leases, RENEW_MS } from './snapshot-lease.js';
import { SavePace } from './snapshot-pace.js';
import type { BuildEvent, IndexKind } from './types.js';

/** Snapshot positions mapped to this instance's entries per turn of the event loop. */
const MAP_CHUNK = 4096;
/** How often an instance waiting for another's graph looks for it (ms). */
const POLL_MS = 2_000;

export interface SnapshotSyncDeps {
  store: SnapshotStore;
  /** Smaller namespaces build their own graphs (a few seconds at most). */
  minEntries: number;
  entries: EntryTable;
  /** Known once the model is loaded. */
  modelId: () => string;
  dim: () => number;
  /** The last feed event applied here, written into the manifest. */
  applied: () => string;
  logger: Logger;
}

export interface SnapshotInfo {
  loads: number;
  saves: number;
  /** Namespaces whose lease this instance holds. */
  leases: number;
  /** Namespaces waiting for another instance's graph. */
  waiting: number;
}

export class SnapshotSync implements BuildHooks {
  /** The generation adopted or saved here, per namespace. */
  private readonly gens = new Map<string, string>();
  /** Who builds which namespace's graph (snapshot-lease.ts). */
  private readonly leases: Leases;
  private readonly pace = new SavePace();
  private loads = 0;
  private saves = 0;
  private readonly timers: NodeJS.Timeout[] = [];
  /** Snapshots being fetched since prefetch(), by namespace: slots first (coverage()), then FAISS's bytes. */
  private readonly fetches = new Map<string, Promise<SnapshotFetch | undefined>>();
  private readonly fetchMs = new Map<string, number>();
  /** What coverage() found, until loadAll() used it. */
  private join: JoinCoverage | undefined;
  private fetching: Promise<void> | undefined;
  private stopped = false;

  constructor(private readonly d: SnapshotSyncDeps) {
    this.leases = new Leases(d.store, d.logger, () => this.stopped);
  }

  /**
   * Start fetching every namespace's snapshot, at start, while the records
   * are read (on another connection): loadAll() then only adopts them.
   * Holds each payload in memory until then.
   */
  prefetch(): void {
    this.fetching = this.d.store.list().then(
      (names) => {
        for (const ns of names) {
          const t0 = performance.now();
          const f = this.d.store.fetch(ns);
          this.fetches.set(ns, f);
          const done = () => this.fetchMs.set(ns, performance.now() - t0);
          f.then((x) => x?.snapshot).then(done, () => {}); // a failure is reported when adopted
        }
      },
      (err: Error) => this.d.logger.warn(`snapshots not listed: ${err.message}`),
    );
  }

  /**
   * Which records' vectors the prefetched snapshots hold (snapshot-join.ts):
   * their slots, which come first. Never rejects: a snapshot whose slots do
   * not come covers nothing.
   */
  async coverage(): Promise<JoinCoverage> {
    await this.fetching;
    this.join = await JoinCoverage.of(this.fetches, this.d.modelId(), this.d.dim());
    return this.join;
  }

  /**
   * Adopt every namespace's snapshot (at start, while the indexes bulk
   * load). Entries the rebuild read without their vectors (`unindexed`,
   * covered by coverage()) get them first, from the snapshot, or else from
   * `fromRedis`.
   */
  async loadAll(
    unindexed: Entry[] = [],
    fromRedis: (entries: Entry[]) => Promise<void> = async () => {},
  ): Promise<void> {
    await this.fetching;
    const pending = JoinCoverage.byNamespace(unindexed);
    const notLoaded = (space: Namespace) => (err: Error) => {
      this.d.logger.warn(`namespace ${space.name}: snapshot not loaded: ${err.message}`);
      return undefined;
    };
    for (const space of this.d.entries.namespaces.values()) {
      const fetched = this.fetches.get(space.name)?.then((x) => x?.snapshot);
      this.fetches.delete(space.name);
      const mine = pending.get(space) ?? [];
      pending.delete(space);
      if (space.entries.size === 0) continue;
      const snap = await (
        fetched ?? (this.fetching ? undefined : this.d.store.load(space.name))
      )?.catch(notLoaded(space));
      const left =
        snap && this.join ? await this.join.fill(this.d.entries.indexOf(space), mine, snap) : mine;
      if (mine.length > 0) this.d.logger.info(JoinCoverage.said(space.name, mine, left));
      await fromRedis(left);
      if (snap !== undefined) await this.adopt(space, snap).catch(notLoaded(space));
    }
    for (const rest of pending.values()) await fromRedis(rest);
    this.fetches.clear();
    this.join = undefined;
    this.timers.push(
      setInterval(() => void this.poll(), POLL_MS).unref(),
      setInterval(() => void this.leases.renew(this.d.entries.namespaces), RENEW_MS).unref(),
    );
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    this.pace.clear();
  }

  /** Give up the leases held (on a graceful stop). */
  release(): Promise<void> {
    return this.leases.release();
  }

  info(): SnapshotInfo {
    const { held, waiting } = this.leases;
    return { loads: this.loads, saves: this.saves, leases: held.size, waiting: waiting.size };
  }

  /** The namespace was emptied (SEMFLUSH, SEMNS DEL): its snapshot goes too. */
  async drop(ns: string): Promise<void> {
    this.gens.delete(ns);
    this.pace.clear(ns);
    this.leases.waiting.delete(ns);
    try {
      await this.d.store.drop(ns);
    } catch (err) {
      this.d.logger.warn(`namespace ${ns}: snapshot not removed: ${(err as Error).message}`);
    }
  }

  mayBuild(space: Namespace, kind: IndexKind): boolean {
    if (kind !== 'hnsw' || this.leases.held.has(space.name)) return true;
    if (space.entries.size < this.d.minEntries) return true;
    this.leases.ask(space);
    return false;
  }

  built(space: Namespace, event: BuildEvent): void {
    if (event.kind !== 'hnsw' || this.stopped || event.vectors < this.d.minEntries) return;
    const save = () => {
      if (!this.leases.held.has(space.name) || this.stopped) return;
      this.save(space).catch((err: Error) =>
        this.d.logger.warn(`namespace ${space.name}: snapshot not saved: ${err.message}`),
      );
    };
    if (event.added !== undefined) this.pace.after(space.name, save);
    else {
      this.pace.built(space.name, event.ms);
      save();
    }
  }

  /** Fetch and adopt `ns`'s snapshot (a namespace found without one at start, the poll). */
  private async load(space: Namespace, known?: SnapshotManifest): Promise<boolean> {
    const t0 = performance.now();
    const snap = await this.d.store.load(space.name, known);
    this.fetchMs.set(space.name, performance.now() - t0);
    return this.adopt(space, snap);
  }

  /**
   * Adopt a fetched snapshot, if it fits (model, dimension, coverage); FAISS
   * reads it in a worker thread (index/adopt.ts), the payload moved there.
   */
  private async adopt(space: Namespace, snap: Snapshot | undefined): Promise<boolean> {
    const t0 = performance.now();
    if (snap === undefined) return false;
    const m = snap.manifest;
    // Seen, used or not: the poll waits for a newer generation.
    this.gens.set(space.name, m.gen);
    if (m.model !== this.d.modelId() || m.dim !== this.d.dim() || m.kind !== 'hnsw') {
      this.d.logger.info(
        `namespace ${space.name}: snapshot of ${m.model} (${m.kind}, dim ${m.dim}) not used by ${this.d.modelId()}`,
      );
      return false;
    }
    const index = this.d.entries.indexOf(space);
    if (index.adoptMain === undefined) return false;
    const quant = index.quant ?? 'fp32';
    if (quantOf(snap.faiss) !== quant) {
      // Instances started with another --quant: this one builds its own graph.
      const why = `snapshot is not ${quant} (another --quant?): building here`;
      this.d.logger.warn(`namespace ${space.name}: ${why}`);
      this.leases.buildHere(space);
      return false;
    }
    // A few thousand per turn; what changes meanwhile is caught after the load (index/jobs.ts).
    const ids: number[] = [];
    for (const [i, s] of snap.slots.entries()) {
      if (i > 0 && i % MAP_CHUNK === 0) await yieldToLoop();
      const e = s === undefined ? undefined : this.d.entries.entryOf(s.key);
      ids.push(e !== undefined && e.ns === space && e.ver === s?.ver ? e.id : -1);
    }
    if (this.d.entries.namespaces.get(space.name) !== space || space.index !== index) return false;
    const used = ids.reduce((n, id) => n + (id >= 0 ? 1 : 0), 0);
    if (used < space.entries.size / 2) {
      this.d.logger.info(
        `namespace ${space.name}: snapshot covers ${used} of ${space.entries.size} entries: not used`,
      );
      return false;
    }
    await index.adoptMain({ kind: m.kind, efSearch: snap.efSearch, buffer: snap.faiss, ids }, true);
    this.loads++;
    this.d.logger.info(
      `namespace ${space.name}: ${m.kind} snapshot loaded, ${used} of ${snap.slots.length} positions used (${space.entries.size} entries), ${(m.bytes / 1e6).toFixed(1)} MB fetched in ${(this.fetchMs.get(space.name) ?? 0).toFixed(0)} ms, adopted in ${(performance.now() - t0).toFixed(0)} ms`,
    );
    return true;
  }

  private async save(space: Namespace): Promise<void> {
    const t0 = performance.now();
    await yieldToLoop(); // not in the turn that swapped the graph in
    const m = space.index?.exportMain?.();
    if (m === undefined || m.kind !== 'hnsw') return;
    // The slots in the same turn as the export: an id whose vector changed after it would
    // otherwise be named at a version the exported bytes do not hold.
    const slots = m.ids.map((id) => {
      const e = space.entries.get(id);
      return e === undefined ? undefined : { key: e.key, ver: e.ver };
    });
    // And every entry as of the feed id named (entries are immutable: a change makes a new
    // one), so that a joiner takes them instead of reading their records (snapshot-join.ts).
    const held = [...space.entries.values()];
    const meta = { model: this.d.modelId(), dim: this.d.dim(), feed: this.d.applied() };
    const manifest = await this.d.store.save(space.name, m, slots, meta, held);
    this.gens.set(space.name, manifest.gen);
    this.pace.saved(space.name, performance.now() - t0);
    this.saves++;
    this.d.logger.info(
      `namespace ${space.name}: hnsw snapshot saved, ${slots.length} positions, ${(manifest.bytes / 1e6).toFixed(1)} MB in ${(performance.now() - t0).toFixed(0)} ms`,
    );
  }

  /** Waiting namespaces: adopt a newer snapshot when one came. */
  private async poll(): Promise<void> {
    const { waiting } = this.leases;
    for (const name of [...waiting]) {
      const space = this.d.entries.namespaces.get(name);
      if (space === undefined || this.stopped) {
        waiting.delete(name);
        continue;
      }
      try {
        const m = await this.d.store.manifest(name);
        if (m === undefined || m.gen === this.gens.get(name)) continue;
        if (await this.load(space, m)) waiting.delete(name);
      } catch (err) {
        this.d.logger.warn(`namespace ${name}: snapshot poll: ${(err as Error).message}`);
      }
    }
  }
}
