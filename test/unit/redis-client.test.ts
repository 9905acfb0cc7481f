/*
 * RedisClient (src/upstream/redis-client.ts), semcache's own pipelined connection to
 * Redis: against a real redis-server for what Redis itself decides (replies,
 * command order seen through MONITOR, MGET merging counted by INFO
 * commandstats, ACL and AUTH errors, lost connections), and against a fake
 * TCP server for what a real one will not do (replies cut at any byte, a
 * connection dropped mid-reply, odd MGET replies, a server that never
 * completes the TCP handshake).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { freePort } from '../../src/embedded-redis.js';
import { RequestParser } from '../../src/resp/request-parser.js';
import {
  decodeReply,
  encodeCommand,
  RedisClient,
  type RedisClientOptions,
  RedisConnectionError,
  RedisReplyError,
  type RedisValue,
} from '../../src/upstream/redis-client.js';
import { stopAfterEach } from '../helpers/cleanup.js';
import { waitFor } from '../helpers/proc.js';
import { cmd, RawClient, request } from '../helpers/raw.js';
import { type RedisHandle, startRedis } from '../helpers/servers.js';

/** Everything a test started, stopped after it whatever happened. */
const cleanups = stopAfterEach();

const b = (s: string): Buffer => Buffer.from(s, 'latin1');
const str = (v: RedisValue | undefined): string | null =>
  Buffer.isBuffer(v) ? v.toString('utf8') : v === null ? null : `<${typeof v}>`;
const strs = (vs: readonly (Buffer | null)[]): (string | null)[] => vs.map((v) => str(v));
/** Byte equality without toEqual, which is far too slow for megabytes. */
const same = (v: RedisValue | undefined, want: Buffer): boolean =>
  Buffer.isBuffer(v) && v.equals(want);
/** One turn of the event loop: the client's queued commands are written by then. */
const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

function client(opts: Partial<RedisClientOptions> & { port: number }): RedisClient {
  const c = new RedisClient({ host: '127.0.0.1', ...opts });
  cleanups.push(() => c.close());
  return c;
}

/** The error `p` rejects with; attaches its handler at once, so no rejection goes unhandled. */
function rejection(p: Promise<unknown>): Promise<Error> {
  return p.then(
    (v) => {
      throw new Error(`expected a rejection, got ${JSON.stringify(v)}`);
    },
    (e: Error) => e,
  );
}

type ErrorClass = new (...args: never[]) => Error;

function checkError(err: Error, type: ErrorClass, message: string | RegExp): void {
  expect(err).toBeInstanceOf(type);
  if (typeof message === 'string') expect(err.message).toBe(message);
  else expect(err.message).toMatch(message);
}

async function expectError(
  p: Promise<unknown>,
  type: ErrorClass,
  message: string | RegExp,
): Promise<void> {
  checkError(await rejection(p), type, message);
}

const lostMessage = (port: number) => `connection to redis 127.0.0.1:${port} lost`;

