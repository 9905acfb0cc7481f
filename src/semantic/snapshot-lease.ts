/*
 * Which instance of a fleet builds a namespace's HNSW graph (docs/fleet.md,
 * "Snapshots"; snapshot-sync.ts shares what it builds): the one holding the
 * namespace's lease in Redis (snapshot.ts: SET NX PX, renewed by its holder).
 *
 * A namespace here is in at most one of: held (this instance builds),
 * waiting (another holds it: this one adopts what it saves, and asks again
 * at every renewal in case the holder is gone), asking (a lease request in
 * flight). When Redis refuses the lease outright (an error such as NOPERM,
 * not a lease held elsewhere), the instance builds on its own.
 */
import type { Logger } from '../log.js';
import type { Namespace } from './namespace.js';
import type { SnapshotStore } from './snapshot.js';

/** How long a lease lasts unless renewed (ms). */
export const LEASE_MS = 60_000;
/** How often a held lease is renewed, and a lost one tried again (ms). */
export const RENEW_MS = 20_000;
/** How long a graceful stop waits for its leases to be given up (ms). */
const RELEASE_WAIT_MS = 500;

export class Leases {
  /** Namespaces whose lease this instance holds (or builds without one). */
  readonly held = new Set<string>();
  /** Namespaces whose graph another instance builds. */
  readonly waiting = new Set<string>();
  private readonly asking = new Set<string>();

  constructor(
    private readonly store: SnapshotStore,
    private readonly logger: Logger,
    private readonly stopped: () => boolean,
  ) {}

  /** Take the lease (in the background); holding it, poke the index to build. */
  ask(space: Namespace): void {
    const name = space.name;
    if (this.asking.has(name) || this.stopped()) return;
    this.asking.add(name);
    this.store.lease(name, LEASE_MS).then(
      (ok) => {
        this.asking.delete(name);
        if (ok) this.buildHere(space);
        else this.waiting.add(name);
      },
      (err: Error) => {
        this.asking.delete(name);
        this.logger.warn(
          `namespace ${name}: snapshot lease unavailable (${err.message}): building here`,
        );
        this.buildHere(space);
      },
    );
  }

  /** This instance builds `space`'s graph (lease or not): the build check runs again. */
  buildHere(space: Namespace): void {
    this.held.add(space.name);
    this.waiting.delete(space.name);
    space.index?.bulkLoad(false);
  }

  /** Renew held leases; ask again for namespaces still waiting (a holder may be gone). */
  async renew(namespaces: ReadonlyMap<string, Namespace>): Promise<void> {
    for (const name of [...this.held]) {
      try {
        if (!(await this.store.lease(name, LEASE_MS))) this.held.delete(name);
      } catch {
        // Redis unreachable: keep building here; the lease runs out elsewhere.
      }
    }
    for (const name of [...this.waiting]) {
      const space = namespaces.get(name);
      if (space !== undefined) this.ask(space);
    }
  }

  /** Give up the leases held (on a graceful stop), waiting RELEASE_WAIT_MS at most. */
  async release(): Promise<void> {
    const names = [...this.held];
    this.held.clear();
    if (names.length === 0) return;
    const done = Promise.allSettled(names.map((ns) => this.store.release(ns)));
    await Promise.race([done, new Promise((r) => setTimeout(r, RELEASE_WAIT_MS).unref())]);
  }
}
