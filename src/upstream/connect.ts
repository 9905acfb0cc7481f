/*
 * Opening a connection to the backing Redis, for all three kinds of upstream
 * connection (a client's own, the shared ones, semcache's storage client):
 * plain TCP, or TLS for a rediss:// upstream.
 *
 * "Ready" means usable: TCP connected and, with TLS, the handshake done and
 * the server's certificate verified (src/tls.ts builds the options; checking
 * is never switched off). Both steps share one deadline, --connect-timeout:
 * a server that accepts TCP and then stalls the handshake is unreachable.
 * A certificate that fails verification destroys the socket with Node's own
 * reason ("self-signed certificate in certificate chain", "certificate has
 * expired", "Hostname/IP does not match certificate's altnames..."), which
 * the callers put in their error replies and logs.
 *
 * With TLS 1.3 a server that refuses *our* certificate says so only after our
 * side of the handshake is done, so that shows up as a connection lost right
 * after it was ready, with the server's alert as the cause.
 */
import { connect as connectTcp, type Socket } from 'node:net';
import { type ConnectionOptions, connect as connectTls } from 'node:tls';

export interface UpstreamTarget {
  host: string;
  port: number;
  /** Milliseconds for TCP connect plus TLS handshake. */
  connectTimeout: number;
  /** Present for a rediss:// upstream. */
  tls?: ConnectionOptions | undefined;
}

/**
 * A socket connecting to `target`; `ready` runs once it can carry commands.
 * Errors (the timeout included) arrive as the socket's 'error' event,
 * followed by 'close', as for any socket.
 */
export function connectUpstream(target: UpstreamTarget, ready: () => void): Socket {
  const { host, port, connectTimeout: ms } = target;
  const socket =
    target.tls === undefined
      ? connectTcp({ host, port, noDelay: true })
      : connectTls({ ...target.tls, host, port });
  // tls.connect does not pass noDelay on to the TCP socket.
  socket.setNoDelay(true);
  let tcpUp = false;
  const timer = setTimeout(() => {
    const what = tcpUp ? 'TLS handshake timeout' : 'connect timeout';
    socket.destroy(new Error(`${what} after ${ms} ms`));
  }, ms);
  const done = () => {
    clearTimeout(timer);
    ready();
  };
  socket.once('connect', () => {
    tcpUp = true;
    if (target.tls === undefined) done();
  });
  if (target.tls !== undefined) socket.once('secureConnect', done);
  socket.once('close', () => clearTimeout(timer));
  return socket;
}

/**
 * A socket error as the one-line cause callers report. OpenSSL's messages
 * carry a library trace and a newline ("...:ssl3_read_bytes:tlsv13 alert
 * certificate required:../deps/openssl/...:SSL alert number 116\n"); its
 * `reason` is the part a person needs.
 */
export function causeOf(err: Error): string {
  const { code, reason } = err as Error & { code?: unknown; reason?: unknown };
  if (typeof code === 'string' && code.startsWith('ERR_SSL_') && typeof reason === 'string') {
    return `TLS: ${reason}`;
  }
  return err.message.replace(/\s+/g, ' ').trim();
}
