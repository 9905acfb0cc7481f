// The one writer for replies the proxy makes itself (as opposed to upstream bytes it relays).
//
// Handlers build a typed Reply; encodeReply renders it for the client's protocol, downgrading
// RESP3-only types the way Redis 7.0 does for RESP2 clients (networking.c addReply*): map ->
// flat array of 2N, set -> array, double -> bulk string, bool -> integer, verbatim -> bulk.
// Encoding is two passes (size, then write) so every reply is exactly one allocation.

export type Proto = 2 | 3;

export type Reply =
  | { t: 'simple'; v: string }
  | { t: 'error'; v: string | Buffer } // with its code ("ERR syntax error"); a Buffer goes out as its bytes
  | { t: 'int'; v: number | bigint }
  | { t: 'bulk'; v: Buffer | string }
  | { t: 'null' } // RESP2 `$-1`, RESP3 `_`
  | { t: 'nullArray' } // RESP2 `*-1`, RESP3 `_`
  | { t: 'array'; v: Reply[] }
  | { t: 'set'; v: Reply[] }
  | { t: 'map'; v: Array<[Reply, Reply]> }
  | { t: 'double'; v: number }
  | { t: 'bool'; v: boolean }
  | { t: 'verbatim'; format: string; v: string } // format: 3 chars, e.g. "txt"
  | { t: 'raw'; v: Buffer }; // already encoded, written as is

export const R = {
  ok: { t: 'simple', v: 'OK' } as Reply,
  null: { t: 'null' } as Reply,
  nullArray: { t: 'nullArray' } as Reply,
  simple: (v: string): Reply => ({ t: 'simple', v }),
  error: (v: string | Buffer): Reply => ({ t: 'error', v }),
  int: (v: number | bigint): Reply => ({ t: 'int', v }),
  bulk: (v: Buffer | string): Reply => ({ t: 'bulk', v }),
  array: (v: Reply[]): Reply => ({ t: 'array', v }),
  set: (v: Reply[]): Reply => ({ t: 'set', v }),
  map: (v: Array<[Reply, Reply]>): Reply => ({ t: 'map', v }),
  double: (v: number): Reply => ({ t: 'double', v }),
  bool: (v: boolean): Reply => ({ t: 'bool', v }),
  verbatim: (v: string, format = 'txt'): Reply => ({ t: 'verbatim', format, v }),
  raw: (v: Buffer): Reply => ({ t: 'raw', v }),
} as const;

/** Encodes one reply for the client's protocol into a single Buffer. */
/**
 * The header line of an aggregate whose elements are already encoded (a reply
 * spliced from upstream bytes): `type` is its RESP type byte ('*', '%', '~',
 * '>'), `count` its elements (pairs, for a map).
 */
export function aggregateHeader(type: string, count: number): Buffer {
  return Buffer.from(`${type}${count}\r\n`, 'latin1');
}

export function encodeReply(reply: Reply, proto: Proto): Buffer {
  // The hot case (a cached value) skips the generic two passes.
  if (reply.t === 'bulk' && typeof reply.v !== 'string') return encodeBufferBulk(reply.v);
  const buf = Buffer.allocUnsafe(sizeOf(reply, proto));
  const end = write(reply, proto, buf, 0);
  // Cheap insurance: sizeOf and write must agree, or we would leak uninitialised memory.
  if (end !== buf.length) throw new Error(`encodeReply size mismatch: ${end} != ${buf.length}`);
  return buf;
}

/** `$<len>\r\n<bytes>\r\n`, the same in RESP2 and RESP3. */
function encodeBufferBulk(v: Buffer): Buffer {
  const buf = Buffer.allocUnsafe(bulkSize(v.length));
  let pos = writeDecimal(buf, 1, v.length);
  buf[0] = 0x24; // $
  buf[pos++] = 13;
  buf[pos++] = 10;
  buf.set(v, pos);
  pos += v.length;
  buf[pos++] = 13;
  buf[pos] = 10;
  return buf;
}

/** ASCII digits of a non-negative integer at `pos`, without a string; returns the end. */
function writeDecimal(buf: Buffer, pos: number, n: number): number {
  const end = pos + digitCount(n);
  for (let i = end; i > pos; n = Math.floor(n / 10)) buf[--i] = 48 + (n % 10);
  return end;
}

// Line-type payloads cannot hold CR/LF; Redis replaces them with spaces (addReplyErrorFormat).
function lineText(s: string): string {
  return s.includes('\r') || s.includes('\n') ? s.replace(/[\r\n]/g, ' ') : s;
}