describe('encodeCommand and decodeReply', () => {
  it('encodes strings (UTF-8), Buffers and numbers as an array of bulk strings', () => {
    const out = encodeCommand(['SET', Buffer.from([0, 13, 10, 255]), 12, -3, 1.5, 'é€', '']);
    expect(out.toString('latin1')).toBe(
      '*7\r\n$3\r\nSET\r\n$4\r\n\x00\r\n\xff\r\n$2\r\n12\r\n$2\r\n-3\r\n$3\r\n1.5\r\n' +
        `$5\r\n${Buffer.from('é€').toString('latin1')}\r\n$0\r\n\r\n`,
    );
  });

  it('encodes arguments far larger than its first buffer', () => {
    const big = Buffer.alloc(100_000, 0x61);
    big[99_999] = 0x7a;
    const out = encodeCommand(['SET', 'k', big]);
    const head = '*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100000\r\n';
    expect(out.length).toBe(head.length + 100_000 + 2);
    expect(out.subarray(0, head.length).toString('latin1')).toBe(head);
    expect(out.subarray(head.length, head.length + 100_000).equals(big)).toBe(true);
    expect(out.subarray(-2).toString('latin1')).toBe('\r\n');
  });

  it('decodes each RESP2 type from any position and says where it ends', () => {
    const at = (s: string, pos = 0) => decodeReply(b(s), pos);
    expect(at('+OK\r\n')).toEqual([b('OK'), 5]);
    expect(at('xx:42\r\nyy', 2)).toEqual([42, 7]);
    expect(at(':-17\r\n')).toEqual([-17, 6]);
    expect(at(':0\r\n')).toEqual([0, 4]);
    // Over 15 digits: through Number(), rounded like any double.
    expect(at(':12345678901234567\r\n')).toEqual([Number('12345678901234567'), 20]);
    expect(at(':-9007199254740993\r\n')).toEqual([-9007199254740992, 20]);
    // One where adding up digit by digit in a double would round differently.
    expect(at(':69440739027927156\r\n')).toEqual([69440739027927150, 20]);
    expect(at('$5\r\na\r\nbc\r\n')).toEqual([b('a\r\nbc'), 11]);
    expect(at('$0\r\n\r\n')).toEqual([b(''), 6]);
    expect(at('$-1\r\n')).toEqual([null, 5]);
    expect(at('*-1\r\n')).toEqual([null, 5]);
    expect(at('*0\r\n')).toEqual([[], 4]);
    expect(at('*3\r\n$1\r\na\r\n*2\r\n:-5\r\n$-1\r\n+x\r\n')).toEqual([
      [b('a'), [-5, null], b('x')],
      29,
    ]);
    const [err, end] = at('-ERR no such key\r\n:1\r\n');
    expect(err).toBeInstanceOf(RedisReplyError);
    expect((err as Error).message).toBe('ERR no such key');
    expect(end).toBe(18);
    const [nested] = at('*2\r\n-WRONGTYPE bad\r\n:1\r\n');
    expect((nested as RedisValue[])[0]).toBeInstanceOf(RedisReplyError);
    expect(((nested as RedisValue[])[0] as Error).message).toBe('WRONGTYPE bad');
  });

  it('rejects a byte that is no RESP type', () => {
    expect(() => decodeReply(b('x\r\n'), 0)).toThrow(RedisConnectionError);
    expect(() => decodeReply(b('*1\r\n@0\r\n'), 0)).toThrow('unexpected reply type 0x40');
  });

  it("decodes RESP3 as plain values (replies to a RESP3 client's requests)", () => {
    const all = (s: string) => decodeReply(b(s), 0);
    expect(all('_\r\n')).toEqual([null, 3]);
    expect(all('#t\r\n')).toEqual([1, 4]);
    expect(all(',1.5\r\n')[0]).toBe(1.5);
    expect(all('(1234567890123\r\n')[0]).toBe(1234567890123);
    expect(all('=7\r\ntxt:abc\r\n')[0]).toEqual(b('abc'));
    const [err] = all('!5\r\nERR x\r\n');
    expect(err).toBeInstanceOf(RedisReplyError);
    expect((err as Error).message).toBe('ERR x');
    expect(all('%1\r\n$1\r\na\r\n:1\r\n')).toEqual([[b('a'), 1], 15]);
    expect(all('~2\r\n:1\r\n_\r\n')).toEqual([[1, null], 11]);
    expect(all('|1\r\n+k\r\n+v\r\n:7\r\n')).toEqual([7, 16]);
  });
});

