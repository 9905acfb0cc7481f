/*
 * One client connection: it owns the client socket, its own upstream
 * connection, and the order of its replies.
 *
 * Ordering model. Every command that will get a reply becomes an Entry in
 * `queue`, in request order. A forwarded command's raw bytes go upstream
 * unchanged and its Entry also joins `awaiting`; upstream replies are framed
 * (not decoded) and matched to `awaiting` in order. A local command (one of
 * ours) runs at once, possibly asynchronously, and its typed Reply is encoded
 * when its turn comes, with the protocol the client has at that point. Bytes
 * leave only from the head of `queue`, so replies always go out in request
 * order whatever mix a pipeline holds. In the common case (the head is a plain
 * forwarded command) upstream bytes are written straight through, in runs.
 *
 * State that Redis keeps per connection (database, auth, MULTI, protocol,
 * subscriptions) lives in Redis; we only mirror what changes the framing:
 * protocol (HELLO, RESET), subscriptions (out-of-band messages and the reply
 * count of UNSUBSCRIBE without arguments), MONITOR, CLIENT REPLY, QUIT.
 * See docs/protocol.md for the rules our commands follow in MULTI and in
 * subscribed mode.
 */
import type { Socket } from 'node:net';
import { arityOk, type CommandTable } from './commands/types.js';
import { Err } from './errors.js';
import type { Logger } from './log.js';
import { ReplyFramer, replyKind, splitAggregate } from './resp/reply-framer.js';
import { type ParsedCommand, RequestParser } from './resp/request-parser.js';
import { encodeReply, type Proto, R, type Reply } from './resp/writer.js';
import type { Route, Router } from './router.js';
import { Subscriptions } from './subscriptions.js';
import type { SharedOwner, SharedUpstream, SharedWaiter } from './upstream/shared-upstream.js';
import { Upstream, type UpstreamOptions } from './upstream/upstream.js';
import { Deque } from './util/deque.js';

const GT = 0x3e; // '>' RESP3 push
const STAR = 0x2a;
const PLUS = 0x2b;
const MINUS = 0x2d;
const EMPTY = Buffer.alloc(0);
/** Replies up to this size are joined into one socket write. */
const JOIN_MAX = 16 * 1024;
const WAIT_MARKER = Buffer.from('*3\r\n$7\r\nPUBLISH\r\n$14\r\n__semcache__:w\r\n$0\r\n\r\n');

/** Commands one client may have in flight on a shared connection before it gets its own. */
export const SHARED_MAX_IN_FLIGHT = 32;

/** Transforms the complete reply of a forwarded command; may update connection state. */
type Hook = (reply: Buffer) => Buffer | Reply;

interface Entry {
  /** Set while the entry waits on a shared upstream connection. */
  owner: SharedOwner | undefined;
  /** Upstream replies still expected; 0 for local entries. */
  expect: number;
  /** For UNSUBSCRIBE without arguments: computed once every older reply has arrived. */
  lazyExpect: (() => number) | undefined;
  hook: Hook | undefined;
  /** Reply bytes held back while an older entry is incomplete. */
  out: (Buffer | Reply)[] | undefined;
  done: boolean;
  closeAfter: boolean;
  /** A local command: forwarded commands after it wait for it. */
  local: boolean;
  /** A (P|S)(UN)SUBSCRIBE: RESP3 confirmation pushes are its replies. */
  pubsub: boolean;
  /** Local commands waiting for this (state-changing) entry before they start. */
  waiters: (() => void)[] | undefined;
}

function newEntry(expect: number, hook?: Hook): Entry {
  return {
    owner: undefined,
    expect,
    lazyExpect: undefined,
    hook,
    out: undefined,
    done: false,
    closeAfter: false,
    local: false,
    pubsub: false,
    waiters: undefined,
  };
}

export interface ConnectionOptions {
  id: number;
  commands: CommandTable;
  router: Router;
  upstream: UpstreamOptions;
  /** Where stateless commands go until the client is pinned; undefined = always pinned. */
  shared: SharedUpstream | undefined;
  maxPending: number;
  maxRequestSize: number;
  logger: Logger;
  onClose: (conn: ClientConnection) => void;
}

