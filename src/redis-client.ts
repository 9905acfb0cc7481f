/*
 * semcache's own connection to the backing Redis, for the semantic-cache
 * storage (never for client traffic, which is relayed as raw bytes). A small
 * pipelined RESP2 client: commands are encoded into one buffer as they come,
 * written once per turn of the event loop, and their promises resolve in
 * order as replies are framed and decoded. Value reads (mget) asked for back
 * to back in a turn, typically one per cache hit, share a single MGET. It
 * connects on first use and again after a failure; commands in flight when
 * the connection dies are rejected, never retried (they may have run).
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

/** Where a reply goes: each command queues one, in the order it is written. */
interface Pending {
  settle(reply: RedisValue): void;
  fail(err: Error): void;
}

/** The promise of call(): an error reply rejects it. */
class CallWaiter implements Pending {
  constructor(
    private readonly resolve: (v: RedisValue) => void,
    private readonly reject: (e: Error) => void,
  ) {}
  settle(reply: RedisValue): void {
    if (reply instanceof RedisReplyError) this.reject(reply);
    else this.resolve(reply);
  }
  fail(err: Error): void {
    this.reject(err);
  }
}

/** The promise of pipeline(): queued once per command, resolves with all n replies. */
class PipelineWaiter implements Pending {
  private readonly replies: RedisValue[] = [];
  constructor(
    private readonly n: number,
    private readonly resolve: (v: RedisValue[]) => void,
    private readonly reject: (e: Error) => void,
  ) {}
  settle(reply: RedisValue): void {
    this.replies.push(reply);
    if (this.replies.length === this.n) this.resolve(this.replies);
  }
  fail(err: Error): void {
    this.reject(err);
  }
}

/** Keys per MGET at most; a longer run of mget() calls starts another. */
const MGET_MAX_KEYS = 1024;
const MGET = Buffer.from('MGET');

interface MgetCall {
  keys: readonly Buffer[];
  resolve(v: (Buffer | null)[]): void;
  reject(e: Error): void;
  /** Positions of its keys in the MGET: one number for the usual single key. */
  at: number | number[];
}

/** MGET's reply as values (nil for a missing key and for one that holds no string). */
function stringValues(reply: RedisValue): (Buffer | null)[] | undefined {
  return Array.isArray(reply) ? reply.map((v) => (Buffer.isBuffer(v) ? v : null)) : undefined;
}

/**
 * The MGET that consecutive mget() calls share. A key asked for twice (the
 * same Buffer object: a hot entry hit by many clients at once) is sent once.
 */
class MgetBatch implements Pending {
  readonly keys: Buffer[] = [];
  private readonly slots = new Map<Buffer, number>();
  private readonly calls: MgetCall[] = [];

  /** `alone` reads one call's keys with an MGET of their own. */
  constructor(private readonly alone: (keys: readonly Buffer[]) => Promise<(Buffer | null)[]>) {}

  add(keys: readonly Buffer[], resolve: MgetCall['resolve'], reject: MgetCall['reject']): void {
    const at = keys.length === 1 ? this.slot(keys[0]!) : keys.map((k) => this.slot(k));
    this.calls.push({ keys, resolve, reject, at });
  }

  private slot(key: Buffer): number {
    let i = this.slots.get(key);
    if (i === undefined) {
      i = this.keys.push(key) - 1;
      this.slots.set(key, i);
    }
    return i;
  }

  settle(reply: RedisValue): void {
    if (reply instanceof RedisReplyError && this.calls.length > 1) {
      // Whatever failed (a key the ACL forbids...) must fail only the callers
      // it would have failed on their own: ask again, each call by itself.
      for (const c of this.calls) this.alone(c.keys).then(c.resolve, c.reject);
      return;
    }
    const values = stringValues(reply);
    if (values === undefined) {
      this.fail(reply instanceof Error ? reply : new RedisReplyError('unexpected MGET reply'));
      return;
    }
    for (const c of this.calls) {
      c.resolve(typeof c.at === 'number' ? [values[c.at]!] : c.at.map((i) => values[i]!));
    }
  }

  fail(err: Error): void {
    for (const c of this.calls) c.reject(err);
  }
}

/** The smallest write buffer; it grows to the largest write seen. */
const MIN_OUT = 16 * 1024;

/**
 * Commands (RESP2 arrays of bulk strings) encoded back to back into one
 * buffer, so a turn's commands cost one allocation and one write, not a few
 * Buffers per argument.
 */
class CommandBuffer {
  private buf: Buffer;
  private len = 0;

  constructor(size = MIN_OUT) {
    this.buf = Buffer.allocUnsafe(size);
  }

  get length(): number {
    return this.len;
  }

  command(args: readonly Arg[]): void {
    this.begin(args.length);
    for (const a of args) this.arg(a);
  }

