/*
 * semcache's own connection to the backing Redis, for the semantic-cache
 * storage (never for client traffic, which is relayed as raw bytes). A small
 * pipelined RESP2 client: commands are written as they come and their
 * promises resolve in order as replies are framed and decoded. It connects on
 * first use and again after a failure; commands in flight when the
 * connection dies are rejected, never retried (they may have run).
 */
import { connect, type Socket } from 'node:net';
import { ReplyFramer } from './resp/reply-framer.js';
import { Deque } from './util/deque.js';

export type RedisValue = null | number | Buffer | RedisValue[] | RedisReplyError;

/** An error reply (`-ERR ...`) inside an array, or the rejection of a command. */
export class RedisReplyError extends Error {
  override name = 'RedisReplyError';
}

export class RedisConnectionError extends Error {
  override name = 'RedisConnectionError';
}

export interface RedisClientOptions {
  host: string;
  port: number;
  username?: string | undefined;
  password?: string | undefined;
  db?: number;
  connectTimeout?: number;
}

type Arg = string | Buffer | number;

interface Pending {
  resolve(v: RedisValue): void;
  reject(e: Error): void;
}

export function encodeCommand(args: readonly Arg[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = Buffer.isBuffer(a) ? a : Buffer.from(String(a));
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

/** Decode one complete RESP2 reply starting at `pos`; returns the value and where it ends. */
export function decodeReply(buf: Buffer, pos: number): [RedisValue, number] {
  const type = buf[pos];
  const lineEnd = buf.indexOf(13, pos);
  const line = buf.toString('latin1', pos + 1, lineEnd);
  const next = lineEnd + 2;
  switch (type) {
    case 0x2b /* + */:
      return [Buffer.from(line, 'latin1'), next];
    case 0x2d /* - */:
      return [new RedisReplyError(buf.toString('utf8', pos + 1, lineEnd)), next];
    case 0x3a /* : */:
      return [Number(line), next];
    case 0x24 /* $ */:
      {
        const len = Number(line);
        if (len < 0) return [null, next];
        return [buf.subarray(next, next + len), next + len + 2];
      }
    case 0x2a /* * */:
      {
        const n = Number(line);
        if (n < 0) return [null, next];
        const items: RedisValue[] = [];
        let p = next;
        for (let i = 0; i < n; i++) {
          const [v, e] = decodeReply(buf, p);
          items.push(v);
          p = e;
        }
        return [items, p];
      }
    default:
      throw new RedisConnectionError(`unexpected reply type 0x${(type ?? 0).toString(16)}`);
  }
}

export class RedisClient {
  private socket: Socket | undefined;
  private ready: Promise<void> | undefined;
  private readonly pending = new Deque<Pending>();
  private framer = new ReplyFramer();
  private partial: Buffer[] = [];
  private out: Buffer[] = [];
  private flushScheduled = false;

  constructor(private readonly opts: RedisClientOptions) {}

  get address(): string {
    return `${this.opts.host}:${this.opts.port}`;
  }

  /** Run one command; resolves with its reply, rejects with RedisReplyError on an error reply. */
  async call(...args: Arg[]): Promise<RedisValue> {
    const [reply] = await this.pipeline([args]);
    if (reply instanceof RedisReplyError) throw reply;
    return reply as RedisValue;
  }

  /** Send commands in one write; error replies come back as RedisReplyError values. */
  async pipeline(commands: readonly (readonly Arg[])[]): Promise<RedisValue[]> {
    if (commands.length === 0) return [];
    await this.connect();
    const replies = commands.map(
      () =>
        new Promise<RedisValue>((resolve, reject) => {
          this.pending.push({ resolve, reject });
        }),
    );
    for (const c of commands) this.out.push(encodeCommand(c));
    // Commands of one turn of the event loop (every socket read in it) go out
    // in one write: with many clients that is one syscall instead of one each.
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flush);
    }
    return replies.length === 1 ? replies[0]!.then((r) => [r]) : Promise.all(replies);
  }

  private readonly flush = (): void => {
    this.flushScheduled = false;
    const out = this.out;
    this.out = [];
    if (out.length === 0) return;
    const socket = this.socket;
    if (socket === undefined) {
      // The connection died between queueing and now: onClose rejected the waiters.
      return;
    }
    socket.write(out.length === 1 ? out[0]! : Buffer.concat(out));
  };

  private connect(): Promise<void> {
    this.ready ??= this.open().catch((err: Error) => {
      this.ready = undefined;
      throw err;
    });
    return this.ready;
  }

  private async open(): Promise<void> {
    const socket = connect({ host: this.opts.host, port: this.opts.port, noDelay: true });
    this.socket = socket;
    this.framer = new ReplyFramer();
    this.partial = [];
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          socket.destroy(new Error(`connect timeout after ${this.opts.connectTimeout ?? 2000} ms`)),
        this.opts.connectTimeout ?? 2000,
      );
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve();
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(new RedisConnectionError(`redis ${this.address} unreachable: ${err.message}`));
      });
    });
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => {});
    socket.on('close', () => this.onClose(socket));
    const setup: Arg[][] = [];
    if (this.opts.password !== undefined) {
      setup.push(
        this.opts.username !== undefined
          ? ['AUTH', this.opts.username, this.opts.password]
          : ['AUTH', this.opts.password],
      );
    }
    if (this.opts.db) setup.push(['SELECT', this.opts.db]);
    for (const cmd of setup) {
      const reply = await new Promise<RedisValue>((resolve, reject) => {
        this.pending.push({ resolve, reject });
        socket.write(encodeCommand(cmd));
      });
      if (reply instanceof RedisReplyError) {
        socket.destroy();
        throw reply;
      }
    }
  }

  private onData(chunk: Buffer): void {
    let pos = 0;
    while (pos < chunk.length) {
      const end = this.framer.next(chunk, pos);
      if (end < 0) {
        this.partial.push(chunk.subarray(pos));
        return;
      }
      let reply = chunk.subarray(pos, end);
      if (this.partial.length > 0) {
        this.partial.push(reply);
        reply = Buffer.concat(this.partial);
        this.partial = [];
      }
      pos = end;
      const waiter = this.pending.shift();
      if (waiter) waiter.resolve(decodeReply(reply, 0)[0]);
    }
  }

  private onClose(socket: Socket): void {
    if (this.socket !== socket) return;
    this.socket = undefined;
    this.ready = undefined;
    const err = new RedisConnectionError(`connection to redis ${this.address} lost`);
    for (const p of this.pending) p.reject(err);
    this.pending.clear();
    this.out = [];
  }

  close(): void {
    this.socket?.destroy();
  }
}
