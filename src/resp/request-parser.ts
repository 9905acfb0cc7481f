// Incremental parser for client requests, mirroring Redis 7.0 networking.c (processInputBuffer,
// processInlineBuffer, processMultibulkBuffer); its number and argument parsing is in
// redis-text.ts (string2ll, sdssplitargs).
//
// Model: feed() walks each chunk in place; args and raw slices are views of the chunks (zero copy).
// A chunk is valid only during feed() (the client read buffer is reused, src/util/read-buffer.ts):
// the bytes of a command still incomplete when the chunk ends are copied, once, with its args.
// Between chunks the parser keeps Redis's own state (bulks left in the multibulk, length of the
// next bulk) plus at most one of two buffers, so nothing is ever re-scanned or copied twice:
//   - carry: a header/inline line cut by a chunk boundary. Later chunks are only searched for its
//     terminator; the line is joined once that turns up.
//   - fill: a bulk value cut by a chunk boundary, copied once into a buffer of its final size.
// A command's bytes are let go as soon as it is emitted, and all of them on an error or release().
//
// One feed() is one read(2) for Redis: Redis applies its 64 KB limit on a `*`/`$` line only when
// a read leaves the line without its '\r' (a line whose '\r' is there is parsed, however long,
// and fails as an invalid length). So does this parser, per chunk; where the answer depends on
// how the bytes were split (lines over 64 KB), see docs/protocol.md. Inline lines are the one
// deliberate exception: every inline line over the limit is refused, whatever the split.
//
// Redis details that look odd but are mirrored on purpose, so that the proxy never disagrees
// with the server behind it about where a command ends:
//   - Redis finds line ends with strchr(), which stops at a NUL byte: a line with a NUL before its
//     terminator never completes; Redis waits until more than maxInlineSize bytes are buffered.
//   - The two bytes after a bulk value, and the byte after a header's '\r', are skipped unchecked.
//   - Before AUTH, a client may announce at most 10 arguments and 16 KB per bulk (authRequired()
//     in processMultibulkBuffer); setAuthenticated() says which side of that the client is on.
import { constants } from 'node:buffer';
import { ProtocolError } from '../errors.js';
import { SPLIT_ERR, SPLIT_NUL, splitArgs, string2ll } from './redis-text.js';

/** One complete client command. */
export interface ParsedCommand {
  /** argv; views into the received chunks where possible (zero copy): valid during onCommand. */
  args: Buffer[];
  /** The exact bytes of this command as received, in order (one slice when it lay in one chunk). */
  raw: Buffer[];
  inline: boolean;
}

export interface ParserLimits {
  maxInlineSize: number;
  maxMultibulkLength: number;
  maxBulkLength: number;
  /** Largest multibulk count of a client that is not authenticated. */
  unauthMultibulkLength: number;
  /** Largest bulk of a client that is not authenticated. */
  unauthBulkLength: number;
}

/**
 * A limit that depends on where the request goes (an upstream's own
 * proto-max-bulk-len, for a client on a shared connection). Consulted only
 * for bulks over 16 KB (Redis's smallest limit), so the common request never
 * pays for it: a protocol error message (without "Protocol error: ") to
 * refuse the request, or undefined.
 */
export interface RequestPolicy {
  bulk(length: number): string | undefined;
}

/** Redis 7.0: PROTO_INLINE_MAX_SIZE, INT_MAX, proto-max-bulk-len, and the unauthenticated caps. */
export const DEFAULT_LIMITS: ParserLimits = Object.freeze({
  maxInlineSize: 64 * 1024,
  maxMultibulkLength: 2147483647,
  maxBulkLength: 512 * 1024 * 1024,
  unauthMultibulkLength: 10,
  unauthBulkLength: 16384,
});

const [LF, CR, DOLLAR, STAR] = [10, 13, 36, 42] as const;

