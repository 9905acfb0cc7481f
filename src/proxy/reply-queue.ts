/*
 * A client's replies, in request order. Every command that gets a reply has an
 * Entry here; bytes leave only from the head, so replies go out in request
 * order whatever mix of forwarded and local commands a pipeline holds.
 *
 * Writing is where a proxy spends its time, so three things keep syscalls
 * down: upstream bytes for the head entry are passed through as runs (slices
 * of one upstream chunk, written once however many replies they hold); small
 * replies completed together are joined into one write; and the connection
 * corks the socket around each burst.
 */
import { encodeReply, type Proto, type Reply } from '../resp/writer.js';
import { Deque } from '../util/deque.js';
import type { Entry } from './entry.js';
import { newEntry } from './entry.js';

/** Replies up to this size are joined into one socket write. */
const JOIN_MAX = 16 * 1024;

export interface ClientSink {
  /** socket.write: false once the socket buffers past its high-water mark. */
  write(bytes: Buffer): boolean;
  /** The client's protocol now, to encode our replies. */
  proto(): Proto;
  /** The client is not taking replies as fast as they come. */
  blocked(): void;
  /** An entry marked closeAfter was written: end the connection. */
  end(): void;
}

export class ReplyQueue {
  private readonly queue = new Deque<Entry>();
  // A run of upstream bytes being passed straight through, written in one go.
  private runChunk: Buffer | undefined;
  private runStart = 0;
  private runEnd = 0;

  constructor(private readonly sink: ClientSink) {}

  get length(): number {
    return this.queue.length;
  }

  peek(): Entry | undefined {
    return this.queue.peek();
  }

  push(entry: Entry): void {
    this.queue.push(entry);
  }

  shift(): Entry | undefined {
    return this.queue.shift();
  }

  clear(): void {
    this.queue.clear();
  }

  [Symbol.iterator](): IterableIterator<Entry> {
    return this.queue[Symbol.iterator]();
  }

  /** Queue an entry of ours; with a reply it is done at once. */
  pushLocal(reply: Reply | undefined): Entry {
    const entry = newEntry(0);
    if (reply !== undefined) {
      entry.out = [reply];
      entry.done = true;
    }
    this.queue.push(entry);
    return entry;
  }

  /** End the connection once `entry` is written; false if it was written already. */
  closeAfter(entry: Entry): boolean {
    for (const e of this.queue) {
      if (e === entry) {
        entry.closeAfter = true;
        return true;
      }
    }
    return false;
  }

  /**
   * The connection is lost: end it before the first forwarded command that is
   * not answered (one held back behind our commands); false if there is none.
   */
  cutAtFirstForwarded(): boolean {
    for (const e of this.queue) {
      if (!e.done && !e.local) {
        e.out = undefined;
        e.done = true;
        e.closeAfter = true;
        return true;
      }
    }
    return false;
  }

  /** Bytes of replies held for entries that are not at the head yet (estimated for ours). */
  get heldBytes(): number {
    let n = 0;
    for (const entry of this.queue) {
      if (entry.out) for (const o of entry.out) n += Buffer.isBuffer(o) ? o.length : 64;
    }
    return n;
  }

  /** Write every completed entry at the head; false if one of them ended the connection. */
  flushHead(): boolean {
    const first = this.queue.peek();
    if (first === undefined || !first.done) return true; // the common case: nothing to write
    // Small replies are joined into one write: a socket.write costs more than
    // copying a few hundred bytes (a -P 16 burst of SEMGET hits is 16 replies).
    let small: Buffer[] = [];
    let smallBytes = 0;
    const writeSmall = () => {
      if (small.length === 0) return;
      this.write(small.length === 1 ? small[0]! : Buffer.concat(small, smallBytes));
      small = [];
      smallBytes = 0;
    };
    for (;;) {
      const head = this.queue.peek();
      if (head === undefined || !head.done) break;
      this.queue.shift();
      if (head.out) {
        for (const o of head.out) {
          const bytes = Buffer.isBuffer(o) ? o : encodeReply(o, this.sink.proto());
          if (bytes.length > JOIN_MAX) {
            writeSmall();
            this.write(bytes);
          } else {
            small.push(bytes);
            smallBytes += bytes.length;
            if (smallBytes > JOIN_MAX) writeSmall();
          }
        }
      }
      if (head.closeAfter) {
        writeSmall();
        this.flushRun();
        this.sink.end();
        return false;
      }
    }
    writeSmall();
    return true;
  }

  /** Write one reply now (the caller knows it is next in order, or out of band). */
  write(out: Buffer | Reply): void {
    this.flushRun();
    const bytes = Buffer.isBuffer(out) ? out : encodeReply(out, this.sink.proto());
    if (!this.sink.write(bytes)) this.sink.blocked();
  }

  /** Pass chunk[start, end) through, joined to the current run when contiguous. */
  extendRun(chunk: Buffer, start: number, end: number): void {
    if (this.runChunk === chunk && this.runEnd === start) {
      this.runEnd = end;
      return;
    }
    this.flushRun();
    this.runChunk = chunk;
    this.runStart = start;
    this.runEnd = end;
  }

  flushRun(): void {
    const chunk = this.runChunk;
    if (chunk === undefined) return;
    this.runChunk = undefined;
    const bytes =
      this.runStart === 0 && this.runEnd === chunk.length
        ? chunk
        : chunk.subarray(this.runStart, this.runEnd);
    if (!this.sink.write(bytes)) this.sink.blocked();
  }
}
