import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import fc from 'fast-check';
import RedisParser from 'redis-parser';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  DEFAULT_LIMITS,
  type ParsedCommand,
  type ParserLimits,
  RequestParser,
} from '../../src/resp/request-parser.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');
const str = (x: Buffer): string => x.toString('latin1');

interface Cmd {
  args: string[];
  inline: boolean;
  raw: string;
}
interface Result {
  cmds: Cmd[];
  err: string | undefined;
}

const toCmd = (c: ParsedCommand): Cmd => ({
  args: c.args.map(str),
  inline: c.inline,
  raw: str(Buffer.concat(c.raw)),
});

/**
 * Feeds chunks to one parser; also checks that a dead parser stays dead and holds nothing.
 * Every chunk is fed from one buffer that is overwritten after each feed, as the client read
 * buffer is (src/util/read-buffer.ts): a view the parser keeps past feed() shows up as wrong
 * bytes in the commands after it.
 */
function parse(chunks: Buffer[], limits?: Partial<ParserLimits>, auth = true): Result {
  const p = new RequestParser(limits);
  p.setAuthenticated(auth);
  const cmds: Cmd[] = [];
  let err: string | undefined;
  const reused = Buffer.alloc(Math.max(0, ...chunks.map((c) => c.length)));
  for (const chunk of chunks) {
    chunk.copy(reused);
    err = p.feed(reused.subarray(0, chunk.length), (c) => cmds.push(toCmd(c)));
    reused.fill(0xa5);
    if (err !== undefined) break;
  }
  if (err !== undefined) {
    expect(p.feed(b('PING\r\n*1\r\n$4\r\nPING\r\n'), () => cmds.push(toCmd(never())))).toBe(err);
    expect(p.pendingBytes).toBe(0);
  }
  return { cmds, err };
}
function never(): ParsedCommand {
  throw new Error('a dead parser emitted a command');
}

/** Splits buf at the given offsets (taken modulo its length, deduplicated). */
function splitAt(buf: Buffer, points: number[]): Buffer[] {
  const cuts = [...new Set(points.map((p) => p % (buf.length + 1)))].sort((x, y) => x - y);
  const chunks: Buffer[] = [];
  let prev = 0;
  for (const c of [...cuts, buf.length]) {
    chunks.push(buf.subarray(prev, c));
    prev = c;
  }
  return chunks;
}

/** Every error message the parser may return (the '$' one quotes the offending byte). */
const KNOWN_ERROR =
  /^(too big inline request|unbalanced quotes in request|too big mbulk count string|invalid multibulk length|unauthenticated multibulk length|too big bulk count string|invalid bulk length|unauthenticated bulk length|expected '\$', got '[^\r\n]')$/s;

/** Offsets where chunks end (each read(2) of Redis), for splitAt-style cuts. */
const readEnds = (buf: Buffer, cuts: number[]): number[] =>
  [...new Set([...cuts.map((p) => p % (buf.length + 1)), buf.length])]
    .filter((p) => p > 0)
    .sort((x, y) => x - y);

// ---- The table: input -> commands ([raw, args]; inline unless raw starts with '*') and error ----

interface Case {
  name: string;
  input: string;
  cmds: [raw: string, args: string[]][];
  err?: string;
  limits?: Partial<ParserLimits>;
  /** false: the client is not authenticated (Redis's unauthenticated caps apply). */
  auth?: boolean;
  /**
   * Redis's answer depends on how the bytes are split (a `*`/`$` line over the limit): what the
   * whole input gets is `err`, what it gets byte by byte is this. Every split must still agree
   * with the reference, which is Redis fed the same reads.
   */
  bytewise?: { cmds: [raw: string, args: string[]][]; err?: string };
  /** false: skip the real-server cross-check (its result depends on how Redis's reads fall). */
  redis?: boolean;
}

const L16 = { maxInlineSize: 16 };
const a16 = 'a'.repeat(16);

