/*
 * The codec of semcache's own Redis client (src/upstream/redis-client.ts), with
 * no socket: commands encoded as arrays of bulk strings into one growing
 * buffer, and complete replies decoded into values. Framing (where a reply
 * ends in a stream of chunks) is ReplyFramer's job, in reply-framer.ts.
 */

export type RedisValue = null | number | Buffer | RedisValue[] | RedisReplyError;

/** An error reply (`-ERR ...`) inside an array, or the rejection of a command. */
export class RedisReplyError extends Error {
  override name = 'RedisReplyError';
}

/** The connection failed or was lost, or a reply was not RESP2 (see decode). */
export class RedisConnectionError extends Error {
  override name = 'RedisConnectionError';
}

/** One argument of a command: a string is sent as UTF-8, a number as String() writes it. */
export type Arg = string | Buffer | number;

/** The smallest write buffer; it grows to the largest write seen. */
const MIN_OUT = 16 * 1024;

/**
 * Commands (RESP2 arrays of bulk strings) encoded back to back into one
 * buffer, so a turn's commands cost one allocation and one write, not a few
 * Buffers per argument.
 */
export class CommandBuffer {
  private buf: Buffer;
  private len = 0;

  constructor(size = MIN_OUT) {
    this.buf = Buffer.allocUnsafe(size);
  }

  get length(): number {
    return this.len;
  }

  command(args: readonly Arg[]): void {
    this.begin(args.length);
    for (const a of args) this.arg(a);
  }

  /** `*<n>\r\n`: an array of n arguments follows. */
  begin(n: number): void {
    this.header(0x2a, n);
  }

  arg(a: Arg): void {
    if (Buffer.isBuffer(a)) {
      this.header(0x24, a.length);
      this.reserve(a.length + 2);
      this.buf.set(a, this.len);
      this.len += a.length;
    } else {
      const s = typeof a === 'string' ? a : String(a);
      const n = Buffer.byteLength(s, 'utf8');
      this.header(0x24, n);
      this.reserve(n + 2);
      this.len += this.buf.write(s, this.len, 'utf8');
    }
    this.buf[this.len++] = 13;
    this.buf[this.len++] = 10;
  }

  /** The bytes so far, to write; the next command overwrites them unless detach() is called. */
  take(): Buffer {
    const out = this.buf.subarray(0, this.len);
    this.len = 0;
    return out;
  }

  /** The bytes last taken are still referenced (queued in the socket): write into a new buffer. */
  detach(): void {
    this.buf = Buffer.allocUnsafe(Math.max(MIN_OUT, this.buf.length));
  }

  clear(): void {
    this.len = 0;
  }

  private header(prefix: number, n: number): void {
    this.reserve(24);
    const buf = this.buf;
    buf[this.len++] = prefix;
    this.len = writeDecimal(buf, this.len, n);
    buf[this.len++] = 13;
    buf[this.len++] = 10;
  }

  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.len + n));
    this.buf.copy(grown, 0, 0, this.len);
    this.buf = grown;
  }
}

/** ASCII digits of a non-negative integer at `pos`, without a string; returns the end. */
function writeDecimal(buf: Buffer, pos: number, n: number): number {
  let end = pos + 1;
  for (let m = n; m >= 10; m = Math.floor(m / 10)) end++;
  for (let i = end; i > pos; n = Math.floor(n / 10)) buf[--i] = 48 + (n % 10);
  return end;
}

export function encodeCommand(args: readonly Arg[]): Buffer {
  const out = new CommandBuffer(64);
  out.command(args);
  return out.take();
}

/** Decode one complete RESP2 reply starting at `pos`; returns the value and where it ends. */
export function decodeReply(buf: Buffer, pos: number): [RedisValue, number] {
  const value = decode(buf, pos);
  return [value, decodedEnd];
}

/** Where the reply decode() read last ended (a tuple per element would be garbage). */
let decodedEnd = 0;