export class ClientConnection implements SharedOwner {
  readonly id: number;
  private readonly parser: RequestParser;
  private framer = new ReplyFramer();
  private readonly queue = new Deque<Entry>();
  private readonly awaiting = new Deque<Entry>();
  /** This client's own connection, opened when it is pinned. */
  private upstream: Upstream | undefined;
  private sharedInFlight = 0;
  /** The client stopped taking replies: stop sending its commands to a shared connection. */
  private backlogged = false;
  private inSharedBatch = false;
  private flushScheduled = false;
  private proto: Proto = 2;
  private readonly subs = new Subscriptions();
  private monitor = false;
  /** Predicted at request time: Redis has not answered yet when we must decide. */
  private inMulti = false;
  /** In MULTI: per queued command, what to mirror from its EXEC result. */
  private queuedEffects: (((reply: Buffer) => void) | undefined)[] | undefined;
  /** The client has sent commands over a shared connection (see 'wait'). */
  private usedShared = false;
  private replyMode: 'on' | 'off' | 'skip' = 'on';
  /** The newest forwarded entry: a local command starts once it has been answered. */
  private lastForwarded: Entry | undefined;
  /** The newest local write: local reads and forwarded commands wait for it. */
  private lastLocalWrite: Entry | undefined;
  /**
   * Requests behind a local command that has not finished, in request order:
   * a forwarded command is sent only once every local command before it is
   * done (those after it do not hold it). Empty in the common case.
   */
  private outbox: ({ gate: Entry } | { entry: Entry; raw: Buffer[] } | { parts: Buffer[] })[] = [];
  /** No more requests are read (QUIT, protocol error, upstream lost, shutdown). */
  private closing = false;
  private closed = false;
  // A reply that began in an earlier upstream chunk.
  private partial: Buffer[] | undefined;
  private partialDirect = false;
  // A run of upstream bytes being passed straight through, written in one go.
  private runChunk: Buffer | undefined;
  private runStart = 0;
  private runEnd = 0;
  // Raw request bytes to forward, contiguous slices merged.
  private fwd: Buffer[] = [];
  private pausedFor = { upstream: false, pending: false };

  constructor(
    private readonly socket: Socket,
    private readonly opts: ConnectionOptions,
  ) {
    this.id = opts.id;
    this.parser = new RequestParser({ maxBulkLength: opts.maxRequestSize });
    socket.setNoDelay(true);
    if (opts.shared === undefined) this.pin();
    socket.on('data', (chunk: Buffer) => this.onClientData(chunk));
    socket.on('drain', () => {
      this.backlogged = false;
      this.upstream?.resume();
    });
    socket.on('error', (err) => opts.logger.debug(`client ${this.id}: ${err.message}`));
    socket.on('close', () => this.onClientClosed());
  }