const cases: Case[] = [
  // Multibulk.
  {
    name: 'one command',
    input: '*1\r\n$4\r\nPING\r\n',
    cmds: [['*1\r\n$4\r\nPING\r\n', ['PING']]],
  },
  {
    name: 'several args and a pipeline',
    input: '*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nvalue\r\n*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n',
    cmds: [
      ['*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nvalue\r\n', ['SET', 'k', 'value']],
      ['*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n', ['ECHO', 'hi']],
    ],
  },
  {
    name: 'binary-safe bulk with CRLF, NUL and high bytes inside',
    input: '*2\r\n$4\r\nECHO\r\n$8\r\na\r\n\r\n\0\xff$\r\n',
    cmds: [['*2\r\n$4\r\nECHO\r\n$8\r\na\r\n\r\n\0\xff$\r\n', ['ECHO', 'a\r\n\r\n\0\xff$']]],
  },
  {
    name: 'empty bulk $0',
    input: '*2\r\n$4\r\nECHO\r\n$0\r\n\r\n',
    cmds: [['*2\r\n$4\r\nECHO\r\n$0\r\n\r\n', ['ECHO', '']]],
  },
  {
    name: 'the 2 bytes after a bulk are skipped unchecked',
    input: '*1\r\n$4\r\nPINGxyPING\r\n',
    cmds: [
      ['*1\r\n$4\r\nPINGxy', ['PING']],
      ['PING\r\n', ['PING']],
    ],
  },
  {
    name: "a header's '\\r' may be followed by any byte",
    input: '*2\rX$4\r\rECHO\r\n$1\rYaZZ',
    cmds: [['*2\rX$4\r\rECHO\r\n$1\rYaZZ', ['ECHO', 'a']]],
  },
  {
    name: '*0, *-1 and other counts <= 0 are consumed and ignored',
    input: '*0\r\n*-1\r\n*-5\r\n*-9223372036854775808\r\n*1\r\n$4\r\nPING\r\n',
    cmds: [['*1\r\n$4\r\nPING\r\n', ['PING']]],
  },
  { name: 'count INT_MAX is accepted (then waits)', input: '*2147483647\r\n$1\r\n', cmds: [] },
  ...[
    '2147483648',
    '9223372036854775807',
    '9223372036854775808',
    '-9223372036854775809',
    '99999999999999999999',
    '-0',
    '00',
    '01',
    '+1',
    '',
    '-',
    ' 1',
    '1 ',
    '1a',
    '0x1',
  ].map(
    (n): Case => ({
      name: `invalid count "${n}"`,
      input: `PING\r\n*${n}\r\n$4\r\nPING\r\n`,
      cmds: [['PING\r\n', ['PING']]],
      err: 'invalid multibulk length',
    }),
  ),
  ...['-1', '-0', '01', '00', '+1', '', '-', '1 ', 'x', '9223372036854775808', '536870913'].map(
    (n): Case => ({
      name: `invalid bulk length "${n}"`,
      input: `PING\r\n*1\r\n$${n}\r\nPING\r\n`,
      cmds: [['PING\r\n', ['PING']]],
      err: 'invalid bulk length',
    }),
  ),
  ...[
    ['X', 'X'],
    ['\r', ' '],
    ['\n', ' '],
    ['\xff', '\xff'],
    ['\xb2', '\xb2'],
    ['\x80', '\x80'],
    ['*', '*'],
    [' ', ' '],
  ].map(
    ([got, shown]): Case => ({
      name: `expected '$' but got ${JSON.stringify(got)}`,
      input: `*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nECHO\r\n${got}3\r\nfoo\r\n`,
      cmds: [['*1\r\n$4\r\nPING\r\n', ['PING']]],
      err: `expected '$', got '${shown}'`,
    }),
  ),
  { name: "the '$' check waits for the byte after '\\r'", input: '*1\r\nX\r', cmds: [] },
  {
    name: 'commands before an error are emitted first',
    input: 'PING\r\n*1\r\n$4\r\nPING\r\nECHO x\r\n*1\r\n:1\r\nPING\r\n',
    cmds: [
      ['PING\r\n', ['PING']],
      ['*1\r\n$4\r\nPING\r\n', ['PING']],
      ['ECHO x\r\n', ['ECHO', 'x']],
    ],
    err: "expected '$', got ':'",
  },
  // Inline.
  { name: 'inline CRLF', input: 'PING\r\n', cmds: [['PING\r\n', ['PING']]] },
  { name: 'inline bare LF', input: 'ECHO x\n', cmds: [['ECHO x\n', ['ECHO', 'x']]] },
  {
    name: 'inline blanks: spaces, tabs, \\v \\f and inner \\r',
    input: ' \t\vECHO \t a\rb  \r\n',
    cmds: [[' \t\vECHO \t a\rb  \r\n', ['ECHO', 'a', 'b']]],
  },
  {
    name: 'unquoted tokens end only at space, tab, CR, LF (not \\v \\f)',
    input: 'ECHO a\vb\f\r\n',
    cmds: [['ECHO a\vb\f\r\n', ['ECHO', 'a\vb\f']]],
  },
  {
    name: 'only one \\r before \\n is stripped',
    input: 'ECHO a\r\r\n',
    cmds: [['ECHO a\r\r\n', ['ECHO', 'a']]],
  },
  {
    name: 'empty and blank lines run nothing',
    input: '\r\n\n   \r\n\t\r\r\nPING\r\n',
    cmds: [['PING\r\n', ['PING']]],
  },
  {
    name: 'double quotes with every escape',
    input: 'ECHO "a b\\x41\\x4a\\x4A\\xzz\\x4\\n\\r\\t\\b\\a\\\\\\"\\q\\\'"\r\n',
    cmds: [
      [
        'ECHO "a b\\x41\\x4a\\x4A\\xzz\\x4\\n\\r\\t\\b\\a\\\\\\"\\q\\\'"\r\n',
        ['ECHO', 'a bAJJxzzx4\n\r\t\b\x07\\"q\''],
      ],
    ],
  },
  {
    name: '\\x escapes may produce NUL and high bytes',
    input: 'ECHO "\\x00\\xff\\xFe"\r\n',
    cmds: [['ECHO "\\x00\\xff\\xFe"\r\n', ['ECHO', '\0\xff\xfe']]],
  },
  {
    name: "single quotes: only \\' escapes",
    input: "ECHO 'a \\'b\\n\\\\ \"'\r\n",
    cmds: [["ECHO 'a \\'b\\n\\\\ \"'\r\n", ['ECHO', 'a \'b\\n\\\\ "']]],
  },
  {
    name: 'empty quoted args',
    input: 'ECHO "" \'\'\r\n',
    cmds: [['ECHO "" \'\'\r\n', ['ECHO', '', '']]],
  },
  {
    name: 'a quote may open mid-token',
    input: 'ECHO a"b c"\r\n',
    cmds: [['ECHO a"b c"\r\n', ['ECHO', 'ab c']]],
  },
  {
    name: 'closing quote followed by a blank',
    input: 'ECHO "a"\tb \'c\'\vd\r\n',
    cmds: [['ECHO "a"\tb \'c\'\vd\r\n', ['ECHO', 'a', 'b', 'c', 'd']]],
  },
  ...['"a"b', "'a'b", 'a"b"c', '"abc', "'abc", '"a\\"', '"a\\', "'a\\'", '"a\\x4'].map(
    (line): Case => ({
      name: `unbalanced quotes: ${line}`,
      input: `PING\r\nECHO ${line}\r\nPING\r\n`,
      cmds: [['PING\r\n', ['PING']]],
      err: 'unbalanced quotes in request',
    }),
  ),
  {
    name: 'mixture of inline and multibulk',
    input: 'PING\r\n*1\r\n$4\r\nPING\r\nECHO x\n*2\r\n$4\r\nECHO\r\n$1\r\ny\r\n\r\nPING\n',
    cmds: [
      ['PING\r\n', ['PING']],
      ['*1\r\n$4\r\nPING\r\n', ['PING']],
      ['ECHO x\n', ['ECHO', 'x']],
      ['*2\r\n$4\r\nECHO\r\n$1\r\ny\r\n', ['ECHO', 'y']],
      ['PING\n', ['PING']],
    ],
  },
  // Redis finds line ends with strchr(), which stops at NUL: such a line never completes.
  {
    name: 'NUL in an inline line: waits',
    input: 'PING\r\nECHO a\0b\r\nPING\r\n',
    cmds: [['PING\r\n', ['PING']]],
  },
  {
    name: 'NUL after a quoting error: still waits',
    input: 'ECHO "a"b\0\r\nPING\r\n',
    cmds: [],
  },
  { name: 'NUL in a count line: waits', input: '*1\0\r\n$4\r\nPING\r\n', cmds: [] },
  { name: 'NUL in a bulk length line: waits', input: '*1\r\n$4\0\r\nPING\r\n', cmds: [] },
  { name: "NUL before '\\r' wins over the '$' check", input: '*1\r\nX\0\r\n', cmds: [] },
  {
    name: 'a waiting NUL line fails once more than maxInlineSize bytes pile up',
    input: `PING\r\nEC\0HO\r\n${'x'.repeat(10)}`,
    cmds: [['PING\r\n', ['PING']]],
    err: 'too big inline request',
    limits: L16,
  },
  {
    name: 'a waiting NUL header fails once more than maxInlineSize bytes pile up',
    input: `*1\r\n$1\0\r\n${'x'.repeat(12)}`,
    cmds: [],
    err: 'too big bulk count string',
    limits: L16,
  },
  {
    name: '... but not at exactly maxInlineSize',
    input: `*1\r\n$1\0\r\n${'x'.repeat(11)}`,
    cmds: [],
    limits: L16,
  },
  // maxInlineSize (tests use 16): a line may not run longer before its terminator.
  {
    name: 'inline: LF at maxInlineSize',
    input: `${a16}\n`,
    cmds: [[`${a16}\n`, [a16]]],
    limits: L16,
  },
  {
    name: 'inline: CRLF ending at maxInlineSize',
    input: `${a16.slice(1)}\r\n`,
    cmds: [[`${a16.slice(1)}\r\n`, [a16.slice(1)]]],
    limits: L16,
  },
  {
    name: 'inline: CRLF ending past maxInlineSize',
    input: `${a16}\r\n`,
    cmds: [],
    err: 'too big inline request',
    limits: L16,
  },
  { name: 'inline: maxInlineSize bytes, no newline yet', input: a16, cmds: [], limits: L16 },
  {
    name: 'inline: too big without newline',
    input: `PING\n${a16}a`,
    cmds: [['PING\n', ['PING']]],
    err: 'too big inline request',
    limits: L16,
  },
  {
    name: 'inline: too big even with its newline (as if bytes came one by one)',
    input: `${a16}a\n`,
    cmds: [],
    err: 'too big inline request',
    limits: L16,
  },
  {
    name: 'count line of maxInlineSize bytes before \\r',
    input: '*000000000000001\r\n',
    cmds: [],
    err: 'invalid multibulk length',
    limits: L16,
  },
  {
    name: "count line over the limit with its '\\r' in the same read: parsed (and invalid)",
    input: '*0000000000000001\r\n',
    cmds: [],
    err: 'invalid multibulk length',
    limits: L16,
    bytewise: { cmds: [], err: 'too big mbulk count string' },
  },
  {
    name: "count line over the limit, '\\r' last: waits for one more byte, no size check",
    input: '*0000000000000001\r',
    cmds: [],
    limits: L16,
    bytewise: { cmds: [], err: 'too big mbulk count string' },
  },
  {
    name: 'the limit counts from the start of the line, not of the read',
    input: `${'PING\r\n'.repeat(4)}*1\r\n$4\r\nPING\r\n`,
    cmds: [...Array(4).fill(['PING\r\n', ['PING']]), ['*1\r\n$4\r\nPING\r\n', ['PING']]],
    limits: L16,
  },
  {
    name: 'count line too big, no \\r',
    input: '*1111111111111111',
    cmds: [],
    err: 'too big mbulk count string',
    limits: L16,
  },
  {
    name: "bulk length line over the limit with its '\\r' in the same read: parsed (and invalid)",
    input: '*1\r\n$0000000000000001\r\n',
    cmds: [],
    err: 'invalid bulk length',
    limits: L16,
    bytewise: { cmds: [], err: 'too big bulk count string' },
  },
  {
    name: "a line over the limit that does not start with '$'",
    input: '*1\r\nx000000000000000001\r\n',
    cmds: [],
    err: "expected '$', got 'x'",
    limits: L16,
    bytewise: { cmds: [], err: 'too big bulk count string' },
  },
  {
    name: 'a NUL hides the line end: too big, however split',
    input: '*1\r\n$00000000\x0000000001\r\n',
    cmds: [],
    err: 'too big bulk count string',
    limits: L16,
  },
  {
    name: 'too big wins over the $ check',
    input: `*1\r\n${'x'.repeat(17)}`,
    cmds: [],
    err: 'too big bulk count string',
    limits: L16,
  },
  {
    name: 'bulk data is not limited by maxInlineSize',
    input: `*1\r\n$20\r\n${'x'.repeat(20)}\r\n`,
    cmds: [[`*1\r\n$20\r\n${'x'.repeat(20)}\r\n`, ['x'.repeat(20)]]],
    limits: L16,
  },
  // Other limits.
  {
    name: 'maxMultibulkLength',
    input: '*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n*4\r\n',
    cmds: [['*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n', ['a', 'b', 'c']]],
    err: 'invalid multibulk length',
    limits: { maxMultibulkLength: 3 },
  },
  {
    name: 'maxBulkLength',
    input: '*2\r\n$5\r\naaaaa\r\n$6\r\n',
    cmds: [],
    err: 'invalid bulk length',
    limits: { maxBulkLength: 5 },
  },
  // Before AUTH (Redis: authRequired()): at most 10 args, bulks of at most 16 KB.
  {
    name: 'unauthenticated: 10 args, a 16384-byte bulk, counts <= 0 and inline are fine',
    input: `*10\r\n${'$1\r\na\r\n'.repeat(10)}*-1\r\n*1\r\n$16384\r\n${'b'.repeat(16384)}\r\nECHO ${'c '.repeat(20)}\r\n`,
    cmds: [
      [`*10\r\n${'$1\r\na\r\n'.repeat(10)}`, Array(10).fill('a')],
      [`*1\r\n$16384\r\n${'b'.repeat(16384)}\r\n`, ['b'.repeat(16384)]],
      [`ECHO ${'c '.repeat(20)}\r\n`, ['ECHO', ...Array(20).fill('c')]],
    ],
    auth: false,
  },
  {
    name: 'unauthenticated: 11 args',
    input: 'PING\r\n*11\r\n$1\r\na\r\n',
    cmds: [['PING\r\n', ['PING']]],
    err: 'unauthenticated multibulk length',
    auth: false,
  },
  {
    name: 'unauthenticated: a count beyond INT_MAX is still invalid first',
    input: '*2147483648\r\n',
    cmds: [],
    err: 'invalid multibulk length',
    auth: false,
  },
  {
    name: 'unauthenticated: a 16385-byte bulk',
    input: '*2\r\n$3\r\nSET\r\n$16385\r\n',
    cmds: [],
    err: 'unauthenticated bulk length',
    auth: false,
  },
  {
    name: 'unauthenticated: a bulk over proto-max-bulk-len is still invalid first',
    input: '*1\r\n$536870913\r\n',
    cmds: [],
    err: 'invalid bulk length',
    auth: false,
  },
];

