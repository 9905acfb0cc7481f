/*
 * The one buffer that every plain client socket reads into (see
 * src/proxy/client-reads.ts for how, and why it pays). Node otherwise
 * allocates 64 KB, shrinks it and wraps it in a new ArrayBuffer for every
 * read; at one request per read that was a tenth of semcache's CPU.
 *
 * The price is a rule: bytes in this buffer are valid only until the read
 * handler returns, because the next read of any client overwrites them. The
 * parser hands out zero-copy views of a chunk (args, raw slices), so whoever
 * keeps such a view past the handler must keep `stable(view)` instead. In
 * practice that is five places: the parser's incomplete command, the shared
 * connection's batch and a client's own-connection batch (ByteBatch copies),
 * requests held behind our commands (local-scheduler.ts), and everything
 * that is not plain forwarding (dispatch.ts copies it).
 *
 * Tests poison the buffer after every read (`poisonReads`), so that a view
 * kept by mistake shows up as wrong bytes in the byte-for-byte comparisons
 * with redis-server, not as a rare corruption under load.
 */

/** As large as Node's own reads (64 KB): chunks split where they always did. */
export const READ_BUFFER_SIZE = 64 * 1024;

/** Its own ArrayBuffer (never Node's pool), so `isVolatile` is exact. */
export const readBuffer: Buffer = Buffer.allocUnsafeSlow(READ_BUFFER_SIZE);

let poison: number | undefined;

/** Tests: overwrite every chunk with `byte` once its handler has returned (undefined: off). */
export function poisonReads(byte: number | undefined): void {
  poison = byte;
}

/** After a read's handler returned: what it was given is gone (poisoned in tests). */
export function readDone(length: number): void {
  if (poison !== undefined) readBuffer.fill(poison, 0, length);
}

/** Reading a view's `.buffer` is a call into V8's runtime: read the read buffer's once. */
const READ_AB = readBuffer.buffer;

/** Small buffers are copied without asking: cheaper than asking (`.buffer` above). */
const ALWAYS_COPY = 4096;

/** Is `b` a view of the read buffer (valid only until the read handler returns)? */
export function isVolatile(b: Buffer): boolean {
  return b.buffer === READ_AB;
}

/** `b`, or a copy of it: one that stays valid after the read handler returns. */
export function stable(b: Buffer): Buffer {
  if (b.length > ALWAYS_COPY && b.buffer !== READ_AB) return b;
  const copy = Buffer.allocUnsafe(b.length);
  copy.set(b);
  return copy;
}
