// Incremental parser for client requests, mirroring Redis 7.0 networking.c (processInputBuffer,
// processInlineBuffer, processMultibulkBuffer) and sds.c (sdssplitargs, util.c string2ll).
//
// Model: feed() walks each chunk in place; args and raw slices are views of the chunks (zero copy).
// Between chunks the parser keeps Redis's own state (bulks left in the multibulk, length of the
// next bulk) plus at most one of two buffers, so nothing is ever re-scanned or copied twice:
//   - carry: a header/inline line cut by a chunk boundary. Later chunks are only searched for its
//     terminator; the line is joined (<= maxInlineSize + 2 bytes) once that turns up.
//   - fill: a bulk value cut by a chunk boundary, copied once into a buffer of its final size.
//
// Two Redis details that look odd but are mirrored on purpose, so that the proxy never disagrees
// with the server behind it about where a command ends:
//   - Redis finds line ends with strchr(), which stops at a NUL byte: a line with a NUL before its
//     terminator never completes; Redis waits until maxInlineSize is exceeded, then fails.
//   - The two bytes after a bulk value, and the byte after a header's '\r', are skipped unchecked.
import { constants } from 'node:buffer';

/** One complete client command. */
export interface ParsedCommand {
  /** argv; views into the received chunks where possible (zero copy). */
  args: Buffer[];
  /** The exact bytes of this command as received, in order (one slice when it lay in one chunk). */
  raw: Buffer[];
  inline: boolean;
}

export interface ParserLimits {
  maxInlineSize: number;
  maxMultibulkLength: number;
  maxBulkLength: number;
}

/**
 * Limits that depend on who asks and where the request goes (an upstream's
 * own proto-max-bulk-len, Redis's limits for unauthenticated clients). They
 * are consulted only above Redis's smallest limits, 10 arguments and 16 KB,
 * so the common request never pays for them. Each returns a protocol error
 * message (without the "Protocol error: " prefix) to refuse the request, or
 * undefined.
 */
export interface RequestPolicy {
  multibulk(count: number): string | undefined;
  bulk(length: number): string | undefined;
}

/** Redis 7.0: PROTO_INLINE_MAX_SIZE, INT_MAX, proto-max-bulk-len. */
export const DEFAULT_LIMITS: ParserLimits = Object.freeze({
  maxInlineSize: 64 * 1024,
  maxMultibulkLength: 2147483647,
  maxBulkLength: 512 * 1024 * 1024,
});

const [LF, CR, DQ, DOLLAR, SQ, STAR, BSLASH] = [10, 13, 34, 36, 39, 42, 92] as const;