const toResult = (cmds: [raw: string, args: string[]][], err?: string): Result => ({
  cmds: cmds.map(([raw, args]) => ({ args, inline: !raw.startsWith('*'), raw })),
  err,
});

describe('RequestParser: table', () => {
  it.each(cases)('$name', (c) => {
    const input = b(c.input);
    const limits = { ...DEFAULT_LIMITS, ...c.limits };
    const auth = c.auth ?? true;
    const want = toResult(c.cmds, c.err);
    const whole = new RequestParser(c.limits);
    whole.setAuthenticated(auth);
    const slices: number[] = [];
    whole.feed(input, (cmd) => slices.push(cmd.raw.length));
    expect(slices.every((n) => n === 1)).toBe(true); // one chunk: one raw slice per command
    expect(parse([input], c.limits, auth)).toEqual(want);
    expect(reference(input, limits, [], auth)).toEqual(want);
    // Every split agrees with Redis fed the same reads, and (but for the documented
    // split-dependent cases) with the whole input.
    const bytewise = c.bytewise ? toResult(c.bytewise.cmds, c.bytewise.err) : want;
    const all = [...input.keys()];
    expect(parse(splitAt(input, all), c.limits, auth)).toEqual(bytewise);
    expect(reference(input, limits, all, auth)).toEqual(bytewise);
    const check = (cuts: number[]) => {
      const got = parse(splitAt(input, cuts), c.limits, auth);
      expect(got).toEqual(reference(input, limits, cuts, auth));
      if (c.bytewise === undefined) expect(got).toEqual(want);
    };
    for (let i = 1; i < input.length; i++) check([i]);
    if (input.length <= 48) {
      for (let i = 1; i < input.length; i++) {
        for (let j = i + 1; j < input.length; j++) check([i, j]);
      }
    }
  });
});

