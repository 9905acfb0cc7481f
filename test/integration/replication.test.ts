/*
 * SYNC and PSYNC through semcache, in both upstream modes: a real replica
 * (`redis-server --replicaof <semcache>`) replicates, and a raw reader of the
 * replication stream sees what it sees from Redis: the same framing of the
 * RDB payload (`$<len>` from disk, `$EOF:<mark>` diskless) and the same bytes
 * of the stream after it. src/proxy/tunnel.ts.
 */
import { describe, expect, it } from 'vitest';
import { stopAfterEach } from '../helpers/cleanup.js';
import { waitFor } from '../helpers/proc.js';
import { cmd, RawClient, request } from '../helpers/raw.js';
import { type ProxyHandle, type RedisHandle, startProxy, startRedis } from '../helpers/servers.js';

const cleanups = stopAfterEach();

async function redisWith(args: string[]): Promise<RedisHandle> {
  const r = await startRedis(args);
  cleanups.push(() => r.stop());
  return r;
}

async function proxyTo(port: number, multiplex: number): Promise<ProxyHandle> {
  const p = await startProxy(port, { multiplex });
  cleanups.push(() => p.stop());
  return p;
}

async function client(port: number): Promise<RawClient> {
  const c = await RawClient.open(port);
  cleanups.push(() => c.close());
  return c;
}

const modes = [
  { name: '--multiplex 1', multiplex: 1 },
  { name: '--multiplex 0', multiplex: 0 },
] as const;

interface SyncTranscript {
  /** `+FULLRESYNC <replid> <offset>` for PSYNC, '' for SYNC. */
  preamble: string;
  /** The RDB payload's header line: `$<len>` or `$EOF:<40-byte mark>`. */
  header: string;
  rdb: Buffer;
  /** Everything after the payload: the replication stream. */
  stream: Buffer;
}

/** Split what a replication reader received, as a replica would read it; undefined if incomplete. */
function parseSync(b: Buffer): SyncTranscript | undefined {
  let pos = 0;
  let preamble = '';
  if (b[0] === 0x2b) {
    const eol = b.indexOf('\r\n');
    if (eol < 0) return undefined;
    preamble = b.toString('latin1', 0, eol);
    pos = eol + 2;
  }
  while (b[pos] === 0x0a) pos++; // keepalive newlines while the snapshot is made
  const eol = b.indexOf('\r\n', pos);
  if (eol < 0 || b[pos] !== 0x24) return undefined;
  const header = b.toString('latin1', pos, eol);
  pos = eol + 2;
  if (header.startsWith('$EOF:')) {
    const mark = b.subarray(eol - 40, eol);
    const end = b.indexOf(mark, pos);
    if (end < 0) return undefined;
    return { preamble, header, rdb: b.subarray(pos, end), stream: b.subarray(end + 40) };
  }
  const len = Number(header.slice(1));
  if (b.length < pos + len) return undefined;
  return { preamble, header, rdb: b.subarray(pos, pos + len), stream: b.subarray(pos + len) };
}

/** A replication reader on `port` that sends `handshake` (each reply awaited), then `sync`. */
async function reader(port: number, handshake: Buffer[], sync: Buffer): Promise<RawClient> {
  const c = await client(port);
  for (const h of handshake) expect(await request(c, h)).toBe('+OK\r\n');
  c.write(sync);
  return c;
}

/** What each reader got after its handshake replies, once it has the RDB and `want` in the stream. */
async function transcripts(readers: RawClient[], skip: number, want: Buffer) {
  const out: SyncTranscript[] = [];
  for (const r of readers) {
    await r.until((b) => parseSync(b.subarray(skip))?.stream.includes(want) === true, 10_000);
    const t = parseSync(r.received.subarray(skip));
    expect(t, 'a complete RDB payload').toBeDefined();
    out.push(t!);
  }
  return out;
}

const WRITE = cmd('SET', 'repl:raw', 'x');
const PROPAGATED = Buffer.from('*3\r\n$3\r\nSET\r\n$8\r\nrepl:raw\r\n$1\r\nx\r\n');

