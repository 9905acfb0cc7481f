/*
 * Keys deleted or expired by anyone else (a plain DEL, a TTL running out,
 * eviction): Redis runs no script then, so the change feed cannot carry
 * them (docs/fleet.md). When Redis publishes keyspace notifications of those
 * events (notify-keyspace-events with E, and g, x, e or A), each instance
 * subscribes to __keyevent@<db>__:del, :expired and :evicted, on
 * semcache's pub/sub connection (subscriber.ts), and drops the entries of those keys at once: it
 * removes their records (the removal script checks that the key is still
 * gone and writes a feed event only for a record it removed) and forgets
 * the entries. A key that is no cache entry costs a lookup in memory.
 *
 * Without notifications (the default of Redis; semcache does not change
 * the server's configuration), an entry whose key is gone is dropped when a
 * lookup finds it gone or when the sweep gets to it.
 */
import type { Logger } from '../log.js';
import type { RedisClient } from '../upstream/redis-client.js';
import type { EntryTable } from './entries.js';
import type { EntryStore } from './store.js';
import type { Subscriber } from './subscriber.js';

export interface KeyspaceDeps {
  /** semcache's main connection (CONFIG GET). */
  redis: RedisClient;
  /** semcache's pub/sub connection (subscriber.ts). */
  subscriber: Subscriber;
  db: number;
  entries: EntryTable;
  store: EntryStore;
  logger: Logger;
}

export class KeyspaceListener {
  /** The channels subscribed to; empty while off. */
  private channels: string[] = [];
  private readonly pending = new Map<string, Buffer>();
  private flushing = false;
  /** Entries dropped on a notification. */
  drops = 0;

  constructor(private readonly d: KeyspaceDeps) {}

  get on(): boolean {
    return this.channels.length > 0;
  }

  /** Subscribe if Redis publishes the events; say in the log either way. */
  async start(): Promise<void> {
    let flags: string;
    try {
      const r = (await this.d.redis.call('CONFIG', 'GET', 'notify-keyspace-events')) as Buffer[];
      flags = r?.[1]?.toString() ?? '';
    } catch (err) {
      this.d.logger.info(
        `keyspace notifications not used (CONFIG GET refused: ${(err as Error).message}); entries of keys deleted by others are dropped on lookup and by the sweep`,
      );
      return;
    }
    const all = flags.includes('A');
    const events = [
      ...(all || flags.includes('g') ? ['del'] : []),
      ...(all || flags.includes('x') ? ['expired'] : []),
      ...(all || flags.includes('e') ? ['evicted'] : []),
    ];
    if (!flags.includes('E') || events.length === 0) {
      this.d.logger.info(
        `keyspace notifications not used (notify-keyspace-events is "${flags}"; "Egx" would tell every instance of deleted and expired keys at once); entries of keys deleted by others are dropped on lookup and by the sweep`,
      );
      return;
    }
    this.channels = events.map((e) => `__keyevent@${this.d.db}__:${e}`);
    // Notifications sent while the connection is down are lost: the sweep finds those keys.
    const live = await Promise.all(
      this.channels.map((c) => this.d.subscriber.add(c, (key) => this.message(key))),
    );
    const refused = this.d.subscriber.refusal(this.channels[0]!);
    if (refused !== undefined) {
      this.channels = [];
      this.d.logger.warn(
        `keyspace notifications not used (SUBSCRIBE refused: ${refused}); entries of keys deleted by others are dropped on lookup and by the sweep`,
      );
      return;
    }
    this.d.logger.info(
      `keyspace notifications: ${events.join(', ')} of db ${this.d.db}${live.every(Boolean) ? '' : ' (subscribing once redis is reachable)'}`,
    );
  }

  /** A message on one of the channels: its payload is the key. */
  message(key: Buffer): void {
    if (this.d.entries.entryOf(key) === undefined) return;
    this.pending.set(key.toString('latin1'), key);
    if (!this.flushing) {
      this.flushing = true;
      setImmediate(() => void this.flush());
    }
  }

  private async flush(): Promise<void> {
    try {
      while (this.pending.size > 0) {
        const keys = [...this.pending.values()].slice(0, 500);
        for (const k of keys) this.pending.delete(k.toString('latin1'));
        await this.d.store.remove(keys);
        const exists = await this.d.store.exists(keys);
        keys.forEach((key, i) => {
          const entry = this.d.entries.entryOf(key);
          if (entry !== undefined && !exists[i]) {
            this.d.entries.forget(entry);
            this.drops++;
          }
        });
      }
    } catch (err) {
      this.d.logger.warn(`keyspace notifications: ${(err as Error).message}`);
    } finally {
      this.flushing = false;
    }
  }
}