describe('RequestParser: API details', () => {
  it('DEFAULT_LIMITS are the Redis 7.0 values', () => {
    expect(DEFAULT_LIMITS).toEqual({
      maxInlineSize: 65536,
      maxMultibulkLength: 2147483647,
      maxBulkLength: 536870912,
      unauthMultibulkLength: 10,
      unauthBulkLength: 16384,
    });
  });

  it('the default limits apply', () => {
    const big = 'a'.repeat(65536);
    expect(parse([b(`${big}\n`)]).cmds).toHaveLength(1);
    expect(parse([b(`${big}a\n`)]).err).toBe('too big inline request');
    expect(parse([b('*1\r\n$536870912\r\n')]).err).toBeUndefined();
    expect(parse([b('*1\r\n$536870913\r\n')]).err).toBe('invalid bulk length');
  });

  it('pendingBytes counts the incomplete command', () => {
    const p = new RequestParser();
    const cmds: ParsedCommand[] = [];
    const on = (c: ParsedCommand) => cmds.push(c);
    expect(p.pendingBytes).toBe(0);
    p.feed(b('PING\r\n*2\r\n$3'), on);
    expect(p.pendingBytes).toBe(6);
    p.feed(b('\r\nfoo'), on);
    expect(p.pendingBytes).toBe(11);
    p.feed(b('\r\n$3\r\nbar\r'), on);
    expect(p.pendingBytes).toBe(21);
    p.feed(b('\nPIN'), on);
    expect(p.pendingBytes).toBe(3);
    expect(cmds.map((c) => c.args.map(str))).toEqual([['PING'], ['foo', 'bar']]);
  });

  it('setAuthenticated applies to the next header, even from inside onCommand', () => {
    const eleven = `*11\r\n${'$1\r\na\r\n'.repeat(11)}`;
    // As Redis runs AUTH before it parses the next command, the caps are gone for it.
    const p = new RequestParser();
    p.setAuthenticated(false);
    const got: string[][] = [];
    const err = p.feed(b(`AUTH pw\r\n${eleven}`), (c) => {
      got.push(c.args.map(str));
      if (str(c.args[0]!) === 'AUTH') p.setAuthenticated(true);
    });
    expect(err).toBeUndefined();
    expect(got).toEqual([['AUTH', 'pw'], Array(11).fill('a')]);
    // And back: from the next command on, the caps apply again (e.g. after RESET).
    const q = new RequestParser();
    const seen: string[] = [];
    const err2 = q.feed(b(`RESET\r\n${eleven}`), (c) => {
      seen.push(str(c.args[0]!));
      q.setAuthenticated(false);
    });
    expect(seen).toEqual(['RESET']);
    expect(err2).toBe('unauthenticated multibulk length');
    // Mid-command, between chunks: the bulk lines still to come are checked.
    const r = new RequestParser();
    expect(r.feed(b('*2\r\n$3\r\nSET\r\n'), () => {})).toBeUndefined();
    r.setAuthenticated(false);
    expect(r.feed(b('$16385\r\n'), () => {})).toBe('unauthenticated bulk length');
  });

  it('an error or release() lets go of every buffered byte', () => {
    const inputs = [
      '*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1000\r\nabc', // a bulk being filled
      '*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$10', // a header cut short
      'ECHO aaaaaaaa', // an inline line cut short
      '*2\r\n$4\r\nECHO\r\n', // args of an unfinished command
    ];
    for (const input of inputs) {
      const p = new RequestParser();
      expect(p.feed(b(input), () => {})).toBeUndefined();
      expect(p.pendingBytes).toBe(input.length);
      p.release();
      expect(p.pendingBytes).toBe(0);
      expect(p.feed(b('PING\r\n'), never)).toBeUndefined(); // released: emits nothing
      const q = new RequestParser();
      q.feed(b(input), () => {});
      expect(q.feed(b('\r\n*1\r\nX\r\n'.repeat(200)), () => {})).toBeDefined();
      expect(q.pendingBytes).toBe(0);
    }
  });

  it('a released parser frees a half-received big bulk (the parser itself still referenced)', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    // V8 frees ArrayBuffers on a background thread after the GC: give it a few turns.
    const settled = async (turns: number) => {
      for (let i = 0; i < turns; i++) {
        gc();
        await new Promise((r) => setTimeout(r, 10));
      }
      return process.memoryUsage().arrayBuffers;
    };
    const before = await settled(3);
    /** External memory above `before`, once it is under `below` (or after 50 turns). */
    const external = async (below = Number.POSITIVE_INFINITY) => {
      let n = await settled(1);
      for (let i = 0; i < 50 && n - before >= below; i++) n = await settled(1);
      return n - before;
    };
    const MB = 1024 * 1024;
    const p = new RequestParser();
    p.feed(b('*2\r\n$4\r\nECHO\r\n$67108864\r\n'), never);
    p.feed(Buffer.alloc(MB, 1), never);
    expect(p.pendingBytes).toBeGreaterThan(MB);
    expect(await external()).toBeGreaterThan(60 * MB);
    p.release();
    expect(await external(4 * MB)).toBeLessThan(4 * MB);
    // A protocol error after a big first argument: the command is refused, its bytes let go.
    const q = new RequestParser();
    q.feed(b('*2\r\n$67108864\r\nxyz'), never);
    q.feed(Buffer.alloc(67108864 - 3 + 2, 2), never);
    expect(q.pendingBytes).toBeGreaterThan(64 * MB);
    expect(await external()).toBeGreaterThan(60 * MB);
    expect(q.feed(b('X\r\n\r\n'), never)).toBe("expected '$', got 'X'");
    expect(q.pendingBytes).toBe(0);
    expect(await external(4 * MB)).toBeLessThan(4 * MB);
  });

  it('args are views of the chunk (zero copy) when a command lies in one chunk', () => {
    const chunk = b('*2\r\n$4\r\nECHO\r\n$3\r\nfoo\r\nECHO bar\r\n');
    const cmds: ParsedCommand[] = [];
    new RequestParser().feed(chunk, (c) => cmds.push(c));
    for (const c of cmds) {
      for (const x of [...c.args, ...c.raw]) expect(x.buffer).toBe(chunk.buffer);
    }
  });
});

