import fc from 'fast-check';
import RedisParser from 'redis-parser';
import { describe, expect, it } from 'vitest';
import { FramingError, ReplyFramer } from '../../src/resp/reply-framer.js';
import { decodeFlatArray, replyKind, splitAggregate } from '../../src/resp/reply-inspect.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');
const bulk = (data: Buffer): Buffer => Buffer.concat([b(`$${data.length}\r\n`), data, b('\r\n')]);

/** Feeds `chunks` to one framer; returns the absolute end offsets of the replies it reports. */
function frame(chunks: Buffer[], framer = new ReplyFramer()): number[] {
  const ends: number[] = [];
  let base = 0;
  for (const chunk of chunks) {
    let off = 0;
    while (off < chunk.length) {
      const end = framer.next(chunk, off);
      if (end === -1) break;
      expect(end).toBeGreaterThan(off);
      expect(end).toBeLessThanOrEqual(chunk.length);
      ends.push(base + end);
      off = end;
    }
    base += chunk.length;
  }
  return ends;
}

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

function bytewise(buf: Buffer): Buffer[] {
  return Array.from({ length: buf.length }, (_, i) => buf.subarray(i, i + 1));
}

function cumulative(replies: Buffer[]): number[] {
  let sum = 0;
  return replies.map((r) => (sum += r.length));
}

// Deterministic pseudo-random numbers, so failures reproduce.
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const binary = Buffer.from([13, 10, 0, 255, 42, 36, 13, 13, 10, 10, 58, 45, 43, 124, 62]);
const megabyte = Buffer.alloc(1 << 20);
{
  const rand = rng(7);
  for (let i = 0; i < megabyte.length; i++) megabyte[i] = rand() < 0.05 ? 13 : (rand() * 256) | 0;
}

// Each entry: one complete top-level reply.
const SMALL: Array<[string, Buffer]> = [
  ['simple', b('+OK\r\n')],
  ['empty simple', b('+\r\n')],
  ['error', b('-ERR unknown command\r\n')],
  ['integer', b(':-1234567\r\n')],
  ['bulk', b('$5\r\nhello\r\n')],
  ['empty bulk', b('$0\r\n\r\n')],
  ['binary bulk with CRLF inside', bulk(binary)],
  ['null bulk', b('$-1\r\n')],
  ['null array', b('*-1\r\n')],
  ['empty array', b('*0\r\n')],
  ['array', b('*3\r\n$3\r\nfoo\r\n:1\r\n+bar\r\n')],
  ['array of nulls', b('*3\r\n$-1\r\n*-1\r\n_\r\n')],
  ['nested arrays', b('*2\r\n*2\r\n:1\r\n*0\r\n*1\r\n*1\r\n*1\r\n$1\r\nx\r\n')],
  ['null', b('_\r\n')],
  ['booleans', b('*2\r\n#t\r\n#f\r\n')],
  ['double', b(',3.141\r\n')],
  ['double inf', b(',-inf\r\n')],
  ['big number', b('(1234567999999999999999999999999999999\r\n')],
  ['blob error', b('!21\r\nSYNTAX invalid syntax\r\n')],
  ['verbatim', b('=29\r\ntxt:This is a verbatim\nstring\r\n')],
  ['set', b('~3\r\n:0\r\n:1\r\n:2\r\n')],
  ['empty set and map', b('*2\r\n~0\r\n%0\r\n')],
  ['map', b('%3\r\n:0\r\n#f\r\n:1\r\n#t\r\n:2\r\n%1\r\n+k\r\n*2\r\n:1\r\n:2\r\n')],
  ['push', b('>3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$3\r\nhey\r\n')],
  ['invalidate push', b('>2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n')],
  [
    'attribute before reply (DEBUG PROTOCOL attrib)',
    b(
      '|1\r\n$14\r\nkey-popularity\r\n*2\r\n$7\r\nkey:123\r\n:90\r\n' +
        '$39\r\nSome real reply following the attribute\r\n',
    ),
  ],
  ['attribute before aggregate', b('|1\r\n+a\r\n+b\r\n*2\r\n:1\r\n:2\r\n')],
  ['empty attribute', b('|0\r\n:1\r\n')],
  ['consecutive attributes', b('|1\r\n+a\r\n+b\r\n|1\r\n+c\r\n+d\r\n$1\r\nv\r\n')],
  ['nested attribute', b('*3\r\n:1\r\n|1\r\n+ttl\r\n:3600\r\n$3\r\nfoo\r\n:2\r\n')],
  ['attribute in attribute', b('|1\r\n+k\r\n|1\r\n+x\r\n+y\r\n+v\r\n+real\r\n')],
  ['attribute on map value', b('%1\r\n+k\r\n|1\r\n+a\r\n~1\r\n:1\r\n*1\r\n_\r\n')],
  [
    'HELLO 3',
    b(
      '%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n$5\r\nproto\r\n:3\r\n' +
        '$2\r\nid\r\n:4\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n' +
        '$7\r\nmodules\r\n*0\r\n',
    ),
  ],
];