describe('RedisClient against redis-server', () => {
  let redis: RedisHandle;
  let admin: RedisClient;

  beforeAll(async () => {
    redis = await startRedis();
    admin = new RedisClient({ host: '127.0.0.1', port: redis.port });
  });
  afterAll(async () => {
    admin?.close();
    await redis?.stop();
  });
  beforeEach(async () => {
    await admin.call('FLUSHALL');
    await admin.call('CONFIG', 'RESETSTAT');
  });

  /** cmdstat_mget of INFO commandstats: executed calls and calls refused (ACL) before running. */
  async function mgetStats(): Promise<{ calls: number; rejected: number }> {
    const info = str(await admin.call('INFO', 'commandstats')) ?? '';
    const line = /^cmdstat_mget:(.*)$/m.exec(info)?.[1] ?? '';
    const field = (name: string) =>
      Number(new RegExp(`(?:^|,)${name}=(\\d+)`).exec(line)?.[1] ?? 0);
    return { calls: field('calls'), rejected: field('rejected_calls') };
  }

  /**
   * Commands (argv as strings) that redis runs from now on, as MONITOR on a
   * second connection reports them, up to `ECHO <end>` sent by the client
   * under test; call the returned function after that ECHO is queued.
   */
  async function monitor(end = 'monitor-end'): Promise<() => Promise<string[][]>> {
    const raw = await RawClient.open(redis.port);
    cleanups.push(() => raw.close());
    expect(await request(raw, cmd('MONITOR'))).toBe('+OK\r\n');
    const start = raw.received.length;
    return async () => {
      const bytes = await raw.until((buf) => buf.includes(`"ECHO" "${end}"`));
      const seen: string[][] = [];
      for (const line of bytes.subarray(start).toString('latin1').split('\r\n')) {
        const m = /^\+\d+\.\d+ \[\d+ [^\]]+\] (.*)$/.exec(line);
        if (!m) continue;
        const argv = [...m[1]!.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((a) => a[1]!);
        if (argv[0] === 'ECHO' && argv[1] === end) return seen;
        seen.push(argv);
      }
      throw new Error(`MONITOR never saw ECHO ${end}`);
    };
  }

  it('queues commands asked for before the connection is up, in the order asked', async () => {
    const c = client({ port: redis.port });
    const [read, set, readAgain] = await Promise.all([
      c.mget([b('x')]),
      c.call('SET', 'x', 'vx'),
      c.mget([b('x')]),
    ]);
    expect(read).toEqual([null]);
    expect(str(set)).toBe('OK');
    expect(strs(readAgain)).toEqual(['vx']);
  });

  it('decodes what redis answers: strings, integers, nils, nested arrays, binary values', async () => {
    const c = client({ port: redis.port });
    expect(str(await c.call('PING'))).toBe('PONG');
    expect(await c.call('DEL', 'n')).toBe(0);
    expect(await c.call('INCRBY', 'n', '9007199254740993')).toBe(Number('9007199254740993'));
    expect(await c.call('INCRBY', 'm', -123456789012)).toBe(-123456789012);
    expect(str(await c.call('SET', 'u', 'héllo €'))).toBe('OK');
    expect(str(await c.call('GET', 'u'))).toBe('héllo €');
    const binary = Buffer.from([0, 13, 10, 36, 42, 255, 13]);
    await c.call('SET', binary, binary);
    expect(await c.call('GET', binary)).toEqual(binary);
    await c.call('SET', 'empty', '');
    expect(await c.call('GET', 'empty')).toEqual(b(''));
    expect(await c.call('GET', 'missing')).toBeNull();
    expect(await c.call('LRANGE', 'nolist', 0, -1)).toEqual([]);
    expect(await c.call('BLPOP', 'nolist', '0.01')).toBeNull(); // *-1
    expect(await c.call('EVAL', 'return {1,{2,"a",{}},false,-3}', 0)).toEqual([
      1,
      [2, b('a'), []],
      null,
      -3,
    ]);
    expect(await c.mget([])).toEqual([]);
    expect(await c.pipeline([])).toEqual([]);
  });

  it('call() rejects with an error reply; pipeline() returns it in its place', async () => {
    const c = client({ port: redis.port });
    await c.call('SET', 'x', 'not a number');
    await expectError(
      c.call('INCR', 'x'),
      RedisReplyError,
      'ERR value is not an integer or out of range',
    );
    const replies = await c.pipeline([['GET', 'x'], ['INCR', 'x'], ['LPUSH', 'x', 'e'], ['PING']]);
    expect(replies).toHaveLength(4);
    expect(str(replies[0])).toBe('not a number');
    expect(replies[1]).toBeInstanceOf(RedisReplyError);
    expect((replies[1] as Error).message).toBe('ERR value is not an integer or out of range');
    expect((replies[2] as Error).message).toBe(
      'WRONGTYPE Operation against a key holding the wrong kind of value',
    );
    expect(str(replies[3])).toBe('PONG');
    // The connection is still in step: the next reply is the next command's.
    expect(str(await c.call('GET', 'x'))).toBe('not a number');
  });

  it('merges back-to-back mget() calls of one turn into one MGET, a repeated key sent once', async () => {
    const c = client({ port: redis.port });
    await c.pipeline([
      ['SET', 'x', 'vx'],
      ['SET', 'y', 'vy'],
      ['LPUSH', 'l', 'e'],
    ]);
    const [kx, ky, kl, none] = [b('x'), b('y'), b('l'), b('nokey')];
    const seen = await monitor();
    // b('x') twice: equal bytes in another Buffer are the same key.
    const reads = [
      c.mget([kx]),
      c.mget([kx, ky, kl, none]),
      c.mget([b('x')]),
      c.mget([ky, kx, ky]),
    ];
    const echo = c.call('ECHO', 'monitor-end');
    const values = await Promise.all(reads);
    await echo;
    expect(await seen()).toEqual([['MGET', 'x', 'y', 'l', 'nokey']]);
    expect(values.map(strs)).toEqual([
      ['vx'],
      ['vx', 'vy', null, null], // a list is not a string: nil, as MGET says
      ['vx'],
      ['vy', 'vx', 'vy'],
    ]);
    expect(await mgetStats()).toEqual({ calls: 1, rejected: 0 });
  });

  it('never lets a read join an MGET across another command: order to redis is kept', async () => {
    const c = client({ port: redis.port });
    await c.call('SET', 'x', 'old');
    const [kx, ky] = [b('x'), b('y')];
    const seen = await monitor();
    const before = c.mget([kx]);
    const alsoBefore = c.mget([ky]);
    const write = c.call('SET', 'x', 'new');
    const after = c.mget([kx]);
    const piped = c.pipeline([
      ['GET', 'x'],
      ['SET', 'y', 'vy'],
    ]);
    const last = c.mget([ky, kx]);
    const echo = c.call('ECHO', 'monitor-end');
    expect(strs(await before)).toEqual(['old']);
    expect(strs(await alsoBefore)).toEqual([null]);
    expect(str(await write)).toBe('OK');
    expect(strs(await after)).toEqual(['new']);
    expect((await piped).map(str)).toEqual(['new', 'OK']);
    expect(strs(await last)).toEqual(['vy', 'new']);
    await echo;
    expect(await seen()).toEqual([
      ['MGET', 'x', 'y'],
      ['SET', 'x', 'new'],
      ['MGET', 'x'],
      ['GET', 'x'],
      ['SET', 'y', 'vy'],
      ['MGET', 'y', 'x'],
    ]);
    expect(await mgetStats()).toEqual({ calls: 3, rejected: 0 });
  });

  it('puts at most 1024 keys in one MGET before starting another', async () => {
    const c = client({ port: redis.port });
    await c.call('SET', 'k7', 'seven');
    const read = (n: number) =>
      Promise.all(Array.from({ length: n }, (_, i) => c.mget([b(`k${i}`)])));
    const full = await read(1024);
    expect(full).toHaveLength(1024);
    expect(strs(full[7]!)).toEqual(['seven']);
    expect(full.filter(([v]) => v !== null)).toHaveLength(1);
    expect(await mgetStats()).toEqual({ calls: 1, rejected: 0 });

    await admin.call('CONFIG', 'RESETSTAT');
    const over = await read(1025);
    expect(over).toHaveLength(1025);
    expect(strs(over[7]!)).toEqual(['seven']);
    expect(over[1024]).toEqual([null]);
    expect(await mgetStats()).toEqual({ calls: 2, rejected: 0 });
  });

  it('on an error reply, fails only the merged callers that would fail alone (ACL key patterns)', async () => {
    await admin.call('ACL', 'SETUSER', 'limited', 'on', '>pw', '~ok:*', '+@all');
    cleanups.push(() => admin.call('ACL', 'DELUSER', 'limited'));
    await admin.call('SET', 'ok:1', 'one');
    const lim = client({ port: redis.port, username: 'limited', password: 'pw' });
    expect(str(await lim.call('PING'))).toBe('PONG');

    const noperm = /^NOPERM this user has no permissions to access one of the keys/;
    const ok1 = lim.mget([b('ok:1')]);
    const bad = rejection(lim.mget([b('secret')]));
    const ok2 = lim.mget([b('ok:1'), b('ok:2')]);
    expect(strs(await ok1)).toEqual(['one']);
    checkError(await bad, RedisReplyError, noperm);
    expect(strs(await ok2)).toEqual(['one', null]);
    // One merged MGET refused, then each caller on its own: two run, one refused.
    expect(await mgetStats()).toEqual({ calls: 2, rejected: 2 });

    // A caller alone gets the error as is, without a second try.
    await admin.call('CONFIG', 'RESETSTAT');
    await expectError(lim.mget([b('secret'), b('ok:1')]), RedisReplyError, noperm);
    expect(await mgetStats()).toEqual({ calls: 0, rejected: 1 });
    expect(strs(await lim.mget([b('ok:1')]))).toEqual(['one']);
  });

  it('reads values that arrive across many socket reads (3 MB values, 20k replies)', async () => {
    const c = client({ port: redis.port });
    const big = Buffer.alloc(3_000_000, 7);
    big[0] = 1;
    big[big.length - 1] = 2;
    await c.call('SET', 'big', big);
    expect(same(await c.call('GET', 'big'), big)).toBe(true);
    const kb = b('big');
    const got = await Promise.all(Array.from({ length: 5 }, () => c.mget([kb])));
    for (const [v] of got) expect(same(v, big)).toBe(true);

    const n = 20_000;
    const value = (i: number) => `${i}:`.repeat(20);
    const set = await c.pipeline(Array.from({ length: n }, (_, i) => ['SET', `k${i}`, value(i)]));
    expect(set.every((r) => str(r) === 'OK')).toBe(true);
    const vals = await Promise.all(Array.from({ length: n }, (_, i) => c.mget([b(`k${i}`)])));
    const wrong = vals.findIndex(([v], i) => str(v) !== value(i));
    expect(wrong).toBe(-1);
  });

  it('10 MB writes: bytes the socket still holds are not overwritten by the next commands', async () => {
    const c = client({ port: redis.port });
    await c.call('PING');
    // Same-sized commands: the second would fit exactly where the first was encoded.
    const one = Buffer.alloc(10 * 1024 * 1024, 0x31);
    const two = Buffer.alloc(10 * 1024 * 1024, 0x32);
    const w1 = c.call('SET', 'big1', one);
    await turn(); // written: most of it is still queued in the socket
    const w2 = c.call('SET', 'big2', two);
    await turn();
    const small = Array.from({ length: 50 }, (_, i) =>
      c.call('SET', `s${i}`, `v${i}`.repeat(1000)),
    );
    expect(str(await w1)).toBe('OK');
    expect(str(await w2)).toBe('OK');
    expect((await Promise.all(small)).map(str)).toEqual(Array(50).fill('OK'));
    expect(await admin.call('STRLEN', 'big1')).toBe(one.length);
    expect(same(await admin.call('GET', 'big1'), one)).toBe(true);
    expect(same(await admin.call('GET', 'big2'), two)).toBe(true);
    for (let i = 0; i < 50; i++)
      expect(str(await admin.call('GET', `s${i}`))).toBe(`v${i}`.repeat(1000));
  });

  it('rejects the commands in flight when the connection is lost, then reconnects', async () => {
    const c = client({ port: redis.port });
    await c.call('SET', 'x', 'vx');
    const id = await c.call('CLIENT', 'ID');
    const blocked = rejection(c.call('BLPOP', 'nolist', 0));
    const queued = rejection(c.mget([b('x')]));
    const piped = rejection(c.pipeline([['PING'], ['PING']]));
    const isBlocked = async () => /^blocked_clients:1$/m.test(str(await admin.call('INFO')) ?? '');
    expect(await waitFor(isBlocked)).toBe(true);
    expect(await admin.call('CLIENT', 'KILL', 'ID', id as number)).toBe(1);
    for (const p of [blocked, queued, piped]) {
      checkError(await p, RedisConnectionError, lostMessage(redis.port));
    }
    // A new connection, and the BLPOP was not sent again (it would hold up this read).
    expect(strs(await c.mget([b('x')]))).toEqual(['vx']);
    expect(await isBlocked()).toBe(false);
    const newId = await c.call('CLIENT', 'ID');
    expect(newId).not.toBe(id);
  });

  it('AUTH with a username (ACL user) and SELECT of the configured db', async () => {
    await admin.call('ACL', 'SETUSER', 'app', 'on', '>apppw', '~*', '+@all');
    cleanups.push(() => admin.call('ACL', 'DELUSER', 'app'));
    const c = client({ port: redis.port, username: 'app', password: 'apppw', db: 2 });
    expect(str(await c.call('ACL', 'WHOAMI'))).toBe('app');
    await c.call('SET', 'where', 'db2');
    expect(await admin.call('GET', 'where')).toBeNull();
    const db2 = client({ port: redis.port, db: 2 });
    expect(str(await db2.call('GET', 'where'))).toBe('db2');
    await expectError(
      client({ port: redis.port, username: 'app', password: 'nope' }).call('PING'),
      RedisReplyError,
      'WRONGPASS invalid username-password pair or user is disabled.',
    );
  });
});