// ---- Reference: a literal port of Redis 7.0 processInputBuffer, fed one byte at a time ----

function refString2ll(s: string): bigint | undefined {
  if (s.length === 0 || s.length >= 21) return undefined;
  if (s === '0') return 0n;
  if (!/^-?[1-9][0-9]*$/.test(s)) return undefined;
  const v = BigInt(s);
  return v > 9223372036854775807n || v < -9223372036854775808n ? undefined : v;
}

const cIsspace = (c: number): boolean => c !== 0 && ' \t\n\v\f\r'.includes(String.fromCharCode(c));
const cIsHex = (c: number): boolean =>
  c !== 0 && '0123456789abcdefABCDEF'.includes(String.fromCharCode(c));

function refSplitArgs(line: Buffer): Buffer[] | undefined {
  const at = (i: number): number => (i < line.length ? line[i]! : 0);
  const out: Buffer[] = [];
  let p = 0;
  for (;;) {
    while (at(p) && cIsspace(at(p))) p++;
    if (!at(p)) return out;
    let inq = false;
    let insq = false;
    let done = false;
    const cur: number[] = [];
    while (!done) {
      if (inq) {
        if (at(p) === 92 && at(p + 1) === 120 && cIsHex(at(p + 2)) && cIsHex(at(p + 3))) {
          cur.push(Number.parseInt(String.fromCharCode(at(p + 2), at(p + 3)), 16));
          p += 3;
        } else if (at(p) === 92 && at(p + 1)) {
          p++;
          const esc: Record<string, number> = { n: 10, r: 13, t: 9, b: 8, a: 7 };
          cur.push(esc[String.fromCharCode(at(p))] ?? at(p));
        } else if (at(p) === 34) {
          if (at(p + 1) && !cIsspace(at(p + 1))) return undefined;
          done = true;
        } else if (!at(p)) {
          return undefined;
        } else {
          cur.push(at(p));
        }
      } else if (insq) {
        if (at(p) === 92 && at(p + 1) === 39) {
          p++;
          cur.push(39);
        } else if (at(p) === 39) {
          if (at(p + 1) && !cIsspace(at(p + 1))) return undefined;
          done = true;
        } else if (!at(p)) {
          return undefined;
        } else {
          cur.push(at(p));
        }
      } else if ([32, 10, 13, 9, 0].includes(at(p))) {
        done = true;
      } else if (at(p) === 34) {
        inq = true;
      } else if (at(p) === 39) {
        insq = true;
      } else {
        cur.push(at(p));
      }
      if (at(p)) p++;
    }
    out.push(Buffer.from(cur));
  }
}

