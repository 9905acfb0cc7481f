import fc from 'fast-check';
import RedisParser from 'redis-parser';
import { describe, expect, it } from 'vitest';
import { Err } from '../../src/errors.js';
import { ReplyFramer } from '../../src/resp/reply-framer.js';
import { encodeReply, formatDouble, R, type Reply } from '../../src/resp/writer.js';

const enc2 = (r: Reply): string => encodeReply(r, 2).toString('latin1');
const enc3 = (r: Reply): string => encodeReply(r, 3).toString('latin1');

// [name, reply, RESP2 bytes, RESP3 bytes]. Bytes marked "Redis" were captured from
// redis-server 7.0.15 (DEBUG PROTOCOL ..., EVAL "return {double=...}", HELLO).
const CASES: Array<[string, Reply, string, string]> = [
  ['ok', R.ok, '+OK\r\n', '+OK\r\n'],
  ['simple', R.simple('PONG'), '+PONG\r\n', '+PONG\r\n'],
  ['simple with CR/LF sanitised', R.simple('a\r\nb\nc'), '+a  b c\r\n', '+a  b c\r\n'],
  ['error', R.error('ERR syntax error'), '-ERR syntax error\r\n', '-ERR syntax error\r\n'],
  [
    'error with newlines',
    R.error('ERR bad\r\nthing'),
    '-ERR bad  thing\r\n',
    '-ERR bad  thing\r\n',
  ],
  ['error with its dash', R.error('-WRONGTYPE x'), '-WRONGTYPE x\r\n', '-WRONGTYPE x\r\n'],
  [
    'error as bytes: a raw byte goes out unchanged (Redis: %c)',
    R.error(Err.protocol("expected '$', got '\xb2'")),
    "-ERR Protocol error: expected '$', got '\xb2'\r\n",
    "-ERR Protocol error: expected '$', got '\xb2'\r\n",
  ],
  [
    'error as bytes, with its dash and newlines',
    R.error(Buffer.from('-ERR a\r\nb\xff', 'latin1')),
    '-ERR a  b\xff\r\n',
    '-ERR a  b\xff\r\n',
  ],
  ['error as a string is UTF-8', R.error('ERR é'), '-ERR \xc3\xa9\r\n', '-ERR \xc3\xa9\r\n'],
  ['int 0', R.int(0), ':0\r\n', ':0\r\n'],
  ['int negative', R.int(-1234), ':-1234\r\n', ':-1234\r\n'],
  ['int -0', R.int(-0), ':0\r\n', ':0\r\n'],
  ['int bigint', R.int(2n ** 63n - 1n), ':9223372036854775807\r\n', ':9223372036854775807\r\n'],
  ['bulk', R.bulk('hello'), '$5\r\nhello\r\n', '$5\r\nhello\r\n'],
  ['empty bulk', R.bulk(''), '$0\r\n\r\n', '$0\r\n\r\n'],
  ['utf-8 bulk', R.bulk('é'), '$2\r\n\xc3\xa9\r\n', '$2\r\n\xc3\xa9\r\n'],
  [
    'binary bulk',
    R.bulk(Buffer.from([13, 10, 0, 255])),
    '$4\r\n\r\n\x00\xff\r\n',
    '$4\r\n\r\n\x00\xff\r\n',
  ],
  ['null (Redis)', R.null, '$-1\r\n', '_\r\n'],
  ['null array', R.nullArray, '*-1\r\n', '_\r\n'],
  ['empty array', R.array([]), '*0\r\n', '*0\r\n'],
  [
    'nested array',
    R.array([R.int(1), R.array([R.bulk('a'), R.null]), R.array([])]),
    '*3\r\n:1\r\n*2\r\n$1\r\na\r\n$-1\r\n*0\r\n',
    '*3\r\n:1\r\n*2\r\n$1\r\na\r\n_\r\n*0\r\n',
  ],
  [
    'set (Redis)',
    R.set([R.int(0), R.int(1), R.int(2)]),
    '*3\r\n:0\r\n:1\r\n:2\r\n',
    '~3\r\n:0\r\n:1\r\n:2\r\n',
  ],
  ['empty set', R.set([]), '*0\r\n', '~0\r\n'],
  [
    'map (Redis)',
    R.map([
      [R.int(0), R.bool(false)],
      [R.int(1), R.bool(true)],
      [R.int(2), R.bool(false)],
    ]),
    '*6\r\n:0\r\n:0\r\n:1\r\n:1\r\n:2\r\n:0\r\n',
    '%3\r\n:0\r\n#f\r\n:1\r\n#t\r\n:2\r\n#f\r\n',
  ],
  ['empty map', R.map([]), '*0\r\n', '%0\r\n'],
  [
    'map with aggregate values (HELLO-like)',
    R.map([
      [R.bulk('proto'), R.int(3)],
      [R.bulk('modules'), R.array([])],
    ]),
    '*4\r\n$5\r\nproto\r\n:3\r\n$7\r\nmodules\r\n*0\r\n',
    '%2\r\n$5\r\nproto\r\n:3\r\n$7\r\nmodules\r\n*0\r\n',
  ],
  ['bool true', R.bool(true), ':1\r\n', '#t\r\n'],
  ['bool false', R.bool(false), ':0\r\n', '#f\r\n'],
  ['double (Redis)', R.double(1.5), '$3\r\n1.5\r\n', ',1.5\r\n'],
  [
    'double 0.1 (Redis)',
    R.double(0.1),
    '$19\r\n0.10000000000000001\r\n',
    ',0.10000000000000001\r\n',
  ],
  [
    'double tie to even (Redis)',
    R.double(4000000000000001 / 4), // exactly 1000000000000000.25
    '$18\r\n1000000000000000.2\r\n',
    ',1000000000000000.2\r\n',
  ],
  ['double inf (Redis)', R.double(Number.POSITIVE_INFINITY), '$3\r\ninf\r\n', ',inf\r\n'],
  ['double -inf (Redis)', R.double(Number.NEGATIVE_INFINITY), '$4\r\n-inf\r\n', ',-inf\r\n'],
  ['double nan', R.double(Number.NaN), '$3\r\nnan\r\n', ',nan\r\n'],
  ['double -0 (Redis)', R.double(-0), '$2\r\n-0\r\n', ',-0\r\n'],
  ['double 0', R.double(0), '$1\r\n0\r\n', ',0\r\n'],
  [
    'double 1e300 (Redis)',
    R.double(1e300),
    '$23\r\n1.0000000000000001e+300\r\n',
    ',1.0000000000000001e+300\r\n',
  ],
  ['double 1e17 (Redis)', R.double(1e17), '$5\r\n1e+17\r\n', ',1e+17\r\n'],
  ['double 1e16 (Redis)', R.double(1e16), '$17\r\n10000000000000000\r\n', ',10000000000000000\r\n'],
  [
    'double 1e-5 (Redis)',
    R.double(1e-5),
    '$22\r\n1.0000000000000001e-05\r\n',
    ',1.0000000000000001e-05\r\n',
  ],
  ['double 0.0001 (Redis)', R.double(0.0001), '$6\r\n0.0001\r\n', ',0.0001\r\n'],
  ['double -2.5', R.double(-2.5), '$4\r\n-2.5\r\n', ',-2.5\r\n'],
  [
    'verbatim (Redis)',
    R.verbatim('This is a verbatim\nstring'),
    '$25\r\nThis is a verbatim\nstring\r\n',
    '=29\r\ntxt:This is a verbatim\nstring\r\n',
  ],
  ['verbatim markdown', R.verbatim('# hi', 'mkd'), '$4\r\n# hi\r\n', '=8\r\nmkd:# hi\r\n'],
  ['raw', R.raw(Buffer.from('*1\r\n:7\r\n')), '*1\r\n:7\r\n', '*1\r\n:7\r\n'],
  [
    'raw inside array',
    R.array([R.raw(Buffer.from('|1\r\n+a\r\n+b\r\n:1\r\n')), R.ok]),
    '*2\r\n|1\r\n+a\r\n+b\r\n:1\r\n+OK\r\n',
    '*2\r\n|1\r\n+a\r\n+b\r\n:1\r\n+OK\r\n',
  ],
];