// The error code is the text's first word; tolerate callers that already wrote the '-'.
function errorText(s: string): string {
  return lineText(s.startsWith('-') ? s.slice(1) : s);
}

// The same for an error given as bytes (it may quote a raw byte, e.g. a protocol error).
function errorBytes(b: Buffer): Buffer {
  const v = b[0] === 0x2d ? b.subarray(1) : b;
  if (v.indexOf(13) < 0 && v.indexOf(10) < 0) return v;
  const out = Buffer.from(v);
  for (let i = 0; i < out.length; i++) if (out[i] === 13 || out[i] === 10) out[i] = 32;
  return out;
}

function intText(v: number | bigint): string {
  if (typeof v === 'number' && !Number.isInteger(v)) throw new RangeError(`not an integer: ${v}`);
  return String(v);
}

function verbatimFormat(format: string): string {
  if (!/^[\x21-\x7e]{3}$/.test(format)) throw new RangeError(`bad verbatim format: ${format}`);
  return format;
}

function digitCount(n: number): number {
  let d = 1;
  while (n >= 10) {
    n = Math.floor(n / 10);
    d++;
  }
  return d;
}

function byteLen(v: Buffer | string): number {
  return typeof v === 'string' ? Buffer.byteLength(v, 'utf8') : v.length;
}

/** `<prefix><n>\r\n` */
const headerSize = (n: number): number => (n < 0 ? 2 : 1) + digitCount(Math.abs(n)) + 2;
/** `<prefix><len>\r\n<payload>\r\n` */
const bulkSize = (len: number): number => headerSize(len) + len + 2;

function sizeOf(r: Reply, proto: Proto): number {
  switch (r.t) {
    case 'simple':
      return 3 + Buffer.byteLength(lineText(r.v), 'utf8');
    case 'error':
      return (
        3 + (typeof r.v === 'string' ? Buffer.byteLength(errorText(r.v)) : errorBytes(r.v).length)
      );
    case 'int':
      return 3 + intText(r.v).length;
    case 'bulk':
      return bulkSize(byteLen(r.v));
    case 'null':
    case 'nullArray':
      return proto === 3 ? 3 : 5;
    case 'array':
    case 'set': {
      let n = headerSize(r.v.length);
      for (const c of r.v) n += sizeOf(c, proto);
      return n;
    }
    case 'map': {
      let n = headerSize(proto === 3 ? r.v.length : r.v.length * 2);
      for (const [k, v] of r.v) n += sizeOf(k, proto) + sizeOf(v, proto);
      return n;
    }
    case 'double': {
      const s = formatDouble(r.v);
      return proto === 3 ? 3 + s.length : bulkSize(s.length);
    }
    case 'bool':
      return 4; // `#t\r\n` or `:1\r\n`
    case 'verbatim': {
      const len = Buffer.byteLength(r.v, 'utf8');
      return proto === 3 ? bulkSize(len + 4) : bulkSize(len);
    }
    case 'raw':
      return r.v.length;
  }
}

function writeLine(buf: Buffer, pos: number, prefix: string, text: string | Buffer): number {
  buf[pos++] = prefix.charCodeAt(0);
  pos += typeof text === 'string' ? buf.write(text, pos, 'utf8') : text.copy(buf, pos);
  buf[pos++] = 13;
  buf[pos++] = 10;
  return pos;
}

function writeBulk(buf: Buffer, pos: number, prefix: string, v: Buffer | string): number {
  buf[pos] = prefix.charCodeAt(0);
  pos = writeDecimal(buf, pos + 1, byteLen(v));
  buf[pos++] = 13;
  buf[pos++] = 10;
  if (typeof v === 'string') pos += buf.write(v, pos, 'utf8');
  else {
    buf.set(v, pos);
    pos += v.length;
  }
  buf[pos++] = 13;
  buf[pos++] = 10;
  return pos;
}

