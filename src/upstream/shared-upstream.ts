/*
 * A shared upstream connection: stateless commands of many clients travel
 * over one connection to Redis, the way twemproxy does it. Redis then reads
 * and writes in batches instead of one small read and write per client, which
 * is most of the cost of a proxy at low pipeline depth.
 *
 * Requests queued during one turn of the event loop go out in one write
 * (flushed from setImmediate, after every socket read of that turn; copied
 * into the batch as they come, as they are views of the client read buffer,
 * src/util/read-buffer.ts). Replies
 * come back in request order and are handed to their clients by position.
 * Only commands that neither depend on nor change connection state, and never
 * block, are sent here (see router.ts); a client that sends anything else is
 * pinned to a connection of its own. If this connection fails, the commands
 * waiting on it get an error; the next command opens a new one.
 *
 * One client's request must never cost the others their replies. Requests
 * Redis would refuse by closing the connection are refused before they get
 * here (src/proxy/request-limits.ts), but limits change and may be unknown.
 * So when Redis closes this connection right after answering a request with
 * a protocol error, that request's client is closed, exactly as Redis would
 * have closed its own connection, and the requests behind it, which Redis
 * never read, are sent again on a new connection. Where a write races that
 * close, Node drops the socket before its last bytes are read; then the
 * protocol error is never seen and everything in flight gets the error.
 *
 * Whether a client must authenticate (which changes Redis's limits) is seen
 * here: the first reply after a batch's RESET is -NOAUTH exactly when it
 * must, and AuthState is told.
 *
 * Redis authenticates a connection once, when it opens; a password set later
 * (CONFIG SET requirepass, ACL SETUSER default) does not reach it. Clients on
 * a shared connection are unauthenticated by definition (AUTH pins), so every
 * batch starts with RESET, which re-evaluates the default user: a client gets
 * -NOAUTH exactly when it would on a connection of its own. It costs one
 * small command per batch, not per request.
 */
import { Err } from '../errors.js';
import { encodeCommand } from '../resp/client-codec.js';
import { ReplyFramer } from '../resp/reply-framer.js';
import { Deque } from '../util/deque.js';
import type { AuthState } from './auth-state.js';
import type { LinkLog } from './link-log.js';
import { SentRequests } from './sent-requests.js';
import { Upstream, type UpstreamOptions } from './upstream.js';

const RESET_PARTS = [encodeCommand(['RESET'])];
const PING = encodeCommand(['PING']);
/** Its reply is read and dropped. */
const NOBODY: SharedWaiter = { owner: undefined };
/** Redis's processInputBuffer errors: the connection is closed after them. */
const PROTOCOL_ERROR = Buffer.from('-ERR Protocol error');

export interface SharedOwner {
  onSharedReply(waiter: SharedWaiter, reply: Buffer, start: number, end: number): void;
  onSharedError(waiter: SharedWaiter, text: string): void;
  /**
   * Every reply of this read has been handed out: write them. Called at
   * least once after an owner's replies of a read, possibly more often (a
   * call with nothing new to write must do nothing).
   */
  onSharedBatchEnd(): void;
  /**
   * Redis closed the connection after answering `waiter` with a protocol
   * error: close the client as Redis would have (nothing after that request
   * is answered).
   */
  onSharedFatal(waiter: SharedWaiter): void;
}

export interface SharedWaiter {
  owner: SharedOwner | undefined;
}

export class SharedUpstream {
  private upstream: Upstream | undefined;
  private framer = new ReplyFramer();
  private readonly awaiting = new Deque<SharedWaiter>();
  /** The request bytes of each waiter in `awaiting`, in the same order, and the next batch. */
  private readonly sent = new SentRequests();
  /** The last reply was a protocol error: its waiter and that waiter's owner (if still there). */
  private fatal: { waiter: SharedWaiter; owner: SharedOwner | undefined } | undefined;
  private scheduled = false;
  private partial: Buffer[] | undefined;
  /** Owners given replies in this read (an owner may repeat: see onSharedBatchEnd). */
  private touched: SharedOwner[] = [];
  /** The next reply is the first after a RESET: it tells whether clients must authenticate. */
  private afterReset = false;

  constructor(
    private readonly opts: UpstreamOptions,
    private readonly log?: LinkLog,
    /** Told whether the default user must authenticate (auth-state.ts). */
    private readonly auth?: AuthState,
  ) {}

  get inFlight(): number {
    return this.awaiting.length;
  }

