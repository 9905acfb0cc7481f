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
import type { Socket } from 'node:net';
import {
  type Arg,
  CommandBuffer,
  decode,
  encodeCommand,
  RedisConnectionError,
  RedisReplyError,
  type RedisValue,
} from '../resp/client-codec.js';
import { ReplyFramer } from '../resp/reply-framer.js';
import { Deque } from '../util/deque.js';
import { causeOf, connectUpstream, type UpstreamTarget } from './connect.js';
import type { LinkMonitor } from './link-log.js';
import {
  CallWaiter,
  MGET,
  MGET_MAX_KEYS,
  MgetBatch,
  type Pending,
  PipelineWaiter,
  stringValues,
} from './waiters.js';

// The codec's names are part of this module's interface, as before it moved out.
export {
  decodeReply,
  encodeCommand,
  RedisConnectionError,
  RedisReplyError,
  type RedisValue,
} from '../resp/client-codec.js';

export interface RedisClientOptions {
  host: string;
  port: number;
  username?: string | undefined;
  password?: string | undefined;
  db?: number;
  connectTimeout?: number;
  /** rediss://: TLS options (src/tls.ts). */
  tls?: UpstreamTarget['tls'];
  /** Told of each connect and each loss, for the log. */
  monitor?: LinkMonitor;
  /**
   * Pub/sub messages (`message`, `pmessage` arrays) go here instead of to a
   * waiting command: a connection that SUBSCRIBEs (semantic/keyspace.ts).
   */
  onMessage?: (reply: RedisValue[]) => void;
  /** Told when the connection ends other than by close(): its subscriptions are gone. */
  onLost?: () => void;
}

export class RedisClient {
  private socket: Socket | undefined;
  private ready: Promise<void> | undefined;
  /** Connected and set up (AUTH, SELECT): commands are queued at once. */
  private connected = false;
  /** Why the connection is being dropped, for the error its callers get. */
  private lastError: string | undefined;
  private readonly pending = new Deque<Pending>();
  private framer = new ReplyFramer();
  private partial: Buffer[] = [];
  private readonly out = new CommandBuffer();
  /** The MGET that mget() calls join while it is the last command queued. */
  private batch: MgetBatch | undefined;
  private flushScheduled = false;
  /** close() was called: the connection's end is not a loss. */
  private closing = false;

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
    let socket!: Socket;
    await new Promise<void>((resolve, reject) => {
      const target = { ...this.opts, connectTimeout: this.opts.connectTimeout ?? 2000 };
      socket = connectUpstream(target, resolve);
      socket.once('error', (err) => {
        this.opts.monitor?.down(this.address, causeOf(err), false);
        reject(new RedisConnectionError(`redis ${this.address} unreachable: ${causeOf(err)}`));
      });
      this.socket = socket;
      this.framer = new ReplyFramer();
      this.partial = [];
    });
    socket.on('data', (chunk: Buffer) => {
      try {
        this.onData(chunk);
      } catch (err) {
        // A reply we cannot frame or decode: the stream is out of step from
        // here on. Drop the connection; onClose fails everything in flight.
        this.lastError = `bad reply from redis: ${(err as Error).message}`;
        socket.destroy();
      }
    });
    // The first error is the cause the callers in flight are told (a TLS
    // alert from a server that refused our certificate arrives this way).
    socket.on('error', (err) => {
      this.lastError ??= causeOf(err);
    });
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
    if (this.socket === socket) {
      this.connected = true;
      this.opts.monitor?.up(this.address);
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
      let reply: RedisValue;
      if (this.partial.length > 0) {
        this.partial.push(chunk.subarray(pos, end));
        reply = decode(Buffer.concat(this.partial), 0);
        this.partial = [];
      } else reply = decode(chunk, pos);
      pos = end;
      const onMessage = this.opts.onMessage;
      if (onMessage !== undefined && isMessage(reply)) onMessage(reply as RedisValue[]);
      else this.pending.shift()?.settle(reply);
    }
  }

  private onClose(socket: Socket): void {
    if (this.socket !== socket) return;
    if (!this.closing) {
      const why = this.lastError ?? 'connection closed by upstream';
      this.opts.monitor?.down(this.address, why, true);
    }
    this.socket = undefined;
    this.ready = undefined;
    this.connected = false;
    const why = this.lastError === undefined ? '' : ` (${this.lastError})`;
    this.lastError = undefined;
    const err = new RedisConnectionError(`connection to redis ${this.address} lost${why}`);
    this.batch = undefined;
    this.out.clear();
    for (const p of this.pending) p.fail(err);
    this.pending.clear();
    if (!this.closing) this.opts.onLost?.();
  }

  close(): void {
    this.closing = true;
    this.socket?.destroy();
  }
}

function isMessage(reply: RedisValue): boolean {
  if (!Array.isArray(reply) || !Buffer.isBuffer(reply[0])) return false;
  const kind = reply[0].toString();
  return kind === 'message' || kind === 'pmessage';
}
