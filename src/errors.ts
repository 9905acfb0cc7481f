/*
 * Every error text semcache itself sends, in one place. Texts that Redis also
 * sends are copied from Redis 7 (src/server.c, src/networking.c) so a client
 * cannot tell who answered.
 */
export const Err = {
  /**
   * A protocol error reply (then Redis closes the connection). Bytes, not text: the message may
   * quote a raw request byte (`expected '$', got '\xb2'`), which Redis sends unchanged; `msg` is
   * a latin1 string, one char per byte, as RequestParser returns it.
   */
  protocol: (msg: string): Buffer => Buffer.from(`ERR Protocol error: ${msg}`, 'latin1'),
  maxClients: 'ERR max number of clients reached',
  // Redis's own first sentences (networking.c, clientAcceptHandler), semcache's remedies.
  protectedMode:
    'DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. ' +
    'In this mode connections are only accepted from the loopback interface. ' +
    'If you want to connect from external computers to Redis you may adopt one of the following solutions: ' +
    '1) Setup an authentication password for the default user of the Redis behind semcache. ' +
    "2) If you started semcache just for testing, restart it with the '--protected-mode no' option, " +
    'however MAKE SURE it is not publicly accessible from internet if you do so. ' +
    '3) Bind semcache to a loopback address (--bind 127.0.0.1). ' +
    'NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.',
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
  tlsClientCertificate: (problem: string) => `ERR semcache: ${problem}`,
  /** replication.c syncCommand. */
  syncPendingOutput: 'ERR SYNC and PSYNC are invalid with pending output',
  shuttingDown: 'ERR semcache: server is shutting down',
  internal: (msg: string) => `ERR semcache internal error: ${msg}`,
} as const;

/**
 * The request parser's error messages: Redis 7.0's (networking.c processInlineBuffer,
 * processMultibulkBuffer), without the "ERR Protocol error: " that Err.protocol adds.
 */
export const ProtocolError = {
  tooBigInline: 'too big inline request',
  unbalancedQuotes: 'unbalanced quotes in request',
  tooBigMbulk: 'too big mbulk count string',
  invalidMbulk: 'invalid multibulk length',
  unauthMbulk: 'unauthenticated multibulk length',
  tooBigBulk: 'too big bulk count string',
  invalidBulk: 'invalid bulk length',
  unauthBulk: 'unauthenticated bulk length',
  /**
   * Redis formats the byte with %c (so a byte >= 0x80 goes out raw: the result is latin1) and
   * addReplyErrorFormat turns CR and LF into spaces.
   */
  expectedDollar: (byte: number) =>
    `expected '$', got '${String.fromCharCode(byte === 13 || byte === 10 ? 32 : byte)}'`,
} as const;

/** Our commands' argument errors: Redis's own texts where Redis has the case. */
export const ArgErr = {
  notInteger: 'ERR value is not an integer or out of range',
  notFloat: 'ERR value is not a valid float',
  syntax: (token: string) => `ERR syntax error near '${token.slice(0, 64)}'`,
  expire: (cmd: string) => `ERR invalid expire time in '${cmd}' command`,
  range: (name: string, lo: number, hi: number) => `ERR ${name} must be between ${lo} and ${hi}`,
  missing: (option: string) => `ERR syntax error: ${option} needs a value`,
  notUtf8: (what: string) => `ERR ${what} must be valid UTF-8`,
  fp32Length: 'ERR FP32 blob length must be a non-zero multiple of 4',
};

/**
 * The semantic engine's errors, by stable code: callers, tests and logs switch
 * on the code (error.code), never on the text, which may improve. The error
 * classes are in src/semantic/types.ts; commands/semantic/errors.ts turns them
 * into replies (`ERR <text>` unless the class says otherwise).
 */
export const SemErr = {
  TEXT_TOO_LONG: (max: number) =>
    `text exceeds maximum allowed size of ${max} bytes (--max-text-bytes)`,
  TEXT_NOT_UTF8: () => 'text must be valid UTF-8',
  NAMESPACE_NAME: (max: number) => `namespace must be 1 to ${max} bytes`,
  UNKNOWN_NAMESPACE: (ns: string) => `unknown namespace '${ns}'`,
  NAMESPACE_NOT_EMPTY: (ns: string, entries: number) =>
    `namespace '${ns}' has ${entries} ${entries === 1 ? 'entry' : 'entries'} (SEMNS DEL ${ns} FLUSH deletes ${entries === 1 ? 'it' : 'them'} too)`,
  NAMESPACE_CHANGED: (ns: string) => `namespace '${ns}' has new entries; try again`,
  INDEX_CHANGE_NOT_EMPTY: (ns: string, what: 'INDEX' | 'QUANT') =>
    `cannot change the ${what} of namespace '${ns}' while it has entries (SEMFLUSH NS ${ns} first)`,
  ATTRS_JSON: (why: string) => `invalid JSON in ATTRS: ${why}`,
  ATTRS_NOT_OBJECT: () => 'ATTRS must be a JSON object',
  VECTOR_DIM: (got: number, want: number) => `vector has ${got} dimensions, the index has ${want}`,
  VECTOR_INVALID: () => 'vector must be finite and non-zero',
  LOADING: (what: string) => `semcache is loading ${what}`,
  FILTER_SYNTAX: (pos: number, near: string | undefined, why = '') =>
    `syntax error in FILTER expression at position ${pos} near ${
      near === undefined
        ? 'end of expression'
        : `'${near.length > 24 ? `${near.slice(0, 24)}...` : near}'`
    }${why}`,
  FILTER_TOO_LONG: (length: number, max: number) =>
    `FILTER expression too long (${length} characters, the limit is ${max})`,
  WRONGTYPE: () => 'Operation against a key holding the wrong kind of value',
} as const;

export type SemErrCode = keyof typeof SemErr;