/**
 * The integer on the line at `pos` (just after the type byte), and sets
 * decodedEnd past its CRLF. Longer lines go through Number() so big integers
 * round exactly as they always have.
 */
function lineInt(buf: Buffer, pos: number): number {
  let i = pos;
  const neg = buf[i] === 45;
  if (neg) i++;
  const first = i;
  let n = 0;
  for (let b = buf[i]!; b >= 48 && b <= 57; b = buf[++i]!) n = n * 10 + (b - 48);
  if (buf[i] !== 13 || i === first || i - pos > 15) {
    const lineEnd = buf.indexOf(13, pos);
    decodedEnd = lineEnd + 2;
    return Number(buf.toString('latin1', pos, lineEnd));
  }
  decodedEnd = i + 2;
  return neg ? -n : n;
}

/**
 * Decode one complete reply starting at `pos` (its end is not returned).
 * RESP2, and RESP3's types as plain values (maps and sets as flat arrays,
 * booleans as 1/0), for replies to requests made as a RESP3 client.
 */
export function decode(buf: Buffer, pos: number): RedisValue {
  const type = buf[pos];
  switch (type) {
    case 0x2b /* + */:
      {
        const lineEnd = buf.indexOf(13, pos);
        decodedEnd = lineEnd + 2;
        return Buffer.from(buf.subarray(pos + 1, lineEnd));
      }
    case 0x2d /* - */:
      {
        const lineEnd = buf.indexOf(13, pos);
        decodedEnd = lineEnd + 2;
        return new RedisReplyError(buf.toString('utf8', pos + 1, lineEnd));
      }
    case 0x3a /* : */:
      return lineInt(buf, pos + 1);
    case 0x24 /* $ */:
      {
        const len = lineInt(buf, pos + 1);
        if (len < 0) return null;
        const start = decodedEnd;
        decodedEnd = start + len + 2;
        return buf.subarray(start, start + len);
      }
    case 0x2a /* * */:
      {
        const n = lineInt(buf, pos + 1);
        if (n < 0) return null;
        const items: RedisValue[] = new Array(n);
        for (let i = 0; i < n; i++) items[i] = decode(buf, decodedEnd);
        return items;
      }
    // RESP3, as a client that sent HELLO 3 gets it (replies on its behalf).
    case 0x5f /* _ null */:
      decodedEnd = pos + 3;
      return null;
    case 0x23 /* # boolean */:
      decodedEnd = pos + 4;
      return buf[pos + 1] === 0x74 ? 1 : 0;
    case 0x2c /* , double */:
    case 0x28 /* ( big number */:
      {
        const lineEnd = buf.indexOf(13, pos);
        decodedEnd = lineEnd + 2;
        return Number(buf.toString('latin1', pos + 1, lineEnd));
      }
    case 0x21 /* ! blob error */:
    case 0x3d /* = verbatim */:
      {
        const len = lineInt(buf, pos + 1);
        const start = decodedEnd;
        decodedEnd = start + len + 2;
        if (type === 0x21) return new RedisReplyError(buf.toString('utf8', start, start + len));
        return buf.subarray(start + 4, start + len); // after "txt:"
      }
    case 0x25 /* % map */:
    case 0x7e /* ~ set */:
    case 0x3e /* > push */:
      {
        const n = lineInt(buf, pos + 1) * (type === 0x25 ? 2 : 1);
        const items: RedisValue[] = new Array(n);
        for (let i = 0; i < n; i++) items[i] = decode(buf, decodedEnd);
        return items;
      }
    case 0x7c /* | attribute: skipped, the value follows */:
      {
        const n = lineInt(buf, pos + 1) * 2;
        for (let i = 0; i < n; i++) decode(buf, decodedEnd);
        return decode(buf, decodedEnd);
      }
    default:
      throw new RedisConnectionError(`unexpected reply type 0x${(type ?? 0).toString(16)}`);
  }
}
