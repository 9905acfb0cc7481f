/*
 * Identity and permissions of our commands (docs/security.md), against a real
 * redis-server with a password and ACL users, in both upstream modes: every
 * SEM command gets exactly what Redis would answer for the plain commands it
 * stands for, runtime ACL changes take effect at once, and semcache's own
 * credentials are named when Redis refuses them.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/embedded-redis.js';
import { sleep } from '../helpers/proc.js';
import { cmd, RawClient, request } from '../helpers/raw.js';
import {
  type RedisHandle,
  type SemanticProxyHandle,
  startRedis,
  startSemanticProxy,
} from '../helpers/servers.js';

const NOAUTH = '-NOAUTH Authentication required.\r\n';
const WRONGPASS = '-WRONGPASS invalid username-password pair or user is disabled.\r\n';
const NOPERM_KEYS =
  '-NOPERM this user has no permissions to access one of the keys used as arguments\r\n';
const noPermCommand = (name: string) =>
  `-NOPERM this user has no permissions to run the '${name}' command\r\n`;

/** Every SEM command with arguments that would succeed for a user allowed everything. */
const EVERY = [
  ['SEMSET', 'app:new', 'some new text', 'v'],
  ['SEMGET', 'the house near the sea'],
  ['SEMSEARCH', 'TEXT', 'the house near the sea'],
  ['SEMINDEX', 'app:1', 'a house near the sea'], // its own text again
  ['SEMDEL', 'app:none'],
  ['SEMNS', 'SET', 'empty'],
  ['SEMFLUSH', 'NS', 'empty'],
  ['SEMEMBED', 'x'],
  ['SEMINFO'],
  ['SEMNS', 'LIST'],
  ['SEMNS', 'DEL', 'empty'],
] as const;

async function raw(port: number): Promise<RawClient> {
  return RawClient.open(port);
}

const modes = [
  { name: 'shared upstream (--multiplex 1)', multiplex: 1 },
  { name: 'own upstream per client (--multiplex 0)', multiplex: 0 },
] as const;

