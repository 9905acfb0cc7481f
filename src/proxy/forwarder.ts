/*
 * Where a client's forwarded requests go: the shared upstream connection while
 * the client has no connection state (src/upstream/shared-upstream.ts), its
 * own connection once it is pinned (src/upstream/upstream.ts), for good.
 *
 * Requests for the own connection are gathered during a read of the client
 * (copied out of the client read buffer into one batch, src/util/byte-batch.ts)
 * and written at once. They are held back while any of the client's requests
 * are still on the shared connection, so Redis runs the client's commands in
 * the order it sent them.
 */
import type { SharedOwner, SharedUpstream } from '../upstream/shared-upstream.js';
import { Upstream, type UpstreamEvents, type UpstreamOptions } from '../upstream/upstream.js';
import { ByteBatch } from '../util/byte-batch.js';
import type { Entry } from './entry.js';

/** Commands one client may have in flight on a shared connection before it gets its own. */
export const SHARED_MAX_IN_FLIGHT = 32;

export class Forwarder {
  private upstream: Upstream | undefined;
  private sharedInFlight = 0;
  /** The client stopped taking replies: stop sending its commands to a shared connection. */
  backlogged = false;
  // Raw request bytes for the own connection.
  private readonly fwd = new ByteBatch();
  private flushScheduled = false;

  constructor(
    private readonly opts: UpstreamOptions,
    private readonly shared: SharedUpstream | undefined,
    private readonly owner: SharedOwner,
    private readonly events: UpstreamEvents,
  ) {
    if (shared === undefined) this.pin();
  }

  get pinned(): boolean {
    return this.upstream !== undefined;
  }

  get address(): string {
    return this.upstream?.address ?? '';
  }

  /**
   * Give this client its own upstream connection, for good: it is about to
   * use connection state or block. Requests already on the shared connection
   * are answered first (see flush), so Redis runs them in order.
   */
  pin(): void {
    if (this.upstream !== undefined) return;
    this.upstream = new Upstream(this.opts, this.events);
    this.upstream.connect();
  }

  /** May a command that is `shareable` go over the shared connection now? */
  canShare(shareable: boolean): boolean {
    return (
      shareable &&
      this.upstream === undefined &&
      this.shared !== undefined &&
      this.sharedInFlight < SHARED_MAX_IN_FLIGHT &&
      !this.backlogged
    );
  }

  sendShared(entry: Entry, raw: Buffer[]): void {
    entry.owner = this.owner;
    this.sharedInFlight++;
    this.shared!.send(entry, raw);
  }

  /** A request on the shared connection was answered (or failed). */
  sharedAnswered(): void {
    this.sharedInFlight--;
    if (this.sharedInFlight === 0) this.flush();
  }

  sendOwn(parts: Buffer[]): void {
    this.pin();
    for (const part of parts) this.fwd.append(part);
  }

  /**
   * Write what is queued at the end of this tick: requests our commands make
   * while a read of the client is parsed (a pipeline of SEMGETs) go out in
   * one write, not one each.
   */
  flushSoon(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    process.nextTick(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  /**
   * The own connection failed before it was up: the requests not yet written
   * were answered with the error, so they must never reach the next one.
   */
  dropUnsent(): void {
    this.fwd.clear();
  }

  flush(): void {
    if (this.fwd.length === 0 || this.sharedInFlight > 0) return;
    this.upstream?.write(this.fwd.take());
  }

  pause(): void {
    this.upstream?.pause();
  }

  resume(): void {
    this.upstream?.resume();
  }

  destroy(err?: Error): void {
    this.upstream?.destroy(err);
  }
}