  /** `*<n>\r\n`: an array of n arguments follows. */
  begin(n: number): void {
    this.header(0x2a, n);
  }

  arg(a: Arg): void {
    if (Buffer.isBuffer(a)) {
      this.header(0x24, a.length);
      this.reserve(a.length + 2);
      this.buf.set(a, this.len);
      this.len += a.length;
    } else {
      const s = typeof a === 'string' ? a : String(a);
      const n = Buffer.byteLength(s, 'utf8');
      this.header(0x24, n);
      this.reserve(n + 2);
      this.len += this.buf.write(s, this.len, 'utf8');
    }
    this.buf[this.len++] = 13;
    this.buf[this.len++] = 10;
  }

  /** The bytes so far, to write; the next command overwrites them unless detach() is called. */
  take(): Buffer {
    const out = this.buf.subarray(0, this.len);
    this.len = 0;
    return out;
  }

  /** The bytes last taken are still referenced (queued in the socket): write into a new buffer. */
  detach(): void {
    this.buf = Buffer.allocUnsafe(Math.max(MIN_OUT, this.buf.length));
  }

  clear(): void {
    this.len = 0;
  }

  private header(prefix: number, n: number): void {
    this.reserve(24);
    const buf = this.buf;
    buf[this.len++] = prefix;
    this.len = writeDecimal(buf, this.len, n);
    buf[this.len++] = 13;
    buf[this.len++] = 10;
  }

  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.len + n));
    this.buf.copy(grown, 0, 0, this.len);
    this.buf = grown;
  }
}

/** ASCII digits of a non-negative integer at `pos`, without a string; returns the end. */
function writeDecimal(buf: Buffer, pos: number, n: number): number {
  let end = pos + 1;
  for (let m = n; m >= 10; m = Math.floor(m / 10)) end++;
  for (let i = end; i > pos; n = Math.floor(n / 10)) buf[--i] = 48 + (n % 10);
  return end;
}

export function encodeCommand(args: readonly Arg[]): Buffer {
  const out = new CommandBuffer(64);
  out.command(args);
  return out.take();
}

/** Decode one complete RESP2 reply starting at `pos`; returns the value and where it ends. */
export function decodeReply(buf: Buffer, pos: number): [RedisValue, number] {
  const value = decode(buf, pos);
  return [value, decodedEnd];
}

/** Where the reply decode() read last ended (a tuple per element would be garbage). */
let decodedEnd = 0;

/**
 * The integer on the line at `pos` (just after the type byte), and sets
 * decodedEnd past its CRLF. Longer lines go through Number() so big integers
 * round exactly as they always have.
 */
function lineInt(buf: Buffer, pos: number): number {
  let i = pos;
  const neg = buf[i] === 45;
  if (neg) i++;
  const first = i;
  let n = 0;
  for (let b = buf[i]!; b >= 48 && b <= 57; b = buf[++i]!) n = n * 10 + (b - 48);
  if (buf[i] !== 13 || i === first || i - pos > 15) {
    const lineEnd = buf.indexOf(13, pos);
    decodedEnd = lineEnd + 2;
    return Number(buf.toString('latin1', pos, lineEnd));
  }
  decodedEnd = i + 2;
  return neg ? -n : n;
}

function decode(buf: Buffer, pos: number): RedisValue {
  const type = buf[pos];
  switch (type) {
    case 0x2b /* + */:
      {
        const lineEnd = buf.indexOf(13, pos);
        decodedEnd = lineEnd + 2;
        return Buffer.from(buf.subarray(pos + 1, lineEnd));
      }
    case 0x2d /* - */:
      {
        const lineEnd = buf.indexOf(13, pos);
        decodedEnd = lineEnd + 2;
        return new RedisReplyError(buf.toString('utf8', pos + 1, lineEnd));
      }
    case 0x3a /* : */:
      return lineInt(buf, pos + 1);
    case 0x24 /* $ */:
      {
        const len = lineInt(buf, pos + 1);
        if (len < 0) return null;
        const start = decodedEnd;
        decodedEnd = start + len + 2;
        return buf.subarray(start, start + len);
      }
    case 0x2a /* * */:
      {
        const n = lineInt(buf, pos + 1);
        if (n < 0) return null;
        const items: RedisValue[] = new Array(n);
        for (let i = 0; i < n; i++) items[i] = decode(buf, decodedEnd);
        return items;
      }
    default:
      throw new RedisConnectionError(`unexpected reply type 0x${(type ?? 0).toString(16)}`);
  }
}

export class RedisClient {
  private socket: Socket | undefined;
  private ready: Promise<void> | undefined;
  /** Connected and set up (AUTH, SELECT): commands are queued at once. */
  private connected = false;
  private readonly pending = new Deque<Pending>();
  private framer = new ReplyFramer();
  private partial: Buffer[] = [];
  private readonly out = new CommandBuffer();
  /** The MGET that mget() calls join while it is the last command queued. */
  private batch: MgetBatch | undefined;
  private flushScheduled = false;