describe.each(modes)('identity and permissions, $name', ({ multiplex }) => {
  let redis: RedisHandle;
  let proxy: SemanticProxyHandle;
  let admin: Redis;

  beforeAll(async () => {
    redis = await startRedis(['--requirepass', 's3cret']);
    admin = new Redis({ port: redis.port, password: 's3cret', lazyConnect: true });
    await admin.connect();
    // semcache's own user: all on its own keys, read on clients' keys.
    await admin.call('ACL', 'SETUSER', 'semcache', 'on', '>sempw', '~semcache:*', '%R~*', '+@all');
    await admin.call('ACL', 'SETUSER', 'app', 'on', '>apppw', '~app:*', '+@all');
    await admin.call('ACL', 'SETUSER', 'reader', 'on', '>rpw', '~*', '+@read', '+hello', '+auth');
    const dir = mkdtempSync(join(tmpdir(), 'semcache-sec-'));
    const pwFile = join(dir, 'password');
    writeFileSync(pwFile, 'sempw\n');
    proxy = await startSemanticProxy(redis.port, {
      multiplex,
      upstream: `redis://semcache@127.0.0.1:${redis.port}`,
      upstreamPasswordFile: pwFile,
    });
    // Entries written by the default user: one of app's, one secret.
    const root = await raw(proxy.port);
    await request(root, cmd('AUTH', 's3cret'));
    expect(await request(root, cmd('SET', 'db:password', 'hunter2'))).toBe('+OK\r\n');
    expect(
      await request(root, cmd('SEMSET', 'secret:1', 'the house near the sea', 'hunter2')),
    ).toBe('+OK\r\n');
    expect(await request(root, cmd('SEMSET', 'app:1', 'a house near the sea', 'app value'))).toBe(
      '+OK\r\n',
    );
    root.close();
  });

  afterAll(async () => {
    admin?.disconnect();
    await proxy?.stop();
    await redis?.stop();
  });

  it('before AUTH every SEM command gets NOAUTH, as GET does; nothing is written', async () => {
    const c = await raw(proxy.port);
    try {
      expect(await request(c, cmd('GET', 'app:1'))).toBe(NOAUTH);
      for (const args of EVERY) expect(await request(c, cmd(...args)), args[0]).toBe(NOAUTH);
      // Arity is checked before authentication, as in Redis.
      expect(await request(c, cmd('SEMGET'))).toBe(
        "-ERR wrong number of arguments for 'semget' command\r\n",
      );
      expect(await request(c, cmd('AUTH', 'wrong'))).toBe(WRONGPASS);
      expect(await request(c, cmd('SEMSET', 'secret:1', 'x', 'overwritten'))).toBe(NOAUTH);
      expect(await admin.get('secret:1')).toBe('hunter2');
    } finally {
      c.close();
    }
  });

  it('the SEMINDEX trick of old (index db:password, then SEMGET) is refused', async () => {
    const c = await raw(proxy.port);
    try {
      expect(await request(c, cmd('SEMINDEX', 'db:password', 't'))).toBe(NOAUTH);
      await request(c, cmd('AUTH', 'app', 'apppw'));
      expect(await request(c, cmd('SEMINDEX', 'db:password', 't'))).toBe(NOPERM_KEYS);
      const got = await request(c, cmd('SEMGET', 't', 'THRESHOLD', '-1', 'WITHKEY'));
      expect(got).not.toContain('hunter2');
      expect(got).not.toContain('db:password');
    } finally {
      c.close();
    }
  });

  it('the default user after AUTH may do everything', async () => {
    const c = await raw(proxy.port);
    try {
      expect(await request(c, cmd('AUTH', 's3cret'))).toBe('+OK\r\n');
      for (const args of EVERY) expect(await request(c, cmd(...args)), args[0]).not.toMatch(/^-/);
      expect(await request(c, cmd('SEMGET', 'the house near the sea'))).toBe('$7\r\nhunter2\r\n');
    } finally {
      c.close();
    }
  });

  it('ACL user with ~app:*: writes only app keys, never sees other keys', async () => {
    const c = await raw(proxy.port);
    try {
      expect(await request(c, cmd('AUTH', 'app', 'apppw'))).toBe('+OK\r\n');
      expect(await request(c, cmd('SEMSET', 'app:2', 'train to hamburg', 'fast'))).toBe('+OK\r\n');
      expect(await request(c, cmd('SEMSET', 'secret:1', 'x', 'overwritten'))).toBe(NOPERM_KEYS);
      expect(await request(c, cmd('SEMDEL', 'secret:1'))).toBe(NOPERM_KEYS);
      expect(await request(c, cmd('SEMINDEX', 'secret:1', 'y'))).toBe(NOPERM_KEYS);
      expect(await admin.get('secret:1')).toBe('hunter2');
      // The exact match is secret: skipped as absent, the next candidate answers.
      expect(
        await request(c, cmd('SEMGET', 'the house near the sea', 'THRESHOLD', '0.1', 'WITHKEY')),
      ).toContain('app:1');
      const found = await request(
        c,
        cmd('SEMSEARCH', 'TEXT', 'the house near the sea', 'WITHVALUES', 'WITHSCORES'),
      );
      expect(found).not.toContain('secret');
      expect(found).not.toContain('hunter2');
      expect(found).toContain('app value');
      // SEMFLUSH of a namespace holding a secret key: refused, nothing deleted.
      expect(await request(c, cmd('SEMFLUSH'))).toBe(NOPERM_KEYS);
      expect(await request(c, cmd('SEMNS', 'SET', 'default', 'THRESHOLD', '0.1'))).toBe(
        NOPERM_KEYS,
      );
      expect(await request(c, cmd('SEMNS', 'DEL', 'default', 'FLUSH'))).toBe(NOPERM_KEYS);
      expect(await admin.exists('secret:1', 'app:1', 'app:2')).toBe(3);
      expect(await request(c, cmd('SEMINFO'))).toMatch(/^\*/);
    } finally {
      c.close();
    }
  });

  it('a +@read user cannot write or read INFO; it may read', async () => {
    const c = await raw(proxy.port);
    try {
      expect(await request(c, cmd('AUTH', 'reader', 'rpw'))).toBe('+OK\r\n');
      expect(await request(c, cmd('SEMSET', 'app:3', 't', 'v'))).toBe(noPermCommand('set'));
      expect(await request(c, cmd('SEMDEL', 'app:1'))).toBe(noPermCommand('del'));
      expect(await request(c, cmd('SEMINDEX', 'app:1', 't'))).toBe(noPermCommand('setrange'));
      expect(await request(c, cmd('SEMINFO'))).toBe(noPermCommand('info'));
      expect(await request(c, cmd('SEMFLUSH', 'NS', 'default'))).toBe(noPermCommand('del'));
      expect(await request(c, cmd('SEMGET', 'a house near the sea'))).toBe('$9\r\napp value\r\n');
      expect(await admin.exists('app:3')).toBe(0);
    } finally {
      c.close();
    }
  });

  it('ACL changes at runtime take effect at once, on connections already open', async () => {
    const c = await raw(proxy.port);
    try {
      await admin.call('ACL', 'SETUSER', 'late', 'on', '>lpw', '~app:*', '+@all');
      expect(await request(c, cmd('AUTH', 'late', 'lpw'))).toBe('+OK\r\n');
      expect(await request(c, cmd('SEMGET', 'the house near the sea', 'WITHKEY'))).not.toContain(
        'secret:1',
      );
      await admin.call('ACL', 'SETUSER', 'late', '~secret:*');
      expect(await request(c, cmd('SEMGET', 'the house near the sea'))).toBe('$7\r\nhunter2\r\n');
      await admin.call('ACL', 'SETUSER', 'late', '-get');
      expect(await request(c, cmd('SEMGET', 'the house near the sea'))).toBe('$-1\r\n');
      await admin.call('ACL', 'SETUSER', 'late', 'resetkeys', '~app:*', '+get', '-set');
      expect(await request(c, cmd('SEMSET', 'app:late', 't', 'v'))).toBe(noPermCommand('set'));
      await admin.call('ACL', 'DELUSER', 'late');
      // Redis closes the connections of a deleted user; so does semcache.
      await c.until(() => false, 2000);
      expect(c.closed).toBe(true);
    } finally {
      c.close();
    }
  });

  it('a requirepass set at runtime: new SEM commands of unauthenticated clients get NOAUTH', async () => {
    const r2 = await startRedis();
    const p2 = await startSemanticProxy(r2.port, { multiplex });
    const c = await raw(p2.port);
    try {
      expect(await request(c, cmd('SEMSET', 'k', 'some text', 'v'))).toBe('+OK\r\n');
      const a2 = new Redis({ port: r2.port });
      await a2.config('SET', 'requirepass', 'later');
      a2.disconnect();
      // Redis keeps a connection that was open authenticated; a new one must AUTH.
      const fresh = await raw(p2.port);
      await sleep(1100); // at most one probe interval
      expect(await request(fresh, cmd('SEMGET', 'some text'))).toBe(NOAUTH);
      expect(await request(fresh, cmd('GET', 'k'))).toBe(NOAUTH);
      fresh.close();
    } finally {
      c.close();
      await p2.stop();
      await r2.stop();
    }
  });
});

