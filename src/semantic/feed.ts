/*
 * The change feed, read side: how an instance applies the changes that the
 * others make (docs/fleet.md). Every change of a record or of a namespace's
 * settings is an event in a Redis Stream (P feed), appended by the script
 * that made it (scripts.ts). Each instance reads the stream on a connection
 * of its own (XREAD BLOCK), from the last event it applied, and applies the
 * others' events to its memory (entries.ts):
 *
 *   s / d  key    read the key's record as it is now: mirror it, or forget
 *                 the entry when the record is gone (only an entry older
 *                 than the event: versions are feed ids, entries.ts);
 *   n      ns     read the namespace's settings: apply them, or drop them.
 *
 * Events name what changed, so applying one twice or late is harmless, and
 * a batch of events costs one pipelined read per distinct key. Where the
 * feed resumes, it first checks that the last applied event is still in the
 * stream: when the stream was trimmed past it (or Redis lost it), events
 * were missed, and the instance resyncs in full (rebuild.ts) while it keeps
 * answering from what it had, which the versions check at each hit keeps
 * from answering with an entry that changed (lookups.ts).
 */
import type { Logger } from '../log.js';
import { type RedisClient, RedisReplyError, type RedisValue } from '../upstream/redis-client.js';
import type { EntryTable } from './entries.js';
import { applySettings, compareVer, DEFAULT_NAMESPACE } from './namespace.js';
import type { EntryStore, StoredEntry } from './store.js';

/** Events read per XREAD. */
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
  /** The stream itself, read with semcache's main connection. */
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
  /** Check before reading that the stream still holds `last` (after a failure or a full read). */
  private check = false;

  constructor(private readonly d: FeedDeps) {}

  /** The stream's newest id ('0-0' when it has none): where a rebuild that starts now begins. */
  async head(): Promise<string> {
    const r = await this.d.stream.info();
    return r?.lastId ?? '0-0';
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
        if (this.check && (await this.missed())) {
          this.d.logger.warn(
            `change feed: events after ${this.last} are no longer in ${this.d.stream.key} (trimmed, or redis lost them): resyncing in full`,
          );
          this.resyncs++;
          this.last = await this.d.resync();
        }
        this.check = false;
        const reply = await this.d.reader.call(
          'XREAD',
          'COUNT',
          READ_COUNT,
          'BLOCK',
          BLOCK_MS,
          'STREAMS',
          this.d.stream.key,
          this.last,
        );
        if (this.stopped) return;
        const events = parseRead(reply);
        if (events.length > 0) {
          await this.apply(events);
          this.last = events[events.length - 1]!.id;
          this.events += events.length;
        }
        if (events.length < READ_COUNT) this.newest = this.last;
        else {
          // Behind: how far, and whether trimming caught up with us.
          this.newest = await this.head();
          this.check = true;
        }
        this.warned = undefined;
      } catch (err) {
        if (this.stopped) return;
        const m = (err as Error).message;
        if (this.warned !== m) this.d.logger.warn(`change feed: ${m}; retrying`);
        this.warned = m;
        this.check = true;
        await new Promise((r) => setTimeout(r, RETRY_MS).unref());
      }
    }
  }

  /** True when events after `last` may have been lost: `last` is no longer in the stream. */
  private async missed(): Promise<boolean> {
    const info = await this.d.stream.info();
    if (info === undefined) return this.last !== '0-0';
    if (this.last === '0-0') return info.added > info.length;
    return !(await this.d.stream.has(this.last));
  }

  /** Apply a batch of events: settings first, then each key's record as it is now. */
  async apply(events: FeedEvent[]): Promise<void> {
    const keys = new Map<string, { key: Buffer; id: string }>();
    const spaces = new Set<string>();
    for (const e of events) {
      if (e.origin === this.d.origin) continue;
      if (e.op === 'n' && e.ns !== undefined) spaces.add(e.ns);
      else if (e.key !== undefined) keys.set(e.key.toString('latin1'), { key: e.key, id: e.id });
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
    space.declared = false;
    space.threshold = undefined;
    space.indexKind = undefined;
    if (space.entries.size === 0 && ns !== DEFAULT_NAMESPACE) {
      space.index?.clear();
      entries.namespaces.delete(ns);
    }
  }
}

/** What the feed asks of the stream beside XREAD. */
export class FeedStream {
  constructor(
    private readonly redis: RedisClient,
    readonly key: string,
  ) {}

  /** XINFO STREAM: newest id, length, events ever added; undefined when there is no stream. */
  async info(): Promise<{ lastId: string; length: number; added: number } | undefined> {
    let r: RedisValue;
    try {
      r = await this.redis.call('XINFO', 'STREAM', this.key);
    } catch (err) {
      if (err instanceof RedisReplyError && /no such key/i.test(err.message)) return undefined;
      throw err;
    }
    if (!Array.isArray(r)) return undefined;
    const f = new Map<string, RedisValue>();
    for (let i = 0; i + 1 < r.length; i += 2) f.set(String(r[i]), r[i + 1]!);
    const length = Number(f.get('length') ?? 0);
    // entries-added: Redis 7.0 and later; before, trims cannot be told from here.
    const added = f.has('entries-added') ? Number(f.get('entries-added')) : length;
    return { lastId: String(f.get('last-generated-id') ?? '0-0'), length, added };
  }

  /** Is the event `id` still in the stream? */
  async has(id: string): Promise<boolean> {
    const r = await this.redis.call('XRANGE', this.key, id, id);
    return Array.isArray(r) && r.length > 0;
  }
}

/** The ms part of a stream id. */
function idMs(id: string): number {
  return Number(id.slice(0, id.indexOf('-')));
}

/** XREAD's reply (one stream) as events; null (timeout) is none. */
export function parseRead(reply: RedisValue): FeedEvent[] {
  if (!Array.isArray(reply) || reply.length === 0) return [];
  const stream = reply[0];
  if (!Array.isArray(stream) || !Array.isArray(stream[1])) return [];
  const out: FeedEvent[] = [];
  for (const item of stream[1]) {
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