/**
 * Redis 7.0's processInputBuffer over `input` arriving in reads that end at `cuts` (as splitAt),
 * with one change, semcache's documented one: an inline line over the limit is refused even
 * when its newline is in. `seen.overlong` is set when Redis found the '\r' of a `*`/`$` line
 * over the limit (its answer then depends on the split: in other reads it may be "too big").
 */
function reference(
  input: Buffer,
  limits: ParserLimits,
  cuts: number[],
  auth = true,
  seen: { overlong: boolean } = { overlong: false },
): Result {
  const cmds: Cmd[] = [];

  let end = 0; // sdslen(querybuf): bytes received so far
  let pos = 0; // qb_pos
  let reqtype = 0;
  let start = 0;
  let multibulklen = 0;
  let bulklen = -1;
  let argv: Buffer[] = [];
  let err: string | undefined;
  const strchr = (from: number, ch: number): number => {
    for (let i = from; i < end && input[i] !== 0; i++) if (input[i] === ch) return i;
    return -1;
  };
  const inlineBuffer = (): boolean => {
    const nl = strchr(pos, 10);
    if (nl < 0) {
      if (end - pos > limits.maxInlineSize) err = 'too big inline request';
      return false;
    }
    if (nl - pos > limits.maxInlineSize) {
      err = 'too big inline request'; // semcache's deliberate difference
      return false;
    }
    const lineEnd = nl !== pos && input[nl - 1] === 13 ? nl - 1 : nl;
    const args = refSplitArgs(input.subarray(pos, lineEnd));
    if (args === undefined) {
      err = 'unbalanced quotes in request';
      return false;
    }
    pos = nl + 1;
    argv = args;
    return true;
  };
  const multibulkBuffer = (): boolean => {
    if (multibulklen === 0) {
      const nl = strchr(pos, 13);
      if (nl < 0) {
        if (end - pos > limits.maxInlineSize) err = 'too big mbulk count string';
        return false;
      }
      if (nl - pos > limits.maxInlineSize) seen.overlong = true;
      if (nl - pos > end - pos - 2) return false;
      const ll = refString2ll(input.toString('latin1', pos + 1, nl));
      if (ll === undefined || ll > BigInt(limits.maxMultibulkLength)) {
        err = 'invalid multibulk length';
        return false;
      }
      if (ll > BigInt(limits.unauthMultibulkLength) && !auth) {
        err = 'unauthenticated multibulk length';
        return false;
      }
      pos = nl + 2;
      if (ll <= 0n) return true;
      multibulklen = Number(ll);
    }
    while (multibulklen) {
      if (bulklen === -1) {
        const nl = strchr(pos, 13);
        if (nl < 0) {
          if (end - pos > limits.maxInlineSize) err = 'too big bulk count string';
          return false;
        }
        if (nl - pos > limits.maxInlineSize) seen.overlong = true;
        if (nl - pos > end - pos - 2) return false;
        if (input[pos] !== 36) {
          err = `expected '$', got '${String.fromCharCode(input[pos]!)}'`.replace(/[\r\n]/g, ' ');
          return false;
        }
        const ll = refString2ll(input.toString('latin1', pos + 1, nl));
        if (ll === undefined || ll < 0n || ll > BigInt(limits.maxBulkLength)) {
          err = 'invalid bulk length';
          return false;
        }
        if (ll > BigInt(limits.unauthBulkLength) && !auth) {
          err = 'unauthenticated bulk length';
          return false;
        }
        pos = nl + 2;
        bulklen = Number(ll);
      }
      if (end - pos < bulklen + 2) return false;
      argv.push(input.subarray(pos, pos + bulklen));
      pos += bulklen + 2;
      bulklen = -1;
      multibulklen--;
    }
    return true;
  };
  for (const readEnd of readEnds(input, cuts)) {
    if (err !== undefined) break;
    end = readEnd;
    while (pos < end && err === undefined) {
      if (!reqtype) {
        reqtype = input[pos] === 42 ? 2 : 1;
        start = pos;
      }
      if (!(reqtype === 1 ? inlineBuffer() : multibulkBuffer())) break;
      if (argv.length > 0) {
        cmds.push({
          args: argv.map(str),
          inline: reqtype === 1,
          raw: input.toString('latin1', start, pos),
        });
      }
      reqtype = 0;
      argv = [];
    }
  }
  return { cmds, err };
}

// ---- Properties ----

const encodeMultibulk = (args: Uint8Array[]): Buffer =>
  Buffer.concat([
    b(`*${args.length}\r\n`),
    ...args.flatMap((a) => [b(`$${a.length}\r\n`), Buffer.from(a), b('\r\n')]),
  ]);