describe('ACL LOAD at runtime', () => {
  it('rules reloaded from the ACL file apply to SEM commands at once (Redis closes the clients)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'semcache-acl-'));
    const aclFile = join(dir, 'users.acl');
    const rules = (pattern: string) =>
      `user default on nopass ~* &* +@all\nuser lu on >pw ${pattern} +@all\n`;
    writeFileSync(aclFile, rules('~app:*'));
    const redis = await startRedis(['--aclfile', aclFile]);
    const proxy = await startSemanticProxy(redis.port);
    const admin = new Redis({ port: redis.port });
    try {
      const c = await raw(proxy.port);
      expect(await request(c, cmd('AUTH', 'lu', 'pw'))).toBe('+OK\r\n');
      expect(await request(c, cmd('SEMSET', 'app:a', 'a loaded text', 'v'))).toBe('+OK\r\n');
      expect(await request(c, cmd('SEMSET', 'other:a', 'x', 'v'))).toBe(NOPERM_KEYS);
      writeFileSync(aclFile, rules('~other:*'));
      expect(await admin.call('ACL', 'LOAD')).toBe('OK');
      // Redis 7.0 disconnects the clients of reloaded users: so does semcache.
      await c.until(() => c.closed, 2000);
      expect(c.closed).toBe(true);
      const again = await raw(proxy.port);
      expect(await request(again, cmd('AUTH', 'lu', 'pw'))).toBe('+OK\r\n');
      expect(await request(again, cmd('SEMSET', 'app:b', 'x', 'v'))).toBe(NOPERM_KEYS);
      expect(await request(again, cmd('SEMGET', 'a loaded text'))).toBe('$-1\r\n');
      expect(await request(again, cmd('SEMSET', 'other:b', 'another text', 'w'))).toBe('+OK\r\n');
      again.close();
    } finally {
      admin.disconnect();
      await proxy.stop();
      await redis.stop();
    }
  });
});