describe('RedisClient and a redis that comes and goes', () => {
  it('a password-protected redis: NOAUTH, WRONGPASS, then a retry connects', async () => {
    // Set after start: startRedis waits for a +PONG that a protected redis would not give.
    const redis = await startRedis();
    cleanups.push(() => redis.stop());
    const setup = new RedisClient({ host: '127.0.0.1', port: redis.port });
    await setup.call('CONFIG', 'SET', 'requirepass', 's3cret');
    setup.close();
    await expectError(
      client({ port: redis.port }).call('PING'),
      RedisReplyError,
      'NOAUTH Authentication required.',
    );
    const wrong = client({ port: redis.port, password: 'other' });
    await expectError(
      wrong.call('PING'),
      RedisReplyError,
      'WRONGPASS invalid username-password pair or user is disabled.',
    );
    const good = client({ port: redis.port, password: 's3cret' });
    expect(str(await good.call('PING'))).toBe('PONG');
    // A failed AUTH is not remembered: once the password matches, the next call gets in.
    await good.call('CONFIG', 'SET', 'requirepass', 'other');
    expect(str(await wrong.call('PING'))).toBe('PONG');
  });

  it('unreachable: rejects naming the address; connects once redis is there; lost on a crash', async () => {
    const port = await freePort();
    const c = client({ port });
    await expectError(
      c.call('PING'),
      RedisConnectionError,
      `redis 127.0.0.1:${port} unreachable: connect ECONNREFUSED 127.0.0.1:${port}`,
    );
    await expectError(
      c.mget([b('x')]),
      RedisConnectionError,
      `redis 127.0.0.1:${port} unreachable: connect ECONNREFUSED 127.0.0.1:${port}`,
    );
    const redis = await startRedis([], port);
    cleanups.push(() => redis.stop());
    expect(str(await c.call('PING'))).toBe('PONG');
    const blocked = rejection(c.call('BLPOP', 'nolist', 0));
    await turn();
    await redis.kill();
    checkError(await blocked, RedisConnectionError, lostMessage(port));
    await expectError(
      c.call('PING'),
      RedisConnectionError,
      `redis 127.0.0.1:${port} unreachable: connect ECONNREFUSED 127.0.0.1:${port}`,
    );
  });
});

