// Case generator for scripts/fuzz-protocol.mjs: one input (bytes) and where to cut it into
// writes, from a seed and a case number alone, so any case can be rebuilt (`--case N`).
//
// A case is a pipeline of commands whose replies are deterministic (PING, ECHO, SET/GET/INCR on
// the case's own keys, unknown commands, wrong arity), each as RESP or as an inline line (plain,
// quoted, LF-only), then mutated: bytes flipped, inserted, deleted, duplicated, the input cut
// short, a `*`/`$` number replaced by a huge, negative, zero-padded or non-numeric one, line ends
// broken, NULs and quotes slipped in. Some cases are glued protocol fragments or random bytes,
// and a few hold lines around the 64 KB limit, where Redis's answer depends on its reads.
// Keys carry an id of the case; `accept` refuses a case whose (mutated) commands would touch keys
// without it, and says which keys to delete so that every run of the case starts alike.
import { mulberry32 } from '../../bench/lib.mjs';

const b = (s) => Buffer.from(s, 'latin1');

/** A generator of random choices for one case. */
export function caseRng(seed, n) {
  const next = mulberry32((Math.imul(seed, 0x9e3779b1) ^ Math.imul(n + 1, 0x85ebca6b)) >>> 0);
  const int = (k) => Math.floor(next() * k);
  return {
    next,
    int,
    chance: (p) => next() < p,
    pick: (xs) => xs[int(xs.length)],
    bytes: (k) => Buffer.from(Array.from({ length: k }, () => int(256))),
  };
}

const WORDS = ['a', 'hello', 'x y', '', 'PING', '"q"', "it's", '\\x41', 'caf\xe9', 'tab\there'];
const NUMBERS = [
  '0',
  '-1',
  '-2',
  '-0',
  '00',
  '01',
  '+1',
  '',
  '-',
  'a',
  '1a',
  ' 1',
  '1 ',
  '0x1',
  '1.5',
  '2147483647',
  '2147483648',
  '-2147483649',
  '9223372036854775807',
  '9223372036854775808',
  '-9223372036854775808',
  '99999999999999999999',
  '536870912',
  '536870913',
  '10',
  '11',
  '16384',
  '16385',
  '1000000',
];
const INTERESTING = [13, 10, 0, 42, 36, 34, 39, 92, 32, 9, 45, 48, 57, 0xff, 0xb2, 0x0b];
// Fragments that make interesting protocol (and protocol errors) when glued at random.
const FRAGMENTS = [
  ...'*|$|\r|\n|\r\n|0|1|2|3|9|-|+| |\t|\v|"|\'|\\|x|a|\0|\xff|PING|ECHO |GET |'.split('|'),
  ...'*1\r\n|*2\r\n|$1\r\n|$0\r\n|*01\r\n|*-1\r\n|$00\r\n|$-1\r\n|$02\r\n|*0\r\n'.split('|'),
  '$4\r\nPING\r\n',
  'PING\r\n',
];

function value(r) {
  const k = r.int(100);
  if (k < 40) return b(r.pick(WORDS));
  if (k < 70) return r.bytes(r.int(12));
  if (k < 85) return b(`v${r.int(1e6)}`);
  if (k < 98) return Buffer.alloc(1 + r.int(20000), 97 + r.int(26));
  return Buffer.alloc(65536 + r.int(80000), 98); // crosses the server's read size
}

/** One command with a deterministic reply, as argv. */
function command(r, keys) {
  const [k1, k2] = keys;
  switch (r.int(14)) {
    case 0:
      return [b('PING')];
    case 1:
      return [b(r.pick(['PING', 'ping', 'PiNg'])), value(r)];
    case 2:
    case 3:
      return [b('ECHO'), value(r)];
    case 4:
      return [b('SET'), k1, value(r)];
    case 5:
      return [b('GET'), r.chance(0.7) ? k1 : k2];
    case 6:
      return [b('INCR'), k2];
    case 7:
      return [b('APPEND'), k1, value(r)];
    case 8:
      return [b(r.pick(['STRLEN', 'EXISTS', 'DEL'])), k1];
    case 9:
      return [b(r.pick(['NOSUCHCMD', 'xyzzy', '', '\xff\x01'])), value(r), value(r)];
    case 10:
      return [b(r.pick(['GET', 'ECHO', 'SET', 'INCR']))]; // wrong arity
    case 11:
      return [b('PING'), b('a'), b('b')]; // wrong arity
    case 12:
      return [b('SET'), k1, value(r), b(r.pick(['NX', 'XX', 'GET', 'BADOPT']))];
    default:
      return [b('GET'), k1, b('extra')];
  }
}

