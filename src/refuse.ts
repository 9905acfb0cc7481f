/*
 * Turning a connection away with an error reply: --max-clients, and a TLS
 * client whose certificate was refused. The reply goes out, then the socket
 * closes. Whatever the client sends meanwhile is read and dropped: a socket
 * nobody reads never sees the client's FIN (its unread bytes come first), so
 * it would stay open for good, one file descriptor per refused client, and
 * closing it with unread bytes sends a reset that can overtake the reply.
 * A client that does not close its side is closed a second later.
 */
import type { Socket } from 'node:net';
import { encodeReply, R } from './resp/writer.js';

const GRACE_MS = 1000;

export function refuse(socket: Socket, errorText: string): void {
  socket.on('error', () => {});
  socket.resume();
  socket.end(encodeReply(R.error(errorText), 2));
  setTimeout(() => socket.destroy(), GRACE_MS).unref();
}
