/*
 * The change feed, read side: how an instance applies the changes that the
 * others make (docs/fleet.md). Every change of a record or of a namespace's
 * settings is an event in a Redis Stream (P feed), appended by the script
 * that made it (scripts.ts). Each instance reads the stream on a
 * connection of its own, from the last event it applied (feed-stream.ts),
 * and applies the others' events to its memory (entries.ts):
 *
 *   s / d  key    read the key's record as it is now: mirror it, or forget
 *                 the entry when the record is gone (only an entry older
 *                 than the event: versions are feed ids, entries.ts);
 *   n      ns     read the namespace's settings: apply them, or drop them.
 *
 * Events name what changed, so applying one twice or late is harmless, and
 * a batch of events costs one pipelined read per distinct key. Events are
 * read by a script that first checks that the last applied one is still in
 * the stream (READ_SCRIPT), in the same atomic step: when the stream was
 * trimmed past it (or Redis lost it), events were missed, and the instance
 * resyncs in full (engine.ts) while it keeps answering from what it had,
 * which the version check at each hit keeps from answering with an entry
 * that changed (engine.current).
 *
 * With nothing to read, the feed waits for a wake-up: the write scripts
 * PUBLISH on a channel named like the stream, and each instance subscribes
 * to it on its pub/sub connection (subscriber.ts); it reads once more when
 * the subscription becomes live, as messages may have been missed before,
 * and every IDLE_READ_MS anyway. While the channel is not live (connection
 * down, or SUBSCRIBE refused by the user's ACL), it waits in XREAD BLOCK on
 * its own connection instead, which Redis counts as a blocked client; after
 * a loss, from RETRY_MS on (the pub/sub connection is made again sooner, and
 * a connection killed is not made again at once: CLIENT KILL's counts).
 */
import type { Logger } from '../log.js';
import type { RedisClient } from '../upstream/redis-client.js';
import type { EntryTable } from './entries.js';
import { type FeedEvent, type FeedStream, idMs } from './feed-stream.js';
import { applySettings, clearSettings, compareVer, DEFAULT_NAMESPACE } from './namespace.js';
import type { EntryStore, StoredEntry } from './store.js';
import type { Subscriber } from './subscriber.js';

/** Events read per round trip. */
const READ_COUNT = 1000;
/** How long one XREAD waits for events, when the feed waits that way (ms). */
const BLOCK_MS = 1000;
/** How long the feed waits for a wake-up before reading anyway (ms). */
const IDLE_READ_MS = 10_000;
/** Keys whose records are read per round trip. */
const RECORD_BATCH = 500;
/** Wait before reading again after the feed connection failed (ms). */
const RETRY_MS = 1000;

export interface FeedDeps {
  /** A connection of the feed's own (XREAD BLOCK holds it while there is no wake-up channel). */
  reader: RedisClient;
  /** The pub/sub connection that carries the wake-ups; none: XREAD BLOCK. */
  subscriber?: Subscriber | undefined;
  store: EntryStore;
  /** The stream, read on `reader`. */
  stream: FeedStream;
  entries: EntryTable;
  /** This instance's id: its own events are already applied. */
  origin: string;
  /** The model's id (known once it is loaded: a dimension comes with it). */
  modelId: () => string;
  logger: Logger;
  /** Read everything again (the stream was trimmed past this instance). Resolves with the head it covers. */
  resync(): Promise<string>;
}

export interface FeedInfo {
  /** The id of the last event applied ('0-0' before any). */
  applied: string;
  /** The newest event known in the stream. */
  newest: string;
  /** Milliseconds between the two ids' clocks. */
  lagMs: number;
  events: number;
  resyncs: number;
}

export class ChangeFeed {
  private last = '0-0';
  private newest = '0-0';
  private events = 0;
  private resyncs = 0;
  private stopped = true;
  private warned: string | undefined;
  private subscribed = false;
  /** A wake-up came since the last read began. */
  private woken = false;
  /** Ends the current wait for a wake-up. */
  private waiting: (() => void) | undefined;

  constructor(private readonly d: FeedDeps) {}

  /**
   * The newest event's id ('0-0' for an empty stream): a rebuild that
   * begins now covers the events up to it, and the feed applies those
   * after it. Writes nothing.
   */
  head(): Promise<string> {
    return this.d.stream.newestId();
  }

  /** Apply the events after `from`, until stop(). */
  start(from: string): void {
    this.last = from;
    this.newest = from;
    this.stopped = false;
    const sub = this.d.subscriber;
    if (sub !== undefined && !this.subscribed) {
      this.subscribed = true;
      const channel = this.d.stream.key;
      // Read again when the channel goes live (messages before were not seen), and
      // RETRY_MS after it was lost: the feed then waits in XREAD BLOCK, on a
      // connection that was most likely lost with it (a Redis restart, CLIENT KILL)
      // and is not made again at once.
      void sub
        .add(
          channel,
          () => this.wake(),
          (live) => (live ? this.wake() : this.wakeLater()),
        )
        .then((live) => {
          const why = sub.refusal(channel);
          if (!live && why !== undefined)
            this.d.logger.warn(
              `change feed: SUBSCRIBE ${channel} refused (${why}): waiting in XREAD BLOCK instead, which redis counts in blocked_clients; give semcache's user the channel (&${channel})`,
            );
        });
    }
    void this.loop();
  }