export class RequestParser {
  private readonly maxInline: number;
  private readonly maxMultibulk: number;
  private readonly maxBulk: number;
  private readonly unauthMultibulk: number;
  private readonly unauthBulk: number;
  private authenticated = true;
  private err: string | undefined = undefined;
  private released = false;
  /** Bulks still expected by the current multibulk command; 0 between commands. */
  private mbLeft = 0;
  /** Length of the next bulk once its `$` line is read, else -1 (Redis's c->bulklen). */
  private bulkLen = -1;
  private args: Buffer[] = [];
  /** Index in args of the first one that is a view of the chunk being parsed (see keep). */
  private chunkArgs = 0;
  /** Raw bytes of the current command that lay in buffers already left behind. */
  private rawParts: Buffer[] = [];
  private rawLen = 0;
  /** Copies of the incomplete line's bytes so far (see the model above). */
  private carry: Buffer[] = [];
  private carryLen = 0;
  /** Byte the carried line waits for; -1 when it holds a NUL and so can never complete. */
  private carryTerm = 0;
  /** The "too big" error that fires once the carried line exceeds maxInlineSize. */
  private carryErr = '';
  /** Bulk value being filled across chunks, with room for its 2 trailing bytes. */
  private fill: Buffer | undefined = undefined;
  private fillPos = 0;
  /** Second result of header(): where parsing resumes, or -1 when it cannot go on. */
  private next = 0;
  private on: (cmd: ParsedCommand) => void = () => {};
  private stopped = false;
  /** After stop(): the bytes of that chunk after the command that stopped the parser. */
  rest: Buffer = Buffer.alloc(0);

  constructor(
    limits?: Partial<ParserLimits>,
    private readonly policy?: RequestPolicy,
  ) {
    const l = { ...DEFAULT_LIMITS, ...limits };
    this.maxInline = l.maxInlineSize;
    this.maxMultibulk = l.maxMultibulkLength;
    // A bulk must fit in one Buffer; a longer one could not be forwarded anyway.
    this.maxBulk = Math.min(l.maxBulkLength, constants.MAX_LENGTH - 2);
    this.unauthMultibulk = l.unauthMultibulkLength;
    this.unauthBulk = l.unauthBulkLength;
  }

  /**
   * Whether the client is authenticated (default true). While it is not, the unauthenticated
   * caps apply to every `*`/`$` line parsed from then on; a call from inside onCommand applies
   * to the very next command, as Redis runs each command before it parses the next one.
   */
  setAuthenticated(yes: boolean): void {
    this.authenticated = yes;
  }

  /** Bytes received and held for the incomplete command (for memory accounting). */
  get pendingBytes(): number {
    return this.rawLen + this.carryLen + this.fillPos;
  }

  /**
   * Drops every byte held for an incomplete command (call it when the connection closes, so a
   * half-received bulk is not kept alive by whoever still holds the parser). Later feed() calls
   * emit nothing.
   */
  release(): void {
    this.released = true;
    this.drop();
  }

  /**
   * Parses as many complete commands as `chunk` (with what earlier calls left incomplete) holds,
   * calling onCommand for each in order. Returns undefined, or a protocol error message: the text
   * after "ERR Protocol error: " (Err.protocol), a latin1 string as it may quote a raw byte.
   * After an error the parser is dead and holds nothing: later calls return the same error and
   * emit nothing.
   */
  feed(chunk: Buffer, onCommand: (cmd: ParsedCommand) => void): string | undefined {
    if (this.err === undefined && !this.released && !this.stopped && chunk.length > 0) {
      this.on = onCommand;
      const pos = this.carryLen > 0 ? this.resume(chunk) : 0;
      if (pos >= 0 && this.err === undefined) this.run(chunk, pos);
    }
    return this.err;
  }

  /**
   * Called from onCommand: parse nothing after this command (what follows is
   * not requests, e.g. after SYNC). The rest of the chunk is left in `rest`.
   */
  stop(): void {
    this.stopped = true;
  }

  private run(buf: Buffer, pos: number): void {
    const len = buf.length;
    let start = pos; // where the current command's bytes begin in buf
    if (this.fill !== undefined) {
      const f = this.fill;
      const n = buf.copy(f, this.fillPos, pos);
      this.fillPos += n;
      if (this.fillPos < f.length) return;
      pos += n;
      start = pos;
      this.fill = undefined;
      this.fillPos = 0;
      this.pushRaw(f);
      this.bulkDone(f.subarray(0, f.length - 2), buf, pos, pos);
    }
    this.chunkArgs = this.args.length;
    while (pos < len && !this.released && !this.stopped) {
      if (this.mbLeft === 0) {
        start = pos;
        if (buf[pos] !== STAR) {
          pos = this.inline(buf, pos);
          if (pos < 0) return;
          continue;
        }
        const n = this.header(buf, pos, STAR, ProtocolError.tooBigMbulk);
        if (this.next < 0) return;
        if (!(n <= this.maxMultibulk)) return void this.fail(ProtocolError.invalidMbulk);
        if (n > this.unauthMultibulk && !this.authenticated) {
          return void this.fail(ProtocolError.unauthMbulk);
        }
        pos = this.next;
        if (n > 0) this.mbLeft = n; // a count <= 0 is consumed and runs nothing
      } else if (this.bulkLen < 0) {
        const n = this.header(buf, pos, DOLLAR, ProtocolError.tooBigBulk);
        if (this.next < 0) break;
        if (!(n >= 0 && n <= this.maxBulk)) return void this.fail(ProtocolError.invalidBulk);
        if (n > this.unauthBulk && !this.authenticated) {
          return void this.fail(ProtocolError.unauthBulk);
        }
        if (n > 16384 && this.policy !== undefined) {
          const refused = this.policy.bulk(n);
          if (refused !== undefined) return void this.fail(refused);
        }
        this.bulkLen = n;
        pos = this.next;
      } else {
        const need = this.bulkLen + 2;
        if (len - pos < need) {
          if (pos > start) this.keep(buf, start, pos);
          // Allocated once at full size (as Redis sizes its query buffer for big args). Large
          // allocations are lazily backed by the OS, so an announced-but-unsent bulk costs little.
          const f = Buffer.allocUnsafe(need);
          this.fillPos = buf.copy(f, 0, pos);
          this.fill = f;
          return;
        }
        pos += need;
        this.bulkDone(buf.subarray(pos - need, pos - 2), buf, start, pos);
      }
    }
    if (this.stopped) {
      this.rest = Buffer.from(buf.subarray(pos));
      return;
    }
    if (this.mbLeft > 0 && pos > start && this.err === undefined && !this.released) {
      this.keep(buf, start, pos);
    }
  }

