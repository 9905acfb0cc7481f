/*
 * semcache's housekeeping connections to Redis, by the address Redis sees
 * them from, so that a client's MONITOR through semcache does not show what
 * semcache itself sends: the RESET that starts each batch on a shared
 * connection (shared-upstream.ts: it keeps authentication exact), and the
 * RESET and PING of the probe connection that learns whether a password is
 * needed (auth-state.ts). MONITOR shows a client as `[<db> <ip>:<port>]`,
 * its peer address as Redis saw it, which is our socket's local address.
 *
 * Only lines that are certainly ours are hidden: from a shared connection,
 * only a bare RESET (a client's RESET never goes over one: it pins), and
 * everything from the probe connection. Clients monitoring Redis directly,
 * or through another semcache, still see them (docs/protocol.md). Where
 * something between semcache and Redis rewrites addresses (NAT, another
 * proxy), nothing matches and nothing is hidden.
 */
import type { Socket } from 'node:net';

/** What to hide of a connection's commands: a bare RESET, or everything. */
export type Hidden = 'reset' | 'all';

const RESET_LINE = Buffer.from('] "RESET"\r\n');
const PLUS = 0x2b;
const SPACE = 0x20;
const OPEN = 0x5b; // [
const CLOSE = 0x5d; // ]

/** An address as Redis prints a client's (anetFormatAddr): IPv6 in brackets. */
function formatAddress(ip: string | undefined, port: number | undefined): string | undefined {
  if (ip === undefined || port === undefined) return undefined;
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}

export class OwnConnections {
  private readonly byAddress = new Map<string, Hidden>();

  /** A connection of ours is up: remember it until its socket closes. */
  add(socket: Socket, hidden: Hidden): void {
    const address = formatAddress(socket.localAddress, socket.localPort);
    if (address === undefined) return;
    this.byAddress.set(address, hidden);
    socket.once('close', () => {
      if (this.byAddress.get(address) === hidden) this.byAddress.delete(address);
    });
  }

  get size(): number {
    return this.byAddress.size;
  }

  /** Is this MONITOR line (`+<time> [<db> <address>] "cmd" ...\r\n`) one of ours to hide? */
  hides(line: Buffer): boolean {
    if (this.byAddress.size === 0 || line[0] !== PLUS) return false;
    const open = line.indexOf(OPEN);
    const space = open < 0 ? -1 : line.indexOf(SPACE, open);
    const close = space < 0 ? -1 : line.indexOf(CLOSE, space);
    if (close < 0) return false;
    const hidden = this.byAddress.get(line.toString('latin1', space + 1, close));
    if (hidden === 'all') return true;
    return (
      hidden === 'reset' &&
      line.length - close === RESET_LINE.length &&
      line.subarray(close).equals(RESET_LINE)
    );
  }
}