export class RequestParser {
  private readonly maxInline: number;
  private readonly maxMultibulk: number;
  private readonly maxBulk: number;
  private err: string | undefined = undefined;
  /** Bulks still expected by the current multibulk command; 0 between commands. */
  private mbLeft = 0;
  /** Length of the next bulk once its `$` line is read, else -1 (Redis's c->bulklen). */
  private bulkLen = -1;
  private args: Buffer[] = [];
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
  }

  /** Bytes received for the incomplete command (for memory accounting). */
  get pendingBytes(): number {
    return this.err !== undefined ? 0 : this.rawLen + this.carryLen + this.fillPos;
  }

  /**
   * Parses as many complete commands as `chunk` (with what earlier calls left incomplete) holds,
   * calling onCommand for each in order. Returns undefined, or a protocol error message (without
   * the "ERR Protocol error: " prefix; encode it as latin1, as it may quote a raw byte). After an
   * error the parser is dead: later calls return the same error and emit nothing.
   */
  feed(chunk: Buffer, onCommand: (cmd: ParsedCommand) => void): string | undefined {
    if (this.err === undefined && !this.stopped && chunk.length > 0) {
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
    while (pos < len && !this.stopped) {
      if (this.mbLeft === 0) {
        start = pos;
        if (buf[pos] !== STAR) {
          pos = this.inline(buf, pos);
          if (pos < 0) return;
          continue;
        }
        const n = this.header(buf, pos, STAR, 'too big mbulk count string');
        if (this.next < 0) return;
        if (!(n <= this.maxMultibulk)) return void this.fail('invalid multibulk length');
        if (n > 10 && this.policy !== undefined) {
          const refused = this.policy.multibulk(n);
          if (refused !== undefined) return void this.fail(refused);
        }
        pos = this.next;
        if (n > 0) this.mbLeft = n; // a count <= 0 is consumed and runs nothing
      } else if (this.bulkLen < 0) {
        const n = this.header(buf, pos, DOLLAR, 'too big bulk count string');
        if (this.next < 0) break;
        if (!(n >= 0 && n <= this.maxBulk)) return void this.fail('invalid bulk length');
        if (n > 16384 && this.policy !== undefined) {
          const refused = this.policy.bulk(n);
          if (refused !== undefined) return void this.fail(refused);
        }
        this.bulkLen = n;
        pos = this.next;
      } else {
        const need = this.bulkLen + 2;
        if (len - pos < need) {
          if (pos > start) this.pushRaw(buf.subarray(start, pos));
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
      this.rest = buf.subarray(pos);
      return;
    }
    if (this.mbLeft > 0 && pos > start && this.err === undefined) {
      this.pushRaw(buf.subarray(start, pos));
    }
  }

  /** Stores a finished bulk; if it was the last, emits the command ending with buf[from, to). */
  private bulkDone(arg: Buffer, buf: Buffer, from: number, to: number): void {
    this.args.push(arg);
    this.bulkLen = -1;
    if (--this.mbLeft > 0) return;
    const args = this.args;
    this.args = [];
    this.emit(buf, from, to, args, false);
  }

  /** An inline request at pos; returns where the next request starts, or -1 to stop. */
  private inline(buf: Buffer, pos: number): number {
    const nl = buf.indexOf(LF, pos);
    if ((nl < 0 ? buf.length : nl) - pos > this.maxInline)
      return this.fail('too big inline request');
    if (nl < 0) return this.hold(buf, pos, LF, 'too big inline request');
    const end = nl > pos && buf[nl - 1] === CR ? nl - 1 : nl;
    const args: Buffer[] = [];
    let r = splitArgs(buf, pos, end, args);
    // splitArgs stops at its first error; a NUL later in the line still makes Redis wait.
    if (r === SPLIT_ERR && buf.subarray(pos, end).indexOf(0) >= 0) r = SPLIT_NUL;
    if (r === SPLIT_NUL) return this.hold(buf, pos, -1, 'too big inline request');
    if (r === SPLIT_ERR) return this.fail('unbalanced quotes in request');
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
    if (ok && span <= this.maxInline && (span === 2 || buf[pos + 1] !== 48)) {
      this.next = i + 2;
      return v;
    }
    // Slow path, in Redis's order of checks.
    this.next = -1;
    const t = buf.indexOf(CR, pos);
    if ((t < 0 ? len : t) - pos > this.maxInline) return this.fail(tooBig);
    if (t < 0 || t + 1 >= len) return this.hold(buf, pos, CR, tooBig);
    if (buf.subarray(pos, t).indexOf(0) >= 0) return this.hold(buf, pos, -1, tooBig);
    const first = buf[pos]!;
    if (first !== lead) {
      // Redis formats the byte with %c, then maps CR/LF in error replies to spaces.
      return this.fail(
        `expected '$', got '${String.fromCharCode(first === CR || first === LF ? 32 : first)}'`,
      );
    }
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
      const a = term < 0 ? -1 : chunk.indexOf(term);
      if (this.carryLen + (a < 0 ? chunk.length : a) > this.maxInline)
        return this.fail(this.carryErr);
      if (a < 0 || (term === CR && a + 1 >= chunk.length)) {
        if (term >= 0) this.carry.push(Buffer.from(chunk));
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
      this.rest = chunk.subarray(end);
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

  private pushRaw(b: Buffer): void {
    this.rawParts.push(b);
    this.rawLen += b.length;
  }

  private emit(buf: Buffer, from: number, to: number, args: Buffer[], inline: boolean): void {
    let raw: Buffer[];
    if (this.rawParts.length === 0) {
      raw = [buf.subarray(from, to)];
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
    return -1;
  }
}

/** Redis string2ll() over [s, e): NaN where it fails. */
function string2ll(b: Buffer, s: number, e: number): number {
  if (e - s === 0 || e - s >= 21) return Number.NaN;
  if (e - s === 1 && b[s] === 48) return 0;
  const neg = b[s] === 45;
  if (neg && ++s === e) return Number.NaN;
  if (b[s]! < 49 || b[s]! > 57) return Number.NaN; // first digit 1-9
  let v = 0;
  for (let i = s; i < e; i++) {
    const d = b[i]! - 48;
    if (d < 0 || d > 9) return Number.NaN;
    v = v * 10 + d;
  }
  // Beyond 2^53 doubles are inexact, so the int64 range check compares digits.
  if (e - s > 19 || (e - s === 19 && b.toString('latin1', s, e) > (neg ? LLONG_MIN : LLONG_MAX))) {
    return Number.NaN;
  }
  return neg ? -v : v;
}
const LLONG_MAX = '9223372036854775807';
const LLONG_MIN = '9223372036854775808';

const [SPLIT_OK, SPLIT_ERR, SPLIT_NUL] = [0, 1, 2] as const;

/** C isspace() in the C locale. */
const isSpace = (c: number): boolean => c === 32 || (c >= 9 && c <= 13);
/** Byte i of the C string ending at e: reading past the end yields its terminating NUL. */
const at = (b: Buffer, i: number, e: number): number => (i < e ? b[i]! : 0);

const hexVal = (c: number): number => (c <= 57 ? c - 48 : (c | 32) - 87);
const isHex = (c: number): boolean => (c >= 48 && c <= 57) || ((c | 32) >= 97 && (c | 32) <= 102);

/**
 * sdssplitargs() over the line [p, e), pushing args to out. A NUL inside the line yields SPLIT_NUL
 * (Redis would never have found this line's end). Plain tokens are views; quoted ones are decoded.
 */
function splitArgs(b: Buffer, p: number, e: number, out: Buffer[]): number {
  for (;;) {
    while (p < e && isSpace(b[p]!)) p++;
    if (p >= e) return SPLIT_OK;
    const start = p;
    let c = 0;
    for (; p < e; p++) {
      c = b[p]!;
      if (c === 32 || c === 10 || c === 13 || c === 9 || c === 0 || c === DQ || c === SQ) break;
    }
    // Unquoted tokens end only at these four (not at \v or \f, unlike the skipping above).
    if (p >= e || c === 32 || c === 10 || c === 13 || c === 9) {
      out.push(b.subarray(start, p));
      p++;
      continue;
    }
    if (c === 0) return SPLIT_NUL;
    // A quote opens (possibly mid-token: a"b c" is one arg); the token ends at its closing quote.
    const q = c;
    const tok = Buffer.allocUnsafe(e - start); // decoding never grows the text
    let n = b.copy(tok, 0, start, p);
    for (p++; ; p++) {
      c = at(b, p, e);
      if (c === 0 && p < e) return SPLIT_NUL;
      if (c === 0) return SPLIT_ERR; // unterminated quotes
      if (c === q) {
        const nx = at(b, p + 1, e);
        if (nx !== 0 && !isSpace(nx)) return SPLIT_ERR; // closing quote must end the token
        p++;
        break;
      }
      if (c !== BSLASH) {
        tok[n++] = c;
      } else if (q === SQ) {
        if (at(b, p + 1, e) === SQ) p++; // \' is the only escape in single quotes
        tok[n++] = b[p]!;
      } else if (at(b, p + 1, e) === 120 && isHex(at(b, p + 2, e)) && isHex(at(b, p + 3, e))) {
        tok[n++] = hexVal(b[p + 2]!) * 16 + hexVal(b[p + 3]!);
        p += 3;
      } else if (at(b, p + 1, e) !== 0) {
        p++;
        const x = b[p]!;
        tok[n++] =
          x === 110 ? 10 : x === 114 ? 13 : x === 116 ? 9 : x === 98 ? 8 : x === 97 ? 7 : x;
      } else {
        tok[n++] = c; // a lone backslash; the quote then ends unterminated
      }
    }
    out.push(tok.subarray(0, n));
  }
}