  stop(): void {
    this.stopped = true;
    this.wake();
  }

  /** Something may have been appended: read. */
  wake(): void {
    this.woken = true;
    const w = this.waiting;
    this.waiting = undefined;
    w?.();
  }

  /** wake() in RETRY_MS, unless woken before. */
  private wakeLater(): void {
    const w = this.waiting;
    if (w === undefined) return; // reading: the next wait sees the channel is not live
    setTimeout(() => {
      if (this.waiting === w) this.wake();
    }, RETRY_MS).unref();
  }

  /** The id of the last event applied. */
  get applied(): string {
    return this.last;
  }

  info(): FeedInfo {
    return {
      applied: this.last,
      newest: this.newest,
      lagMs: Math.max(0, idMs(this.newest) - idMs(this.last)),
      events: this.events,
      resyncs: this.resyncs,
    };
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      try {
        this.woken = false;
        const read = await this.d.stream.after(this.last, READ_COUNT);
        if (this.stopped) return;
        if (read === undefined) {
          this.d.logger.warn(
            `change feed: events after ${this.last} are no longer in ${this.d.stream.key} (trimmed, or redis lost them): resyncing in full`,
          );
          this.resyncs++;
          this.last = this.newest = await this.d.resync();
          continue;
        }
        this.newest = read.newest;
        if (read.events.length > 0) {
          await this.apply(read.events);
          this.last = read.events[read.events.length - 1]!.id;
          this.events += read.events.length;
        } else await this.idle();
        this.warned = undefined;
      } catch (err) {
        if (this.stopped) return;
        const m = (err as Error).message;
        if (this.warned !== m) this.d.logger.warn(`change feed: ${m}; retrying`);
        this.warned = m;
        await new Promise((r) => setTimeout(r, RETRY_MS).unref());
      }
    }
  }

  /** Wait until something may have been appended. */
  private async idle(): Promise<void> {
    if (this.woken || this.stopped) return;
    if (this.d.subscriber?.live(this.d.stream.key)) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, IDLE_READ_MS);
        timer.unref();
        this.waiting = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.waiting = undefined;
      return;
    }
    const key = this.d.stream.key;
    await this.d.reader.call('XREAD', 'COUNT', 1, 'BLOCK', BLOCK_MS, 'STREAMS', key, this.last);
  }

  /** Apply a batch of events: settings first, then each key's record as it is now. */
  async apply(events: FeedEvent[]): Promise<void> {
    const keys = new Map<string, { key: Buffer; id: string }>();
    const spaces = new Set<string>();
    for (const e of events) {
      if (e.origin === this.d.origin) continue;
      if (e.op === 'n' && e.ns !== undefined) spaces.add(e.ns);
      else if ((e.op === 's' || e.op === 'd') && e.key !== undefined)
        keys.set(e.key.toString('latin1'), { key: e.key, id: e.id });
    }
    for (const ns of spaces) await this.applySettings(ns);
    const all = [...keys.values()];
    for (let i = 0; i < all.length; i += RECORD_BATCH) {
      await this.refresh(all.slice(i, i + RECORD_BATCH));
    }
  }

  /**
   * Mirror the records of these keys as Redis holds them now; `id` is the
   * feed id as of which a missing record means the entry is gone.
   */
  async refresh(keys: { key: Buffer; id: string }[]): Promise<void> {
    const records = await this.d.store.records(keys.map((k) => k.key));
    const fresh: StoredEntry[] = [];
    keys.forEach(({ key, id }, i) => {
      const r = records[i];
      if (r !== undefined && r.model === this.d.modelId()) fresh.push(r);
      // Gone, or embedded by an instance with another model: not in this index.
      else this.d.entries.forgetOlder(key, compareVer(r?.ver ?? '', id) > 0 ? r!.ver! : id);
    });
    this.d.entries.addStored(fresh);
  }

  private async applySettings(ns: string): Promise<void> {
    const settings = await this.d.store.namespaceSettings(ns);
    const entries = this.d.entries;
    if (settings !== undefined) {
      const space = entries.namespace(ns, true);
      const { indexKind, quant } = space;
      applySettings(space, settings);
      // An index of another kind is made on next use (only an empty namespace changes kind).
      const changed = space.indexKind !== indexKind || space.quant !== quant;
      if (changed && space.entries.size === 0) space.index = undefined;
      return;
    }
    const space = entries.namespaces.get(ns);
    if (space === undefined) return;
    clearSettings(space);
    if (space.entries.size === 0 && ns !== DEFAULT_NAMESPACE) {
      space.index?.clear();
      entries.namespaces.delete(ns);
    }
  }
}