  /** `parts` need only be valid during the call (they are copied). */
  send(waiter: SharedWaiter, parts: Buffer[]): void {
    if (this.sent.gathered === 0) {
      this.awaiting.push(NOBODY);
      this.sent.add(RESET_PARTS);
    }
    this.awaiting.push(waiter);
    this.sent.add(parts);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flush);
    }
  }

  /**
   * A PING in the next batch, for AuthState: the first reply after the
   * batch's RESET tells it whether the default user needs a password.
   * Resolves when the batch is answered (or failed).
   */
  ping(): Promise<void> {
    return new Promise((resolve) => {
      const done = () => resolve();
      const owner: SharedOwner = {
        onSharedReply: done,
        onSharedError: done,
        onSharedBatchEnd: () => {},
        onSharedFatal: done,
      };
      this.send({ owner }, [PING]);
    });
  }

  private readonly flush = (): void => {
    this.scheduled = false;
    if (this.sent.gathered === 0) return;
    this.upstream ??= this.open();
    this.upstream.write(this.sent.take());
  };

  private open(): Upstream {
    const upstream: Upstream = new Upstream(
      { ...this.opts, monitor: this.log },
      {
        data: (chunk) => this.onData(chunk),
        // Clients cap what they have in flight here, so the write buffer is bounded.
        blocked: () => {},
        drain: () => {},
        closed: (cause, everConnected) => {
          if (this.upstream === upstream) this.onClosed(cause, everConnected, upstream.address);
        },
      },
    );
    upstream.connect();
    return upstream;
  }

  private onData(chunk: Buffer): void {
    let pos = 0;
    try {
      if (this.partial !== undefined) {
        const end = this.framer.next(chunk, 0);
        if (end < 0) {
          this.partial.push(chunk);
          return;
        }
        this.partial.push(chunk.subarray(0, end));
        const whole = Buffer.concat(this.partial);
        this.partial = undefined;
        this.deliver(whole, 0, whole.length);
        pos = end;
      }
      while (pos < chunk.length) {
        const end = this.framer.next(chunk, pos);
        if (end < 0) {
          this.partial = [chunk.subarray(pos)];
          break;
        }
        this.deliver(chunk, pos, end);
        pos = end;
      }
    } catch (err) {
      this.upstream?.destroy(err as Error);
    } finally {
      this.batchEnd();
    }
  }

  private deliver(reply: Buffer, start: number, end: number): void {
    const waiter = this.awaiting.shift();
    this.sent.answered();
    const owner = waiter?.owner;
    this.fatal = undefined;
    if (this.afterReset) this.auth?.observe(reply, start, end);
    this.afterReset = waiter === NOBODY;
    if (waiter === undefined) return;
    // Confirmed only if the connection closes next (a script may return this text).
    if (startsWith(reply, start, end, PROTOCOL_ERROR)) this.fatal = { waiter, owner };
    if (owner === undefined) return;
    this.touch(owner);
    owner.onSharedReply(waiter, reply, start, end);
  }

  private touch(owner: SharedOwner): void {
    const touched = this.touched;
    if (touched[touched.length - 1] !== owner) touched.push(owner);
  }

  private batchEnd(): void {
    const touched = this.touched;
    if (touched.length === 0) return;
    this.touched = [];
    for (const owner of touched) owner.onSharedBatchEnd();
  }

  private onClosed(cause: string, everConnected: boolean, address: string): void {
    this.upstream = undefined;
    this.framer = new ReplyFramer();
    this.partial = undefined;
    this.afterReset = false;
    const fatal = this.fatal;
    this.fatal = undefined;
    if (fatal !== undefined && everConnected) {
      this.resendAfter(fatal);
      return;
    }
    // Requests not yet written are answered with the error too; writing them
    // to the next connection would shift every later reply by one.
    this.sent.clear();
    const text = everConnected
      ? Err.upstreamLost(address, cause)
      : Err.upstreamUnreachable(address, cause);
    const waiters = [...this.awaiting];
    this.awaiting.clear();
    for (const w of waiters) {
      if (w.owner === undefined) continue;
      this.touch(w.owner);
      w.owner.onSharedError(w, text);
    }
    this.batchEnd();
  }

  /**
   * Redis answered `fatal` with a protocol error and closed the connection:
   * it read nothing after that request. Its client is closed; the requests
   * of the others are sent again, in order, on a new connection.
   */
  private resendAfter(fatal: { waiter: SharedWaiter; owner: SharedOwner | undefined }): void {
    const waiters = [...this.awaiting];
    const requests = this.sent.drain();
    this.awaiting.clear();
    fatal.owner?.onSharedFatal(fatal.waiter);
    let again = 0;
    for (const [i, w] of waiters.entries()) {
      if (w === NOBODY || w.owner === undefined || w.owner === fatal.owner) continue;
      this.send(w, [requests[i]!]);
      again++;
    }
    this.log?.explain(
      `closed by Redis after a protocol error in one client's request; that client was closed, ${again} request(s) of others sent again`,
    );
  }

  close(): void {
    this.upstream?.destroy();
    this.upstream = undefined;
  }
}

function startsWith(reply: Buffer, start: number, end: number, prefix: Buffer): boolean {
  return (
    reply[start] === prefix[0] &&
    end - start >= prefix.length &&
    reply.compare(prefix, 0, prefix.length, start, start + prefix.length) === 0
  );
}
