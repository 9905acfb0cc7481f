/*
 * semcache's one pub/sub connection to Redis, shared by the change feed's
 * wake-ups (feed.ts: the write scripts PUBLISH on the feed's channel) and
 * the keyspace notifications (keyspace.ts). A channel is either live
 * (Redis confirmed the SUBSCRIBE), refused (a reply error such as NOPERM:
 * the user lacks the channel; not tried again), or pending (the connection
 * is down: it is made again every RETRY_MS and every channel subscribed
 * again). Each change of a channel's state is told to its owner, who must
 * assume that messages were missed while it was not live.
 *
 * A subscribed connection is no blocked client to Redis (INFO's
 * blocked_clients does not count it), which a waiting XREAD BLOCK would be.
 */
import type { Logger } from '../log.js';
import { RedisReplyError } from '../resp/client-codec.js';
import type { RedisClient, RedisValue } from '../upstream/redis-client.js';

/** Wait before subscribing again after the connection was lost (ms). */
const RETRY_MS = 500;

export type ConnectFn = (
  name: string,
  handlers?: { onMessage?: (m: RedisValue[]) => void; onLost?: () => void },
) => RedisClient;

interface Channel {
  /** A message's payload. */
  message(payload: Buffer): void;
  /** The channel became live, or stopped being live. */
  changed(live: boolean): void;
  live: boolean;
  /** Why Redis refused it, when it did. */
  refused: string | undefined;
}

export class Subscriber {
  private readonly client: RedisClient;
  private readonly channels = new Map<string, Channel>();
  private retry: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    connect: ConnectFn,
    private readonly logger: Logger,
  ) {
    this.client = connect('semcache pubsub connection', {
      onMessage: (m) => this.message(m),
      onLost: () => this.lost(),
    });
  }

  /**
   * Subscribe to `channel`. Resolves true once live; false when refused
   * (refusal() says why) or while the connection is down (it is retried).
   */
  add(
    channel: string,
    message: (payload: Buffer) => void,
    changed: (live: boolean) => void = () => {},
  ): Promise<boolean> {
    this.channels.set(channel, { message, changed, live: false, refused: undefined });
    return this.subscribe(channel);
  }

  live(channel: string): boolean {
    return this.channels.get(channel)?.live === true;
  }

  refusal(channel: string): string | undefined {
    return this.channels.get(channel)?.refused;
  }

  close(): void {
    this.stopped = true;
    if (this.retry) clearTimeout(this.retry);
    this.client.close();
  }

  private async subscribe(name: string): Promise<boolean> {
    const c = this.channels.get(name);
    if (c === undefined || this.stopped) return false;
    try {
      await this.client.call('SUBSCRIBE', name);
    } catch (err) {
      if (err instanceof RedisReplyError) c.refused = err.message;
      else this.later();
      return false;
    }
    if (!c.live) {
      c.live = true;
      c.changed(true);
    }
    return true;
  }

  private lost(): void {
    for (const c of this.channels.values()) {
      if (!c.live) continue;
      c.live = false;
      c.changed(false);
    }
    this.later();
  }

  /** Subscribe every channel not refused again, soon (the call reconnects). */
  private later(): void {
    if (this.stopped || this.retry !== undefined) return;
    this.retry = setTimeout(() => {
      this.retry = undefined;
      for (const [name, c] of this.channels) {
        if (!c.live && c.refused === undefined) {
          this.subscribe(name).catch((err: Error) => this.logger.warn(`pubsub: ${err.message}`));
        }
      }
    }, RETRY_MS);
    this.retry.unref();
  }

  /** `message`, channel, payload. */
  private message(m: RedisValue[]): void {
    if (m.length !== 3 || !Buffer.isBuffer(m[1]) || !Buffer.isBuffer(m[2])) return;
    this.channels.get(m[1].toString())?.message(m[2]);
  }
}
