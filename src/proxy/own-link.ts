/*
 * A client's side of its own upstream connection: its bytes, its
 * backpressure, and what its end means.
 *
 * Replies are framed by the UpstreamReader (or relayed raw once the client is
 * a replication tunnel). When the connection ends:
 *
 *   - never came up (refused, timed out, a TLS alert before any reply):
 *     every command waiting for it is answered, in order, with the cause;
 *     requests not yet written were answered too and are dropped. The client
 *     stays; its next command tries again.
 *   - closed by the server (CLIENT KILL, timeout, Redis died): the client's
 *     server-side state is gone, so it is closed, as Redis closes it:
 *     replies before the first unanswered command are written, nothing after.
 *     Requests our commands made fail, so those commands end.
 */
import { Err } from '../errors.js';
import type { Logger } from '../log.js';
import { encodeReply, R, type Reply } from '../resp/writer.js';
import type { UpstreamEvents } from '../upstream/upstream.js';
import type { Entry } from './entry.js';
import type { Forwarder } from './forwarder.js';
import type { LocalScheduler } from './local-scheduler.js';
import type { ReplyQueue } from './reply-queue.js';
import type { Tunnel } from './tunnel.js';
import type { UpstreamReader } from './upstream-reader.js';

export interface OwnLinkHost {
  readonly id: number;
  readonly replies: ReplyQueue;
  readonly reader: UpstreamReader;
  readonly forwarder: Forwarder;
  readonly scheduler: LocalScheduler;
  readonly tunnel: Tunnel | undefined;
  readonly closed: boolean;
  readonly logger: Logger;
  complete(entry: Entry, reply: Reply): void;
  flushHead(): void;
  /** Cork/uncork the client socket around a burst of writes. */
  batch(run: () => void): void;
  /** Stop reading requests, for good (the client is being closed). */
  lose(): void;
  /** Backpressure from the upstream's write buffer. */
  setPaused(paused: boolean): void;
}

export function ownLink(host: OwnLinkHost): UpstreamEvents {
  return {
    data(chunk) {
      const tunnel = host.tunnel;
      if (tunnel !== undefined) {
        tunnel.fromUpstream(chunk);
        return;
      }
      host.batch(() => {
        try {
          host.reader.consume(chunk);
        } catch (err) {
          host.logger.error(`client ${host.id}: bad upstream reply: ${(err as Error).message}`);
          host.forwarder.destroy(err as Error);
        }
        host.replies.flushRun();
      });
    },
    drain: () => host.setPaused(false),
    blocked: () => host.setPaused(true),
    closed(cause, everConnected) {
      if (host.closed) return;
      const address = host.forwarder.address;
      const unreachable = R.error(Err.upstreamUnreachable(address, cause));
      host.batch(() => {
        if (everConnected || host.tunnel !== undefined) {
          // A replication link that never came up says why in place of SYNC's reply.
          if (!everConnected) host.replies.write(unreachable);
          host.lose();
          const lost = encodeReply(R.error(Err.upstreamLost(address, cause)), 2);
          if (!host.reader.abandon(lost)) host.replies.cutAtFirstForwarded();
        } else {
          host.forwarder.dropUnsent();
          host.reader.fail(unreachable);
          for (const held of host.scheduler.dropOwn()) host.complete(held, unreachable);
        }
        host.flushHead();
      });
    },
  };
}