  /** Stores a finished bulk; if it was the last, emits the command ending with buf[from, to). */
  private bulkDone(arg: Buffer, buf: Buffer, from: number, to: number): void {
    this.args.push(arg);
    this.bulkLen = -1;
    if (--this.mbLeft > 0) return;
    const args = this.args;
    this.args = [];
    this.chunkArgs = 0;
    this.emit(buf, from, to, args, false);
  }

  /** An inline request at pos; returns where the next request starts, or -1 to stop. */
  private inline(buf: Buffer, pos: number): number {
    const nl = buf.indexOf(LF, pos);
    // Stricter than Redis on purpose: a line over the limit is refused even when its newline came
    // in the same read (Redis would run it), so the outcome does not depend on the split.
    if ((nl < 0 ? buf.length : nl) - pos > this.maxInline) {
      return this.fail(ProtocolError.tooBigInline);
    }
    if (nl < 0) return this.hold(buf, pos, LF, ProtocolError.tooBigInline);
    const end = nl > pos && buf[nl - 1] === CR ? nl - 1 : nl;
    const args: Buffer[] = [];
    let r = splitArgs(buf, pos, end, args);
    // splitArgs stops at its first error; a NUL later in the line still makes Redis wait.
    if (r === SPLIT_ERR && buf.subarray(pos, end).indexOf(0) >= 0) r = SPLIT_NUL;
    if (r === SPLIT_NUL) return this.hold(buf, pos, -1, ProtocolError.tooBigInline);
    if (r === SPLIT_ERR) return this.fail(ProtocolError.unbalancedQuotes);
    if (args.length > 0) this.emit(buf, pos, nl + 1, args, true); // an empty line runs nothing
    return nl + 1;
  }

  /**
   * The `*<n>` or `$<n>` line at pos: returns n per string2ll (NaN if invalid) and sets this.next
   * past the line's '\r' and the byte after it; or sets this.next = -1 (carried, stuck or failed).
   */
  private header(buf: Buffer, pos: number, lead: number, tooBig: string): number {
    const len = buf.length;
    // Fast path: lead byte, 1-18 digits (no leading zero), '\r', and one more byte present.
    let i = pos + 1;
    let v = 0;
    let c = 0;
    for (; i < len; i++) {
      c = buf[i]!;
      if (c < 48 || c > 57) break;
      v = v * 10 + (c - 48);
    }
    const span = i - pos;
    const ok = c === CR && i + 1 < len && buf[pos] === lead && span >= 2 && span <= 19;
    if (ok && (span === 2 || buf[pos + 1] !== 48)) {
      this.next = i + 2;
      return v;
    }
    // Slow path, in Redis's order of checks.
    this.next = -1;
    const t = buf.indexOf(CR, pos);
    // strchr() stops at a NUL: Redis then sees no '\r' at all, and never will.
    if (buf.subarray(pos, t < 0 ? len : t).indexOf(0) >= 0) return this.hold(buf, pos, -1, tooBig);
    if (t < 0)
      return len - pos > this.maxInline ? this.fail(tooBig) : this.hold(buf, pos, CR, tooBig);
    // With its '\r' in, a line is never too big: Redis waits for one more byte, then parses.
    if (t + 1 >= len) return this.hold(buf, pos, CR, tooBig);
    const first = buf[pos]!;
    if (first !== lead) return this.fail(ProtocolError.expectedDollar(first));
    this.next = t + 2;
    return string2ll(buf, pos + 1, t);
  }

