// Reply framing: find where each upstream reply ends, without decoding it.
//
// The proxy forwards upstream bytes verbatim and only needs reply boundaries (to pair replies
// with pipelined requests), so this is a byte-level state machine that may stop at any byte and
// resume with the next chunk. State = the parse state of the current element plus a stack of
// "children still expected" for each open aggregate. An attribute (`|N`) is modelled as an
// aggregate of 2N + 1 children: its N key/value pairs plus the element it annotates, so
// "attribute + element" completes as one element, at the top level or nested.
// Only framing is validated (type bytes, lengths, CRLF placement); line contents are not parsed.

export class FramingError extends Error {
  override name = 'FramingError';
}

const CR = 13;
const LF = 10;

const ST_TYPE = 0; // expecting a type byte
const ST_LINE = 1; // inside a line-type element, looking for its CR
const ST_LF = 2; // expecting the LF that ends the current element
const ST_LEN = 3; // reading the length of a `$ ! = * ~ > % |` header
const ST_LEN_LF = 4; // expecting the LF of that header
const ST_BULK = 5; // skipping bulk payload bytes
const ST_BULK_CR = 6; // expecting the CR after bulk payload
const DONE = -1; // pseudo-state: the current element just ended

// Lookup by type byte: what kind of element it starts (0 = not a RESP type).
const K_LINE = 1;
const K_BULK = 2;
const K_AGG = 3; // N children
const K_PAIRS = 4; // 2N children (map)
const K_ATTR = 5; // 2N + 1 children (attribute + the element it annotates)
const KIND = new Uint8Array(256);
for (const c of '+-:_#,(') KIND[c.charCodeAt(0)] = K_LINE;
for (const c of '$!=') KIND[c.charCodeAt(0)] = K_BULK;
for (const c of '*~>') KIND[c.charCodeAt(0)] = K_AGG;
KIND['%'.charCodeAt(0)] = K_PAIRS;
KIND['|'.charCodeAt(0)] = K_ATTR;

// 15 digits keep every length exact in a double; no real reply comes close.
const MAX_LEN_DIGITS = 15;

function fail(msg: string, chunk: Buffer, pos: number): never {
  throw new FramingError(`${msg} (byte 0x${(chunk[pos] ?? 0).toString(16)} at offset ${pos})`);
}

export class ReplyFramer {
  private state = ST_TYPE;
  private kind = 0; // kind of the header being read
  private num = 0; // header length accumulated so far
  private digits = 0; // digits seen in the header
  private neg = false; // header started with '-'
  private remaining = 0; // bulk payload bytes still to skip
  private stack = new Float64Array(16); // children still expected, per open aggregate
  private depth = 0;

  /** True while a reply is in progress (a previous call returned -1 mid-reply). */
  get inReply(): boolean {
    return this.state !== ST_TYPE || this.depth > 0;
  }

  /** Forget any partial reply (e.g. after reconnecting upstream). */
  reset(): void {
    this.state = ST_TYPE;
    this.depth = 0;
  }

  /**
   * Scans `chunk` from `offset`. Returns the index just past the end of the next complete
   * top-level reply, or -1 when the chunk ends inside a reply (the state carries over to the
   * next call, which must pass the next chunk at offset 0). Throws FramingError on non-RESP.
   */
  next(chunk: Buffer, offset: number): number {
    const end = chunk.length;
    let pos = offset;
    let state = this.state;
    while (pos < end) {
      switch (state) {
        case ST_TYPE: {
          const kind = KIND[chunk[pos]!]!;
          if (kind === K_LINE) {
            state = ST_LINE;
          } else if (kind !== 0) {
            this.kind = kind;
            this.num = 0;
            this.digits = 0;
            this.neg = false;
            state = ST_LEN;
          } else {
            fail('invalid RESP type byte', chunk, pos);
          }
          pos++;
          break;
        }
        case ST_LINE: {
          const cr = chunk.indexOf(CR, pos);
          if (cr === -1) {
            pos = end;
          } else {
            pos = cr + 1;
            state = ST_LF;
          }
          break;
        }
        case ST_LF:
        case ST_LEN_LF: {
          if (chunk[pos] !== LF) fail('expected LF after CR', chunk, pos);
          pos++;
          state = state === ST_LF ? DONE : this.headerDone(chunk, pos);
          if (state === DONE) {
            state = ST_TYPE;
            if (this.elementDone()) {
              this.state = ST_TYPE;
              return pos;
            }
          }
          break;
        }
        case ST_LEN: {
          // Lengths are a few bytes: a byte loop keeps resumption trivial and allocates nothing.
          let num = this.num;
          let digits = this.digits;
          while (pos < end) {
            const b = chunk[pos]!;
            if (b >= 48 && b <= 57) {
              num = num * 10 + (b - 48);
              if (++digits > MAX_LEN_DIGITS) fail('length too long', chunk, pos);
            } else if (b === CR && digits > 0) {
              state = ST_LEN_LF;
              pos++;
              break;
            } else if (b === 45 && digits === 0 && !this.neg) {
              this.neg = true;
            } else {
              fail('invalid length', chunk, pos);
            }
            pos++;
          }
          this.num = num;
          this.digits = digits;
          break;
        }
        case ST_BULK: {
          // Skip payload by arithmetic: a huge bulk costs O(chunks), whatever its content.
          const avail = end - pos;
          if (avail < this.remaining) {
            this.remaining -= avail;
            pos = end;
          } else {
            pos += this.remaining;
            this.remaining = 0;
            state = ST_BULK_CR;
          }
          break;
        }
        default: {
          // ST_BULK_CR
          if (chunk[pos] !== CR) fail('bulk payload not followed by CRLF', chunk, pos);
          pos++;
          state = ST_LF;
        }
      }
    }
    this.state = state;
    return -1;
  }

  /** A length header ended: the next state, or DONE for a null or empty element. */
  private headerDone(chunk: Buffer, pos: number): number {
    const num = this.num;
    if (this.neg) {
      // RESP2 nulls (`$-1`, `*-1`); hiredis accepts -1 for every sized type, so do we.
      if (num !== 1) fail('negative length', chunk, pos - 1);
      return DONE;
    }
    const kind = this.kind;
    if (kind === K_BULK) {
      this.remaining = num;
      return ST_BULK;
    }
    const children = kind === K_AGG ? num : kind === K_PAIRS ? num * 2 : num * 2 + 1;
    if (children === 0) return DONE;
    if (this.depth === this.stack.length) {
      const grown = new Float64Array(this.stack.length * 2);
      grown.set(this.stack);
      this.stack = grown;
    }
    this.stack[this.depth++] = children;
    return ST_TYPE;
  }

  /** One element ended: pop every aggregate it completes. True when the top-level reply ended. */
  private elementDone(): boolean {
    const stack = this.stack;
    let d = this.depth;
    while (d > 0) {
      const left = stack[d - 1]! - 1;
      if (left > 0) {
        stack[d - 1] = left;
        this.depth = d;
        return false;
      }
      d--;
    }
    this.depth = 0;
    return true;
  }
}
