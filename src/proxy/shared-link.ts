/*
 * A client's side of the shared upstream connection: replies the shared
 * connection hands this client, by position (shared-upstream.ts).
 *
 * A reply for the entry at the head of the client's reply queue joins the
 * current run of pass-through bytes; the client's replies in one read of the
 * shared connection form one run, written once when the read is handed out
 * (onSharedBatchEnd), not once each. A reply for a later entry is held in it.
 * Replies to requests our own commands made go to those commands.
 */
import { encodeReply, R, type Reply } from '../resp/writer.js';
import type { SharedOwner, SharedWaiter } from '../upstream/shared-upstream.js';
import type { Entry } from './entry.js';
import type { Forwarder } from './forwarder.js';
import type { ReplyQueue } from './reply-queue.js';

export interface SharedLinkHost {
  readonly replies: ReplyQueue;
  readonly forwarder: Forwarder;
  /** The client is gone: replies are dropped. */
  readonly closed: boolean;
  settle(entry: Entry): void;
  complete(entry: Entry, reply: Reply): void;
  flushHead(): void;
  /** Redis closed the shared connection after answering `entry` with a protocol error. */
  fatal(entry: Entry): void;
}

export class SharedLink implements SharedOwner {
  private inBatch = false;

  constructor(private readonly host: SharedLinkHost) {}

  onSharedReply(waiter: SharedWaiter, reply: Buffer, start: number, end: number): void {
    const host = this.host;
    if (host.closed) return;
    const entry = waiter as Entry;
    entry.owner = undefined;
    if (entry.internal !== undefined) {
      entry.internal(reply.subarray(start, end));
      host.forwarder.sharedAnswered();
      return;
    }
    this.inBatch = true;
    host.settle(entry);
    if (entry === host.replies.peek()) {
      host.replies.extendRun(reply, start, end);
      host.replies.shift();
      host.flushHead();
    } else (entry.out ??= []).push(reply.subarray(start, end));
    host.forwarder.sharedAnswered();
  }

  onSharedError(waiter: SharedWaiter, text: string): void {
    const host = this.host;
    if (host.closed) return;
    const entry = waiter as Entry;
    entry.owner = undefined;
    if (entry.internal !== undefined) entry.internal(encodeReply(R.error(text), 2));
    else host.complete(entry, R.error(text));
    host.forwarder.sharedAnswered();
  }

  onSharedFatal(waiter: SharedWaiter): void {
    if (!this.host.closed) this.host.fatal(waiter as Entry);
  }

  onSharedBatchEnd(): void {
    if (!this.inBatch) return;
    this.inBatch = false;
    this.host.replies.flushRun();
  }
}