/** What the fake server does with one command: reply bytes, nothing, or close the connection. */
type Answer = string | Buffer | 'close' | undefined;

/**
 * A fake Redis: parses each command the client sends (argv as latin1 strings,
 * recorded with the connection's number) and answers with `answer`. All the
 * answers to one read go out together through `send`, which may split them.
 */
class FakeRedis {
  readonly commands: { conn: number; argv: string[] }[] = [];
  readonly sockets: Socket[] = [];
  /** Connections the client closed or lost. */
  closed = 0;
  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(
    answer: (argv: string[], conn: number) => Answer,
    send: (socket: Socket, bytes: Buffer) => Promise<void> = async (s, bytes) => {
      s.write(bytes);
    },
  ): Promise<FakeRedis> {
    const server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const address = server.address();
    const fake = new FakeRedis(server, typeof address === 'object' && address ? address.port : 0);
    cleanups.push(() => fake.close());
    server.on('connection', (socket) => {
      const conn = fake.sockets.push(socket) - 1;
      const parser = new RequestParser();
      let chain = Promise.resolve();
      socket.setNoDelay(true);
      socket.on('error', () => {});
      socket.on('close', () => fake.closed++);
      socket.on('data', (chunk: Buffer) => {
        const out: Buffer[] = [];
        let close = false;
        parser.feed(chunk, ({ args }) => {
          const argv = args.map((a) => a.toString('latin1'));
          fake.commands.push({ conn, argv });
          const a = close ? undefined : answer(argv, conn);
          if (a === 'close') close = true;
          else if (a !== undefined) out.push(Buffer.isBuffer(a) ? a : b(a));
        });
        const bytes = Buffer.concat(out);
        chain = chain.then(async () => {
          if (bytes.length > 0 && !socket.destroyed) await send(socket, bytes);
          if (close) socket.destroy();
        });
      });
    });
    return fake;
  }