// COMMAND INFO get nosuchcmd, as Redis 7.0.15 sends it.
const COMMAND_INFO_RESP3 = b(
  '*2\r\n*10\r\n$3\r\nget\r\n:2\r\n~2\r\n+readonly\r\n+fast\r\n:1\r\n:1\r\n:1\r\n~3\r\n+@read\r\n' +
    '+@string\r\n+@fast\r\n~0\r\n~1\r\n%3\r\n$5\r\nflags\r\n~2\r\n+RO\r\n+access\r\n' +
    '$12\r\nbegin_search\r\n%2\r\n$4\r\ntype\r\n$5\r\nindex\r\n$4\r\nspec\r\n%1\r\n$5\r\nindex\r\n' +
    ':1\r\n$9\r\nfind_keys\r\n%2\r\n$4\r\ntype\r\n$5\r\nrange\r\n$4\r\nspec\r\n%3\r\n$7\r\nlastkey\r\n' +
    ':0\r\n$7\r\nkeystep\r\n:1\r\n$5\r\nlimit\r\n:0\r\n~0\r\n_\r\n',
);
const COMMAND_INFO_RESP2 = b(
  '*2\r\n*10\r\n$3\r\nget\r\n:2\r\n*2\r\n+readonly\r\n+fast\r\n:1\r\n:1\r\n:1\r\n*3\r\n+@read\r\n' +
    '+@string\r\n+@fast\r\n*0\r\n*1\r\n*6\r\n$5\r\nflags\r\n*2\r\n+RO\r\n+access\r\n' +
    '$12\r\nbegin_search\r\n*4\r\n$4\r\ntype\r\n$5\r\nindex\r\n$4\r\nspec\r\n*2\r\n$5\r\nindex\r\n' +
    ':1\r\n$9\r\nfind_keys\r\n*4\r\n$4\r\ntype\r\n$5\r\nrange\r\n$4\r\nspec\r\n*6\r\n$7\r\nlastkey\r\n' +
    ':0\r\n$7\r\nkeystep\r\n:1\r\n$5\r\nlimit\r\n:0\r\n*0\r\n$-1\r\n',
);
SMALL.push(
  ['COMMAND INFO (RESP3)', COMMAND_INFO_RESP3],
  ['COMMAND INFO (RESP2)', COMMAND_INFO_RESP2],
);

const BIG: Array<[string, Buffer]> = [
  ['1 MB bulk', bulk(megabyte)],
  ['1 MB blob error', Buffer.concat([b(`!${megabyte.length}\r\n`), megabyte, b('\r\n')])],
  [
    'array of 2000 bulks',
    Buffer.concat([
      b('*2000\r\n'),
      ...Array.from({ length: 2000 }, (_, i) => bulk(b(`v${i}\r\n`))),
    ]),
  ],
];