function write(r: Reply, proto: Proto, buf: Buffer, pos: number): number {
  switch (r.t) {
    case 'simple':
      return writeLine(buf, pos, '+', lineText(r.v));
    case 'error':
      if (typeof r.v === 'string') return writeLine(buf, pos, '-', errorText(r.v));
      return writeLine(buf, pos, '-', errorBytes(r.v));
    case 'int':
      return writeLine(buf, pos, ':', intText(r.v));
    case 'bulk':
      return writeBulk(buf, pos, '$', r.v);
    case 'null':
      return proto === 3 ? writeLine(buf, pos, '_', '') : writeLine(buf, pos, '$', '-1');
    case 'nullArray':
      return proto === 3 ? writeLine(buf, pos, '_', '') : writeLine(buf, pos, '*', '-1');
    case 'array':
    case 'set': {
      const prefix = r.t === 'set' && proto === 3 ? '~' : '*';
      pos = writeLine(buf, pos, prefix, String(r.v.length));
      for (const c of r.v) pos = write(c, proto, buf, pos);
      return pos;
    }
    case 'map': {
      const n = r.v.length;
      pos =
        proto === 3 ? writeLine(buf, pos, '%', String(n)) : writeLine(buf, pos, '*', String(n * 2));
      for (const [k, v] of r.v) pos = write(v, proto, buf, write(k, proto, buf, pos));
      return pos;
    }
    case 'double': {
      const s = formatDouble(r.v);
      return proto === 3 ? writeLine(buf, pos, ',', s) : writeBulk(buf, pos, '$', s);
    }
    case 'bool':
      if (proto === 3) return writeLine(buf, pos, '#', r.v ? 't' : 'f');
      return writeLine(buf, pos, ':', r.v ? '1' : '0');
    case 'verbatim':
      if (proto === 2) return writeBulk(buf, pos, '$', r.v);
      return writeBulk(buf, pos, '=', `${verbatimFormat(r.format)}:${r.v}`);
    case 'raw':
      return pos + r.v.copy(buf, pos);
  }
}

/**
 * Formats a double exactly like Redis 7.0 (`%.17g` from glibc, explicit inf/-inf). NaN is
 * printed "nan" (Redis >= 7.2 normalises it so; glibc would print "nan" or "-nan" by sign bit).
 */
export function formatDouble(d: number): string {
  if (Number.isNaN(d)) return 'nan';
  if (d === Number.POSITIVE_INFINITY) return 'inf';
  if (d === Number.NEGATIVE_INFINITY) return '-inf';
  if (d === 0) return Object.is(d, -0) ? '-0' : '0';
  const sign = d < 0 ? '-' : '';
  const [digits, exp] = round17(Math.abs(d));
  // %g: exponent notation when exp < -4 or exp >= precision; trailing zeros dropped.
  if (exp < -4 || exp >= 17) {
    const frac = digits.slice(1).replace(/0+$/, '');
    const e = Math.abs(exp);
    return `${sign}${digits[0]}${frac ? `.${frac}` : ''}e${exp < 0 ? '-' : '+'}${e < 10 ? '0' : ''}${e}`;
  }
  if (exp < 0) return `${sign}0.${'0'.repeat(-exp - 1)}${digits.replace(/0+$/, '')}`;
  const frac = digits.slice(exp + 1).replace(/0+$/, '');
  return `${sign}${digits.slice(0, exp + 1)}${frac ? `.${frac}` : ''}`;
}

/** 17 significant digits of x > 0 rounded like glibc (exact value, ties to even), and the exponent. */
function round17(x: number): [string, number] {
  // toExponential rounds the exact value too, but breaks ties away from zero. A tie means the
  // exact expansion is 18 digits ending in 5; 21 correctly rounded digits ending "5000" flag
  // every candidate, which we then settle exactly.
  const wide = x.toExponential(20);
  if (wide.slice(18, 22) !== '5000') {
    const s = x.toExponential(16);
    const e = s.indexOf('e');
    return [s[0] + s.slice(2, e), Number(s.slice(e + 1))];
  }
  let [digits, exp] = exactDigits(x);
  if (digits.length > 17) {
    const tie = digits.length === 18 && digits[17] === '5';
    const up = tie ? Number(digits[16]) % 2 === 1 : digits.charCodeAt(17) >= 53;
    let head = BigInt(digits.slice(0, 17));
    if (up) head += 1n;
    digits = head.toString();
    if (digits.length > 17) {
      digits = digits.slice(0, 17);
      exp++;
    }
  }
  return [digits.padEnd(17, '0'), exp];
}

/** Exact decimal significand digits (no trailing zeros) and exponent of a finite x > 0. */
function exactDigits(x: number): [string, number] {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  const bits = view.getBigUint64(0);
  const biased = Number((bits >> 52n) & 0x7ffn);
  let mant = bits & 0xfffffffffffffn;
  if (biased !== 0) mant |= 1n << 52n;
  const e2 = (biased === 0 ? 1 : biased) - 1075; // x = mant * 2^e2
  const scaled = e2 >= 0 ? mant << BigInt(e2) : mant * 5n ** BigInt(-e2); // x = scaled * 10^min(e2,0)
  const s = scaled.toString();
  const digits = s.replace(/0+$/, '');
  return [digits, s.length - 1 + Math.min(e2, 0)];
}
