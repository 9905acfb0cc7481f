/*
 * A shared upstream connection: stateless commands of many clients travel
 * over one connection to Redis, the way twemproxy does it. Redis then reads
 * and writes in batches instead of one small read and write per client, which
 * is most of the cost of a proxy at low pipeline depth.
 *
 * Requests queued during one turn of the event loop go out in one write
 * (flushed from setImmediate, after every socket read of that turn). Replies
 * come back in request order and are handed to their clients by position.
 * Only commands that neither depend on nor change connection state, and never
 * block, are sent here (see router.ts); a client that sends anything else is
 * pinned to a connection of its own. If this connection fails, the commands
 * waiting on it get an error; the next command opens a new one.
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
import { Upstream, type UpstreamOptions } from './upstream.js';

const RESET = encodeCommand(['RESET']);
/** Its reply is read and dropped. */
const NOBODY: SharedWaiter = { owner: undefined };

export interface SharedOwner {
  onSharedReply(waiter: SharedWaiter, reply: Buffer, start: number, end: number): void;
  onSharedError(waiter: SharedWaiter, text: string): void;
  /** Every reply of this read has been handed out: write them. */
  onSharedBatchEnd(): void;
}

export interface SharedWaiter {
  owner: SharedOwner | undefined;
}

export class SharedUpstream {
  private upstream: Upstream | undefined;
  private framer = new ReplyFramer();
  private readonly awaiting = new Deque<SharedWaiter>();
  private out: Buffer[] = [];
  private scheduled = false;
  private partial: Buffer[] | undefined;
  private readonly touched = new Set<SharedOwner>();
  private afterReset = false;

  constructor(
    private readonly opts: UpstreamOptions,
    private readonly auth?: AuthState,
  ) {}

  get inFlight(): number {
    return this.awaiting.length;
  }

  send(waiter: SharedWaiter, parts: Buffer[]): void {
    if (this.out.length === 0) {
      this.awaiting.push(NOBODY);
      this.out.push(RESET);
    }
    this.awaiting.push(waiter);
    for (const p of parts) this.out.push(p);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flush);
    }
  }

  private readonly flush = (): void => {
    this.scheduled = false;
    if (this.out.length === 0) return;
    const out = this.out;
    this.out = [];
    this.upstream ??= this.open();
    this.upstream.write(out.length === 1 ? out : [Buffer.concat(out)]);
  };

  private open(): Upstream {
    const upstream: Upstream = new Upstream(this.opts, {
      data: (chunk) => this.onData(chunk),
      // Clients cap what they have in flight here, so the write buffer is bounded.
      blocked: () => {},
      drain: () => {},
      closed: (cause, everConnected) => {
        if (this.upstream === upstream) this.onClosed(cause, everConnected, upstream.address);
      },
    });
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
      for (const owner of this.touched) owner.onSharedBatchEnd();
      this.touched.clear();
    }
  }

  private deliver(reply: Buffer, start: number, end: number): void {
    const waiter = this.awaiting.shift();
    // The first reply after a RESET says whether the default user needs a password.
    if (this.afterReset) {
      this.afterReset = false;
      this.auth?.observe(reply, start);
    }
    if (waiter === NOBODY) this.afterReset = true;
    const owner = waiter?.owner;
    if (waiter === undefined || owner === undefined) return;
    this.touched.add(owner);
    owner.onSharedReply(waiter, reply, start, end);
  }

  private onClosed(cause: string, everConnected: boolean, address: string): void {
    this.upstream = undefined;
    this.framer = new ReplyFramer();
    this.partial = undefined;
    this.afterReset = false;
    // Requests not yet written are answered with the error too; writing them
    // to the next connection would shift every later reply by one.
    this.out = [];
    const text = everConnected
      ? Err.upstreamLost(address, cause)
      : Err.upstreamUnreachable(address, cause);
    const waiters = [...this.awaiting];
    this.awaiting.clear();
    for (const w of waiters) {
      if (w.owner === undefined) continue;
      this.touched.add(w.owner);
      w.owner.onSharedError(w, text);
    }
    for (const owner of this.touched) owner.onSharedBatchEnd();
    this.touched.clear();
  }

  close(): void {
    this.upstream?.destroy();
    this.upstream = undefined;
  }
}
