/*
 * One client's own connection to the backing Redis. It only moves bytes:
 * requests in, replies out, with backpressure signalled both ways. A
 * connection that never came up (refused, timed out) can be tried again by the
 * next request; one that was up and died is final, because the server-side
 * state of the client (db, auth, MULTI, subscriptions) died with it.
 */
import type { Socket } from 'node:net';
import { causeOf, connectUpstream, type UpstreamTarget } from './connect.js';

export type UpstreamOptions = UpstreamTarget;

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
    });
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => this.events.data(chunk));
    socket.on('drain', () => this.events.drain());
    socket.on('error', (err) => {
      cause ??= causeOf(err);
    });
    socket.on('close', () => {
      if (this.socket !== socket) return;
      const wasConnected = this.connected;
      this.socket = undefined;
      this.connected = false;
      if (wasConnected) this.dead = true;
      this.events.closed(cause ?? 'connection closed by upstream', wasConnected);
    });
  }

  write(parts: Buffer[]): void {
    if (this.dead) return;
    if (this.socket === undefined) this.connect();
    const socket = this.socket!;
    let ok = true;
    if (parts.length === 1) ok = socket.write(parts[0]!);
    else {
      socket.cork();
      for (const p of parts) ok = socket.write(p);
      socket.uncork();
    }
    if (!ok) this.events.blocked();
  }

  pause(): void {
    this.socket?.pause();
  }

  resume(): void {
    this.socket?.resume();
  }

  destroy(err?: Error): void {
    this.dead = true;
    this.socket?.destroy(err);
  }
}
