// Minimal types for redis-parser 3 (a RESP2-only decoder used by tests as an independent oracle).
declare module 'redis-parser' {
  interface RedisParserOptions {
    returnReply: (reply: unknown) => void;
    returnError: (err: Error) => void;
    returnFatalError?: (err: Error) => void;
    returnBuffers?: boolean;
    stringNumbers?: boolean;
  }
  class RedisParser {
    constructor(options: RedisParserOptions);
    execute(chunk: Buffer): void;
    reset(): void;
  }
  export default RedisParser;
}
