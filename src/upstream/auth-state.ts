/*
 * Whether the upstream's default user needs a password, as last seen.
 *
 * Redis lets a connection that never authenticated run commands when its
 * default user is `nopass` and `on` (authRequired() in server.c); otherwise
 * it answers -NOAUTH. semcache needs that answer for clients that did not
 * AUTH: to apply Redis's limits on unauthenticated requests while parsing
 * (so a request Redis would answer by closing a shared connection is refused
 * for its sender alone), to answer -NOAUTH to our own commands, and for
 * protected mode.
 *
 * It is learnt for free from the shared connections, whose batches run as a
 * fresh unauthenticated connection (each starts with RESET): a -NOAUTH reply
 * there means required, any other reply means not. When no such reply was
 * seen for `maxAgeMs` and an answer is needed now, it asks: a PING in the
 * next batch of a shared connection, or, without shared connections
 * (--multiplex 0), on a connection of its own: RESET (unauthenticated again,
 * as new), then PING. So a change made
 * on Redis (CONFIG SET requirepass, ACL SETUSER default) is seen at the next
 * shared reply, or within `maxAgeMs` by our commands.
 */
import type { Logger } from '../log.js';
import { encodeCommand } from '../resp/client-codec.js';
import { ReplyFramer } from '../resp/reply-framer.js';
import { Upstream, type UpstreamOptions } from './upstream.js';

const PROBE = Buffer.concat([encodeCommand(['RESET']), encodeCommand(['PING'])]);
const NOAUTH = Buffer.from('-NOAUTH Authentication required.\r\n');

/** Redis's exact reply (a script's error could start the same way). */
function isNoAuth(reply: Buffer, start: number, end: number): boolean {
  return (
    reply[start] === 0x2d &&
    end - start === NOAUTH.length &&
    reply.subarray(start, end).equals(NOAUTH)
  );
}

export class AuthState {
  /** The default user needs a password (as last seen). */
  required = false;
  /** When it was last seen (ms, performance.now()); -Infinity: never. */
  private seenAt = Number.NEGATIVE_INFINITY;
  private upstream: Upstream | undefined;
  private waiting: ((required: boolean | undefined) => void)[] = [];
  private chunks: Buffer[] = [];
  private closed = false;

  constructor(
    private readonly opts: UpstreamOptions,
    private readonly maxAgeMs: number,
    private readonly logger: Logger,
  ) {}

  /** A reply, reply[start, end), to a request sent as an unauthenticated default user. */
  observe(reply: Buffer, start = 0, end = reply.length): void {
    this.required = isNoAuth(reply, start, end);
    this.seenAt = performance.now();
  }

  /** Redis answered -NOAUTH to a request sent as the default user. */
  sawNoAuth(): void {
    this.required = true;
    this.seenAt = performance.now();
  }

  /** The answer, asking Redis first if the last one is older than maxAgeMs. */
  async current(): Promise<boolean> {
    if (performance.now() - this.seenAt > this.maxAgeMs) await this.probe();
    return this.required;
  }

  /**
   * Where to ask, when semcache has shared connections: a PING in the next
   * batch of one (no connection of the auth state's own then).
   */
  via: (() => Promise<void>) | undefined;

  /** Ask Redis now; resolves with the answer, or undefined if Redis could not be asked. */
  probe(): Promise<boolean | undefined> {
    if (this.closed) return Promise.resolve(undefined);
    const via = this.via;
    if (via !== undefined) {
      const before = this.seenAt;
      return via().then(() => (this.seenAt === before ? undefined : this.required));
    }
    return new Promise((resolve) => {
      this.waiting.push(resolve);
      if (this.waiting.length > 1) return; // a probe is in flight: share its answer
      this.chunks = [];
      this.upstream ??= this.open();
      this.upstream.write([PROBE]);
    });
  }

  private open(): Upstream {
    const upstream: Upstream = new Upstream(this.opts, {
      data: (chunk) => this.onData(chunk),
      blocked: () => {},
      drain: () => {},
      closed: (cause) => {
        if (this.upstream === upstream) this.upstream = undefined;
        if (!this.closed) this.logger.debug(`auth probe connection closed: ${cause}`);
        this.answer(undefined);
      },
    });
    upstream.connect();
    return upstream;
  }

  private onData(chunk: Buffer): void {
    this.chunks.push(chunk);
    const all = Buffer.concat(this.chunks);
    const framer = new ReplyFramer();
    const first = framer.next(all, 0);
    const second = first < 0 ? -1 : framer.next(all, first);
    if (second < 0) return;
    this.chunks = [];
    const reply = all.subarray(first, second);
    this.answer(isNoAuth(reply, 0, reply.length));
  }

  private answer(required: boolean | undefined): void {
    if (required !== undefined) {
      this.required = required;
      this.seenAt = performance.now();
    }
    const waiting = this.waiting;
    this.waiting = [];
    for (const w of waiting) w(required);
  }

  close(): void {
    this.closed = true;
    this.upstream?.destroy();
    this.answer(undefined);
  }
}