  /** Stop reading requests; close once every pending reply is out. */
  shutdown(): void {
    this.closing = true;
    this.socket.pause();
    this.closeIfDrained();
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** Bytes held for this client: written but not yet taken by its socket, plus queued replies. */
  get bufferedBytes(): number {
    let n = this.socket.writableLength + this.parser.pendingBytes;
    for (const entry of this.queue) {
      if (entry.out) for (const o of entry.out) n += Buffer.isBuffer(o) ? o.length : 64;
    }
    return n;
  }

  get pendingCommands(): number {
    return this.queue.length;
  }

  /**
   * Give this client its own upstream connection, for good: it is about to
   * use connection state or block. Requests already on the shared connection
   * are answered first (see flushForward), so Redis runs them in order.
   */
  private pin(): Upstream {
    this.upstream = new Upstream(this.opts.upstream, {
      data: (chunk) => this.onUpstreamData(chunk),
      drain: () => this.setPaused('upstream', false),
      blocked: () => this.setPaused('upstream', true),
      closed: (cause, everConnected) => this.onUpstreamClosed(cause, everConnected),
    });
    this.upstream.connect();
    return this.upstream;
  }

  // ---- requests ---------------------------------------------------------

  private onClientData(chunk: Buffer): void {
    if (this.closing) return;
    this.socket.cork();
    const error = this.parser.feed(chunk, this.onCommand);
    this.flushForward();
    if (error !== undefined && !this.closing) {
      // Like Redis: answer after everything before it, then close.
      this.closing = true;
      this.socket.pause();
      this.pushLocal(R.error(Err.protocol(error))).closeAfter = true;
    }
    this.flushHead();
    this.socket.uncork();
    if (this.queue.length >= this.opts.maxPending) this.setPaused('pending', true);
  }

  private readonly onCommand = (cmd: ParsedCommand): void => {
    if (this.closing) return;
    if (this.queuedEffects !== undefined) this.queuedEffects.push(undefined);
    const route = this.opts.router.route(cmd.args[0]!);
    // CLIENT REPLY OFF/SKIP silence replies of forwarded and local commands alike.
    let silent = this.replyMode !== 'on';
    if (this.replyMode === 'skip') this.replyMode = 'on';
    if (route.kind === 'plain') {
      const shared = this.opts.shared;
      if (
        this.upstream === undefined &&
        shared !== undefined &&
        route.shareable &&
        this.sharedInFlight < SHARED_MAX_IN_FLIGHT &&
        !this.backlogged
      ) {
        // Only unpinned clients get here, and they are never silenced (CLIENT pins).
        const entry = newEntry(1);
        entry.owner = this;
        this.queue.push(entry);
        this.lastForwarded = entry;
        this.usedShared = true;
        if (this.outbox.length > 0) this.outbox.push({ entry, raw: cmd.raw });
        else {
          this.sharedInFlight++;
          shared.send(entry, cmd.raw);
        }
        return;
      }
      this.forward(cmd, silent ? undefined : newEntry(1));
      return;
    }
    if (route.kind === 'local') {
      this.local(cmd, route, silent);
      return;
    }
    const entry = newEntry(1);
    const args = cmd.args;
    switch (route.kind) {
      case 'multi':
        // A nested MULTI is refused without being queued: it has no EXEC slot.
        if (this.inMulti) this.queuedEffects?.pop();
        else this.queuedEffects = [];
        this.inMulti = true;
        // Redis can refuse MULTI (subscribed mode, NOAUTH): then there is no transaction.
        entry.hook = (reply) => {
          if (reply[0] === MINUS && this.queuedEffects !== undefined) {
            this.inMulti = false;
            this.queuedEffects = undefined;
          }
          return reply;
        };
        this.forward(cmd, silent ? undefined : entry);
        return;
      case 'exec': {
        // Queued commands take effect now: mirror those that change framing.
        const effects = this.queuedEffects;
        this.inMulti = false;
        this.queuedEffects = undefined;
        if (effects?.some((e) => e !== undefined)) {
          entry.hook = (reply) => {
            const agg = splitAggregate(reply);
            agg?.children.forEach(([s, e], i) => {
              effects[i]?.(reply.subarray(s, e));
            });
            return reply;
          };
        }
        break;
      }
      case 'discard':
        this.inMulti = false;
        this.queuedEffects = undefined;
        break;
      case 'wait':
        // WAIT counts replicas that have this client's writes, by the write
        // offset of its connection. Writes sent over a shared connection do
        // not count there, so a PUBLISH (propagated to replicas, invisible
        // unless someone subscribed to semcache's own channel) first moves this
        // connection's offset past them. Its reply is swallowed.
        if (this.usedShared && !this.inMulti) {
          const marker = newEntry(1, () => EMPTY);
          this.forward({ args: [], raw: [WAIT_MARKER], inline: false }, marker);
        }
        break;
      case 'reset':
        this.inMulti = false;
        this.replyMode = 'on';
        silent = false;
        entry.hook = (reply) => {
          if (reply[0] === PLUS) this.resetState();
          return reply;
        };
        break;
      case 'hello': {
        const version = args.length > 1 ? Number(args[1]!.toString('latin1')) : 0;
        const apply = (reply: Buffer) => {
          if (reply[0] !== MINUS && (version === 2 || version === 3)) this.proto = version;
        };
        // In MULTI, HELLO runs at EXEC (the last slot is this command's).
        if (this.queuedEffects) this.queuedEffects[this.queuedEffects.length - 1] = apply;
        else
          entry.hook = (reply) => {
            apply(reply);
            return reply;
          };
        break;
      }
      case 'subscribe':
      case 'unsubscribe':
        if (!this.inMulti) this.subscription(entry, route.kind, cmd);
        break;
      case 'monitor':
        entry.hook = (reply) => {
          if (reply[0] === PLUS && !this.inMulti) this.monitor = true;
          return reply;
        };
        break;
      case 'quit':
        if (this.upstream === undefined) {
          // No connection state upstream to end: answer it here.
          this.closing = true;
          this.pushLocal(R.ok).closeAfter = true;
          return;
        }
        // QUIT is never queued, not even in MULTI: answered, then the connection closes.
        entry.closeAfter = true;
        silent = false;
        this.closing = true;
        break;
      case 'client':
        if (
          !this.inMulti &&
          args.length === 3 &&
          args[1]!.toString('latin1').toLowerCase() === 'reply'
        ) {
          const mode = args[2]!.toString('latin1').toLowerCase();
          if (mode === 'on' || mode === 'off' || mode === 'skip') {
            this.replyMode = mode;
            if (mode === 'on') silent = false;
            else {
              // Redis sends no reply to CLIENT REPLY OFF/SKIP themselves.
              this.forward(cmd, undefined);
              return;
            }
          }
        }
        break;
      case 'command':
        entry.hook = this.opts.router.commandHook(args, () => this.proto);
        break;
    }
    this.forward(cmd, silent ? undefined : entry);
  };

  private subscription(entry: Entry, kind: 'subscribe' | 'unsubscribe', cmd: ParsedCommand): void {
    const family = this.subs.family(cmd.args[0]!);
    const n = cmd.args.length - 1;
    entry.pubsub = true;
    entry.hook = (reply) => {
      this.subs.confirm(reply);
      return reply;
    };
    if (kind === 'subscribe' || n > 0) entry.expect = Math.max(1, n);
    else {
      // Redis answers once per channel of that family, or once if there were none.
      entry.expect = 0;
      entry.lazyExpect = () => Math.max(1, this.subs.count(family));
    }
  }

  private forward(cmd: ParsedCommand, entry: Entry | undefined): void {
    if (this.upstream === undefined) this.pin();
    this.sendPrivate(cmd.raw);
    if (entry === undefined) return;
    this.lastForwarded = entry;
    this.queue.push(entry);
    this.awaiting.push(entry);
    if (this.awaiting.length === 1) this.resolveExpect(entry);
  }

  private queueForward(part: Buffer): void {
    const last = this.fwd[this.fwd.length - 1];
    if (
      last !== undefined &&
      last.buffer === part.buffer &&
      last.byteOffset + last.length === part.byteOffset
    ) {
      this.fwd[this.fwd.length - 1] = Buffer.from(
        last.buffer,
        last.byteOffset,
        last.length + part.length,
      );
    } else this.fwd.push(part);
  }

  private flushForward(): void {
    // Held back while a local write runs, and until every request on the
    // shared connection is answered, so Redis runs them in request order.
    if (this.fwd.length === 0 || this.sharedInFlight > 0) return;
    this.upstream?.write(this.fwd);
    this.fwd = [];
  }

  // ---- local commands ---------------------------------------------------

  private local(cmd: ParsedCommand, route: Route & { kind: 'local' }, silent: boolean): void {
    const spec = route.spec;
    const entry = silent ? newEntry(0) : this.pushLocal(undefined);
    if (!arityOk(spec, cmd.args.length)) {
      this.complete(entry, R.error(Err.wrongArity(spec.name)));
      return;
    }
    if (this.inMulti) {
      // Like a Redis command flagged no-multi: refused, and the transaction is
      // flagged so EXEC fails with EXECABORT. An unknown command flags it upstream.
      entry.expect = 1;
      entry.hook = () => R.error(Err.notInMulti);
      if (this.upstream === undefined) this.pin();
      this.sendPrivate([Buffer.from('*1\r\n$27\r\nsemcache-no-multi-transaction\r\n')]);
      this.awaiting.push(entry);
      return;
    }
    const start = () => {
      if (this.proto === 2 && this.subs.total() > 0) {
        this.complete(entry, R.error(Err.subscribedContext(spec.name)));
        return;
      }
      let result: Reply | Promise<Reply>;
      try {
        result = spec.execute(cmd.args, { clientId: this.id });
      } catch (err) {
        result = R.error(Err.internal((err as Error).message));
      }
      if (result instanceof Promise) {
        result.then(
          (reply) => this.complete(entry, reply),
          (err: Error) => this.complete(entry, R.error(Err.internal(err.message))),
        );
      } else this.complete(entry, result);
    };
    // Execution follows request order: a local command starts once the
    // forwarded command before it has been answered (so it sees that command's
    // effect, and the subscription state at this point); a local read waits for
    // the local write before it; a forwarded command is sent once the local
    // commands before it are done. Local reads after reads run concurrently,
    // so a pipeline of lookups shares model calls.
    const write = spec.flags.includes('write');
    const barriers = [this.lastForwarded, write ? undefined : this.lastLocalWrite];
    if (write) this.lastLocalWrite = entry;
    entry.local = true;
    this.outbox.push({ gate: entry });
    this.after(barriers, start);
  }

  /** Run `fn` once every entry in `barriers` is done. */
  private after(barriers: (Entry | undefined)[], fn: () => void): void {
    const pending = barriers.find((b) => b !== undefined && !b.done);
    if (pending === undefined) fn();
    else (pending.waiters ??= []).push(() => this.after(barriers, fn));
  }

  /** An entry got its reply: wake what waited for it. */
  private settle(entry: Entry): void {
    entry.done = true;
    if (entry.local) this.pump();
    const waiters = entry.waiters;
    if (waiters === undefined) return;
    entry.waiters = undefined;
    for (const w of waiters) w();
  }

  private sendPrivate(parts: Buffer[]): void {
    if (this.outbox.length > 0) this.outbox.push({ parts });
    else for (const p of parts) this.queueForward(p);
  }

  /** A local command finished: send what it held, up to the next unfinished one. */
  private pump(): void {
    while (this.outbox.length > 0) {
      const item = this.outbox[0]!;
      if ('gate' in item && !item.gate.done) break;
      this.outbox.shift();
      if ('parts' in item) for (const p of item.parts) this.queueForward(p);
      else if ('entry' in item && !this.closed) {
        this.sharedInFlight++;
        this.opts.shared!.send(item.entry, item.raw);
      }
    }
    this.flushForward();
  }

  private pushLocal(reply: Reply | undefined): Entry {
    const entry = newEntry(0);
    if (reply !== undefined) {
      entry.out = [reply];
      entry.done = true;
    }
    this.queue.push(entry);
    return entry;
  }

  private complete(entry: Entry, reply: Reply): void {
    if (this.closed) return;
    (entry.out ??= []).push(reply);
    this.settle(entry);
    if (entry === this.queue.peek()) this.flushSoon();
  }

  /**
   * Write completed replies once the current burst of completions is over:
   * local commands finish in promise callbacks, often many at once (one read
   * from Redis resolves a whole pipeline), and one write beats one per reply.
   */
  private flushSoon(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    this.socket.cork();
    process.nextTick(() => {
      this.flushScheduled = false;
      if (!this.closed) this.flushHead();
      this.socket.uncork();
    });
  }

  // ---- replies ----------------------------------------------------------

  private onUpstreamData(chunk: Buffer): void {
    this.socket.cork();
    try {
      this.consume(chunk);
    } catch (err) {
      this.opts.logger.error(`client ${this.id}: bad upstream reply: ${(err as Error).message}`);
      this.upstream?.destroy(err as Error);
    }
    this.flushRun();
    this.socket.uncork();
  }

  private consume(chunk: Buffer): void {
    let pos = 0;
    const len = chunk.length;
    if (this.partial !== undefined) {
      const end = this.framer.next(chunk, 0);
      if (end < 0) {
        if (this.partialDirect) this.extendRun(chunk, 0, len);
        else this.partial.push(chunk);
        return;
      }
      const parts = this.partial;
      this.partial = undefined;
      if (this.partialDirect) {
        this.extendRun(chunk, 0, end);
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
          this.extendRun(chunk, start, len);
        } else this.partial = [chunk.subarray(start)];
        return;
      }
      if (direct) {
        this.extendRun(chunk, start, end);
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
      target === this.queue.peek() &&
      first !== GT &&
      !this.monitor &&
      !(this.proto === 2 && this.subs.total() > 0)
    );
  }

  /** The head entry's single reply went straight through. */
  private directDone(): void {
    const entry = this.awaiting.shift()!;
    this.settle(entry);
    this.queue.shift();
    this.nextAwaiting();
    this.flushHead();
  }

  private handleReply(reply: Buffer): void {
    const first = reply[0];
    const target = this.awaiting.peek();
    if (this.isOutOfBand(reply, first, target)) {
      this.writeClient(reply);
      return;
    }
    if (target === undefined) {
      // Nothing awaits a reply (e.g. after CLIENT REPLY ON raced): pass it on.
      this.writeClient(reply);
      return;
    }
    const out = target.hook ? target.hook(reply) : reply;
    if (target === this.queue.peek()) this.writeClient(out);
    else (target.out ??= []).push(out);
    // An error ends a multi-reply command (SUBSCRIBE with an arity error).
    if (--target.expect > 0 && first !== MINUS) return;
    this.awaiting.shift();
    this.settle(target);
    this.nextAwaiting();
    if (target === this.queue.peek()) {
      this.queue.shift();
      this.flushHead();
    }
  }

  private isOutOfBand(
    reply: Buffer,
    first: number | undefined,
    target: Entry | undefined,
  ): boolean {
    if (first === GT) {
      // RESP3 pushes are out of band, except the confirmations a (un)subscribe awaits.
      return !(target?.pubsub === true && Subscriptions.isConfirmation(reply));
    }
    if (first === STAR && this.proto === 2 && this.subs.total() > 0) {
      const kind = replyKind(reply);
      return kind === 'message' || kind === 'pmessage' || kind === 'smessage';
    }
    // MONITOR lines: "+<unix time> [db addr] ...". No command reply starts with a digit.
    return this.monitor && first === PLUS && reply[1]! >= 0x30 && reply[1]! <= 0x39;
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

  /** Write every completed entry at the head of the queue. */
  private flushHead(): void {
    // Small replies are joined into one write: a socket.write costs more than
    // copying a few hundred bytes (a -P 16 burst of SEMGET hits is 16 replies).
    let small: Buffer[] = [];
    let smallBytes = 0;
    const writeSmall = () => {
      if (small.length === 0) return;
      this.writeClient(small.length === 1 ? small[0]! : Buffer.concat(small, smallBytes));
      small = [];
      smallBytes = 0;
    };
    for (;;) {
      const head = this.queue.peek();
      if (head === undefined || !head.done) break;
      this.queue.shift();
      if (head.out) {
        for (const o of head.out) {
          const bytes = Buffer.isBuffer(o) ? o : encodeReply(o, this.proto);
          if (bytes.length > JOIN_MAX) {
            writeSmall();
            this.writeClient(bytes);
          } else {
            small.push(bytes);
            smallBytes += bytes.length;
            if (smallBytes > JOIN_MAX) writeSmall();
          }
        }
      }
      if (head.closeAfter) {
        writeSmall();
        this.endClient();
        return;
      }
    }
    writeSmall();
    if (this.pausedFor.pending && this.queue.length < this.opts.maxPending / 2) {
      this.setPaused('pending', false);
    }
    this.closeIfDrained();
  }

  private closeIfDrained(): void {
    if (this.closing && !this.closed && this.queue.length === 0 && this.partial === undefined) {
      this.endClient();
    }
  }

  /** Like Redis: close the socket once everything written has been flushed. */
  private endClient(): void {
    this.flushRun();
    this.closed = true;
    this.socket.end(() => this.socket.destroy());
  }

  private extendRun(chunk: Buffer, start: number, end: number): void {
    if (this.runChunk === chunk && this.runEnd === start) {
      this.runEnd = end;
      return;
    }
    this.flushRun();
    this.runChunk = chunk;
    this.runStart = start;
    this.runEnd = end;
  }

  private flushRun(): void {
    const chunk = this.runChunk;
    if (chunk === undefined) return;
    this.runChunk = undefined;
    const bytes =
      this.runStart === 0 && this.runEnd === chunk.length
        ? chunk
        : chunk.subarray(this.runStart, this.runEnd);
    if (!this.socket.write(bytes)) this.blockedOnClient();
  }

  private writeClient(out: Buffer | Reply): void {
    this.flushRun();
    const bytes = Buffer.isBuffer(out) ? out : encodeReply(out, this.proto);
    if (!this.socket.write(bytes)) this.blockedOnClient();
  }

  /** The client is not taking replies as fast as they come: stop reading upstream for it. */
  private blockedOnClient(): void {
    this.backlogged = true;
    this.upstream?.pause();
  }

  // ---- shared upstream --------------------------------------------------

  onSharedReply(waiter: SharedWaiter, reply: Buffer, start: number, end: number): void {
    if (this.closed) return;
    const entry = waiter as Entry;
    entry.owner = undefined;
    this.sharedInFlight--;
    // No cork: a client's replies in one read of the shared connection form
    // one run, written once at the end of the batch.
    this.inSharedBatch = true;
    this.settle(entry);
    if (entry === this.queue.peek()) {
      this.extendRun(reply, start, end);
      this.queue.shift();
      this.flushHead();
    } else (entry.out ??= []).push(reply.subarray(start, end));
    if (this.sharedInFlight === 0) this.flushForward();
  }

  onSharedError(waiter: SharedWaiter, text: string): void {
    if (this.closed) return;
    const entry = waiter as Entry;
    entry.owner = undefined;
    this.sharedInFlight--;
    this.complete(entry, R.error(text));
    if (this.sharedInFlight === 0) this.flushForward();
  }

  onSharedBatchEnd(): void {
    if (!this.inSharedBatch) return;
    this.inSharedBatch = false;
    this.flushRun();
  }

  private resetState(): void {
    this.proto = 2;
    this.subs.clear();
    this.monitor = false;
  }

  // ---- lifecycle --------------------------------------------------------

  private setPaused(reason: 'upstream' | 'pending', paused: boolean): void {
    this.pausedFor[reason] = paused;
    if (this.closing) return;
    if (this.pausedFor.upstream || this.pausedFor.pending) this.socket.pause();
    else this.socket.resume();
  }

  private onUpstreamClosed(cause: string, everConnected: boolean): void {
    if (this.closed) return;
    const addr = this.upstream?.address ?? '';
    const text = everConnected
      ? Err.upstreamLost(addr, cause)
      : Err.upstreamUnreachable(addr, cause);
    this.partial = undefined;
    this.framer = new ReplyFramer();
    this.socket.cork();
    // Every command that was sent upstream is answered, in order, with the cause.
    for (const entry of this.awaiting) {
      (entry.out ??= []).push(R.error(text));
      entry.expect = 0;
      this.settle(entry);
    }
    this.awaiting.clear();
    if (everConnected) {
      // The server-side state of this client (db, MULTI, subscriptions) is gone.
      this.closing = true;
      this.socket.pause();
    }
    this.flushHead();
    this.socket.uncork();
  }

  private onClientClosed(): void {
    this.closed = true;
    this.closing = true;
    this.upstream?.destroy();
    for (const entry of this.queue) entry.owner = undefined;
    this.queue.clear();
    this.awaiting.clear();
    this.opts.onClose(this);
  }
}