  argvs(conn?: number): string[][] {
    return this.commands.filter((c) => conn === undefined || c.conn === conn).map((c) => c.argv);
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise((r) => this.server.close(r));
  }
}

/** Canned replies by command name, for the fake server. */
function byName(replies: Record<string, string>): (argv: string[]) => Answer {
  return (argv) => {
    const r = replies[argv[0]!];
    if (r === undefined) throw new Error(`fake redis: no reply for ${argv[0]}`);
    return r;
  };
}

/** Write the bytes in pieces, each after the client had a turn to read the one before. */
function sendInPieces(cuts: (bytes: Buffer) => number[]) {
  return async (socket: Socket, bytes: Buffer): Promise<void> => {
    let prev = 0;
    for (const cut of [...cuts(bytes), bytes.length]) {
      if (cut <= prev) continue;
      socket.write(bytes.subarray(prev, cut));
      prev = cut;
      await turn();
      await turn();
    }
  };
}

describe('RedisClient against a fake server', () => {
  const replies = {
    GET: '$7\r\nva\r\nl\xffe\r\n',
    INCR: ':-12345\r\n',
    LRANGE: '*3\r\n$1\r\na\r\n*2\r\n:1\r\n$-1\r\n$0\r\n\r\n',
    BAD: '-ERR unknown command\r\n',
    NIL: '$-1\r\n',
    PING: '+PONG\r\n',
    MGET: '*3\r\n$2\r\nv1\r\n$-1\r\n$2\r\nv2\r\n',
  };

  async function exercise(c: RedisClient): Promise<void> {
    const piped = c.pipeline([
      ['GET', 'k'],
      ['INCR', 'n'],
      ['LRANGE', 'l', 0, -1],
      ['BAD'],
      ['NIL'],
    ]);
    const ping = c.call('PING');
    const m1 = c.mget([b('a')]);
    const m2 = c.mget([b('b'), b('c')]);
    const r = await piped;
    expect(r[0]).toEqual(b('va\r\nl\xffe'));
    expect(r[1]).toBe(-12345);
    expect(r[2]).toEqual([b('a'), [1, null], b('')]);
    expect(r[3]).toBeInstanceOf(RedisReplyError);
    expect((r[3] as Error).message).toBe('ERR unknown command');
    expect(r[4]).toBeNull();
    expect(str(await ping)).toBe('PONG');
    expect(strs(await m1)).toEqual(['v1']);
    expect(strs(await m2)).toEqual([null, 'v2']);
  }

  it('decodes replies that arrive one byte per read', async () => {
    const fake = await FakeRedis.start(
      byName(replies),
      sendInPieces((bytes) => Array.from({ length: bytes.length }, (_, i) => i)),
    );
    const c = client({ port: fake.port });
    await exercise(c);
    expect(fake.argvs()).toEqual([
      ['GET', 'k'],
      ['INCR', 'n'],
      ['LRANGE', 'l', '0', '-1'],
      ['BAD'],
      ['NIL'],
      ['PING'],
      ['MGET', 'a', 'b', 'c'],
    ]);
  });

  it('decodes replies cut in two at every byte, with whole replies before and after the cut', async () => {
    let at = 0;
    const fake = await FakeRedis.start(
      byName(replies),
      sendInPieces(() => [at]),
    );
    const c = client({ port: fake.port });
    const total = Object.values(replies).reduce((n, r) => n + r.length, 0);
    for (at = 1; at < total; at++) await exercise(c);
    expect(fake.sockets).toHaveLength(1);
  });

  it('a connection dropped mid-reply rejects the waiting commands; the next one starts clean', async () => {
    const fake = await FakeRedis.start((argv, conn) => {
      if (conn === 0) return argv[0] === 'GET' ? '$10\r\nhello' : 'close';
      return byName(replies)(argv);
    });
    const c = client({ port: fake.port });
    const get = rejection(c.call('GET', 'k'));
    const mget = rejection(c.mget([b('a')]));
    const ping = rejection(c.call('PING'));
    for (const p of [get, mget, ping]) {
      checkError(await p, RedisConnectionError, lostMessage(fake.port));
    }
    // A new connection; the half reply of the old one is forgotten.
    expect(await c.call('GET', 'k')).toEqual(b('va\r\nl\xffe'));
    expect(fake.sockets).toHaveLength(2);
    expect(fake.argvs(1)).toEqual([['GET', 'k']]);
  });

  it('a reply it cannot read drops the connection: callers get an error, the process lives on', async () => {
    const fake = await FakeRedis.start((argv, conn) => {
      if (conn === 0 && argv[0] === 'GET') return '?what is this\r\n'; // no RESP type
      return byName(replies)(argv);
    });
    const c = client({ port: fake.port });
    const get = rejection(c.call('GET', 'k'));
    const ping = rejection(c.call('PING'));
    for (const p of [get, ping]) {
      checkError(
        await p,
        RedisConnectionError,
        /^connection to redis .* lost \(bad reply from redis: .+\)$/,
      );
    }
    expect(await c.call('GET', 'k')).toEqual(b('va\r\nl\xffe')); // a new connection
    expect(fake.sockets).toHaveLength(2);
  });

  it('an MGET answered with no array: unexpected MGET reply (merged, alone, and after a retry)', async () => {
    let mgets = 0;
    const fake = await FakeRedis.start((argv) => {
      if (argv[0] !== 'MGET') return byName(replies)(argv);
      mgets++;
      if (mgets === 1) return '+OK\r\n'; // to two merged callers
      if (mgets === 2) return ':3\r\n'; // to one caller
      if (mgets === 3) return '-ERR shared MGET failed\r\n'; // merged: each caller again
      if (argv[1] === 'c') return '$2\r\nno\r\n';
      return `*${argv.length - 1}\r\n${argv
        .slice(1)
        .map((k) => `$${k.length + 1}\r\n${k}!\r\n`)
        .join('')}`;
    });
    const c = client({ port: fake.port });
    const merged = [rejection(c.mget([b('a')])), rejection(c.mget([b('b')]))];
    for (const p of merged) checkError(await p, RedisReplyError, 'unexpected MGET reply');
    await expectError(c.mget([b('a')]), RedisReplyError, 'unexpected MGET reply');
    const ab = c.mget([b('a'), b('b')]);
    const cc = rejection(c.mget([b('c')]));
    const d = c.mget([b('d')]);
    expect(strs(await ab)).toEqual(['a!', 'b!']);
    checkError(await cc, RedisReplyError, 'unexpected MGET reply');
    expect(strs(await d)).toEqual(['d!']);
    expect(fake.argvs().filter((a) => a[0] === 'MGET')).toEqual([
      ['MGET', 'a', 'b'],
      ['MGET', 'a'],
      ['MGET', 'a', 'b', 'c', 'd'],
      ['MGET', 'a', 'b'],
      ['MGET', 'c'],
      ['MGET', 'd'],
    ]);
  });

  it('an error reply to a lone MGET rejects with that error, not retried', async () => {
    const fake = await FakeRedis.start((argv) =>
      argv[0] === 'MGET' ? '-ERR nope\r\n' : byName(replies)(argv),
    );
    const c = client({ port: fake.port });
    await expectError(c.mget([b('a'), b('b')]), RedisReplyError, 'ERR nope');
    expect(fake.argvs()).toEqual([['MGET', 'a', 'b']]);
  });

  it('sends AUTH (with the username when given) and SELECT before anything else', async () => {
    const answer = (argv: string[]): Answer =>
      argv[0] === 'AUTH' || argv[0] === 'SELECT' ? '+OK\r\n' : byName(replies)(argv);
    const fake = await FakeRedis.start(answer);
    const c1 = client({ port: fake.port, username: 'u', password: 'p w', db: 3 });
    const c2 = client({ port: fake.port, password: 'pw' });
    const c3 = client({ port: fake.port, db: 0 });
    expect(str(await c1.call('PING'))).toBe('PONG');
    expect(str(await c2.call('PING'))).toBe('PONG');
    expect(str(await c3.call('PING'))).toBe('PONG');
    expect(fake.argvs(0)).toEqual([['AUTH', 'u', 'p w'], ['SELECT', '3'], ['PING']]);
    expect(fake.argvs(1)).toEqual([['AUTH', 'pw'], ['PING']]);
    expect(fake.argvs(2)).toEqual([['PING']]);
  });

  it('a failed SELECT fails the caller and closes that connection', async () => {
    const fake = await FakeRedis.start((argv) =>
      argv[0] === 'SELECT' ? '-ERR DB index is out of range\r\n' : byName(replies)(argv),
    );
    const c = client({ port: fake.port, db: 99 });
    await expectError(c.call('PING'), RedisReplyError, 'ERR DB index is out of range');
    await waitFor(() => fake.closed === 1);
    expect(fake.closed).toBe(1);
    expect(fake.argvs()).toEqual([['SELECT', '99']]);
  });

  it('a connection closed during AUTH rejects with the lost error; the next call tries again', async () => {
    const fake = await FakeRedis.start((argv, conn) =>
      argv[0] === 'AUTH' ? (conn === 0 ? 'close' : '+OK\r\n') : byName(replies)(argv),
    );
    const c = client({ port: fake.port, password: 'pw' });
    await expectError(c.call('PING'), RedisConnectionError, lostMessage(fake.port));
    expect(str(await c.call('PING'))).toBe('PONG');
    expect(fake.argvs(0)).toEqual([['AUTH', 'pw']]);
    expect(fake.argvs(1)).toEqual([['AUTH', 'pw'], ['PING']]);
  });
});