describe("semcache's own credentials", () => {
  let redis: RedisHandle;

  beforeAll(async () => {
    redis = await startRedis(['--requirepass', 's3cret']);
  });

  afterAll(async () => {
    await redis?.stop();
  });

  it('none given in front of a password: SEM commands name that cause, not the model', async () => {
    const proxy = await startSemanticProxy(redis.port, {}, undefined, { allowFailed: true });
    const c = await raw(proxy.port);
    try {
      expect(await request(c, cmd('SEMGET', 'x'))).toBe(NOAUTH); // the client's own cause first
      await request(c, cmd('AUTH', 's3cret'));
      const reply = await request(c, cmd('SEMGET', 'x'));
      expect(reply).toMatch(
        /^-ERR semcache storage unavailable: semcache's own connection to redis: NOAUTH Authentication required\. \(give semcache credentials/,
      );
      expect(reply).not.toContain('embedding model');
    } finally {
      c.close();
      await proxy.stop();
    }
  });

  it('a wrong password: WRONGPASS named', async () => {
    const proxy = await startSemanticProxy(
      redis.port,
      { upstream: `redis://:nope@127.0.0.1:${redis.port}` },
      undefined,
      { allowFailed: true },
    );
    const c = await raw(proxy.port);
    try {
      await request(c, cmd('AUTH', 's3cret'));
      expect(await request(c, cmd('SEMGET', 'x'))).toMatch(
        /^-ERR semcache storage unavailable: semcache's own connection to redis: WRONGPASS/,
      );
    } finally {
      c.close();
      await proxy.stop();
    }
  });
});

describe('started while Redis is down', () => {
  it('SEM commands name the unreachable upstream, then work once Redis is up (no restart)', async () => {
    const port = await freePort();
    const proxy = await startSemanticProxy(port, {}, undefined, { allowFailed: true });
    let redis: RedisHandle | undefined;
    const c = await raw(proxy.port);
    try {
      const down = await request(c, cmd('SEMGET', 'x'));
      expect(down).toMatch(/^-ERR semcache storage unavailable: .*(ECONNREFUSED|unreachable)/);
      expect(down).toContain('check that Redis is reachable at --upstream');
      expect(down).not.toContain('embedding model');
      redis = await startRedis([], port);
      // semcache retries every 5 s; the rebuild then takes milliseconds.
      const deadline = Date.now() + 15_000;
      let reply = '';
      while (Date.now() < deadline) {
        reply = await request(c, cmd('SEMSET', 'k', 'house near ostsee', 'v'));
        if (reply === '+OK\r\n') break;
        await sleep(200);
      }
      expect(reply).toBe('+OK\r\n');
      expect(await request(c, cmd('SEMGET', 'house near ostsee'))).toBe('$1\r\nv\r\n');
    } finally {
      c.close();
      await proxy.stop();
      await redis?.stop();
    }
  }, 30_000);
});