describe('encodeReply: exact bytes', () => {
  it.each(CASES)('%s', (_name, reply, resp2, resp3) => {
    expect(enc2(reply)).toBe(resp2);
    expect(enc3(reply)).toBe(resp3);
  });

  it('rejects non-integer ints and malformed verbatim formats', () => {
    expect(() => encodeReply(R.int(1.5), 2)).toThrow(RangeError);
    expect(() => encodeReply(R.int(Number.NaN), 3)).toThrow(RangeError);
    expect(() => encodeReply(R.verbatim('x', 'markdown'), 3)).toThrow(RangeError);
  });
});

describe('formatDouble (%.17g like glibc)', () => {
  it.each([
    [123456789012345680, '1.2345678901234568e+17'],
    [5e-324, '4.9406564584124654e-324'],
    [1.7976931348623157e308, '1.7976931348623157e+308'],
    [4000000000000003 / 4, '1000000000000000.8'], // tie at ...0.75, 17th digit odd: rounds up
    [0.3, '0.29999999999999999'],
    [100, '100'],
    [1e-4, '0.0001'],
    [1.5e-5, '1.5e-05'],
    [-1e100, '-1e+100'],
    [12345.678, '12345.678'],
    [12345.6789, '12345.678900000001'],
  ])('%s -> %s', (x, s) => {
    expect(formatDouble(x)).toBe(s);
  });

  it('round-trips every finite double', () => {
    fc.assert(
      fc.property(fc.double({ noNaN: true, noDefaultInfinity: true }), (x) => {
        expect(Object.is(Number(formatDouble(x)), x)).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });
});

// ---- Random nested replies, decoded back by redis-parser (RESP2 only). ----

const text = fc.string({ maxLength: 16 });
const { reply } = fc.letrec<{ reply: Reply }>((tie) => ({
  reply: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    text.map(R.simple),
    text.map((s) => R.error(`ERR ${s}`)),
    fc.uint8Array({ maxLength: 16 }).map((u) => R.error(Buffer.concat([Buffer.from('ERR '), u]))),
    fc.oneof(fc.maxSafeInteger(), fc.bigInt(-(2n ** 63n), 2n ** 63n - 1n)).map(R.int),
    fc
      .oneof(
        text,
        fc.uint8Array({ maxLength: 32 }).map((u) => Buffer.from(u)),
      )
      .map(R.bulk),
    fc.constant(R.null),
    fc.constant(R.nullArray),
    fc.double().map(R.double),
    fc.boolean().map(R.bool),
    text.map((s) => R.verbatim(s)),
    fc.array(tie('reply'), { maxLength: 5 }).map(R.array),
    fc.array(tie('reply'), { maxLength: 5 }).map(R.set),
    fc.array(fc.tuple(tie('reply'), tie('reply')), { maxLength: 3 }).map(R.map),
    tie('reply').map((r) => R.raw(encodeReply(r, 2))),
  ),
}));

/** What redis-parser (returnBuffers, stringNumbers) yields for a RESP2 encoding, buffers as hex. */
function expected2(r: Reply): unknown {
  const hex = (s: string | Buffer) => Buffer.from(s).toString('hex');
  switch (r.t) {
    case 'simple':
      return hex(r.v.replace(/[\r\n]/g, ' '));
    case 'error':
      return `error:${r.v.toString().replace(/[\r\n]/g, ' ')}`;
    case 'int':
      return String(r.v);
    case 'bulk':
      return hex(r.v);
    case 'null':
    case 'nullArray':
      return null;
    case 'array':
    case 'set':
      return r.v.map(expected2);
    case 'map':
      return r.v.flatMap(([k, v]) => [expected2(k), expected2(v)]);
    case 'double':
      return hex(formatDouble(r.v));
    case 'bool':
      return r.v ? '1' : '0';
    case 'verbatim':
      return hex(r.v);
    case 'raw':
      return parse2(r.v);
  }
}

function normalize(x: unknown): unknown {
  if (Buffer.isBuffer(x)) return x.toString('hex');
  if (x instanceof Error) return `error:${x.message}`;
  if (Array.isArray(x)) return x.map(normalize);
  return x;
}

function parse2(buf: Buffer): unknown {
  const out: unknown[] = [];
  const parser = new RedisParser({
    returnBuffers: true,
    stringNumbers: true,
    returnReply: (r) => out.push(normalize(r)),
    returnError: (e) => out.push(normalize(e)),
    returnFatalError: (e) => {
      throw e;
    },
  });
  parser.execute(buf);
  expect(out).toHaveLength(1);
  return out[0];
}

describe('encodeReply: random nested replies', () => {
  it('RESP2 encodings decode back to the same values with redis-parser', () => {
    fc.assert(
      fc.property(reply, (r) => {
        expect(parse2(encodeReply(r, 2))).toEqual(expected2(r));
      }),
      { numRuns: 1000 },
    );
  });

  it('RESP2 and RESP3 encodings are each exactly one reply to the framer', () => {
    fc.assert(
      fc.property(reply, fc.constantFrom<2 | 3>(2, 3), (r, proto) => {
        const buf = encodeReply(r, proto);
        expect(new ReplyFramer().next(buf, 0)).toBe(buf.length);
      }),
      { numRuns: 1000 },
    );
  });
});