describe('ReplyFramer: table of replies', () => {
  describe.each(SMALL)('%s', (_name, reply) => {
    it('fed whole', () => {
      const f = new ReplyFramer();
      expect(f.next(reply, 0)).toBe(reply.length);
      expect(f.inReply).toBe(false);
    });

    it('fed byte by byte', () => {
      const f = new ReplyFramer();
      for (let i = 0; i < reply.length - 1; i++) {
        expect(f.next(reply.subarray(i, i + 1), 0)).toBe(-1);
        expect(f.inReply).toBe(true);
      }
      expect(f.next(reply.subarray(reply.length - 1), 0)).toBe(1);
      expect(f.inReply).toBe(false);
    });

    it('split at every boundary', () => {
      for (let k = 0; k <= reply.length; k++) {
        expect(frame([reply.subarray(0, k), reply.subarray(k)])).toEqual([reply.length]);
      }
    });

    it('at an offset, followed by another reply', () => {
      const buf = Buffer.concat([b('+x\r\n'), reply, b(':1\r\n')]);
      expect(frame([buf])).toEqual([4, 4 + reply.length, 8 + reply.length]);
    });
  });

  describe.each(BIG)('%s', (_name, reply) => {
    it('fed whole, byte by byte, and at random boundaries', () => {
      expect(frame([reply])).toEqual([reply.length]);
      expect(frame(bytewise(reply))).toEqual([reply.length]);
      const rand = rng(reply.length);
      for (let round = 0; round < 50; round++) {
        const points = Array.from({ length: 1 + round * 3 }, () => (rand() * reply.length) | 0);
        expect(frame(splitAt(reply, points))).toEqual([reply.length]);
      }
    });
  });

  it('frames all replies back to back, split at every boundary and byte by byte', () => {
    const replies = SMALL.map(([, r]) => r);
    const all = Buffer.concat(replies);
    const expected = cumulative(replies);
    expect(frame([all])).toEqual(expected);
    expect(frame(bytewise(all))).toEqual(expected);
    for (let k = 0; k <= all.length; k++) {
      expect(frame([all.subarray(0, k), all.subarray(k)])).toEqual(expected);
    }
    const rand = rng(1);
    for (let round = 0; round < 200; round++) {
      const points = Array.from({ length: 1 + (round % 40) }, () => (rand() * all.length) | 0);
      expect(frame(splitAt(all, points))).toEqual(expected);
    }
  });

  it('reports inReply only between the start and the end of a reply', () => {
    const f = new ReplyFramer();
    const reply = b('*2\r\n$3\r\nabc\r\n:1\r\n');
    expect(f.inReply).toBe(false);
    expect(f.next(reply.subarray(0, 9), 0)).toBe(-1);
    expect(f.inReply).toBe(true);
    expect(f.next(reply.subarray(9), 0)).toBe(reply.length - 9);
    expect(f.inReply).toBe(false);
    expect(f.next(reply, reply.length)).toBe(-1);
    expect(f.inReply).toBe(false);
    f.next(reply.subarray(0, 5), 0);
    f.reset();
    expect(f.inReply).toBe(false);
    expect(f.next(b(':1\r\n'), 0)).toBe(4);
  });

  it('skips a 50 MB bulk of adversarial bytes in 64 KB chunks, in O(chunks)', () => {
    const chunk = Buffer.alloc(64 * 1024);
    for (let i = 0; i < chunk.length; i++) chunk[i] = b('\r\n*9\r\n$1\r\n')[i % 10]!;
    const count = 800;
    const header = b(`$${chunk.length * count}\r\n`);
    const f = new ReplyFramer();
    const started = performance.now();
    expect(f.next(header, 0)).toBe(-1);
    for (let i = 0; i < count; i++) expect(f.next(chunk, 0)).toBe(-1);
    const elapsed = performance.now() - started;
    expect(f.next(b('\r\n+OK\r\n'), 0)).toBe(2);
    expect(elapsed).toBeLessThan(250);
  });

  it('throws FramingError on bytes that are not RESP', () => {
    const bad = [
      'x\r\n',
      '\r\n',
      '$abc\r\n',
      '$\r\n',
      '$-2\r\n',
      '$--1\r\n',
      '*1-\r\n',
      '$1\r\nab\r\n',
      '$1\r\na\rx',
      '+OK\rX',
      '*1\r\r',
      '$1234567890123456\r\n',
      '$?\r\n',
      '*2\r\n:1\r\nz',
    ];
    for (const s of bad) {
      expect(() => frame([b(s)]), s).toThrow(FramingError);
      expect(() => frame(bytewise(b(s))), s).toThrow(FramingError);
    }
  });
});

// ---- RESP2 cross-check against redis-parser (an independent decoder). ----