describe.each(modes)("Redis's limits before AUTH, $name", ({ multiplex }) => {
  let redis: RedisHandle;
  let proxy: SemanticProxyHandle;

  beforeAll(async () => {
    redis = await startRedis(['--requirepass', 's3cret']);
    proxy = await startSemanticProxy(redis.port, {
      multiplex,
      upstream: `redis://:s3cret@127.0.0.1:${redis.port}`,
    });
  });

  afterAll(async () => {
    await proxy?.stop();
    await redis?.stop();
  });

  /** What redis-server and semcache answer to `bytes` on a fresh connection, and whether they close. */
  async function both(bytes: Buffer): Promise<[string, string]> {
    const out: string[] = [];
    for (const port of [redis.port, proxy.port]) {
      const c = await raw(port);
      c.write(bytes);
      await c.until(() => false, 1500);
      out.push(`${c.received.toString('latin1')}${c.closed ? '<closed>' : ''}`);
      c.close();
    }
    return out as [string, string];
  }

  it('more than 10 arguments, or a bulk over 16 KB, before AUTH: the same error and close', async () => {
    const keys = Array.from({ length: 11 }, (_, i) => `k${i}`);
    const [direct, proxied] = await both(cmd('MGET', ...keys));
    expect(direct).toBe('-ERR Protocol error: unauthenticated multibulk length\r\n<closed>');
    expect(proxied).toBe(direct);
    const [d2, p2] = await both(cmd('ECHO', 'x'.repeat(16385)));
    expect(d2).toBe('-ERR Protocol error: unauthenticated bulk length\r\n<closed>');
    expect(p2).toBe(d2);
  });

  it('AUTH pipelined before a large command lifts them; a wrong one does not', async () => {
    const big = 'y'.repeat(20_000);
    const [direct, proxied] = await both(Buffer.concat([cmd('AUTH', 's3cret'), cmd('ECHO', big)]));
    expect(direct).toBe(`+OK\r\n$20000\r\n${big}\r\n`);
    expect(proxied).toBe(direct);
    const [d2, p2] = await both(Buffer.concat([cmd('AUTH', 'wrong'), cmd('ECHO', big)]));
    expect(d2).toBe(`${WRONGPASS}-ERR Protocol error: unauthenticated bulk length\r\n<closed>`);
    expect(p2).toBe(d2);
  });

  it("one client's refused request does not touch another client's (shared connection kept)", async () => {
    const other = await raw(proxy.port);
    try {
      expect(await request(other, cmd('AUTH', 's3cret'))).toBe('+OK\r\n');
      const bad = await raw(proxy.port);
      bad.write(cmd('MGET', ...Array.from({ length: 20 }, (_, i) => `k${i}`)));
      const unauth = await raw(proxy.port);
      // An unauthenticated client on the shared connection meanwhile: its NOAUTH, not a lost connection.
      expect(await request(unauth, cmd('GET', 'k'))).toBe(NOAUTH);
      await bad.until(() => bad.closed, 2000);
      expect(bad.closed).toBe(true);
      expect(await request(unauth, cmd('PING'))).toBe(NOAUTH);
      expect(await request(other, cmd('PING'))).toBe('+PONG\r\n');
      bad.close();
      unauth.close();
    } finally {
      other.close();
    }
  });
});