describe('RedisClient and a server that never completes the TCP handshake', () => {
  /**
   * A listening socket whose process never accepts (its event loop is
   * blocked): once its backlog is full, the kernel drops further SYNs, so a
   * connect stays pending.
   */
  async function silentListener(): Promise<number> {
    const child: ChildProcess = spawn(
      process.execPath,
      [
        '-e',
        `const s = require('node:net').createServer();
         s.listen({ host: '127.0.0.1', port: 0, backlog: 1 }, () => {
           require('node:fs').writeSync(1, s.address().port + '\\n');
           Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
         });`,
      ],
      { stdio: ['ignore', 'pipe', 'ignore'] },
    );
    cleanups.push(() => child.kill('SIGKILL'));
    const [line] = (await once(child.stdout!, 'data')) as [Buffer];
    const port = Number(line.toString().trim());
    // Fill the backlog: connect until a connect no longer completes.
    for (let i = 0; i < 16; i++) {
      const s = connect({ host: '127.0.0.1', port });
      s.on('error', () => {});
      cleanups.push(() => s.destroy());
      const done = await Promise.race([
        new Promise<boolean>((r) => s.once('connect', () => r(true))),
        new Promise<boolean>((r) => setTimeout(() => r(false), 300)),
      ]);
      if (!done) return port;
    }
    throw new Error('the listener kept accepting connections');
  }

  it('rejects with the connect timeout, and again on the next call', async () => {
    const port = await silentListener();
    const c = client({ port, connectTimeout: 150 });
    const message = `redis 127.0.0.1:${port} unreachable: connect timeout after 150 ms`;
    await expectError(c.call('PING'), RedisConnectionError, message);
    await expectError(c.mget([b('x')]), RedisConnectionError, message);
  });
});