type V2 =
  | { t: 'simple'; v: string }
  | { t: 'error'; v: string }
  | { t: 'int'; v: number }
  | { t: 'bulk'; v: Uint8Array }
  | { t: 'nullBulk' }
  | { t: 'nullArray' }
  | { t: 'array'; v: V2[] };

const line = fc.string({ maxLength: 20 }).map((s) => s.replace(/[\r\n]/g, ''));
const bytes = fc.oneof(
  fc.uint8Array({ maxLength: 40 }),
  fc
    .array(fc.constantFrom(13, 10, 36, 42, 58, 48, 49, 45), { maxLength: 20 })
    .map((a) => Uint8Array.from(a)),
);
const { v2 } = fc.letrec<{ v2: V2 }>((tie) => ({
  v2: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    line.map((v): V2 => ({ t: 'simple', v })),
    line.map((v): V2 => ({ t: 'error', v: `ERR ${v}` })),
    fc.maxSafeInteger().map((v): V2 => ({ t: 'int', v })),
    bytes.map((v): V2 => ({ t: 'bulk', v })),
    fc.constant<V2>({ t: 'nullBulk' }),
    fc.constant<V2>({ t: 'nullArray' }),
    fc.array(tie('v2'), { maxLength: 6 }).map((v): V2 => ({ t: 'array', v })),
  ),
}));

function encode2(v: V2): Buffer {
  switch (v.t) {
    case 'simple':
      return Buffer.from(`+${v.v}\r\n`);
    case 'error':
      return Buffer.from(`-${v.v}\r\n`);
    case 'int':
      return b(`:${v.v}\r\n`);
    case 'bulk':
      return bulk(Buffer.from(v.v));
    case 'nullBulk':
      return b('$-1\r\n');
    case 'nullArray':
      return b('*-1\r\n');
    case 'array':
      return Buffer.concat([b(`*${v.v.length}\r\n`), ...v.v.map(encode2)]);
  }
}

/** What redis-parser (returnBuffers) yields for a value, with buffers as hex. */
function expected2(v: V2): unknown {
  switch (v.t) {
    case 'simple':
      return Buffer.from(v.v).toString('hex');
    case 'error':
      return `error:${v.v}`;
    case 'int':
      return v.v;
    case 'bulk':
      return Buffer.from(v.v).toString('hex');
    case 'nullBulk':
    case 'nullArray':
      return null;
    case 'array':
      return v.v.map(expected2);
  }
}

function normalizeParsed(x: unknown): unknown {
  if (Buffer.isBuffer(x)) return x.toString('hex');
  if (x instanceof Error) return `error:${x.message}`;
  if (Array.isArray(x)) return x.map(normalizeParsed);
  return x;
}

function parseAll(chunks: Buffer[]): unknown[] {
  const out: unknown[] = [];
  // Normalise at once: redis-parser may hand out slices of a pool it later reuses.
  const parser = new RedisParser({
    returnBuffers: true,
    returnReply: (r) => out.push(normalizeParsed(r)),
    returnError: (e) => out.push(normalizeParsed(e)),
    returnFatalError: (e) => {
      throw e;
    },
  });
  for (const c of chunks) parser.execute(c);
  return out;
}

describe('ReplyFramer vs redis-parser on random RESP2 streams', () => {
  it('finds the same replies at the same boundaries', () => {
    fc.assert(
      fc.property(
        fc.array(v2, { minLength: 1, maxLength: 15 }),
        fc.array(fc.nat(), { maxLength: 12 }),
        (values, points) => {
          const encoded = values.map(encode2);
          const all = Buffer.concat(encoded);
          const chunks = splitAt(all, points);
          const ends = frame(chunks);
          expect(ends).toEqual(cumulative(encoded));
          const parsed = parseAll(chunks);
          expect(parsed).toEqual(values.map(expected2));
          // Each framed slice is exactly one reply to the independent decoder.
          let start = 0;
          ends.forEach((end, i) => {
            expect(parseAll([all.subarray(start, end)])).toEqual([parsed[i]]);
            start = end;
          });
        },
      ),
      { numRuns: 500 },
    );
  });
});

// ---- Fuzz: arbitrary or mutated bytes only ever raise FramingError. ----