  /** Resumes the carried line with a new chunk; returns where to go on in chunk, or -1. */
  private resume(chunk: Buffer): number {
    const term = this.carryTerm;
    const last = this.carry[this.carry.length - 1];
    let end: number;
    if (term === CR && last !== undefined && last[last.length - 1] === CR) {
      end = 1; // the '\r' came last time; any byte completes the line
    } else {
      let a = term < 0 ? -1 : chunk.indexOf(term);
      if (a > 0 && chunk.subarray(0, a).indexOf(0) >= 0) {
        this.carry = []; // a NUL before the terminator: stuck for good (see hold)
        this.carryTerm = -1;
        a = -1;
      }
      // Without its terminator in this read, a line may not exceed the limit (Redis's check);
      // an inline line may not exceed it at all (see inline()).
      const size = this.carryLen + (a < 0 ? chunk.length : a);
      if (size > this.maxInline && (a < 0 || term === LF)) return this.fail(this.carryErr);
      if (a < 0 || (term === CR && a + 1 >= chunk.length)) {
        if (this.carryTerm >= 0) this.carry.push(Buffer.from(chunk));
        this.carryLen += chunk.length;
        return -1;
      }
      end = term === CR ? a + 2 : a + 1;
    }
    this.carry.push(chunk.subarray(0, end));
    const line = Buffer.concat(this.carry, this.carryLen + end);
    this.carry = [];
    this.carryLen = 0;
    this.run(line, 0);
    if (this.err !== undefined) return -1;
    if (this.stopped) {
      // A line that completes a command is that command's last: nothing of it is left.
      this.rest = Buffer.from(chunk.subarray(end));
      return -1;
    }
    if (this.carryLen > 0) {
      // The line held a NUL: everything after it piles up behind it.
      this.carryLen += chunk.length - end;
      return this.carryLen > this.maxInline ? this.fail(this.carryErr) : -1;
    }
    return end;
  }

  /**
   * Keeps an incomplete line (copied, so a few bytes do not pin a whole chunk). term -1: a line
   * Redis can never complete (NUL before its terminator); only its size matters, until too big.
   */
  private hold(buf: Buffer, pos: number, term: number, tooBig: string): -1 {
    this.carry = term < 0 ? [] : [Buffer.from(buf.subarray(pos))];
    this.carryLen = buf.length - pos;
    this.carryTerm = term;
    this.carryErr = tooBig;
    return term < 0 && this.carryLen > this.maxInline ? this.fail(tooBig) : -1;
  }

  /**
   * The incomplete command's bytes buf[from, to) outlive this chunk: copy them, and point the
   * args that lie in them (this chunk's bulks of the command) at the copy.
   */
  private keep(buf: Buffer, from: number, to: number): void {
    const copy = Buffer.from(buf.subarray(from, to));
    const base = buf.byteOffset + from;
    const args = this.args;
    for (let i = this.chunkArgs; i < args.length; i++) {
      const a = args[i]!;
      const at = a.byteOffset - base;
      if (at >= 0 && at + a.length <= copy.length && a.buffer === buf.buffer) {
        args[i] = copy.subarray(at, at + a.length);
      }
    }
    this.chunkArgs = args.length;
    this.pushRaw(copy);
  }

  private pushRaw(b: Buffer): void {
    this.rawParts.push(b);
    this.rawLen += b.length;
  }

  private emit(buf: Buffer, from: number, to: number, args: Buffer[], inline: boolean): void {
    let raw: Buffer[];
    if (this.rawParts.length === 0) {
      // A view costs more than the parse: a command that is the whole chunk is the chunk.
      raw = [from === 0 && to === buf.length ? buf : buf.subarray(from, to)];
    } else {
      raw = this.rawParts;
      if (to > from) raw.push(buf.subarray(from, to));
      this.rawParts = [];
      this.rawLen = 0;
    }
    this.on({ args, raw, inline });
  }

  private fail(msg: string): -1 {
    this.err = msg;
    this.drop();
    return -1;
  }

  /** Lets go of everything held for the incomplete command. */
  private drop(): void {
    this.mbLeft = 0;
    this.bulkLen = -1;
    this.args = [];
    this.chunkArgs = 0;
    this.rawParts = [];
    this.rawLen = 0;
    this.carry = [];
    this.carryLen = 0;
    this.fill = undefined;
    this.fillPos = 0;
  }
}
