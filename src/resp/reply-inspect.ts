// Helpers over one complete reply (pub/sub confirmations, MONITOR, COMMAND and EXEC splicing):
// the kind of an array reply, a flat array decoded, an aggregate split into its children.
// They see far fewer replies than the framer (reply-framer.ts, which also finds where each of
// their elements ends), so they favour simplicity over zero allocation.
import { FramingError, ReplyFramer } from './reply-framer.js';

const CR = 13;
const LF = 10;

const scratch = new ReplyFramer();

/** End of the element at `pos` (with any attribute prefix), or -1 if malformed or incomplete. */
function skipElement(buf: Buffer, pos: number): number {
  scratch.reset();
  try {
    return pos < buf.length ? scratch.next(buf, pos) : -1;
  } catch (err) {
    if (err instanceof FramingError) return -1;
    throw err;
  }
}

/** type byte, the number after it (NaN if none), index of its CR, index past its CRLF */
type Header = { type: number; n: number; cr: number; end: number };

function readHeader(buf: Buffer, pos: number): Header | undefined {
  const cr = buf.indexOf(CR, pos + 1);
  if (pos >= buf.length || cr === -1 || buf[cr + 1] !== LF) return undefined;
  let i = buf[pos + 1] === 45 ? pos + 2 : pos + 1;
  let n = i < cr ? 0 : Number.NaN;
  for (; i < cr; i++) {
    const d = buf[i]! - 48;
    n = d >= 0 && d <= 9 ? n * 10 + d : Number.NaN;
  }
  return { type: buf[pos]!, n: buf[pos + 1] === 45 ? -n : n, cr, end: cr + 2 };
}

/** Header of the element at 0 after skipping attributes (`|N` + 2N elements) before it. */
function mainHeader(buf: Buffer): Header | undefined {
  let h = readHeader(buf, 0);
  while (h && h.type === 124 && h.n >= 0) {
    let pos = h.end;
    for (let i = 0; i < h.n * 2 && pos !== -1; i++) pos = skipElement(buf, pos);
    h = pos === -1 ? undefined : readHeader(buf, pos);
  }
  return h;
}

/** Header of a non-null `*` or `>` (push) reply, else undefined. */
function arrayHeader(reply: Buffer): Header | undefined {
  const h = mainHeader(reply);
  return h && (h.type === 42 || h.type === 62) && h.n >= 0 ? h : undefined;
}

/** For an array/push reply whose first element is a bulk or simple string: that string lower-cased. */
export function replyKind(reply: Buffer): string | undefined {
  const h = arrayHeader(reply);
  const first = h && h.n > 0 ? readHeader(reply, h.end) : undefined;
  if (first?.type === 43) return reply.toString('latin1', h!.end + 1, first.cr).toLowerCase();
  if (first?.type !== 36 || !(first.n >= 0) || first.end + first.n > reply.length) return undefined;
  return reply.toString('latin1', first.end, first.end + first.n).toLowerCase();
}

/**
 * Decodes an array/push of bulk strings, simple strings, integers and nulls (e.g. pub/sub
 * confirmations such as [subscribe, channel, count]); undefined for anything else.
 * Strings are copied so callers never pin the socket chunk the reply was sliced from.
 */
export function decodeFlatArray(reply: Buffer): (Buffer | number | null)[] | undefined {
  const h = arrayHeader(reply);
  if (!h) return undefined;
  const out: (Buffer | number | null)[] = [];
  let pos = h.end;
  for (let i = 0; i < h.n; i++) {
    const start = pos;
    const e = readHeader(reply, start);
    if (!e) return undefined;
    pos = e.end;
    if (e.type === 36 && e.n >= 0) {
      pos += e.n + 2;
      if (reply[pos - 2] !== CR || reply[pos - 1] !== LF) return undefined;
      out.push(Buffer.from(reply.subarray(e.end, pos - 2)));
    } else if (e.type === 43) out.push(Buffer.from(reply.subarray(start + 1, e.cr)));
    else if (e.type === 58 && !Number.isNaN(e.n)) out.push(e.n);
    else if (e.type === 95 ? e.cr === start + 1 : (e.type === 36 || e.type === 42) && e.n === -1)
      out.push(null);
    else return undefined;
  }
  return pos === reply.length ? out : undefined;
}

export type AggregateSplit = {
  type: string;
  count: number;
  headerEnd: number;
  children: Array<[number, number]>;
};

/**
 * Splits an aggregate reply (`* ~ > %`) into its header and the byte ranges of its top-level
 * children (each including any attribute prefix). `count` is the header's number (pairs for a
 * map, -1 for a null array); bytes [0, headerEnd) are any attribute prefix plus the header line.
 */
export function splitAggregate(reply: Buffer): AggregateSplit | undefined {
  const h = mainHeader(reply);
  // `* ~ >`: N children; `%`: N pairs.
  const pairs = h?.type === 37;
  if (!h || !(pairs || h.type === 42 || h.type === 126 || h.type === 62) || !(h.n >= -1))
    return undefined;
  const children: Array<[number, number]> = [];
  const total = h.n < 0 ? 0 : pairs ? h.n * 2 : h.n;
  let pos = h.end;
  for (let i = 0; i < total; i++) {
    const end = skipElement(reply, pos);
    if (end === -1) return undefined;
    children.push([pos, end]);
    pos = end;
  }
  return { type: String.fromCharCode(h.type), count: h.n, headerEnd: h.end, children };
}
