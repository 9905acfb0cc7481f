/*
 * One client connection: it owns the client socket, its backpressure and its
 * lifecycle, and wires the parts that do the rest:
 *
 *   RequestParser    client bytes -> commands (src/resp/)
 *   Session          the per-connection state we mirror, per-command effects
 *   ReplyQueue       replies in request order, written with few syscalls
 *   Forwarder        shared connection until pinned, then the client's own
 *   UpstreamReader   own-connection replies matched to their commands
 *   LocalScheduler   when our commands run relative to forwarded ones
 *   Tunnel           after SYNC/PSYNC: raw bytes both ways, for good
 *
 * A forwarded command's raw bytes go upstream unchanged and its reply bytes
 * come back unchanged; a local command (one of ours) runs at once, possibly
 * asynchronously, and its typed Reply is encoded when its turn comes, with
 * the protocol the client has at that point. docs/protocol.md has the rules.
 */
import type { Socket } from 'node:net';
import type { CommandSpec, CommandTable } from '../commands/types.js';
import { Err } from '../errors.js';
import type { Logger } from '../log.js';
import { encodeCommand } from '../resp/client-codec.js';
import { type ParsedCommand, RequestParser } from '../resp/request-parser.js';
import { encodeReply, R, type Reply } from '../resp/writer.js';
import type { Router } from '../router.js';
import type { AuthState } from '../upstream/auth-state.js';
import type { UpstreamLimits } from '../upstream/limits.js';
import type { SharedOwner, SharedUpstream, SharedWaiter } from '../upstream/shared-upstream.js';
import type { UpstreamOptions } from '../upstream/upstream.js';
import { type Entry, newEntry } from './entry.js';
import { Forwarder } from './forwarder.js';
import { LocalRun, type RunHost } from './local-run.js';
import { LocalScheduler } from './local-scheduler.js';
import { ReplyQueue } from './reply-queue.js';
import { sharedRequestPolicy } from './request-limits.js';
import { Session } from './session.js';
import { syncPlan, Tunnel } from './tunnel.js';
import { UpstreamReader } from './upstream-reader.js';

/** Sent for a command of ours that CLIENT REPLY SKIP applies to (see onCommand). */
const CLIENT_REPLY_ON = encodeCommand(['CLIENT', 'REPLY', 'ON']);
const EMPTY = Buffer.alloc(0);

export interface ConnectionOptions {
  id: number;
  commands: CommandTable;
  router: Router;
  upstream: UpstreamOptions;
  /** Where stateless commands go until the client is pinned; undefined = always pinned. */
  shared: SharedUpstream | undefined;
  maxPending: number;
  maxRequestSize: number;
  /** Whether the upstream's default user needs a password, as last seen. */
  auth: AuthState;
  /** The database semcache's records are in (our commands work only there). */
  storageDb: number;
  /** What the upstream refuses by closing the connection (for shared connections). */
  limits: UpstreamLimits | undefined;
  logger: Logger;
  onClose: (conn: ClientConnection) => void;
}

export class ClientConnection implements SharedOwner, RunHost {
  readonly id: number;
  private readonly parser: RequestParser;
  readonly session: Session;
  readonly replies: ReplyQueue;
  readonly reader: UpstreamReader;
  readonly forwarder: Forwarder;
  private readonly scheduler: LocalScheduler;
  private inSharedBatch = false;
  private flushScheduled = false;
  /** No more requests are read (QUIT, protocol error, upstream lost, shutdown). */
  private closing = false;
  private closed = false;
  private pausedFor = { upstream: false, pending: false };
  /** The client's own upstream connection died: what it held back is never sent. */
  private lost = false;
  /** Set by SYNC/PSYNC: see tunnel.ts. */
  private tunnel: Tunnel | undefined;