function frameOrFramingError(chunks: Buffer[]): void {
  const total = chunks.reduce((n, c) => n + c.length, 0);
  try {
    const ends = frame(chunks);
    for (let i = 1; i < ends.length; i++) expect(ends[i]!).toBeGreaterThan(ends[i - 1]!);
    if (ends.length) expect(ends[ends.length - 1]!).toBeLessThanOrEqual(total);
  } catch (err) {
    if (!(err instanceof FramingError)) throw err;
  }
}

const respByte = fc.oneof(
  fc.constantFrom(...b('+-:_#,($!=*~>%|\r\n0123456789-?')),
  fc.integer({ min: 0, max: 255 }),
);
const mutation = fc.record({
  op: fc.constantFrom('flip', 'insert', 'delete', 'truncate'),
  at: fc.nat(),
  byte: respByte,
});

describe('ReplyFramer fuzz', () => {
  it('random bytes, random chunking', () => {
    fc.assert(
      fc.property(
        fc.array(respByte, { maxLength: 200 }),
        fc.array(fc.nat(), { maxLength: 10 }),
        (arr, points) => frameOrFramingError(splitAt(Buffer.from(arr), points)),
      ),
      { numRuns: 3000 },
    );
  });

  it('mutated valid replies, random chunking', () => {
    const seeds = fc.oneof(
      fc.constantFrom(...SMALL.map(([, r]) => r)),
      fc.array(v2, { minLength: 1, maxLength: 4 }).map((vs) => Buffer.concat(vs.map(encode2))),
    );
    fc.assert(
      fc.property(
        seeds,
        fc.array(mutation, { minLength: 1, maxLength: 4 }),
        fc.array(fc.nat(), { maxLength: 8 }),
        (seed, mutations, points) => {
          let buf = Buffer.from(seed);
          for (const m of mutations) {
            const at = m.at % (buf.length + 1);
            const before = buf.subarray(0, at);
            if (m.op === 'flip' && at < buf.length) buf[at] = m.byte;
            else if (m.op === 'insert')
              buf = Buffer.concat([before, Buffer.from([m.byte]), buf.subarray(at)]);
            else if (m.op === 'delete') buf = Buffer.concat([before, buf.subarray(at + 1)]);
            else if (m.op === 'truncate') buf = Buffer.from(before);
          }
          frameOrFramingError(splitAt(buf, points));
        },
      ),
      { numRuns: 5000 },
    );
  });
});

// ---- Helpers over complete replies. ----

describe('replyKind', () => {
  it.each([
    ['>3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$3\r\nhey\r\n', 'message'],
    ['*3\r\n$9\r\nSUBSCRIBE\r\n$3\r\nch1\r\n:1\r\n', 'subscribe'],
    ['*4\r\n$8\r\npmessage\r\n$2\r\nc*\r\n$2\r\nc1\r\n$1\r\nx\r\n', 'pmessage'],
    ['*2\r\n+Pong\r\n$0\r\n\r\n', 'pong'],
    ['|1\r\n+a\r\n+b\r\n>2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n', 'invalidate'],
    ['*1\r\n$0\r\n\r\n', ''],
    ['*2\r\n:1\r\n:2\r\n', undefined],
    ['*1\r\n$-1\r\n', undefined],
    ['*0\r\n', undefined],
    ['*-1\r\n', undefined],
    ['~1\r\n+message\r\n', undefined],
    ['+message\r\n', undefined],
    ['$7\r\nmessage\r\n', undefined],
    ['', undefined],
  ])('%j -> %j', (reply, kind) => {
    expect(replyKind(b(reply))).toBe(kind);
  });
});

