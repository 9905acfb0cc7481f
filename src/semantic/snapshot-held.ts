/*
 * A join that takes its entries from the fleet's snapshots instead of
 * reading their records (docs/fleet.md, "Joining"). A snapshot saved since
 * manifests name `entries` holds its namespace's entries as its saver held
 * them when it had applied the feed up to the id the manifest names (F):
 *
 *   1. take(): they are remembered at once, in no index yet (the snapshot's
 *      vectors, or their records', are added before the graph is adopted);
 *   2. the rebuild's SCAN over the records skips the keys taken (isHeld()),
 *      reading only the others (namespaces without a snapshot, entries
 *      written since), and notes which keys it found;
 *   3. forgetGone(): a key taken but not found has no record any more (it
 *      expired or was deleted without a feed event: SCAN returns every key
 *      that exists throughout it), so its entry goes;
 *   4. the feed starts from the oldest F (feedFrom()), not from the head:
 *      every change after a snapshot reaches the joiner as it reaches any
 *      instance that was behind. Where the stream was trimmed past F, the
 *      feed resyncs in full (feed.ts), as for any instance that far behind.
 *      A snapshot saved before its saver applied any event (F is 0-0) is
 *      not taken (JoinCoverage.add): the feed tells a trim from the start
 *      by the stream's max-deleted-entry-id, which XTRIM leaves at 0-0 in
 *      Redis 7.0.
 *
 * What the joiner answers meanwhile is what an instance behind answers: a
 * hit is checked against its record's version first (engine.current).
 */
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { EntryTable } from './entries.js';
import { compareVer, type Entry } from './namespace.js';
import type { HeldSpace } from './snapshot-join.js';

/** Entries remembered per turn of the event loop. */
const CHUNK = 4096;

export class HeldJoin {
  /** Entries taken whose key the scan has not found yet, by key (latin1). */
  readonly #unseen = new Map<string, Entry>();
  #feed: string | undefined;
  #taken = 0;

  private constructor(private readonly table: EntryTable) {}

  /**
   * Remember the entries `held` (by namespace), CHUNK per turn; each is also
   * pushed to `unindexed`, as the entries a rebuild reads without vectors.
   */
  static async take(
    table: EntryTable,
    held: Map<string, HeldSpace>,
    unindexed: Entry[],
  ): Promise<HeldJoin> {
    const join = new HeldJoin(table);
    for (const [ns, space] of held) {
      const { entries, feed } = space;
      try {
        table.namespace(ns, true);
      } catch {
        continue; // not a namespace name (P snaps is writable by others): its records are read
      }
      if (join.#feed === undefined || compareVer(feed, join.#feed) < 0) join.#feed = feed;
      for (let at = 0; at < entries.length; at += CHUNK) {
        if (at > 0) await yieldToLoop();
        const batch = entries.slice(at, at + CHUNK).map((e) => ({
          key: e.key,
          ns,
          text: e.text,
          attrs: e.attrs,
          exactHash: e.exact || undefined, // none: computed from the text, as for a record
          ver: e.ver,
          vector: undefined,
        }));
        for (const e of table.addStored(batch)) {
          unindexed.push(e);
          join.#unseen.set(e.name, e);
        }
      }
      space.entries = []; // the decoded snapshot entries, freed as the table holds them
    }
    join.#taken = join.#unseen.size;
    return join;
  }

  /** How many entries were taken. */
  get taken(): number {
    return this.#taken;
  }

  /**
   * The feed id to apply the changes after: the oldest snapshot's, even when
   * `head` (read before the scan) is older: then the stream was emptied or
   * trimmed since, the feed finds that id gone and resyncs in full.
   */
  feedFrom(head: string): string {
    return this.#feed ?? head;
  }

  /** For the scan: true (the record is not read) for a key taken and not found before. */
  readonly isHeld = (name: string): boolean => this.#unseen.delete(name);

  /** After the scan: forget the entries taken whose key it did not find; how many. */
  forgetGone(): number {
    let gone = 0;
    for (const e of this.#unseen.values()) {
      if (e.ns.entries.get(e.id) !== e) continue;
      this.table.forget(e);
      gone++;
    }
    this.#unseen.clear();
    return gone;
  }
}
