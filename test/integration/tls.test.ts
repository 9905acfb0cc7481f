/*
 * semcache's TLS port (--tls-port, docs/security.md "TLS"), with real
 * clients (redis-cli --tls, ioredis and node-redis in RESP2 and RESP3,
 * openssl s_client) and certificates made by openssl. The proxy under test
 * sits in front of redis-server's own TLS port, so these requests travel TLS
 * on both hops; tls-upstream.test.ts covers the upstream side on its own.
 */
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { join, resolve } from 'node:path';
import { Redis } from 'ioredis';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Config, ConfigError, parseConfig } from '../../src/config.js';
import { stopAfterEach } from '../helpers/cleanup.js';
import { runProcess, sleep, waitFor } from '../helpers/proc.js';
import { cmd, RawClient, request } from '../helpers/raw.js';
import { type ProxyHandle, startProxy } from '../helpers/servers.js';
import {
  clientTls,
  makeCerts,
  startTlsRedis,
  type TestCerts,
  type TlsRedisHandle,
  tlsExchange,
} from '../helpers/tls.js';

let certs: TestCerts;
let redis: TlsRedisHandle;
/** Plain port and TLS port, tls-auth-clients yes, rediss:// upstream. */
let proxy: ProxyHandle;
let tlsPort: number;

/** Everything a test started, stopped after it whatever happened. */
const cleanups = stopAfterEach();

/** The TLS settings of a proxy in front of `redis`: both hops TLS, client certificates required. */
function tlsConfig(overrides: Partial<Config> = {}): Partial<Config> {
  return {
    upstream: `rediss://127.0.0.1:${redis.tlsPort}`,
    upstreamTlsCaCertFile: certs.ca,
    upstreamTlsCertFile: certs.client.cert,
    upstreamTlsKeyFile: certs.client.key,
    tlsPort: 0,
    tlsCertFile: certs.server.cert,
    tlsKeyFile: certs.server.key,
    tlsCaCertFile: certs.ca,
    ...overrides,
  };
}

async function tlsProxy(overrides: Partial<Config> = {}): Promise<ProxyHandle> {
  const p = await startProxy(redis.port, tlsConfig(overrides));
  cleanups.push(() => p.stop());
  return p;
}

beforeAll(async () => {
  certs = makeCerts();
  redis = await startTlsRedis(certs);
  proxy = await startProxy(redis.port, tlsConfig());
  tlsPort = proxy.server.tlsPort;
}, 60_000);

afterAll(async () => {
  await proxy?.stop();
  await redis?.stop();
  certs?.remove();
});

const PING = cmd('PING').toString('latin1');
const redisCliTls = (port: number, extra: string[], ...args: string[]) =>
  runProcess('redis-cli', ['--tls', '-h', '127.0.0.1', '-p', String(port), ...extra, ...args]);

