/*
 * A raw TCP client for byte-exact tests: write bytes, collect every byte the
 * server sends until it has been quiet for a while or closed the connection.
 */
import { connect, type Socket } from 'node:net';
import { ReplyFramer } from '../../src/resp/reply-framer.js';

export interface Transcript {
  bytes: Buffer;
  closed: boolean;
}

export class RawClient {
  private chunks: Buffer[] = [];
  private waiters: (() => void)[] = [];
  closed = false;

  private constructor(readonly socket: Socket) {
    socket.on('data', (c: Buffer) => {
      this.chunks.push(c);
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => {});
  }

  static async open(port: number): Promise<RawClient> {
    const socket = connect({ host: '127.0.0.1', port });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new RawClient(socket);
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  get received(): Buffer {
    return Buffer.concat(this.chunks);
  }

  /** Wait until `pred(received)` holds, the socket closes, or `timeoutMs` passes. */
  async until(pred: (b: Buffer) => boolean, timeoutMs = 5000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    while (!pred(this.received) && !this.closed && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.received;
  }

  /** Wait until nothing has arrived for `quietMs` (or close). */
  async quiet(quietMs = 100, timeoutMs = 10_000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    let seen = -1;
    while (!this.closed && Date.now() < deadline) {
      const len = this.received.length;
      if (len === seen) break;
      seen = len;
      await new Promise((r) => setTimeout(r, quietMs));
    }
    return this.received;
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Encode argv as a RESP multibulk request. */
export function cmd(...args: (string | Buffer)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = Buffer.isBuffer(a) ? a : Buffer.from(a);
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

/** Split bytes into complete top-level RESP replies (a push is one too); `rest` is an unfinished tail. */
export function splitReplies(bytes: Buffer): { replies: Buffer[]; rest: Buffer } {
  const framer = new ReplyFramer();
  const replies: Buffer[] = [];
  let pos = 0;
  while (pos < bytes.length) {
    const end = framer.next(bytes, pos);
    if (end < 0) break;
    replies.push(bytes.subarray(pos, end));
    pos = end;
  }
  return { replies, rest: bytes.subarray(pos) };
}

/** Send `req` and wait (bounded) until `n` complete replies arrived after what was already received. */
export async function request(
  client: RawClient,
  req: Buffer | string,
  n = 1,
  timeoutMs = 5000,
): Promise<string> {
  const before = client.received.length;
  client.write(req);
  const out = await client.until(
    (b) => splitReplies(b.subarray(before)).replies.length >= n,
    timeoutMs,
  );
  return out.subarray(before).toString('latin1');
}
