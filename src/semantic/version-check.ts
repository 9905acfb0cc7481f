/*
 * The check before a hit is answered: does the entry still mirror its
 * record (docs/fleet.md)? Another instance may have re-set or removed it,
 * and its event may not have arrived yet. The checks asked for in one turn
 * of the event loop share one script call (VERSIONS_SCRIPT): when the last
 * feed event this instance applied is the newest in the stream, every entry
 * is current and no record is read; else each record's `ver` is compared
 * with the entry's. The call is made after the client's request arrived, so
 * it sees every write acknowledged before it.
 *
 * A check is a place in a shared batch, settled by callbacks rather than a
 * promise per hit: SEMGET's exact fast path asks one per request.
 */
import type { EntryTable } from './entries.js';
import type { ChangeFeed } from './feed.js';
import type { Entry } from './namespace.js';

/** Keys per script call. */
const BATCH_MAX = 1000;

export type Versions = (string | undefined)[] | 'current';

export interface VersionSource {
  versions(keys: Buffer[], applied: string): Promise<Versions>;
}

/** One script call's keys and, once settled, its answer. */
export class VersionBatch {
  readonly keys: Buffer[] = [];
  /** The answer, or the error the call failed with; undefined until then. */
  result: Versions | Error | undefined;
  private waiting: (() => void)[] = [];

  /** Call `f` once settled (at once if it is). */
  whenSettled(f: () => void): void {
    if (this.result !== undefined) f();
    else this.waiting.push(f);
  }

  settle(result: Versions | Error): void {
    this.result = result;
    const waiting = this.waiting;
    this.waiting = [];
    for (const f of waiting) f();
  }

  /** The version of the key at `at`: 'current', a version, undefined (no record); an Error. */
  at(at: number): string | undefined | Error {
    const r = this.result;
    if (r instanceof Error || r === 'current') return r;
    return r![at];
  }
}

export class VersionCheck {
  private open: VersionBatch | undefined;

  constructor(
    private readonly source: VersionSource,
    private readonly entries: EntryTable,
    /** The change feed, if there is one (without: the records are always read). */
    private readonly feed: () => ChangeFeed | undefined,
  ) {}

  /**
   * Which of these entries still mirror their record (same version). Stale
   * ones are brought up to date (the feed reads their record) or forgotten
   * when their record is gone.
   */
  current(entries: Entry[]): Promise<boolean[]> {
    const { batch, at } = this.add(entries);
    return new Promise((resolve, reject) => {
      batch.whenSettled(() => {
        const out: boolean[] = [];
        for (let i = 0; i < entries.length; i++) {
          const ver = batch.at(at + i);
          if (ver instanceof Error) return reject(ver);
          out.push(this.isCurrent(entries[i]!, ver));
        }
        resolve(out);
      });
    });
  }

  /** current() for one entry, without a promise: `done(ok)` once known. */
  currentThen(entry: Entry): (done: (ok: boolean) => void) => void {
    const { batch, at } = this.add([entry]);
    return (done) =>
      batch.whenSettled(() => {
        const ver = batch.at(at);
        done(!(ver instanceof Error) && this.isCurrent(entry, ver));
      });
  }

  /** Is `e` the entry of its key, at the record's version `ver` ('current': nothing changed)? */
  private isCurrent(e: Entry, ver: string | undefined): boolean {
    // Replaced here meanwhile (a write, the feed): this one is not the entry any more.
    const mine = this.entries.entryOf(e.key) === e;
    if (ver === 'current' || ver === e.ver) return mine;
    if (mine) {
      const feed = this.feed();
      if (ver === undefined || feed === undefined) this.entries.forget(e);
      else feed.refresh([{ key: e.key, id: ver }]).catch(() => {});
    }
    return false;
  }

  /** Put entries in this turn's batch; where their versions will be. */
  private add(entries: Entry[]): { batch: VersionBatch; at: number } {
    let batch = this.open;
    if (batch === undefined) {
      batch = this.open = new VersionBatch();
      setImmediate(() => this.send(batch!));
    }
    const at = batch.keys.length;
    for (const e of entries) batch.keys.push(e.key);
    if (batch.keys.length >= BATCH_MAX) this.send(batch);
    return { batch, at };
  }

  private send(batch: VersionBatch): void {
    if (this.open !== batch) return;
    this.open = undefined;
    this.source.versions(batch.keys, this.feed()?.applied ?? '').then(
      (r) => batch.settle(r),
      (err: Error) => batch.settle(err),
    );
  }
}