describe('TLS port and plain port of one proxy', () => {
  it('redis-cli --tls (--cacert, --cert, --key) through the TLS port; the plain port sees the same data', async () => {
    const auth = ['--cacert', certs.ca, '--cert', certs.client.cert, '--key', certs.client.key];
    const set = await redisCliTls(tlsPort, auth, 'SET', 'tls:cli', 'über TLS');
    expect(set.stdout).toBe('OK\n');
    const get = await redisCliTls(tlsPort, auth, 'GET', 'tls:cli');
    expect(get.stdout).toBe('über TLS\n');
    expect(tlsPort).not.toBe(proxy.port);
    const plain = await runProcess('redis-cli', ['-p', String(proxy.port), 'GET', 'tls:cli']);
    expect(plain.stdout).toBe('über TLS\n');
    // And it is in redis itself (its plain port).
    const direct = await runProcess('redis-cli', ['-p', String(redis.port), 'GET', 'tls:cli']);
    expect(direct.stdout).toBe('über TLS\n');
  });

  it('a plain-text client on the TLS port is closed, and TLS clients carry on', async () => {
    const c = new Redis({
      host: '127.0.0.1',
      port: tlsPort,
      tls: clientTls(certs.ca, certs.client),
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    cleanups.push(() => c.disconnect());
    expect(await c.set('tls:carry', '1')).toBe('OK');
    const raw = await RawClient.open(tlsPort);
    cleanups.push(() => raw.close());
    raw.write(PING);
    await raw.until(() => false, 5000);
    expect(raw.closed).toBe(true);
    expect(raw.received.toString('latin1')).not.toContain('PONG');
    expect(await c.incr('tls:carry')).toBe(2);
  });
});

describe.each([2, 3] as const)('ioredis over TLS, RESP%i', (protocol) => {
  const p = (k: string) => `io${protocol}:${k}`;
  function client(): Redis {
    const c = new Redis({
      host: '127.0.0.1',
      port: tlsPort,
      protocol,
      tls: clientTls(certs.ca, certs.client),
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    c.on('error', () => {});
    cleanups.push(() => c.disconnect());
    return c;
  }

  it('commands, a 1 MB value, a pipeline of 500, MULTI/EXEC', async () => {
    const c = client();
    expect(await c.set(p('s'), 'v')).toBe('OK');
    expect(await c.get(p('s'))).toBe('v');
    const big = Buffer.alloc(1 << 20, 'x');
    big.write('start', 0);
    expect(await c.set(p('big'), big)).toBe('OK');
    expect((await c.getBuffer(p('big')))?.equals(big)).toBe(true);
    const pipe = c.pipeline();
    for (let i = 0; i < 500; i++) pipe.incr(p('n'));
    const results = await pipe.exec();
    expect(results?.map(([, v]) => v)).toEqual(Array.from({ length: 500 }, (_, i) => i + 1));
    expect(await c.multi().incr(p('m')).incr(p('m')).exec()).toEqual([
      [null, 1],
      [null, 2],
    ]);
  });
});

describe.each([2, 3] as const)('node-redis over TLS, RESP%i', (RESP) => {
  const p = (k: string) => `nr${RESP}:${k}`;
  it('commands, hashes, MULTI/EXEC', async () => {
    const client = createClient({
      socket: {
        host: '127.0.0.1',
        port: tlsPort,
        tls: true,
        ...clientTls(certs.ca, certs.client),
        reconnectStrategy: false,
      },
      RESP,
    });
    client.on('error', () => {});
    cleanups.push(() => client.destroy());
    const c = await client.connect();
    expect(await c.set(p('s'), 'v')).toBe('OK');
    expect(await c.get(p('s'))).toBe('v');
    expect(await c.hSet(p('h'), { a: '1', b: '2' })).toBe(2);
    expect(await c.hGetAll(p('h'))).toEqual({ a: '1', b: '2' });
    expect(await c.multi().incr(p('m')).incr(p('m')).exec()).toEqual([1, 2]);
  });
});

describe('--tls-auth-clients', () => {
  const refusedRe = (why: string) =>
    new RegExp(`^-ERR semcache: TLS client certificate ${why}\\r\\n$`);

  it('yes (default): a certificate the CA signed is required; none, an unrelated CA or an expired one is refused', async () => {
    const ok = await tlsExchange(tlsPort, clientTls(certs.ca, certs.client), PING);
    expect(ok.reply).toBe('+PONG\r\n');
    const none = await tlsExchange(tlsPort, clientTls(certs.ca), PING);
    expect(none.reply).toMatch(refusedRe('required'));
    expect(none.closed).toBe(true);
    const other = await tlsExchange(tlsPort, clientTls(certs.ca, certs.otherClient), PING);
    expect(other.reply).toMatch(refusedRe('refused \\(UNABLE_TO_VERIFY_LEAF_SIGNATURE\\)'));
    expect(other.closed).toBe(true);
    const expired = await tlsExchange(tlsPort, clientTls(certs.ca, certs.expiredClient), PING);
    expect(expired.reply).toMatch(refusedRe('refused \\(CERT_HAS_EXPIRED\\)'));
    expect(expired.closed).toBe(true);
    // What a redis-cli user sees.
    const cli = await redisCliTls(tlsPort, ['--cacert', certs.ca], 'PING');
    expect(cli.stdout).toContain('TLS client certificate required');
  });

  it('optional: no certificate is fine, a certificate that does not verify is not', async () => {
    const p = await tlsProxy({ tlsAuthClients: 'optional' });
    const port = p.server.tlsPort;
    expect((await tlsExchange(port, clientTls(certs.ca), PING)).reply).toBe('+PONG\r\n');
    expect((await tlsExchange(port, clientTls(certs.ca, certs.client), PING)).reply).toBe(
      '+PONG\r\n',
    );
    const other = await tlsExchange(port, clientTls(certs.ca, certs.otherClient), PING);
    expect(other.reply).toMatch(refusedRe('refused \\(UNABLE_TO_VERIFY_LEAF_SIGNATURE\\)'));
    const expired = await tlsExchange(port, clientTls(certs.ca, certs.expiredClient), PING);
    expect(expired.reply).toMatch(refusedRe('refused \\(CERT_HAS_EXPIRED\\)'));
  });

  it('no: a certificate is never asked for (so any is ignored), and no CA is needed', async () => {
    const p = await tlsProxy({ tlsAuthClients: 'no', tlsCaCertFile: undefined });
    const port = p.server.tlsPort;
    expect((await tlsExchange(port, clientTls(certs.ca), PING)).reply).toBe('+PONG\r\n');
    const other = await tlsExchange(port, clientTls(certs.ca, certs.otherClient), PING);
    expect(other.reply).toBe('+PONG\r\n');
    // openssl shows whether the server sent a CertificateRequest.
    const sClient = (p: number) =>
      runProcess(
        'openssl',
        ['s_client', '-connect', `127.0.0.1:${p}`, '-CAfile', certs.ca, '-msg', '-no_ign_eof'],
        { input: '', timeoutMs: 10_000 },
      );
    const asked = await sClient(tlsPort);
    const notAsked = await sClient(port);
    expect(`${asked.stdout}${asked.stderr}`).toContain('CertificateRequest');
    expect(`${notAsked.stdout}${notAsked.stderr}`).toContain('ServerHello');
    expect(`${notAsked.stdout}${notAsked.stderr}`).not.toContain('CertificateRequest');
  });
});

describe("the TLS port's certificate", () => {
  it('a client that trusts only an unrelated CA refuses it', async () => {
    const r = await tlsExchange(tlsPort, clientTls(certs.otherCa, certs.client), PING);
    expect(r.secure).toBe(false);
    expect(r.error).toMatch(/certificate/);
  });

  it('an expired --tls-cert-file still starts, and clients refuse it', async () => {
    const p = await tlsProxy({
      tlsCertFile: certs.expiredServer.cert,
      tlsKeyFile: certs.expiredServer.key,
    });
    const r = await tlsExchange(p.server.tlsPort, clientTls(certs.ca, certs.client), PING);
    expect(r.secure).toBe(false);
    expect(r.error).toBe('certificate has expired');
  });
});

/** A TCP connection to `port` that starts a TLS ClientHello and then trickles one byte at a time. */
function stall(port: number): { closed: () => boolean; stop: () => void } {
  const socket = connect({ host: '127.0.0.1', port });
  let closed = false;
  socket.on('error', () => {});
  socket.on('close', () => {
    closed = true;
  });
  // A handshake record header announcing 512 bytes that never all come.
  socket.write(Buffer.from('1603010200', 'hex'));
  const timer = setInterval(() => socket.write(Buffer.from([1])), 100);
  socket.on('close', () => clearInterval(timer));
  cleanups.push(() => socket.destroy());
  return {
    closed: () => closed,
    stop: () => socket.destroy(),
  };
}

describe('handshakes that stall', () => {
  it('are dropped after --tls-handshake-timeout even while bytes trickle in; others are served meanwhile', async () => {
    const p = await tlsProxy({ tlsHandshakeTimeout: 400 });
    const port = p.server.tlsPort;
    const s = stall(port);
    await sleep(100);
    expect((await tlsExchange(port, clientTls(certs.ca, certs.client), PING)).reply).toBe(
      '+PONG\r\n',
    );
    expect(await waitFor(s.closed, 5000)).toBe(true);
  });

  it('count towards --max-clients until they finish, as in Redis', async () => {
    const p = await tlsProxy({ maxClients: 2, tlsHandshakeTimeout: 1500 });
    const port = p.server.tlsPort;
    const a = stall(port);
    const b = stall(port);
    await waitFor(async () => {
      const c = await RawClient.open(p.port);
      cleanups.push(() => c.close());
      return (await request(c, cmd('PING'))) === '-ERR max number of clients reached\r\n';
    });
    const full = await RawClient.open(p.port);
    cleanups.push(() => full.close());
    expect(await request(full, cmd('PING'))).toBe('-ERR max number of clients reached\r\n');
    // Once they time out, there is room again.
    expect(await waitFor(() => a.closed() && b.closed(), 5000)).toBe(true);
    const c = await RawClient.open(p.port);
    cleanups.push(() => c.close());
    expect(await request(c, cmd('PING'))).toBe('+PONG\r\n');
  });

  it('a refused client that sent a command and hung up leaves nothing open (shutdown does not wait)', async () => {
    // A refused socket nobody read never noticed the client's FIN.
    const p = await tlsProxy({ maxClients: 1 });
    const first = await RawClient.open(p.port);
    cleanups.push(() => first.close());
    expect(await request(first, cmd('PING'))).toBe('+PONG\r\n');
    const refused = await RawClient.open(p.port);
    refused.write(cmd('PING'));
    expect((await refused.until(() => false, 2000)).toString()).toBe(
      '-ERR max number of clients reached\r\n',
    );
    refused.close();
    const refusedTls = await tlsExchange(p.server.tlsPort, clientTls(certs.ca), PING);
    expect(refusedTls.secure).toBe(false);
    first.close();
    await waitFor(() => p.server.clientCount === 0, 2000);
    const p2 = await tlsProxy({ tlsAuthClients: 'yes' });
    expect((await tlsExchange(p2.server.tlsPort, clientTls(certs.ca), PING)).reply).toMatch(
      /certificate required/,
    );
    for (const proxy of [p, p2]) {
      const stopped = await Promise.race([
        proxy.stop().then(() => 'stopped'),
        sleep(3000).then(() => 'still waiting'),
      ]);
      expect(stopped).toBe('stopped');
    }
  });

  it('TLS clients count towards --max-clients like plain ones', async () => {
    const p = await tlsProxy({ maxClients: 1 });
    const first = new Redis({
      host: '127.0.0.1',
      port: p.server.tlsPort,
      tls: clientTls(certs.ca, certs.client),
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    first.on('error', () => {});
    cleanups.push(() => first.disconnect());
    expect(await first.ping()).toBe('PONG');
    const plain = await RawClient.open(p.port);
    cleanups.push(() => plain.close());
    expect(await request(plain, cmd('PING'))).toBe('-ERR max number of clients reached\r\n');
    // A second TLS client is dropped before its handshake (no session to carry an error).
    const second = await tlsExchange(p.server.tlsPort, clientTls(certs.ca, certs.client), PING);
    expect(second.secure).toBe(false);
    expect(second.reply).toBe('');
  });

  it('do not hold up shutdown', async () => {
    const p = await startProxy(redis.port, tlsConfig({ tlsHandshakeTimeout: 60_000 }));
    cleanups.push(() => p.stop());
    const s = stall(p.server.tlsPort);
    await sleep(200);
    const stopped = await Promise.race([
      p.stop().then(() => 'stopped'),
      sleep(5000).then(() => 'still waiting'),
    ]);
    expect(stopped).toBe('stopped');
    expect(await waitFor(s.closed, 2000)).toBe(true);
  });
});

describe('configuration', () => {
  const parse = (...argv: string[]) => parseConfig(argv, {}).config;
  const errorOf = (...argv: string[]) => {
    try {
      parse(...argv);
    } catch (err) {
      if (err instanceof ConfigError) return err.message;
      throw err;
    }
    throw new Error(`accepted: ${argv.join(' ')}`);
  };

  it('ports: 0 is a free port, off is none; TLS is off unless --tls-port is given', () => {
    expect(parse().tlsPort).toBe('off');
    expect(parse('--port', '0').port).toBe(0);
    const tlsOnly = parse(
      ...['--port', 'off', '--tls-port', '0', '--tls-auth-clients', 'no'],
      ...['--tls-cert-file', 'c', '--tls-key-file', 'k'],
    );
    expect([tlsOnly.port, tlsOnly.tlsPort]).toEqual(['off', 0]);
    expect(errorOf('--port', '65536')).toBe('--port: port 65536 is out of range');
    expect(errorOf('--tls-port', 'on')).toBe(
      "--tls-port: 'on' is not a non-negative integer (or off)",
    );
    expect(errorOf('--port', 'off')).toMatch(/listen on nothing/);
  });

  it('combinations Redis also refuses, and upstream TLS options without rediss://', () => {
    expect(errorOf('--tls-port', '6390')).toBe(
      '--tls-port needs --tls-cert-file and --tls-key-file',
    );
    expect(errorOf('--tls-port', '6390', '--tls-cert-file', 'c', '--tls-key-file', 'k')).toBe(
      '--tls-auth-clients yes needs --tls-ca-cert-file (or --tls-auth-clients no)',
    );
    expect(errorOf('--upstream', 'redis://h:1', '--upstream-tls-ca-cert-file', 'ca')).toBe(
      '--upstream-tls-ca-cert-file needs a rediss:// --upstream',
    );
    expect(errorOf('--upstream', 'rediss://h:1', '--upstream-tls-cert-file', 'c')).toBe(
      '--upstream-tls-cert-file and --upstream-tls-key-file go together',
    );
    expect(parse('--upstream', 'rediss://h:1', '--upstream-tls-server-name', 'h').upstream).toBe(
      'rediss://h:1',
    );
  });

  it('unusable files stop the start with the option and the path, before anything listens', async () => {
    const missing = join(certs.dir, 'missing.crt');
    await expect(startProxy(redis.port, tlsConfig({ tlsCertFile: missing }))).rejects.toThrow(
      `--tls-cert-file ${missing}: ENOENT`,
    );
    await expect(
      startProxy(redis.port, tlsConfig({ tlsKeyFile: certs.client.key })),
    ).rejects.toThrow(
      `--tls-key-file ${certs.client.key} is not the key of --tls-cert-file ${certs.server.cert}`,
    );
    await expect(
      startProxy(redis.port, tlsConfig({ tlsCaCertFile: certs.server.key })),
    ).rejects.toThrow(`--tls-ca-cert-file ${certs.server.key}: no PEM certificate in it`);
    await expect(
      startProxy(redis.port, tlsConfig({ upstreamTlsCaCertFile: missing })),
    ).rejects.toThrow(`--upstream-tls-ca-cert-file ${missing}: ENOENT`);
  });

  it('the command line: exit 2 for a bad combination, 1 for a file it cannot use', async () => {
    const cli = resolve(import.meta.dirname, '../../dist/cli.js');
    if (!existsSync(cli)) {
      const build = await runProcess('npm', ['run', 'build'], { timeoutMs: 120_000 });
      expect(build.code).toBe(0);
    }
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, SEMCACHE_EMBEDDER: 'hash' };
    const run = (...args: string[]) =>
      runProcess(
        process.execPath,
        [cli, '--upstream', `redis://127.0.0.1:${redis.port}`, ...args],
        {
          env,
        },
      );
    const combo = await run('--tls-port', '0', '--tls-cert-file', certs.server.cert);
    expect(combo.code).toBe(2);
    expect(combo.stderr).toContain('--tls-port needs --tls-cert-file and --tls-key-file');
    const file = await run(
      ...['--port', '0', '--tls-port', '0', '--tls-auth-clients', 'no'],
      ...['--tls-cert-file', join(certs.dir, 'nope.crt'), '--tls-key-file', certs.server.key],
    );
    expect(file.code).toBe(1);
    expect(file.stderr).toContain(
      `cannot start: --tls-cert-file ${join(certs.dir, 'nope.crt')}: ENOENT`,
    );
  });
});