describe.each(modes)('replication through semcache, $name', ({ multiplex }) => {
  it('a redis-server replica of semcache replicates writes made through semcache and directly', async () => {
    const master = await redisWith([]);
    const proxy = await proxyTo(master.port, multiplex);
    const via = await client(proxy.port);
    expect(await request(via, cmd('SET', 'repl:before', 'b'))).toBe('+OK\r\n');
    const replica = await redisWith(['--replicaof', '127.0.0.1', String(proxy.port)]);
    const onReplica = await client(replica.port);
    const up = await waitFor(
      async () =>
        (await request(onReplica, cmd('INFO', 'replication'))).includes('master_link_status:up'),
      10_000,
    );
    expect(up).toBe(true);
    expect(await request(onReplica, cmd('GET', 'repl:before'))).toBe('$1\r\nb\r\n');
    expect(await request(via, cmd('SET', 'repl:via', 'semcache'))).toBe('+OK\r\n');
    const direct = await client(master.port);
    expect(await request(direct, cmd('SET', 'repl:direct', 'redis'))).toBe('+OK\r\n');
    const got = await waitFor(async () => {
      const out = await request(
        onReplica,
        Buffer.concat([cmd('GET', 'repl:via'), cmd('GET', 'repl:direct')]),
        2,
      );
      return out === '$8\r\nsemcache\r\n$5\r\nredis\r\n' ? out : undefined;
    }, 5000);
    expect(got).toBe('$8\r\nsemcache\r\n$5\r\nredis\r\n');
    // The master sees the replica (through semcache) as a connected replica.
    expect(await request(direct, cmd('INFO', 'replication'))).toMatch(/connected_slaves:1\r\n/);
  });

  it('SYNC, RDB from disk: the same framing and the same stream as from redis', async () => {
    const master = await redisWith(['--repl-diskless-sync', 'no']);
    const proxy = await proxyTo(master.port, multiplex);
    const admin = await client(master.port);
    expect(await request(admin, cmd('SET', 'repl:k', 'v'))).toBe('+OK\r\n');
    const readers = [
      await reader(master.port, [], cmd('SYNC')),
      await reader(proxy.port, [], cmd('SYNC')),
    ];
    // Both have their snapshot before the write, so both streams hold it.
    await Promise.all(readers.map((r) => r.until((b) => parseSync(b) !== undefined, 10_000)));
    expect(await request(admin, WRITE)).toBe('+OK\r\n');
    const [direct, proxied] = await transcripts(readers, 0, PROPAGATED);
    for (const t of [direct!, proxied!]) {
      expect(t.preamble).toBe('');
      expect(t.header).toMatch(/^\$\d+$/);
      expect(t.rdb.subarray(0, 5).toString()).toBe('REDIS');
    }
    expect(proxied!.stream.equals(direct!.stream)).toBe(true);
  });

  it('REPLCONF + PSYNC ? -1, diskless: the same framing ($EOF:) and the same stream as from redis', async () => {
    const master = await redisWith([
      '--repl-diskless-sync',
      'yes',
      '--repl-diskless-sync-delay',
      '0',
    ]);
    const proxy = await proxyTo(master.port, multiplex);
    const admin = await client(master.port);
    const handshake = [
      cmd('REPLCONF', 'listening-port', '0'),
      cmd('REPLCONF', 'capa', 'eof', 'capa', 'psync2'),
    ];
    const readers = [
      await reader(master.port, handshake, cmd('PSYNC', '?', '-1')),
      await reader(proxy.port, handshake, cmd('PSYNC', '?', '-1')),
    ];
    const skip = '+OK\r\n'.length * 2;
    await Promise.all(
      readers.map((r) => r.until((b) => parseSync(b.subarray(skip)) !== undefined, 10_000)),
    );
    // After a diskless payload the master streams only once the replica has
    // ACKed (an ACK before it noticed the transfer ended is ignored, so a
    // replica sends one every second): the reader's bytes cross the tunnel too.
    const ack = setInterval(() => {
      for (const r of readers) r.write(cmd('REPLCONF', 'ACK', '0'));
    }, 50);
    expect(await request(admin, WRITE)).toBe('+OK\r\n');
    const [direct, proxied] = await transcripts(readers, skip, PROPAGATED).finally(() =>
      clearInterval(ack),
    );
    const replid = /^\+FULLRESYNC ([0-9a-f]{40}) \d+$/;
    for (const t of [direct!, proxied!]) {
      expect(t.preamble).toMatch(replid);
      expect(t.header).toMatch(/^\$EOF:.{40}$/);
      expect(t.rdb.subarray(0, 5).toString()).toBe('REDIS');
    }
    expect(replid.exec(proxied!.preamble)![1]).toBe(replid.exec(direct!.preamble)![1]);
    expect(proxied!.stream.equals(direct!.stream)).toBe(true);
  });

  it.each([
    ['right behind a command not yet answered', [cmd('PING'), cmd('SYNC')]],
    ['inside MULTI', [cmd('MULTI'), cmd('SYNC'), cmd('EXEC'), cmd('PING')]],
  ])('SYNC %s: refused exactly as redis refuses it', async (_name, reqs) => {
    const master = await redisWith([]);
    const proxy = await proxyTo(master.port, multiplex);
    const outs: string[] = [];
    for (const port of [master.port, proxy.port]) {
      const c = await client(port);
      c.write(Buffer.concat(reqs));
      outs.push((await c.quiet(300)).toString('latin1'));
      expect(c.closed).toBe(false);
    }
    expect(outs[1]).toBe(outs[0]);
    expect(outs[0]).toMatch(/^(\+PONG|\+OK)\r\n-ERR /);
  });
});
