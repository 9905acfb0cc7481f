/*
 * semcache in front of redis-server's TLS port (--upstream rediss://...):
 * all three kinds of upstream connection (the shared one, a client's own,
 * and the semantic cache's storage client) speak TLS, verify the server's
 * certificate and name, present semcache's client certificate, and report
 * a refusal with its cause (docs/security.md "TLS").
 */
import { createServer, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config.js';
import { freePort } from '../../src/embedded-redis.js';
import { stopAfterEach } from '../helpers/cleanup.js';
import { runProcess } from '../helpers/proc.js';
import { cmd, RawClient, request } from '../helpers/raw.js';
import { type ProxyHandle, startProxy, startSemanticProxy } from '../helpers/servers.js';
import { makeCerts, startTlsRedis, type TestCerts, type TlsRedisHandle } from '../helpers/tls.js';

let certs: TestCerts;
let redis: TlsRedisHandle;

beforeAll(async () => {
  certs = makeCerts();
  redis = await startTlsRedis(certs);
}, 60_000);

afterAll(async () => {
  await redis?.stop();
  certs?.remove();
});

const cleanups = stopAfterEach();

/** rediss:// to `port` with the CA and semcache's client certificate, then `overrides`. */
function upstreamTls(port: number, overrides: Partial<Config> = {}): Partial<Config> {
  return {
    upstream: `rediss://127.0.0.1:${port}`,
    upstreamTlsCaCertFile: certs.ca,
    upstreamTlsCertFile: certs.client.cert,
    upstreamTlsKeyFile: certs.client.key,
    ...overrides,
  };
}

async function proxy(overrides: Partial<Config>): Promise<ProxyHandle> {
  const p = await startProxy(redis.port, overrides);
  cleanups.push(() => p.stop());
  return p;
}

async function client(port: number): Promise<RawClient> {
  const c = await RawClient.open(port);
  cleanups.push(() => c.close());
  return c;
}

/** The value of `key` read from redis's plain port, not through semcache. */
async function direct(key: string): Promise<string> {
  return (await runProcess('redis-cli', ['-p', String(redis.port), 'GET', key])).stdout;
}

const modes = [
  { name: 'shared upstream (--multiplex 1)', multiplex: 1 },
  { name: 'own upstream per client (--multiplex 0)', multiplex: 0 },
] as const;

describe.each(modes)('rediss:// upstream, $name', ({ multiplex }) => {
  it('commands and a transaction pass through over TLS', async () => {
    const p = await proxy(upstreamTls(redis.tlsPort, { multiplex }));
    const c = await client(p.port);
    const key = `tls-up:${multiplex}`;
    expect(await request(c, cmd('SET', key, 'v1'))).toBe('+OK\r\n');
    expect(await request(c, cmd('GET', key))).toBe('$2\r\nv1\r\n');
    // MULTI pins the client to a connection of its own: TLS too.
    expect(await request(c, cmd('MULTI'))).toBe('+OK\r\n');
    expect(await request(c, cmd('APPEND', key, '+'))).toBe('+QUEUED\r\n');
    expect(await request(c, cmd('EXEC'))).toBe('*1\r\n:3\r\n');
    expect(await direct(key)).toBe('v1+\n');
  });

  it('an upstream certificate from an unrelated CA: -ERR naming the address and the cause', async () => {
    const p = await proxy(
      upstreamTls(redis.tlsPort, { multiplex, upstreamTlsCaCertFile: certs.otherCa }),
    );
    const c = await client(p.port);
    expect(await request(c, cmd('GET', 'k'))).toBe(
      `-ERR semcache: upstream 127.0.0.1:${redis.tlsPort} unreachable (self-signed certificate in certificate chain)\r\n`,
    );
  });

  it('--upstream-tls-server-name is the name checked; a name the certificate lacks is refused', async () => {
    const good = await proxy(
      upstreamTls(redis.tlsPort, { multiplex, upstreamTlsServerName: 'localhost' }),
    );
    expect(await request(await client(good.port), cmd('PING'))).toBe('+PONG\r\n');
    const bad = await proxy(
      upstreamTls(redis.tlsPort, { multiplex, upstreamTlsServerName: 'redis.example.com' }),
    );
    expect(await request(await client(bad.port), cmd('PING'))).toMatch(
      new RegExp(
        `^-ERR semcache: upstream 127\\.0\\.0\\.1:${redis.tlsPort} unreachable \\(Hostname/IP does not match certificate's altnames: Host: redis\\.example\\.com\\. is not in the cert's altnames: IP Address:127\\.0\\.0\\.1, DNS:localhost\\)\\r\\n$`,
      ),
    );
  });

  it('without a client certificate, redis refuses semcache: the cause is its TLS alert', async () => {
    const p = await proxy(
      upstreamTls(redis.tlsPort, {
        multiplex,
        upstreamTlsCertFile: undefined,
        upstreamTlsKeyFile: undefined,
      }),
    );
    // TLS 1.3: the server's verdict on our certificate comes after our side of
    // the handshake, before any reply: the connection never really came up.
    const c = await client(p.port);
    expect(await request(c, cmd('PING'))).toBe(
      `-ERR semcache: upstream 127.0.0.1:${redis.tlsPort} unreachable (TLS: tlsv13 alert certificate required)\r\n`,
    );
    expect(c.closed).toBe(false); // the next command tries again
  });

  it('a server that accepts TCP and never answers the handshake: unreachable after --connect-timeout', async () => {
    const port = await freePort();
    const held: Socket[] = [];
    const silent = createServer((s) => held.push(s)).listen(port, '127.0.0.1');
    cleanups.push(() => {
      for (const s of held) s.destroy();
      silent.close();
    });
    const p = await proxy(upstreamTls(port, { multiplex, connectTimeout: 300 }));
    expect(await request(await client(p.port), cmd('PING'))).toBe(
      `-ERR semcache: upstream 127.0.0.1:${port} unreachable (TLS handshake timeout after 300 ms)\r\n`,
    );
  });
});

describe('an expired upstream certificate', () => {
  it('is refused by every kind of upstream connection', async () => {
    const expired = await startTlsRedis(certs, certs.expiredServer);
    cleanups.push(() => expired.stop());
    for (const multiplex of [0, 1]) {
      const p = await proxy(upstreamTls(expired.tlsPort, { multiplex }));
      expect(await request(await client(p.port), cmd('GET', 'k'))).toBe(
        `-ERR semcache: upstream 127.0.0.1:${expired.tlsPort} unreachable (certificate has expired)\r\n`,
      );
    }
    const sem = await startSemanticProxy(expired.port, upstreamTls(expired.tlsPort), undefined, {
      allowFailed: true,
    });
    cleanups.push(() => sem.stop());
    expect(sem.engine.state).toBe('failed');
    const reply = await request(await client(sem.port), cmd('SEMGET', 'anything'));
    expect(reply).toContain(
      `redis 127.0.0.1:${expired.tlsPort} unreachable: certificate has expired`,
    );
  });
});

describe("the semantic cache's own connection over TLS", () => {
  it('SEMSET / SEMGET round trip; the entry is stored in redis', async () => {
    const sem = await startSemanticProxy(redis.port, upstreamTls(redis.tlsPort));
    cleanups.push(() => sem.stop());
    const c = await client(sem.port);
    expect(
      await request(
        c,
        cmd('SEMSET', 'tls-sem:1', 'a quiet flat near the harbour', 'try the old town'),
      ),
    ).toBe('+OK\r\n');
    expect(await request(c, cmd('SEMGET', 'quiet flat near the harbour', 'THRESHOLD', '0.5'))).toBe(
      '$16\r\ntry the old town\r\n',
    );
    expect(await direct('tls-sem:1')).toBe('try the old town\n');
    const rec = await runProcess('redis-cli', [
      '-p',
      String(redis.port),
      'EXISTS',
      'semcache:rec:tls-sem:1',
    ]);
    expect(rec.stdout).toBe('1\n');
  });

  it('an upstream certificate from an unrelated CA: the engine fails with the cause', async () => {
    const sem = await startSemanticProxy(
      redis.port,
      upstreamTls(redis.tlsPort, { upstreamTlsCaCertFile: certs.otherCa }),
      undefined,
      { allowFailed: true },
    );
    cleanups.push(() => sem.stop());
    expect(sem.engine.state).toBe('failed');
    const reply = await request(await client(sem.port), cmd('SEMSET', 'k', 'text', 'v'));
    expect(reply).toContain(
      `redis 127.0.0.1:${redis.tlsPort} unreachable: self-signed certificate in certificate chain`,
    );
  });
});