export function multibulk(args) {
  const parts = [b(`*${args.length}\r\n`)];
  for (const a of args) parts.push(b(`$${a.length}\r\n`), a, b('\r\n'));
  return Buffer.concat(parts);
}

/** An inline line: plain tokens where possible, else double or single quotes. */
function inline(r, args) {
  const hex = (c) => {
    const h = c.toString(16).padStart(2, '0');
    return r.chance(0.5) ? h : h.toUpperCase();
  };
  const plain = (a) => a.length > 0 && !/[\s"'\\\0]/.test(a.toString('latin1'));
  const dq = (a) =>
    `"${[...a]
      .map((c) =>
        c === 34 || c === 92
          ? `\\${String.fromCharCode(c)}`
          : c >= 32 && c < 127
            ? String.fromCharCode(c)
            : c === 10 && r.chance(0.5)
              ? '\\n'
              : `\\x${hex(c)}`,
      )
      .join('')}"`;
  const sq = (a) => `'${a.toString('latin1').replace(/'/g, "\\'")}'`;
  const tok = (a) => {
    if (plain(a) && r.chance(0.8)) return a.toString('latin1');
    if (
      !/[\0\n\r]/.test(a.toString('latin1')) &&
      !a.toString('latin1').endsWith('\\') &&
      r.chance(0.3)
    )
      return sq(a);
    return dq(a);
  };
  const sep = () => r.pick([' ', ' ', '  ', '\t', ' \t']);
  const line = args.map(tok).join(sep());
  return b(`${r.chance(0.1) ? ' ' : ''}${line}${r.pick(['\r\n', '\r\n', '\n', ' \r\n'])}`);
}

function encode(r, args) {
  // Inline lines cannot hold a value over the limit; those stay RESP.
  const total = args.reduce((n, a) => n + a.length, 0);
  return r.chance(0.3) && total < 30000 ? inline(r, args) : multibulk(args);
}

/** Offsets of the numbers after `*` and `$` at line starts. */
function numberSpans(buf) {
  const spans = [];
  for (let i = 0; i < buf.length; i++) {
    if ((buf[i] === 42 || buf[i] === 36) && (i === 0 || buf[i - 1] === 10)) {
      let j = i + 1;
      while (j < buf.length && buf[j] !== 13) j++;
      spans.push([i + 1, j]);
    }
  }
  return spans;
}

function mutate(r, buf) {
  const at = () => r.int(buf.length + 1);
  const op = r.int(12);
  if (buf.length === 0) return Buffer.from([r.pick(INTERESTING)]);
  const i = Math.min(at(), buf.length - 1);
  switch (op) {
    case 0:
      return Buffer.concat([buf.subarray(0, i), Buffer.from([r.int(256)]), buf.subarray(i + 1)]);
    case 1: {
      const c = Buffer.from(buf);
      c[i] ^= 1 << r.int(8);
      return c;
    }
    case 2:
    case 3:
      return Buffer.concat([
        buf.subarray(0, i),
        Buffer.from([r.pick(INTERESTING)]),
        buf.subarray(i),
      ]);
    case 4:
      return Buffer.concat([buf.subarray(0, i), buf.subarray(i + 1)]);
    case 5:
      return buf.subarray(0, at()); // cut short
    case 6: {
      const j = Math.min(buf.length, i + 1 + r.int(16));
      return Buffer.concat([buf.subarray(0, j), buf.subarray(i, j), buf.subarray(j)]);
    }
    case 7:
    case 8: {
      const spans = numberSpans(buf);
      if (spans.length === 0) return buf;
      const [s, e] = r.pick(spans);
      const n = r.chance(0.2)
        ? String(Number(buf.toString('latin1', s, e)) + r.pick([-1, 1]))
        : r.pick(NUMBERS);
      return Buffer.concat([buf.subarray(0, s), b(n), buf.subarray(e)]);
    }
    case 9: {
      const crlf = [];
      for (let k = buf.indexOf('\r\n'); k >= 0; k = buf.indexOf('\r\n', k + 1)) crlf.push(k);
      if (crlf.length === 0) return buf;
      const k = r.pick(crlf);
      const rep = r.pick(['\n', '\r', '', '\r\r\n', '\n\r', ' \r\n', '\0\r\n']);
      return Buffer.concat([buf.subarray(0, k), b(rep), buf.subarray(k + 2)]);
    }
    case 10:
      return Buffer.concat([
        buf.subarray(0, i),
        b(r.pick(['"', "'", '\\', '\\x4', '"a"b', '\\"'])),
        buf.subarray(i),
      ]);
    default:
      return Buffer.concat([buf.subarray(0, i), r.bytes(1 + r.int(4)), buf.subarray(i)]);
  }
}

/** Lines around the 64 KB limit (inline, `*`, `$`), with and without their terminator. */
function longLine(r) {
  const L = r.pick([65530, 65535, 65536, 65537, 65540, 70000, 81900, 90000, 100000, 140000]);
  switch (r.int(6)) {
    case 0:
      return b(`*${'1'.repeat(L)}\r\n`);
    case 1:
      return b(`*1\r\n$${'0'.repeat(L)}\r\nPING\r\n`);
    case 2:
      return b(`ECHO ${'x'.repeat(L - 5)}${r.pick(['\r\n', '\n'])}PING\r\n`);
    case 3:
      return b(`*${'2'.repeat(L)}`); // no '\r' at all
    case 4:
      return b(`ECHO a\0${'y'.repeat(L)}\r\n`); // a NUL hides the newline
    default:
      return b(`*1\r\n${r.pick(['$', 'x'])}${'9'.repeat(L)}\r`);
  }
}

/**
 * Case `n` of `seed`: { input, cuts, keys, id } where cuts are the offsets at which the input is split
 * into separate writes. `accept(input, id)` returns the keys the input's commands touch, or
 * undefined to refuse it (a command with other side effects, a key without the case's id); the
 * generator then draws again, deterministically.
 */
export function generate(seed, n, accept) {
  const r = caseRng(seed, n);
  const id = r
    .int(2 ** 32)
    .toString(16)
    .padStart(8, '0');
  const names = [b(`fz:${id}:s`), b(`fz:${id}:n`)];
  for (;;) {
    const input = draw(r, names);
    const keys = accept(input, id);
    if (keys === undefined) continue;
    return { input, cuts: cuts(r, input), keys, id };
  }
}

function draw(r, keys) {
  const pipeline = (k) =>
    Buffer.concat(Array.from({ length: k }, () => encode(r, command(r, keys))));
  const kind = r.int(1000);
  if (kind < 15) return Buffer.concat([pipeline(r.int(2)), longLine(r), pipeline(r.int(2))]);
  if (kind < 150) return pipeline(1 + r.int(6)); // valid
  if (kind < 250)
    return Buffer.from(
      Array.from({ length: 1 + r.int(40) }, () => r.pick(FRAGMENTS)).join(''),
      'latin1',
    );
  if (kind < 280) return r.bytes(1 + r.int(60));
  if (kind < 320)
    return Buffer.concat([b(r.pick(['*1\r\n', '*2\r\n$4\r\nECHO\r\n'])), r.bytes(r.int(20))]);
  // Mutated: valid commands, garbage in between, 1-4 edits.
  let buf = pipeline(1 + r.int(5));
  const edits = 1 + r.int(4);
  for (let i = 0; i < edits; i++) buf = mutate(r, buf);
  if (r.chance(0.3)) buf = Buffer.concat([buf, pipeline(1 + r.int(3))]);
  return buf;
}

function cuts(r, input) {
  const k = r.int(100);
  if (k < 45) return []; // one write
  if (k < 55 && input.length <= 64) {
    return Array.from({ length: input.length - 1 }, (_, i) => i + 1); // byte by byte
  }
  const set = new Set();
  const m = 1 + r.int(4);
  for (let i = 0; i < m; i++) set.add(r.int(input.length));
  if (input.length > 65536 && r.chance(0.5)) set.add(65536 + r.int(3) - 1);
  return [...set].filter((c) => c > 0 && c < input.length).sort((x, y) => x - y);
}