  constructor(private readonly opts: RedisClientOptions) {}

  get address(): string {
    return `${this.opts.host}:${this.opts.port}`;
  }

  /** Run one command; resolves with its reply, rejects with RedisReplyError on an error reply. */
  call(...args: Arg[]): Promise<RedisValue> {
    if (!this.connected) return this.connect().then(() => this.call(...args));
    return new Promise((resolve, reject) => {
      this.queue(args, new CallWaiter(resolve, reject));
    });
  }

  /** Send commands in one write; error replies come back as RedisReplyError values. */
  pipeline(commands: readonly (readonly Arg[])[]): Promise<RedisValue[]> {
    if (commands.length === 0) return Promise.resolve([]);
    if (!this.connected) return this.connect().then(() => this.pipeline(commands));
    return new Promise((resolve, reject) => {
      const waiter = new PipelineWaiter(commands.length, resolve, reject);
      for (const c of commands) this.queue(c, waiter);
    });
  }

  /**
   * Values of string keys (null where missing or not a string), as MGET
   * would read them. Consecutive calls share one MGET: a turn full of cache
   * hits costs Redis one command instead of one each. Only calls with nothing
   * queued between them are merged, so every command still runs in the
   * order it was asked for.
   */
  mget(keys: readonly Buffer[]): Promise<(Buffer | null)[]> {
    if (keys.length === 0) return Promise.resolve([]);
    if (!this.connected) return this.connect().then(() => this.mget(keys));
    return new Promise((resolve, reject) => {
      let batch = this.batch;
      if (batch === undefined || batch.keys.length >= MGET_MAX_KEYS) {
        this.closeBatch();
        batch = this.batch = new MgetBatch(this.mgetAlone);
        this.pending.push(batch);
        this.scheduleFlush();
      }
      batch.add(keys, resolve, reject);
    });
  }

  /** One call's keys in an MGET of their own, after their shared one failed. */
  private readonly mgetAlone = (keys: readonly Buffer[]): Promise<(Buffer | null)[]> =>
    this.call('MGET', ...keys).then((reply) => {
      const values = stringValues(reply);
      if (values === undefined) throw new RedisReplyError('unexpected MGET reply');
      return values;
    });

  private queue(args: readonly Arg[], waiter: Pending): void {
    this.closeBatch();
    this.pending.push(waiter);
    this.out.command(args);
    this.scheduleFlush();
  }

  /** Encode the open MGET: a command queued after it must follow it. */
  private closeBatch(): void {
    const batch = this.batch;
    if (batch === undefined) return;
    this.batch = undefined;
    this.out.begin(batch.keys.length + 1);
    this.out.arg(MGET);
    for (const k of batch.keys) this.out.arg(k);
  }

  private scheduleFlush(): void {
    // Commands of one turn of the event loop (every socket read in it) go out
    // in one write: with many clients that is one syscall instead of one each.
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(this.flush);
  }

  private readonly flush = (): void => {
    this.flushScheduled = false;
    this.closeBatch();
    if (this.out.length === 0) return;
    const socket = this.socket;
    if (socket === undefined) {
      // The connection died between queueing and now: onClose rejected the waiters.
      this.out.clear();
      return;
    }
    socket.write(this.out.take());
    // A write the kernel took whole is done with the buffer; else the socket
    // holds on to those bytes until later, and the next commands need new memory.
    if (socket.writableLength > 0) this.out.detach();
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
        // Resolve with error replies too: they are checked right below.
        this.pending.push(new PipelineWaiter(1, ([r]) => resolve(r!), reject));
        socket.write(encodeCommand(cmd));
      });
      if (reply instanceof RedisReplyError) {
        socket.destroy();
        throw reply;
      }
    }
    if (this.socket === socket) this.connected = true;
  }

  private onData(chunk: Buffer): void {
    let pos = 0;
    while (pos < chunk.length) {
      const end = this.framer.next(chunk, pos);
      if (end < 0) {
        this.partial.push(chunk.subarray(pos));
        return;
      }
      let reply: RedisValue;
      if (this.partial.length > 0) {
        this.partial.push(chunk.subarray(pos, end));
        reply = decode(Buffer.concat(this.partial), 0);
        this.partial = [];
      } else reply = decode(chunk, pos);
      pos = end;
      this.pending.shift()?.settle(reply);
    }
  }

  private onClose(socket: Socket): void {
    if (this.socket !== socket) return;
    this.socket = undefined;
    this.ready = undefined;
    this.connected = false;
    const err = new RedisConnectionError(`connection to redis ${this.address} lost`);
    this.batch = undefined;
    this.out.clear();
    for (const p of this.pending) p.fail(err);
    this.pending.clear();
  }

  close(): void {
    this.socket?.destroy();
  }
}
