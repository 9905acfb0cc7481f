/*
 * Requests a client may not send over a shared connection because Redis
 * would answer them by closing the connection, and with it every other
 * client's replies (src/upstream/limits.ts has the limits and where they come
 * from). The parser consults this policy for bulks over 16 KB only.
 *
 * Such a request is refused for its client alone, exactly as Redis refuses it
 * on a connection of the client's own: over proto-max-bulk-len, `-ERR
 * Protocol error: invalid bulk length` after the replies to earlier commands,
 * then the connection is closed. (Redis's limits for unauthenticated clients
 * are the parser's own, for every client: RequestParser.setAuthenticated.)
 * A bulk that
 * would overflow Redis's query buffer (closed without a reply), or one over
 * limits semcache does not know, instead moves the client to its own
 * connection before it is sent, so Redis treats it as it would directly.
 * A client already on its own connection is Redis's to judge: nothing here
 * applies to it, and --max-request-size alone bounds what semcache buffers.
 */
import { ProtocolError } from '../errors.js';
import type { RequestPolicy } from '../resp/request-parser.js';
import { SAFE_BULK, type UpstreamLimits } from '../upstream/limits.js';

/** Room for what may precede a big argument in the shared connection's query buffer. */
const QUERY_BUFFER_MARGIN = 1024 * 1024;

export interface SharedRoute {
  /** The client has its own connection (its requests never go to a shared one). */
  readonly pinned: boolean;
  /** Give it its own connection now. */
  pin(): void;
}

export function sharedRequestPolicy(limits: UpstreamLimits, route: SharedRoute): RequestPolicy {
  return {
    bulk(length) {
      if (route.pinned) return undefined;
      if (length > limits.maxBulkLength) return ProtocolError.invalidBulk;
      const room = limits.known ? limits.queryBufferLimit - QUERY_BUFFER_MARGIN : SAFE_BULK;
      if (length > room) route.pin();
      return undefined;
    },
  };
}