/** An inline line in sdscatrepr() style: every arg double-quoted, unprintables as \xHH. */
const encodeInline = (args: Uint8Array[]): Buffer => {
  const repr = (a: Uint8Array): string =>
    `"${[...a]
      .map((c) =>
        c === 34 || c === 92
          ? `\\${String.fromCharCode(c)}`
          : c >= 32 && c < 127
            ? String.fromCharCode(c)
            : `\\x${c.toString(16).padStart(2, '0')}`,
      )
      .join('')}"`;
  return b(`${args.map(repr).join(' ')}\r\n`);
};

const argsArb = fc.array(fc.uint8Array({ maxLength: 40 }), { minLength: 1, maxLength: 6 });
const bigArgsArb = fc.array(fc.uint8Array({ maxLength: 3000 }), { minLength: 1, maxLength: 3 });
const commandsArb = fc.array(
  fc.record({ args: fc.oneof(argsArb, argsArb, bigArgsArb), inline: fc.boolean() }),
  { minLength: 1, maxLength: 10 },
);
const cutsArb = fc.array(fc.nat(), { maxLength: 12 });

describe('RequestParser: properties', () => {
  it('round-trips random binary args (multibulk and quoted inline) across random splits', () => {
    fc.assert(
      fc.property(commandsArb, cutsArb, (commands, cuts) => {
        const encoded = commands.map((c) =>
          c.inline ? encodeInline(c.args) : encodeMultibulk(c.args),
        );
        const input = Buffer.concat(encoded);
        const p = new RequestParser();
        const got: ParsedCommand[] = [];
        for (const chunk of splitAt(input, cuts)) {
          expect(p.feed(chunk, (c) => got.push(c))).toBeUndefined();
        }
        expect(p.pendingBytes).toBe(0);
        expect(got).toHaveLength(commands.length);
        got.forEach((c, i) => {
          expect(c.args.map((a) => a.toString('hex'))).toEqual(
            commands[i]!.args.map((a) => Buffer.from(a).toString('hex')),
          );
          expect(c.inline).toBe(commands[i]!.inline);
          expect(Buffer.concat(c.raw).equals(encoded[i]!)).toBe(true);
        });
      }),
      { numRuns: 300 },
    );
  });

  // Fragments that make interesting protocol (and protocol errors) when glued at random.
  const fragment = fc.oneof(
    fc.constantFrom(
      ...'*|$|\r|\n|\r\n|0|1|2|3|9|-|+| |\t|\v|"|\'|\\|x|a|F|\0|\xff|PING|ECHO '.split('|'),
      ...'*1\r\n|*2\r\n|$1\r\n|$0\r\n|*01\r\n|*-1\r\n|$00\r\n|$-1\r\n|$02\r\n|*00\r\n'.split('|'),
    ),
    fc.uint8Array({ maxLength: 4 }).map((u) => str(Buffer.from(u))),
  );
  const fuzzInput = fc.oneof(
    fc.array(fragment, { maxLength: 40 }).map((parts) => b(parts.join(''))),
    fc
      .tuple(fc.constantFrom('*1\r\n', '*2\r\n$1\r\na\r\n'), fc.array(fragment, { maxLength: 30 }))
      .map(([head, parts]) => b(head + parts.join(''))),
    fc.uint8Array({ maxLength: 80 }).map((u) => Buffer.from(u)),
    // Valid commands, then random byte edits.
    fc
      .tuple(
        commandsArb.filter((cs) => cs.every((c) => c.args.every((a) => a.length < 50))),
        fc.array(fc.tuple(fc.constantFrom('set', 'insert', 'delete'), fc.nat(), fc.nat(255)), {
          minLength: 1,
          maxLength: 4,
        }),
      )
      .map(([commands, edits]) => {
        const bytes = [
          ...Buffer.concat(
            commands.map((c) => (c.inline ? encodeInline(c.args) : encodeMultibulk(c.args))),
          ),
        ];
        for (const [op, at, v] of edits) {
          const i = at % (bytes.length + 1);
          if (op === 'insert') bytes.splice(i, 0, v);
          else if (op === 'delete') bytes.splice(i, 1);
          else bytes[Math.min(i, bytes.length - 1)] = v;
        }
        return Buffer.from(bytes);
      }),
  );
  const limitsArb = fc.oneof(
    fc.constant(DEFAULT_LIMITS),
    fc.record({
      maxInlineSize: fc.integer({ min: 1, max: 16 }),
      maxMultibulkLength: fc.integer({ min: 0, max: 6 }),
      maxBulkLength: fc.integer({ min: 0, max: 12 }),
      unauthMultibulkLength: fc.integer({ min: 0, max: 4 }),
      unauthBulkLength: fc.integer({ min: 0, max: 8 }),
    }),
  );

  it('never throws on random or mutated input; matches Redis fed the same reads, for any split', () => {
    fc.assert(
      fc.property(fuzzInput, limitsArb, fc.boolean(), cutsArb, (input, limits, auth, cuts) => {
        const seen = { overlong: false };
        const want = reference(input, limits, [], auth, seen);
        const whole = parse([input], limits, auth);
        expect(whole).toEqual(want);
        const split = parse(splitAt(input, cuts), limits, auth);
        expect(split).toEqual(reference(input, limits, cuts, auth, seen));
        // Redis's answer depends on the split only when the '\r' of a `*`/`$` line over the
        // limit was found: whole, the line fails as an invalid length (or waits for the byte
        // after '\r'); in pieces it may be "too big".
        if (!seen.overlong) expect(split).toEqual(whole);
        if (whole.err !== undefined) expect(whole.err).toMatch(KNOWN_ERROR);
      }),
      { numRuns: 3000 },
    );
  });
});

// ---- Big inputs: linear time, one copy ----

