/*
 * One client's own connection to the backing Redis. It only moves bytes:
 * requests in, replies out, with backpressure signalled both ways. A
 * connection that never came up (refused, timed out) can be tried again by the
 * next request; one that was up and died is final, because the server-side
 * state of the client (db, auth, MULTI, subscriptions) died with it.
 *
 * Backpressure is a state of the socket: `blocked` is signalled when a write
 * is buffered past the high-water mark, and `drain` ends it, either when the
 * buffer drains or when the socket closes (its buffer is gone with it). A
 * socket that closes while blocked never emits 'drain'; without the second
 * case the client would stay paused for good.
 */
import type { Socket } from 'node:net';
import { causeOf, connectUpstream, type UpstreamTarget } from './connect.js';
import type { LinkMonitor } from './link-log.js';
import type { Hidden, OwnConnections } from './own-connections.js';

export interface UpstreamOptions extends UpstreamTarget {
  /** Told of each connect and each loss, for the log (not of closes we make). */
  monitor?: LinkMonitor | undefined;
  /** A housekeeping connection of semcache's: what MONITOR through us must not show. */
  own?: { connections: OwnConnections; hidden: Hidden } | undefined;
}

export interface UpstreamEvents {
  data(chunk: Buffer): void;
  /** Writes are buffered past the high-water mark: stop reading the client. */
  blocked(): void;
  /** The write buffer drained: read the client again. */
  drain(): void;
  closed(cause: string, everConnected: boolean): void;
}

export class Upstream {
  private socket: Socket | undefined;
  private connected = false;
  private dead = false;
  /** We closed it (the client left, or a reply could not be framed). */
  private destroyed = false;
  /** `blocked` was signalled and `drain` not yet. */
  private blocked = false;
  /** Redis has sent something on it. */
  private answered = false;
  readonly address: string;

  constructor(
    private readonly opts: UpstreamOptions,
    private readonly events: UpstreamEvents,
  ) {
    this.address = `${opts.host.includes(':') ? `[${opts.host}]` : opts.host}:${opts.port}`;
  }

  connect(): void {
    if (this.socket !== undefined || this.dead) return;
    let cause: string | undefined;
    const socket = connectUpstream(this.opts, () => {
      this.connected = true;
      socket.setKeepAlive(true, 30_000);
      this.opts.own?.connections.add(socket, this.opts.own.hidden);
      this.opts.monitor?.up(this.address);
    });
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.answered = true;
      this.events.data(chunk);
    });
    socket.on('drain', () => this.unblock());
    socket.on('error', (err) => {
      cause ??= causeOf(err);
    });
    socket.on('close', () => {
      if (this.socket !== socket) return;
      // A TLS 1.3 server refuses our certificate only after the handshake,
      // before it says a word: that connection never really came up, and the
      // next request may try again (the client stays).
      const refused = !this.answered && cause?.startsWith('TLS: ') === true;
      const wasConnected = this.connected && !refused;
      this.socket = undefined;
      this.connected = false;
      if (wasConnected) this.dead = true;
      const why = cause ?? 'connection closed by upstream';
      this.events.closed(why, wasConnected);
      this.unblock();
      if (!this.destroyed) this.opts.monitor?.down(this.address, why, wasConnected);
    });
  }

  write(parts: Buffer[]): void {
    if (this.dead) return;
    if (this.socket === undefined) this.connect();
    const socket = this.socket!;
    // Failed, its 'close' is on its way: the requests' waiters are failed then.
    if (socket.destroyed) return;
    let ok = true;
    if (parts.length === 1) ok = socket.write(parts[0]!);
    else {
      socket.cork();
      for (const p of parts) ok = socket.write(p);
      socket.uncork();
    }
    if (!ok && !this.blocked) {
      this.blocked = true;
      this.events.blocked();
    }
  }

  private unblock(): void {
    if (!this.blocked) return;
    this.blocked = false;
    this.events.drain();
  }

  pause(): void {
    this.socket?.pause();
  }

  resume(): void {
    this.socket?.resume();
  }

  destroy(err?: Error): void {
    this.dead = true;
    // A reply we cannot frame is a fault worth logging (the connection logs it).
    this.destroyed = true;
    this.socket?.destroy(err);
  }
}
