/*
 * How a client socket's bytes reach its connection: read into the one
 * process-wide read buffer (src/util/read-buffer.ts) and handed over as a
 * view of it, valid only until the handler returns.
 *
 * Why: with 'data' events Node allocates 64 KB for every read, shrinks it,
 * wraps it in a new ArrayBuffer and pushes it through a Readable stream; at
 * one small request per read (redis-benchmark -P 1) that was about a
 * tenth of semcache's CPU (docs/benchmarks.md). Node's `onread` option (a
 * buffer reused for every read, a callback instead of 'data') skips all of
 * it, but Node 20 offers it only to sockets it constructs for `new
 * net.Socket()` and `net.connect()`, not to the ones a server accepts. So
 * an accepted socket is switched to it here by the same steps its
 * constructor would have taken: set the socket's kBuffer and kBufferCb
 * slots and tell the handle (`useUserBuffer`). Node's own read path then
 * does the rest, including 'end', 'close', pause() and resume().
 *
 * Those slots are Node internals. If they are not what this expects (another
 * Node, a TLS socket, data already read), the socket keeps 'data' events and
 * nothing else changes: the handler's contract is the same either way.
 * test/unit/client-reads.test.ts checks that the switch happens on the Node
 * the tests run on.
 */
import type { Socket } from 'node:net';
import { readBuffer, readDone } from '../util/read-buffer.js';

/** The read handler: `chunk` is valid only until it returns. */
export type ChunkHandler = (chunk: Buffer) => void;

interface ReadSlots {
  kBuffer: symbol;
  kBufferCb: symbol;
  kBufferGen: symbol;
}

/**
 * Deliver `socket`'s reads to `onChunk`; true if they come through the
 * shared read buffer, false if through 'data' events. Call it before the
 * socket has read anything (in the server's 'connection' handler).
 */
export function readClient(socket: Socket, onChunk: ChunkHandler): boolean {
  const slots = readSlots(socket);
  if (slots === undefined) {
    socket.on('data', onChunk);
    return false;
  }
  const s = socket as unknown as Record<symbol, unknown>;
  s[slots.kBuffer] = readBuffer;
  s[slots.kBufferCb] = (length: number) => {
    try {
      onChunk(readBuffer.subarray(0, length));
    } finally {
      readDone(length);
    }
  };
  (socket as unknown as { _handle: Handle })._handle.useUserBuffer(readBuffer);
  return true;
}

interface Handle {
  useUserBuffer(buffer: Buffer): void;
}

/** The socket's onread slots, if it is a plain TCP socket in the state Node's constructor leaves it. */
function readSlots(socket: Socket): ReadSlots | undefined {
  if ((socket as { encrypted?: boolean }).encrypted) return undefined;
  const handle = (socket as unknown as { _handle?: Partial<Handle> })._handle;
  if (typeof handle?.useUserBuffer !== 'function') return undefined;
  if (socket.readableLength > 0 || socket.readableEnded || socket.readableFlowing === true) {
    return undefined;
  }
  const found = new Map<string, symbol>();
  for (const sym of Object.getOwnPropertySymbols(socket)) {
    if (sym.description !== undefined) found.set(sym.description, sym);
  }
  const kBuffer = found.get('kBuffer');
  const kBufferCb = found.get('kBufferCb');
  const kBufferGen = found.get('kBufferGen');
  if (kBuffer === undefined || kBufferCb === undefined || kBufferGen === undefined)
    return undefined;
  const s = socket as unknown as Record<symbol, unknown>;
  // Not in onread mode already, and no buffer generator to take over from us.
  if (s[kBuffer] !== null || s[kBufferCb] !== null || s[kBufferGen] !== null) return undefined;
  return { kBuffer, kBufferCb, kBufferGen };
}
