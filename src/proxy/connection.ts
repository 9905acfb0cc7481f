/*
 * One client connection: it owns the client socket, its backpressure and its
 * lifecycle, and wires the parts that do the rest:
 *
 *   RequestParser    client bytes -> commands (src/resp/)
 *   Dispatcher       each command -> shared, own, local or tunnel
 *   Session          the per-connection state we mirror, per-command effects
 *   ReplyQueue       replies in request order, written with few syscalls
 *   Forwarder        shared connection until pinned, then the client's own
 *   SharedLink       shared-connection replies handed to this client
 *   OwnLink          the client's own connection: bytes, backpressure, end
 *   UpstreamReader   own-connection replies matched to their commands
 *   LocalScheduler   when our commands run relative to forwarded ones
 *   Tunnel           after SYNC/PSYNC: raw bytes both ways, for good
 *
 * Client bytes are read into one buffer shared by every client, valid only during
 * onClientData (client-reads.ts). A forwarded command's raw bytes go upstream unchanged and
 * its reply bytes come back unchanged; a local command (one of ours) runs at once, possibly
 * asynchronously, and its typed Reply is encoded when its turn comes, with the protocol the
 * client has at that point. docs/protocol.md has the rules.
 */
import type { Socket } from 'node:net';
import { Err } from '../errors.js';
import type { Logger } from '../log.js';
import { RequestParser } from '../resp/request-parser.js';
import { R, type Reply } from '../resp/writer.js';
import type { Router } from '../router.js';
import type { AuthState } from '../upstream/auth-state.js';
import type { UpstreamLimits } from '../upstream/limits.js';
import type { OwnConnections } from '../upstream/own-connections.js';
import type { SharedUpstream } from '../upstream/shared-upstream.js';
import type { UpstreamOptions } from '../upstream/upstream.js';
import { readClient } from './client-reads.js';
import { Dispatcher, type DispatchHost } from './dispatch.js';
import type { Entry } from './entry.js';
import { Forwarder } from './forwarder.js';
import { LocalScheduler } from './local-scheduler.js';
import { type OwnLinkHost, ownLink } from './own-link.js';
import { ReplyQueue } from './reply-queue.js';
import { sharedRequestPolicy } from './request-limits.js';
import { Session } from './session.js';
import { SharedLink, type SharedLinkHost } from './shared-link.js';
import { Tunnel } from './tunnel.js';
import { UpstreamReader } from './upstream-reader.js';

export interface ConnectionOptions {
  id: number;
  router: Router;
  upstream: UpstreamOptions;
  /** Where stateless commands go until the client is pinned; undefined = always pinned. */
  shared: SharedUpstream | undefined;
  maxPending: number;
  maxRequestSize: number;
  /** Whether the upstream's default user needs a password, as last seen. */
  auth: AuthState;
  housekeeping?: OwnConnections; // semcache's own connections, hidden from MONITOR
  /** The database semcache's records are in (our commands work only there). */
  storageDb: number;
  /** What the upstream refuses by closing the connection (for shared connections). */
  limits: UpstreamLimits | undefined;
  logger: Logger;
  onClose: (conn: ClientConnection) => void;
}

export class ClientConnection implements DispatchHost, SharedLinkHost, OwnLinkHost {
  readonly id: number;
  readonly parser: RequestParser;
  readonly session: Session;
  readonly replies: ReplyQueue;
  readonly reader: UpstreamReader;
  readonly forwarder: Forwarder;
  readonly scheduler: LocalScheduler;
  private readonly dispatcher: Dispatcher;
  readonly router: Router;
  readonly auth: AuthState;
  readonly logger: Logger;
  readonly storageDb: number;
  private flushScheduled = false;
  /** No more requests are read (QUIT, protocol error, upstream lost, shutdown). */
  closing = false;
  closed = false;
  private pausedFor = { upstream: false, pending: false };
  /** The client's own upstream connection died: what it held back is never sent. */
  private lost = false;
  /** Set by SYNC/PSYNC: see tunnel.ts. */
  tunnel: Tunnel | undefined;

  constructor(
    private readonly socket: Socket,
    private readonly opts: ConnectionOptions,
  ) {
    this.id = opts.id;
    ({ router: this.router, auth: this.auth, logger: this.logger } = opts);
    this.storageDb = opts.storageDb;
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
    this.reader = new UpstreamReader(this, opts.housekeeping);
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
    this.forwarder = new Forwarder(opts.upstream, opts.shared, new SharedLink(this), ownLink(this));
    const limits = opts.shared && opts.limits;
    this.parser = new RequestParser(
      { maxBulkLength: opts.maxRequestSize },
      limits ? sharedRequestPolicy(limits, this.forwarder) : undefined,
    );
    this.dispatcher = new Dispatcher(this);
    socket.setNoDelay(true);
    readClient(socket, (chunk) => this.onClientData(chunk));
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
    const error = this.parser.feed(chunk, this.dispatcher.dispatch);
    this.forwarder.flush();
    if (error !== undefined && !this.closing) {
      // Like Redis: answer after everything before it, then close.
      this.closing = true;
      this.socket.pause();
      this.replies.pushLocal(R.error(Err.protocol(error))).closeAfter = true;
    }
    this.flushHead();
    this.socket.uncork();
    if (this.replies.length >= this.opts.maxPending) this.setPaused(true, 'pending');
  }

  stopReading(): void {
    this.closing = true;
  }

  /** SYNC/PSYNC was sent: raw bytes both ways from here on (tunnel.ts). */
  openTunnel(raw: Buffer[]): void {
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

  /** Write every completed entry at the head of the queue (ReaderHost). */
  flushHead(): void {
    if (!this.replies.flushHead()) return;
    if (this.pausedFor.pending && this.replies.length < this.opts.maxPending / 2) {
      this.setPaused(false, 'pending');
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

  /** Redis closed the shared connection after answering `entry` with a protocol error (SharedLinkHost). */
  fatal(entry: Entry): void {
    // As Redis would have closed the client's own connection: nothing after it is answered.
    this.closing = true;
    this.socket.pause();
    if (this.replies.closeAfter(entry)) this.flushHead();
    else this.endClient();
  }

  // ---- lifecycle --------------------------------------------------------

  /** Upstream backpressure (OwnLinkHost); --max-pending is the other reason to pause. */
  setPaused(paused: boolean, reason: 'upstream' | 'pending' = 'upstream'): void {
    this.pausedFor[reason] = paused;
    if (this.closing) return;
    if (this.pausedFor.upstream || this.pausedFor.pending) this.socket.pause();
    else this.socket.resume();
  }

  /** Own connection closed by the server (OwnLinkHost): read no more, close once written. */
  lose(): void {
    this.lost = true;
    this.closing = true;
    this.socket.pause();
  }

  batch(run: () => void): void {
    this.socket.cork();
    run();
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
