/*
 * The change feed, read side: how an instance applies the changes that the
 * others make (docs/fleet.md). Every change of a record or of a namespace's
 * settings is an event in a Redis Stream (P feed), appended by the script
 * that made it (scripts.ts); `h` marks an instance's start. Each instance
 * reads the stream on a connection of its own, from the last event it
 * applied, and applies the others' events to its memory (entries.ts):
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
 * that changed (engine.current). With nothing to read, the feed waits in
 * XREAD BLOCK on its own connection, and reads (checked) when woken.
 */
import type { Logger } from '../log.js';
import type { RedisClient, RedisValue } from '../upstream/redis-client.js';
import type { EntryTable } from './entries.js';
import { applySettings, clearSettings, compareVer, DEFAULT_NAMESPACE } from './namespace.js';
import { ScriptRunner } from './scripts.js';
import type { EntryStore, StoredEntry } from './store.js';

/** Events read per round trip. */
const READ_COUNT = 1000;
/** How long one XREAD waits for events (ms). */
const BLOCK_MS = 1000;
/** Keys whose records are read per round trip. */
const RECORD_BATCH = 500;
/** Wait before reading again after the feed connection failed (ms). */
const RETRY_MS = 1000;

export interface FeedEvent {
  id: string;
  op: string;
  key: Buffer | undefined;
  ns: string | undefined;
  origin: string;
}

export interface FeedDeps {
  /** A connection of the feed's own: XREAD BLOCK holds it. */
  reader: RedisClient;
  store: EntryStore;
  /** The stream, read on `reader`. */
  stream: FeedStream;
  entries: EntryTable;
  /** This instance's id: its own events are already applied. */
  origin: string;
  modelId: string;
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

  constructor(private readonly d: FeedDeps) {}

  /**
   * Mark this instance's start in the stream (an `h` event) and return its
   * id: a rebuild that begins now covers the events up to it, and the feed
   * applies those after it. The stream exists from then on, so a position
   * in it can always be checked.
   */
  head(): Promise<string> {
    return this.d.stream.mark(this.d.origin);
  }

  /** Apply the events after `from`, until stop(). */
  start(from: string): void {
    this.last = from;
    this.newest = from;
    this.stopped = false;
    void this.loop();
  }

  stop(): void {
    this.stopped = true;
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
        } else {
          // Nothing new: wait until something is (its events are read above, checked).
          await this.d.reader.call(
            'XREAD',
            'COUNT',
            1,
            'BLOCK',
            BLOCK_MS,
            'STREAMS',
            this.d.stream.key,
            this.last,
          );
        }
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
      if (r !== undefined && r.model === this.d.modelId) fresh.push(r);
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
      const kind = space.indexKind;
      applySettings(space, settings);
      // An index of another kind is made on next use (only an empty namespace changes kind).
      if (space.indexKind !== kind && space.entries.size === 0) space.index = undefined;
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

/**
 * The events after `last` (ARGV[1]), at most ARGV[2], and the newest id;
 * nil when `last` is no longer in the stream (trimmed past, or lost): as
 * trimming removes the oldest events only, `last` being there means that
 * nothing after it was removed. Check and read are one atomic step.
 */
const READ_SCRIPT = `
if #redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1]) == 0 then return false end
local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)[1][1]
return {newest, redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+', 'COUNT', ARGV[2])}
`;

/** The stream as the feed reads it (on the feed's own connection). */
export class FeedStream {
  private readonly scripts: ScriptRunner;

  constructor(
    private readonly redis: RedisClient,
    readonly key: string,
    private readonly maxlen: number,
  ) {
    this.scripts = new ScriptRunner(redis);
  }

  /** Append an `h` event (an instance starts reading here); its id. */
  async mark(origin: string): Promise<string> {
    const id = await this.redis.call(
      'XADD',
      this.key,
      'MAXLEN',
      '~',
      this.maxlen,
      '*',
      'op',
      'h',
      'o',
      origin,
    );
    return String(id);
  }

  /** Up to `count` events after `last`, checked (READ_SCRIPT); undefined when some were lost. */
  async after(
    last: string,
    count: number,
  ): Promise<{ newest: string; events: FeedEvent[] } | undefined> {
    const r = await this.scripts.run(READ_SCRIPT, [this.key], [last, count]);
    if (!Array.isArray(r)) return undefined;
    return { newest: String(r[0]), events: parseEntries(r[1]!) };
  }
}

/** The ms part of a stream id. */
function idMs(id: string): number {
  return Number(id.slice(0, id.indexOf('-')));
}

/** XRANGE's reply as events. */
export function parseEntries(reply: RedisValue): FeedEvent[] {
  if (!Array.isArray(reply)) return [];
  const out: FeedEvent[] = [];
  for (const item of reply) {
    if (!Array.isArray(item) || !Array.isArray(item[1])) continue;
    const fields = item[1];
    const e: FeedEvent = {
      id: String(item[0]),
      op: '',
      key: undefined,
      ns: undefined,
      origin: '',
    };
    for (let i = 0; i + 1 < fields.length; i += 2) {
      const f = String(fields[i]);
      const v = fields[i + 1];
      if (f === 'op') e.op = String(v);
      else if (f === 'key' && Buffer.isBuffer(v)) e.key = v;
      else if (f === 'ns') e.ns = String(v);
      else if (f === 'o') e.origin = String(v);
    }
    out.push(e);
  }
  return out;
}
