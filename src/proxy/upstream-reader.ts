/*
 * Replies from a client's own upstream connection, matched to the commands
 * that wait for them. Upstream bytes are framed (ReplyFramer finds where each
 * reply ends), never decoded, and matched in order to `awaiting`.
 *
 * The common case costs nothing but framing: when the reply belongs to the
 * entry at the head of the reply queue and nothing needs to look at it (no
 * hook, not a push, no MONITOR or RESP2 pub/sub to sort out), its bytes join
 * a run that is written straight through, even across chunk boundaries.
 * Anything else is cut out as one Buffer and handed over whole: out-of-band
 * messages go to the client at once (except MONITOR lines of semcache's own
 * housekeeping, own-connections.ts), replies through their entry's hook, and
 * replies for entries behind an unfinished one are held in that entry.
 * Replies to requests our own commands sent for the client (internal
 * entries) go to those commands, never to the client.
 */
import { Err } from '../errors.js';
import { ReplyFramer } from '../resp/reply-framer.js';
import { encodeReply, R, type Reply } from '../resp/writer.js';
import type { OwnConnections } from '../upstream/own-connections.js';
import { Deque } from '../util/deque.js';
import type { Entry } from './entry.js';
import type { ReplyQueue } from './reply-queue.js';
import type { Session } from './session.js';

const GT = 0x3e; // '>' RESP3 push
const MINUS = 0x2d;
const EMPTY = Buffer.alloc(0);

export interface ReaderHost {
  readonly replies: ReplyQueue;
  readonly session: Session;
  /** An entry got all its replies. */
  settle(entry: Entry): void;
  /** The head of the reply queue moved on: write what is complete. */
  flushHead(): void;
}

export class UpstreamReader {
  private framer = new ReplyFramer();
  private readonly awaiting = new Deque<Entry>();
  // A reply that began in an earlier upstream chunk.
  private partial: Buffer[] | undefined;
  private partialDirect = false;

  constructor(
    private readonly host: ReaderHost,
    /** semcache's own connections: their housekeeping is not shown to MONITOR. */
    private readonly housekeeping?: OwnConnections,
  ) {}

  /** No reply is half read. */
  get idle(): boolean {
    return this.partial === undefined;
  }

  get waiting(): number {
    return this.awaiting.length;
  }

  /** A command was sent upstream: `entry` takes its next reply(ies). */
  expect(entry: Entry): void {
    this.awaiting.push(entry);
    if (this.awaiting.length === 1) this.resolveExpect(entry);
  }

  /** The connection is gone: every command still waiting gets `reply`, in order. */
  fail(reply: Reply): void {
    this.partial = undefined;
    this.framer = new ReplyFramer();
    const awaiting = [...this.awaiting];
    this.awaiting.clear();
    for (const entry of awaiting) {
      entry.expect = 0;
      if (entry.internal !== undefined) {
        entry.internal(encodeReply(reply, 2));
        continue;
      }
      (entry.out ??= []).push(reply);
      if (entry.pending === 0) this.host.settle(entry);
    }
  }

  /**
   * The connection was closed by the server, which sends nothing after that:
   * the commands still waiting get nothing, and the first of them ends the
   * client's connection once every reply before it has been written (a reply
   * it had begun to pass through stays cut short, as Redis would leave it).
   * Requests our commands made get `lost`, so the commands end. False when
   * no command of the client's was waiting.
   */
  abandon(lost: Buffer): boolean {
    const awaiting = [...this.awaiting];
    this.partial = undefined;
    this.framer = new ReplyFramer();
    this.awaiting.clear();
    let cut: Entry | undefined;
    for (const entry of awaiting) {
      entry.expect = 0;
      // A request one of our commands made: the command gets the error and ends.
      if (entry.internal !== undefined) entry.internal(lost);
      else cut ??= entry;
    }
    if (cut === undefined) return false;
    cut.out = undefined;
    cut.done = true;
    cut.closeAfter = true;
    return true;
  }

