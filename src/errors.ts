/*
 * Every error text semcache itself sends, in one place. Texts that Redis also
 * sends are copied from Redis 7 (src/server.c, src/networking.c) so a client
 * cannot tell who answered.
 */
export const Err = {
  protocol: (msg: string) => `ERR Protocol error: ${msg}`,
  maxClients: 'ERR max number of clients reached',
  unknownCommand: (name: string, args: string[]) =>
    `ERR unknown command '${name}', with args beginning with: ${args.map((a) => `'${a}' `).join('')}`,
  wrongArity: (name: string) => `ERR wrong number of arguments for '${name}' command`,
  syntax: 'ERR syntax error',
  notInMulti: 'ERR Command not allowed inside a transaction',
  subscribedContext: (name: string) =>
    `ERR Can't execute '${name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context`,
  upstreamUnreachable: (addr: string, cause: string) =>
    `ERR semcache: upstream ${addr} unreachable (${cause})`,
  upstreamLost: (addr: string, cause: string) =>
    `ERR semcache: connection to upstream ${addr} lost (${cause})`,
  /** replication.c syncCommand. */
  syncPendingOutput: 'ERR SYNC and PSYNC are invalid with pending output',
  shuttingDown: 'ERR semcache: server is shutting down',
  internal: (msg: string) => `ERR semcache internal error: ${msg}`,
} as const;
