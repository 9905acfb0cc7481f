/*
 * SYNC and PSYNC turn a connection into a replication link. Redis answers
 * with an RDB payload that is not a RESP reply (`$<len>\r\n<bytes>` with no
 * CRLF after it, or `$EOF:<40-byte mark>\r\n<bytes><mark>` when diskless),
 * preceded by newlines while the snapshot is made and followed by the
 * replication stream for as long as the link lives; the replica sends
 * REPLCONF ACKs that get no reply. None of it is request/reply traffic, so
 * once SYNC or PSYNC is sent the connection becomes a raw tunnel both ways,
 * for good: bytes are relayed as they come, nothing is parsed or framed (so
 * our own commands are not available on it any more).
 *
 * When to open it mirrors Redis's own checks (replication.c syncCommand):
 * Redis refuses SYNC while earlier replies are still unwritten, so we do too,
 * with its text, when the client has replies pending; inside MULTI the
 * command is refused (it is flagged no-multi), so it is forwarded as any
 * other command and its error is framed as usual. Otherwise the command is
 * sent at once, behind everything sent before it.
 */
import { Err } from '../errors.js';
import { R, type Reply } from '../resp/writer.js';

/** What to do with a SYNC or PSYNC. */
export function syncPlan(inMulti: boolean, pendingReplies: number): 'forward' | 'tunnel' | Reply {
  if (inMulti) return 'forward';
  if (pendingReplies > 0) return R.error(Err.syncPendingOutput);
  return 'tunnel';
}

export interface TunnelEnds {
  /** Bytes to Redis, on the client's own connection, behind what was sent before. */
  toUpstream(parts: Buffer[]): void;
  /** Bytes to the client, with its backpressure. */
  toClient(chunk: Buffer): void;
}

export class Tunnel {
  /** `raw`: the SYNC or PSYNC request as the client sent it; `rest`: what followed it. */
  constructor(
    raw: Buffer[],
    rest: Buffer,
    private readonly ends: TunnelEnds,
  ) {
    ends.toUpstream(rest.length > 0 ? [...raw, rest] : raw);
  }

  fromClient(chunk: Buffer): void {
    this.ends.toUpstream([chunk]);
  }

  fromUpstream(chunk: Buffer): void {
    this.ends.toClient(chunk);
  }
}