  clear(): void {
    this.awaiting.clear();
  }

  /** Frame a chunk from upstream; throws FramingError on bytes that are not RESP. */
  consume(chunk: Buffer): void {
    let pos = 0;
    const len = chunk.length;
    const replies = this.host.replies;
    if (this.partial !== undefined) {
      const end = this.framer.next(chunk, 0);
      if (end < 0) {
        if (this.partialDirect) replies.extendRun(chunk, 0, len);
        else this.partial.push(chunk);
        return;
      }
      const parts = this.partial;
      this.partial = undefined;
      if (this.partialDirect) {
        replies.extendRun(chunk, 0, end);
        this.directDone();
      } else {
        parts.push(chunk.subarray(0, end));
        this.handleReply(Buffer.concat(parts));
      }
      pos = end;
    }
    while (pos < len) {
      const start = pos;
      const end = this.framer.next(chunk, pos);
      const direct = this.canPassThrough(chunk[start]!);
      if (end < 0) {
        this.partialDirect = direct;
        if (direct) {
          this.partial = [];
          replies.extendRun(chunk, start, len);
        } else this.partial = [chunk.subarray(start)];
        return;
      }
      if (direct) {
        replies.extendRun(chunk, start, end);
        this.directDone();
      } else this.handleReply(chunk.subarray(start, end));
      pos = end;
    }
  }

  /** May this reply go to the client as it arrives, without being looked at? */
  private canPassThrough(first: number): boolean {
    const target = this.awaiting.peek();
    return (
      target !== undefined &&
      target.hook === undefined &&
      target === this.host.replies.peek() &&
      first !== GT &&
      this.host.session.plainReplies
    );
  }

  /** The head entry's single reply went straight through. */
  private directDone(): void {
    const entry = this.awaiting.shift()!;
    this.host.settle(entry);
    this.host.replies.shift();
    this.nextAwaiting();
    this.host.flushHead();
  }

  private handleReply(reply: Buffer): void {
    const target = this.awaiting.peek();
    const replies = this.host.replies;
    // Out of band, or nothing awaits a reply (CLIENT REPLY ON raced): pass it on.
    if (target === undefined || this.host.session.isOutOfBand(reply, target)) {
      if (!(this.host.session.monitor && this.housekeeping?.hides(reply))) replies.write(reply);
      return;
    }
    if (target.internal !== undefined) {
      this.awaiting.shift();
      this.nextAwaiting();
      target.internal(reply);
      return;
    }
    const out = target.hook ? target.hook(reply) : reply;
    if (out instanceof Promise) this.later(target, out);
    else if (target === replies.peek() && target.pending === 0) replies.write(out);
    else (target.out ??= []).push(out);
    // An error ends a multi-reply command (SUBSCRIBE with an arity error).
    if (--target.expect > 0 && reply[0] !== MINUS) return;
    target.expect = 0;
    this.awaiting.shift();
    this.nextAwaiting();
    if (target.pending > 0) return; // settled when its hook is done
    this.host.settle(target);
    if (target === replies.peek()) {
      replies.shift();
      this.host.flushHead();
    }
  }

  /** A hook's reply that takes time: it keeps its place, and so do the replies after it. */
  private later(target: Entry, out: Promise<Buffer>): void {
    const held = (target.out ??= []);
    const at = held.push(EMPTY) - 1;
    target.pending++;
    const done = (reply: Buffer | Reply) => {
      held[at] = reply;
      if (--target.pending > 0 || target.expect > 0) return;
      this.host.settle(target);
      this.host.flushHead();
    };
    out.then(done, (err: Error) => done(R.error(Err.internal(err.message))));
  }

  private nextAwaiting(): void {
    const next = this.awaiting.peek();
    if (next !== undefined) this.resolveExpect(next);
  }

  private resolveExpect(entry: Entry): void {
    if (entry.lazyExpect === undefined) return;
    entry.expect = entry.lazyExpect();
    entry.lazyExpect = undefined;
  }
}