describe('RequestParser: big inputs', () => {
  it('a 20 MB value in 64 KB chunks is copied once, into one buffer', () => {
    const value = Buffer.allocUnsafe(20 * 1024 * 1024);
    for (let i = 0; i < value.length; i += 4096) value[i] = i & 0xff;
    const head = b(`*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$${value.length}\r\n`);
    const input = Buffer.concat([head, value, b('\r\nPING\r\n')]);
    const concat = vi.spyOn(Buffer, 'concat');
    const alloc = vi.spyOn(Buffer, 'allocUnsafe');
    const p = new RequestParser();
    const got: ParsedCommand[] = [];
    const t0 = performance.now();
    for (let off = 0; off < input.length; off += 65536) {
      expect(p.feed(input.subarray(off, off + 65536), (c) => got.push(c))).toBeUndefined();
      if (got.length === 0) expect(p.pendingBytes).toBe(Math.min(off + 65536, input.length));
    }
    const ms = performance.now() - t0;
    const allocated = alloc.mock.calls.reduce((n, [size]) => n + size, 0);
    concat.mockRestore();
    alloc.mockRestore();
    expect(concat).not.toHaveBeenCalled();
    expect(allocated).toBe(value.length + 2);
    expect(ms).toBeLessThan(500);
    expect(got).toHaveLength(2);
    const [set, ping] = got as [ParsedCommand, ParsedCommand];
    expect(set.args[2]!.equals(value)).toBe(true);
    expect(Buffer.concat(set.raw).equals(input.subarray(0, input.length - 6))).toBe(true);
    expect(set.raw.length).toBeLessThanOrEqual(3);
    expect(ping.args.map(str)).toEqual(['PING']);
    expect(p.pendingBytes).toBe(0);
  });

  it('stays linear for byte-by-byte feeding of long lines, big bulks and many args', () => {
    const line = b(`ECHO ${'x'.repeat(65000)}\r\n`);
    const bulk = encodeMultibulk([b('ECHO'), Buffer.alloc(200_000, 7)]);
    const many = encodeMultibulk(Array.from({ length: 20_000 }, (_, i) => b(String(i))));
    const t0 = performance.now();
    for (const input of [line, bulk, many]) {
      const p = new RequestParser();
      const got: ParsedCommand[] = [];
      for (let i = 0; i < input.length; i++) p.feed(input.subarray(i, i + 1), (c) => got.push(c));
      expect(got).toHaveLength(1);
      expect(Buffer.concat(got[0]!.raw).equals(input)).toBe(true);
    }
    expect(performance.now() - t0).toBeLessThan(5000);
  });
});

// ---- Optional cross-check against a real redis-server ----

const hasRedis = spawnSync('redis-server', ['--version']).status === 0;

describe.skipIf(!hasRedis)('RequestParser: cross-check with redis-server', () => {
  let dir = '';
  const children: ChildProcess[] = [];
  // Two servers: one open, one with a password (clients start unauthenticated there).
  const sock = (auth: boolean) => join(dir, auth ? 'redis.sock' : 'redis-pw.sock');

  /** Sends input on a fresh connection; returns what came back once Redis closed or went quiet. */
  const exchange = (input: Buffer, auth = true): Promise<{ bytes: Buffer; closed: boolean }> =>
    new Promise((resolve) => {
      const s = connect(sock(auth));
      const got: Buffer[] = [];
      let timer: NodeJS.Timeout | undefined;
      const finish = (closed: boolean) => {
        clearTimeout(timer);
        s.destroy();
        resolve({ bytes: Buffer.concat(got), closed });
      };
      const quiet = () => {
        clearTimeout(timer);
        timer = setTimeout(() => finish(false), 150);
      };
      s.on('connect', () => {
        s.write(input);
        quiet();
      });
      s.on('data', (d: Buffer) => {
        got.push(d);
        quiet();
      });
      s.on('close', () => finish(true));
      s.on('error', () => {});
    });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'semcache-request-parser-'));
    for (const auth of [true, false]) {
      const args = ['--port', '0', '--unixsocket', sock(auth), '--save', '', '--appendonly', 'no'];
      if (!auth) args.push('--requirepass', 'pw');
      children.push(spawn('redis-server', [...args, '--dir', dir], { stdio: 'ignore' }));
      const want = auth ? '+PONG\r\n' : '-NOAUTH Authentication required.\r\n';
      for (let i = 0; i < 100; i++) {
        const { bytes } = await exchange(b('PING\r\n'), auth).catch(() => ({
          bytes: Buffer.alloc(0),
        }));
        if (str(bytes) === want) break;
        if (i === 99) throw new Error('redis-server did not start');
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  });

  afterAll(() => {
    for (const child of children) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('replies, echoes and protocol errors agree on the table cases', async () => {
    const checked = cases.filter((x) => x.limits === undefined && x.redis !== false);
    const answers = await Promise.all(checked.map((c) => exchange(b(c.input), c.auth ?? true)));
    checked.forEach((c, k) => {
      const { bytes, closed } = answers[k]!;
      const replies: unknown[] = [];
      new RedisParser({
        returnReply: (r) => replies.push(r),
        returnError: (e) => replies.push(e),
        returnBuffers: true,
      }).execute(bytes);
      const mine = parse([b(c.input)], undefined, c.auth ?? true);
      expect(replies, c.name).toHaveLength(mine.cmds.length + (mine.err === undefined ? 0 : 1));
      mine.cmds.forEach((cmd, i) => {
        if (cmd.args.length === 2 && cmd.args[0] === 'ECHO' && c.auth !== false) {
          expect(str(replies[i] as Buffer), c.name).toBe(cmd.args[1]);
        }
      });
      expect(closed, c.name).toBe(mine.err !== undefined);
      if (mine.err !== undefined) {
        // Byte for byte: the '$' error quotes a raw byte.
        expect(str(bytes).endsWith(`-ERR Protocol error: ${mine.err}\r\n`), c.name).toBe(true);
      }
    });
  });
});
