/*
 * The request bytes of a shared connection, from the moment a request is
 * queued until it is answered: the batch being gathered for the next write,
 * and the batches written whose replies have not all come back. Kept so that
 * the requests Redis never read can be sent again (shared-upstream.ts,
 * resendAfter).
 *
 * Every request costs a number, not an object: the bytes stay where the
 * batch put them (copied in, as they are views of the client read buffer,
 * src/util/byte-batch.ts), each request's length is queued, and a request is
 * cut out of the written batches only when it has to be sent again.
 */
import { ByteBatch } from '../util/byte-batch.js';
import { Deque } from '../util/deque.js';

export class SentRequests {
  private batch = new ByteBatch();
  /** Byte length of each request not yet answered, oldest first (written, then gathered). */
  private readonly lengths = new Deque<number>();
  /** Written batches not yet answered in full, and the bytes of the first that are. */
  private readonly written = new Deque<Buffer>();
  private answeredBytes = 0;

  /** Bytes gathered for the next write. */
  get gathered(): number {
    return this.batch.length;
  }

  /** Queue a request (its parts need only be valid during the call). */
  add(parts: Buffer[]): void {
    let n = 0;
    for (const part of parts) {
      if (part.length === 0) continue;
      this.batch.append(part);
      n += part.length;
    }
    this.lengths.push(n);
  }

  /** The gathered batch, to be written now. */
  take(): Buffer[] {
    const out = this.batch.take();
    for (const b of out) this.written.push(b);
    return out;
  }

  /** The oldest request was answered: its bytes are let go. */
  answered(): void {
    this.answeredBytes += this.lengths.shift() ?? 0;
    for (;;) {
      const head = this.written.peek();
      if (head === undefined || this.answeredBytes < head.length) return;
      this.answeredBytes -= head.length;
      this.written.shift();
    }
  }

  /** Every request not yet answered, oldest first, as its bytes; nothing is kept after. */
  drain(): Buffer[] {
    const gathered = this.batch.take();
    const all = Buffer.concat([...this.written, ...gathered]);
    const requests: Buffer[] = [];
    let at = this.answeredBytes;
    for (const n of this.lengths) {
      requests.push(all.subarray(at, at + n));
      at += n;
    }
    this.clear();
    return requests;
  }

  /** Forget every request (they were answered with an error). */
  clear(): void {
    this.batch.clear();
    this.lengths.clear();
    this.written.clear();
    this.answeredBytes = 0;
  }
}