  constructor(
    private readonly socket: Socket,
    private readonly opts: ConnectionOptions,
  ) {
    this.id = opts.id;
    this.session = new Session(opts.router);
    this.replies = new ReplyQueue({
      write: (bytes) => socket.write(bytes),
      proto: () => this.session.proto,
      blocked: () => {
        // The client is not taking replies as fast as they come: stop reading upstream for it.
        this.forwarder.backlogged = true;
        this.forwarder.pause();
      },
      end: () => this.endClient(),
    });
    this.reader = new UpstreamReader(this);
    this.scheduler = new LocalScheduler({
      sendShared: (entry, raw) => {
        if (!this.closed) this.forwarder.sendShared(entry, raw);
      },
      sendOwn: (parts, awaits) => {
        // Held behind one of our commands while the connection died: the
        // client is being closed before this one's reply (onUpstreamClosed).
        if (this.lost) return;
        this.forwarder.sendOwn(parts);
        if (awaits !== undefined) this.reader.expect(awaits);
      },
      flush: () => this.forwarder.flush(),
    });
    this.forwarder = new Forwarder(opts.upstream, opts.shared, this, {
      data: (chunk) => this.onUpstreamData(chunk),
      drain: () => this.setPaused('upstream', false),
      blocked: () => this.setPaused('upstream', true),
      closed: (cause, everConnected) => this.onUpstreamClosed(cause, everConnected),
    });
    const limits = opts.shared && opts.limits;
    this.parser = new RequestParser(
      { maxBulkLength: opts.maxRequestSize },
      limits ? sharedRequestPolicy(limits, this.forwarder) : undefined,
    );
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onClientData(chunk));
    socket.on('drain', () => {
      this.forwarder.backlogged = false;
      this.forwarder.resume();
    });
    socket.on('error', (err) => opts.logger.debug(`client ${this.id}: ${err.message}`));
    // A client that half-closes (nc -N, shutdown(SHUT_WR)) still gets the replies to
    // what it sent, then the connection closes, as with Redis (the server allows half-open).
    socket.on('end', () => {
      this.closing = true;
      this.closeIfDrained();
    });
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
    return this.socket.writableLength + this.parser.pendingBytes + this.replies.heldBytes;
  }

  get pendingCommands(): number {
    return this.replies.length;
  }

  // ---- requests ---------------------------------------------------------

  private onClientData(chunk: Buffer): void {
    if (this.closing) return;
    const tunnel = this.tunnel;
    if (tunnel !== undefined) {
      tunnel.fromClient(chunk);
      return;
    }
    this.socket.cork();
    // Redis's limits for a client that must still authenticate (see onCommand for AUTH).
    this.parser.setAuthenticated(this.session.authenticated || !this.opts.auth.required);
    const error = this.parser.feed(chunk, this.onCommand);
    this.forwarder.flush();
    if (error !== undefined && !this.closing) {
      // Like Redis: answer after everything before it, then close.
      this.closing = true;
      this.socket.pause();
      this.replies.pushLocal(R.error(Err.protocol(error))).closeAfter = true;
    }
    this.flushHead();
    this.socket.uncork();
    if (this.replies.length >= this.opts.maxPending) this.setPaused('pending', true);
  }

  private readonly onCommand = (cmd: ParsedCommand): void => {
    if (this.closing) return;
    const session = this.session;
    const route = this.opts.router.route(cmd.args[0]!);
    // CLIENT REPLY OFF/SKIP silence replies of forwarded and local commands alike.
    const silent = session.begin();
    // Redis would skip the reply of the next command it runs: if that is not
    // this one (ours), use the skip up here (CLIENT REPLY ON still answers +OK;
    // it is swallowed).
    if (session.takeRedisSkip() && route.kind === 'local') {
      this.forward(
        [CLIENT_REPLY_ON],
        newEntry(1, () => EMPTY),
      );
    }
    if (route.kind === 'plain') {
      // Only unpinned clients share, and they are never silenced (CLIENT pins).
      if (this.forwarder.canShare(route.shareable)) {
        const entry = newEntry(1);
        this.replies.push(entry);
        this.scheduler.lastForwarded = entry;
        session.usedShared = true;
        this.scheduler.shared(entry, cmd.raw);
      } else this.forward(cmd.raw, silent ? undefined : newEntry(1));
      return;
    }
    if (route.kind === 'local') {
      this.local(cmd, route.spec, silent);
      return;
    }
    if (route.kind === 'sync') {
      const plan = syncPlan(session.inMulti, this.replies.length);
      if (plan === 'tunnel') this.openTunnel(cmd.raw);
      else if (plan === 'forward') this.forward(cmd.raw, newEntry(1));
      else this.replies.pushLocal(plan);
      return;
    }
    // An AUTH (or HELLO ... AUTH) lifts the caps for the commands after it
    // without waiting for its reply: if it fails, Redis applies them itself on
    // this client's own connection (AUTH pins), and closes only that one.
    if (route.kind === 'auth' || (route.kind === 'hello' && cmd.args.length > 2)) {
      this.parser.setAuthenticated(true);
    } else if (route.kind === 'reset') this.parser.setAuthenticated(!this.opts.auth.required);
    const plan = session.plan(cmd, route.kind, silent, this.forwarder.pinned);
    if (plan.kind === 'answer') {
      this.closing = true;
      this.replies.pushLocal(plan.reply).closeAfter = plan.close;
      return;
    }
    if (plan.before) this.forward(plan.before.raw, plan.before.entry);
    if (plan.closing) this.closing = true;
    this.forward(cmd.raw, plan.entry);
  };

  /** SYNC/PSYNC was sent: raw bytes both ways from here on (tunnel.ts). */
  private openTunnel(raw: Buffer[]): void {
    this.parser.stop();
    this.forwarder.pin();
    this.tunnel = new Tunnel(raw, this.parser.rest, {
      toUpstream: (parts) => {
        this.scheduler.own(parts, undefined);
        this.forwarder.flush();
      },
      toClient: (chunk) => this.replies.write(chunk),
    });
  }

  private forward(raw: Buffer[], entry: Entry | undefined): void {
    this.forwarder.pin();
    this.scheduler.own(raw, entry);
    if (entry === undefined) return;
    this.scheduler.lastForwarded = entry;
    this.replies.push(entry);
  }

  // ---- local commands ---------------------------------------------------

  private local(cmd: ParsedCommand, spec: CommandSpec, silent: boolean): void {
    const entry = silent ? newEntry(0) : this.replies.pushLocal(undefined);
    const replyOff = this.session.replyMode === 'off';
    const run = new LocalRun(this, entry, spec, cmd.args, this.session.tx, replyOff);
    if (this.session.slot !== undefined) this.session.slot.local = run;
    this.scheduler.local(entry, spec.flags.includes('write'), () => run.start());
  }

  authRequired(): Promise<boolean> {
    return this.opts.auth.current();
  }

  authKnownRequired(): boolean {
    return this.opts.auth.required;
  }

  get storageDb(): number {
    return this.opts.storageDb;
  }

  /** An entry got all its replies (ReaderHost). */
  settle(entry: Entry): void {
    this.scheduler.settle(entry);
  }

  /** A local entry's reply is known (RunHost). */
  complete(entry: Entry, reply: Reply): void {
    if (this.closed) return;
    (entry.out ??= []).push(reply);
    this.settle(entry);
    if (entry === this.replies.peek()) this.flushSoon();
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
    if (this.tunnel !== undefined) {
      this.tunnel.fromUpstream(chunk);
      return;
    }
    this.socket.cork();
    try {
      this.reader.consume(chunk);
    } catch (err) {
      this.opts.logger.error(`client ${this.id}: bad upstream reply: ${(err as Error).message}`);
      this.forwarder.destroy(err as Error);
    }
    this.replies.flushRun();
    this.socket.uncork();
  }

  /** Write every completed entry at the head of the queue (ReaderHost). */
  flushHead(): void {
    if (!this.replies.flushHead()) return;
    if (this.pausedFor.pending && this.replies.length < this.opts.maxPending / 2) {
      this.setPaused('pending', false);
    }
    this.closeIfDrained();
  }

  private closeIfDrained(): void {
    if (this.closing && !this.closed && this.replies.length === 0 && this.reader.idle) {
      this.endClient();
    }
  }

  /** Like Redis: close the socket once everything written has been flushed. */
  private endClient(): void {
    this.replies.flushRun();
    this.closed = true;
    this.socket.end(() => this.socket.destroy());
  }

  // ---- shared upstream --------------------------------------------------

  onSharedReply(waiter: SharedWaiter, reply: Buffer, start: number, end: number): void {
    if (this.closed) return;
    const entry = waiter as Entry;
    entry.owner = undefined;
    if (entry.internal !== undefined) {
      entry.internal(reply.subarray(start, end));
      this.forwarder.sharedAnswered();
      return;
    }
    // No cork: a client's replies in one read of the shared connection form
    // one run, written once at the end of the batch.
    this.inSharedBatch = true;
    this.settle(entry);
    if (entry === this.replies.peek()) {
      this.replies.extendRun(reply, start, end);
      this.replies.shift();
      this.flushHead();
    } else (entry.out ??= []).push(reply.subarray(start, end));
    this.forwarder.sharedAnswered();
  }

  onSharedError(waiter: SharedWaiter, text: string): void {
    if (this.closed) return;
    const entry = waiter as Entry;
    entry.owner = undefined;
    if (entry.internal !== undefined) entry.internal(encodeReply(R.error(text), 2));
    else this.complete(entry, R.error(text));
    this.forwarder.sharedAnswered();
  }

  onSharedFatal(waiter: SharedWaiter): void {
    if (this.closed) return;
    // Redis closed after answering this request, as it would have closed the
    // client's own connection: nothing after it is answered.
    this.closing = true;
    this.socket.pause();
    if (this.replies.closeAfter(waiter as Entry)) this.flushHead();
    else this.endClient();
  }

  onSharedBatchEnd(): void {
    if (!this.inSharedBatch) return;
    this.inSharedBatch = false;
    this.replies.flushRun();
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
    const unreachable = R.error(Err.upstreamUnreachable(this.forwarder.address, cause));
    this.socket.cork();
    if (everConnected || this.tunnel !== undefined) {
      // Closed by the server (CLIENT KILL, timeout, Redis died): the client's
      // server-side state is gone, so it is closed, as Redis closes it. A
      // replication link that never came up says why in place of SYNC's reply.
      if (!everConnected) this.replies.write(unreachable);
      this.lost = true;
      this.closing = true;
      this.socket.pause();
      // Our commands' own requests fail; the client is closed before the
      // first command of its that Redis will not answer now.
      const cut = this.reader.abandon(
        encodeReply(R.error(Err.upstreamLost(this.forwarder.address, cause)), 2),
      );
      if (!cut) this.replies.cutAtFirstForwarded();
    } else {
      // Never reached: every command waiting for it is answered, in order, with
      // the cause; requests not yet written were answered too and are dropped.
      // The client stays; its next command tries again.
      this.forwarder.dropUnsent();
      this.reader.fail(unreachable);
      for (const held of this.scheduler.dropOwn()) this.complete(held, unreachable);
    }
    this.flushHead();
    this.socket.uncork();
  }

  private onClientClosed(): void {
    this.closed = true;
    this.closing = true;
    this.parser.release();
    this.forwarder.destroy();
    for (const entry of this.replies) entry.owner = undefined;
    this.replies.clear();
    this.reader.clear();
    this.opts.onClose(this);
  }
}
