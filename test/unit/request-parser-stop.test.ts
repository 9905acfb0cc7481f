/*
 * RequestParser.stop() (after SYNC/PSYNC the rest of the stream is not
 * requests: it is handed back untouched, however TCP split it) and the
 * RequestPolicy hook (a bulk limit that depends on where the request goes).
 */
import { describe, expect, it } from 'vitest';
import { type ParsedCommand, RequestParser } from '../../src/resp/request-parser.js';

const STREAM = Buffer.from(
  'PING\r\n*1\r\n$4\r\nSYNC\r\n*3\r\n$8\r\nREPLCONF\r\n$3\r\nACK\r\n$1\r\n0\r\n\x00raw',
);
const INLINE = Buffer.from('*1\r\n$4\r\nPING\r\nSYNC\r\n$junk *x\r\n');

/**
 * Feed `chunks` until the parser stops at SYNC; what it emitted and the bytes after SYNC.
 * Chunks are fed from one buffer overwritten after each feed, as the client read buffer is.
 */
function run(chunks: Buffer[]): { names: string[]; after: Buffer } {
  const p = new RequestParser();
  const names: string[] = [];
  let i = 0;
  let stopped = false;
  const reused = Buffer.alloc(Math.max(...chunks.map((c) => c.length)));
  for (; i < chunks.length && !stopped; i++) {
    chunks[i]!.copy(reused);
    const err = p.feed(reused.subarray(0, chunks[i]!.length), (cmd: ParsedCommand) => {
      const name = cmd.args[0]!.toString();
      names.push(name);
      if (name === 'SYNC') {
        p.stop();
        stopped = true;
      }
    });
    reused.fill(0xa5);
    expect(err).toBeUndefined();
  }
  expect(stopped).toBe(true);
  return { names, after: Buffer.concat([p.rest, ...chunks.slice(i)]) };
}

describe('RequestParser.stop', () => {
  it.each([
    ['multibulk', STREAM],
    ['inline', INLINE],
  ])('%s SYNC: whole, every split, byte by byte: the rest comes back untouched', (_name, input) => {
    const at = input.indexOf('SYNC\r\n') + 6;
    const want = input.subarray(at);
    expect(run([input])).toEqual({ names: ['PING', 'SYNC'], after: want });
    for (let s = 1; s < input.length; s++) {
      expect(run([input.subarray(0, s), input.subarray(s)]), `split at ${s}`).toEqual({
        names: ['PING', 'SYNC'],
        after: want,
      });
    }
    const bytes = [...input].map((b) => Buffer.from([b]));
    expect(run(bytes)).toEqual({ names: ['PING', 'SYNC'], after: want });
  });

  it('after stop, feed emits nothing and reports no error', () => {
    const p = new RequestParser();
    p.feed(Buffer.from('SYNC\r\n'), () => p.stop());
    let n = 0;
    expect(p.feed(Buffer.from('*x garbage\r\nPING\r\n'), () => n++)).toBeUndefined();
    expect(n).toBe(0);
  });
});

describe('RequestPolicy', () => {
  const get = (len: number) => Buffer.from(`*2\r\n$3\r\nGET\r\n$${len}\r\n`);
  const mset = (n: number) => Buffer.from(`*${n}\r\n`);
  /** A policy that records what it is asked and refuses past `max` with `text`. */
  function recording(asked: string[], max: number, text: string) {
    const check = (what: string, n: number) => {
      asked.push(`${what}${n}`);
      return n > max ? text : undefined;
    };
    return { bulk: (n: number) => check('$', n) };
  }

  it('is asked only about bulks over 16 KB', () => {
    const asked: string[] = [];
    const never = () => recording(asked, Number.MAX_SAFE_INTEGER, 'x');
    expect(new RequestParser({}, never()).feed(mset(10), () => {})).toBeUndefined();
    expect(new RequestParser({}, never()).feed(get(16384), () => {})).toBeUndefined();
    expect(asked).toEqual([]);
    const p = new RequestParser({}, never());
    expect(p.feed(mset(11), () => {})).toBeUndefined();
    expect(p.feed(Buffer.from('$16385\r\n'), () => {})).toBeUndefined();
    expect(asked).toEqual(['$16385']);
  });

  it('its refusal is the protocol error', () => {
    const asked: string[] = [];
    const bulk = new RequestParser({}, recording(asked, 20_000, 'invalid bulk length'));
    expect(bulk.feed(get(20_001), () => {})).toBe('invalid bulk length');
  });

  it("the parser's own limits are checked first", () => {
    const policy = recording([], 0, 'from the policy');
    const p = new RequestParser({ maxBulkLength: 20_000 }, policy);
    expect(p.feed(get(30_000), () => {})).toBe('invalid bulk length');
    const q = new RequestParser({ maxBulkLength: 20_000 }, policy);
    expect(q.feed(get(19_000), () => {})).toBe('from the policy');
    const u = new RequestParser({}, policy);
    u.setAuthenticated(false);
    expect(u.feed(get(17_000), () => {})).toBe('unauthenticated bulk length');
  });
});
