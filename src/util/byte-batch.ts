/*
 * Request bytes gathered for one write to an upstream connection: the shared
 * connection's batch (flushed once per turn of the event loop) and a
 * client's own-connection batch. Parts arrive as views of the client read
 * buffer, which the next read overwrites (read-buffer.ts), so they are
 * copied in as they come.
 *
 * Copies go into a process-wide slab, handed out front to back and never
 * written twice: a batch of a dozen GETs costs a dozen small copies and no
 * allocation (concatenating views cost an allocation per batch anyway), and
 * an idle batch holds no memory of its own. Consecutive parts of one batch
 * are contiguous in the slab, so a batch is usually one buffer; another
 * batch appending in between just starts a new segment. A part too big to
 * be worth copying (a large value, which the parser has already assembled
 * in a buffer of its own) is passed on as it is.
 */
import { isVolatile } from './read-buffer.js';

const SLAB = 64 * 1024;
/** Parts up to this size are copied into the slab; bigger ones only if volatile. */
const COPY_MAX = 4 * 1024;

let slab = Buffer.allocUnsafeSlow(SLAB);
let used = 0;

export class ByteBatch {
  private segments: Buffer[] = [];
  /** The run of this batch's bytes at the end of the slab, not yet in `segments`. */
  private run: Buffer | undefined;
  private runFrom = 0;
  private runTo = 0;
  private bytes = 0;

  /** Bytes in the batch. */
  get length(): number {
    return this.bytes;
  }

  /** Add `part` to the batch (it need only be valid during the call). */
  append(part: Buffer): void {
    const n = part.length;
    if (n === 0) return;
    this.bytes += n;
    if (n > COPY_MAX && !isVolatile(part)) {
      this.cut();
      this.segments.push(part);
      return;
    }
    if (SLAB - used < n) {
      slab = Buffer.allocUnsafeSlow(Math.max(SLAB, n));
      used = 0;
    }
    const at = used;
    // TypedArray#set: Buffer#copy would make a view of `part` first.
    slab.set(part, at);
    used = at + n;
    if (this.run !== slab || this.runTo !== at) {
      this.cut();
      this.run = slab;
      this.runFrom = at;
    }
    this.runTo = used;
  }

  /** The batch as buffers to write in order (usually one); the batch is empty after. */
  take(): Buffer[] {
    this.cut();
    const out = this.segments;
    this.segments = [];
    this.bytes = 0;
    return out;
  }

  /** Forget what was gathered (it must never be written). */
  clear(): void {
    this.run = undefined;
    this.segments = [];
    this.bytes = 0;
  }

  private cut(): void {
    if (this.run === undefined) return;
    this.segments.push(this.run.subarray(this.runFrom, this.runTo));
    this.run = undefined;
  }
}