describe('decodeFlatArray', () => {
  it('decodes pub/sub confirmations in RESP2 and RESP3', () => {
    expect(decodeFlatArray(b('*3\r\n$9\r\nsubscribe\r\n$3\r\nch1\r\n:1\r\n'))).toEqual([
      b('subscribe'),
      b('ch1'),
      1,
    ]);
    expect(decodeFlatArray(b('>3\r\n$11\r\nunsubscribe\r\n_\r\n:0\r\n'))).toEqual([
      b('unsubscribe'),
      null,
      0,
    ]);
  });

  it('decodes simple strings, negative integers, every null and binary bulks', () => {
    const reply = Buffer.concat([b('*6\r\n+OK\r\n:-42\r\n$-1\r\n*-1\r\n_\r\n'), bulk(binary)]);
    expect(decodeFlatArray(reply)).toEqual([b('OK'), -42, null, null, null, binary]);
    expect(decodeFlatArray(b('*0\r\n'))).toEqual([]);
  });

  it('copies strings out of the reply buffer', () => {
    const reply = b('*1\r\n$3\r\nabc\r\n');
    const out = decodeFlatArray(reply)!;
    reply.fill(0);
    expect(out[0]).toEqual(b('abc'));
  });

  it.each([
    '*1\r\n*1\r\n:1\r\n',
    '*1\r\n-ERR x\r\n',
    '*1\r\n,1.5\r\n',
    '%1\r\n+a\r\n+b\r\n',
    '~1\r\n+a\r\n',
    '*-1\r\n',
    '+OK\r\n',
    '*2\r\n:1\r\n',
    '*1\r\n:1\r\n:2\r\n',
    '*1\r\n$3\r\nab\r\n',
    '*1\r\n:x\r\n',
  ])('rejects %j', (reply) => {
    expect(decodeFlatArray(b(reply))).toBeUndefined();
  });
});

describe('splitAggregate', () => {
  function reassemble(reply: Buffer): Buffer {
    const s = splitAggregate(reply)!;
    let pos = s.headerEnd;
    for (const [start, end] of s.children) {
      expect(start).toBe(pos);
      pos = end;
    }
    expect(pos).toBe(reply.length);
    return Buffer.concat([
      reply.subarray(0, s.headerEnd),
      ...s.children.map(([x, y]) => reply.subarray(x, y)),
    ]);
  }

  it('splits COMMAND INFO replies in both protocols', () => {
    for (const reply of [COMMAND_INFO_RESP3, COMMAND_INFO_RESP2]) {
      const s = splitAggregate(reply)!;
      expect(s.type).toBe('*');
      expect(s.count).toBe(2);
      expect(s.headerEnd).toBe(4);
      expect(s.children).toHaveLength(2);
      const [first, second] = s.children;
      expect(reply.subarray(first![0], first![0] + 14).toString()).toBe('*10\r\n$3\r\nget\r\n');
      expect(reply.subarray(second![0], second![1]).toString()).toMatch(/^(_|\$-1)\r\n$/);
      expect(reassemble(reply)).toEqual(reply);
    }
  });

  it('gives maps 2N children, keeps attribute prefixes with their child', () => {
    const map = b('%2\r\n+a\r\n|1\r\n+t\r\n:1\r\n:1\r\n+b\r\n*1\r\n:2\r\n');
    const s = splitAggregate(map)!;
    expect(s).toMatchObject({ type: '%', count: 2, headerEnd: 4 });
    expect(s.children.map(([x, y]) => map.toString('latin1', x, y))).toEqual([
      '+a\r\n',
      '|1\r\n+t\r\n:1\r\n:1\r\n',
      '+b\r\n',
      '*1\r\n:2\r\n',
    ]);
    expect(reassemble(map)).toEqual(map);
  });

  it('handles sets, pushes, empty and null aggregates and a top-level attribute', () => {
    expect(splitAggregate(b('~2\r\n:1\r\n:2\r\n'))).toEqual({
      type: '~',
      count: 2,
      headerEnd: 4,
      children: [
        [4, 8],
        [8, 12],
      ],
    });
    expect(splitAggregate(b('>1\r\n+x\r\n'))?.type).toBe('>');
    expect(splitAggregate(b('*0\r\n'))).toEqual({
      type: '*',
      count: 0,
      headerEnd: 4,
      children: [],
    });
    expect(splitAggregate(b('*-1\r\n'))).toEqual({
      type: '*',
      count: -1,
      headerEnd: 5,
      children: [],
    });
    expect(splitAggregate(b('|1\r\n+a\r\n+b\r\n*1\r\n:1\r\n'))).toEqual({
      type: '*',
      count: 1,
      headerEnd: 16,
      children: [[16, 20]],
    });
  });

  it.each(['+OK\r\n', '$3\r\nabc\r\n', ':1\r\n', '_\r\n', '*2\r\n:1\r\n', '*1\r\nx\r\n', ''])(
    'rejects %j',
    (reply) => {
      expect(splitAggregate(b(reply))).toBeUndefined();
    },
  );
});
