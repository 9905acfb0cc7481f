// Byte-exact ports of the two Redis routines the request parser leans on: util.c string2ll()
// (the numbers of `*<n>` and `$<n>` lines) and sds.c sdssplitargs() (the arguments of an inline
// request), from Redis 7.0. They work on a Buffer range in place and never allocate for the
// common case. C details that matter: isspace() is the C locale's (Redis sets only LC_COLLATE),
// and sdssplitargs reads its line as a C string, so a NUL ends it.

/** Redis string2ll() over [s, e): NaN where it fails. */
export function string2ll(b: Buffer, s: number, e: number): number {
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

const [DQ, SQ, BSLASH] = [34, 39, 92] as const;

/** splitArgs results; SPLIT_NUL: the line holds a NUL, so Redis would never have found its end. */
export const [SPLIT_OK, SPLIT_ERR, SPLIT_NUL] = [0, 1, 2] as const;

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
export function splitArgs(b: Buffer, p: number, e: number, out: Buffer[]): number {
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
