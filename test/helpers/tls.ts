/*
 * TLS for tests. Certificates made with the real `openssl` in a temp dir: a CA, a
 * server certificate for 127.0.0.1 and localhost, a client certificate, an
 * expired server certificate and an expired client certificate (both signed
 * by the CA, valid only in 2020), and a second CA that has nothing to do with
 * the first, with a server and a client certificate of its own.
 *
 * OpenSSL 3.0 cannot backdate with `x509 -req` (no -not_before before 3.4) and
 * faketime is not installed, so the expired ones come from `openssl ca` with
 * -startdate/-enddate and a throwaway CA database.
 *
 * Also a redis-server with a TLS port (Debian's 7.0.15 is built with TLS),
 * and a bare TLS client that records what a server says before it closes.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ConnectionOptions, connect } from 'node:tls';
import { freePort } from '../../src/embedded-redis.js';
import { type RedisHandle, startRedis } from './servers.js';

export interface Pair {
  cert: string;
  key: string;
}

export interface TestCerts {
  dir: string;
  ca: string;
  server: Pair;
  client: Pair;
  expiredServer: Pair;
  expiredClient: Pair;
  /** An unrelated CA, and certificates it signed (127.0.0.1/localhost for the server). */
  otherCa: string;
  otherServer: Pair;
  otherClient: Pair;
  remove(): void;
}

const SAN = 'subjectAltName=IP:127.0.0.1,DNS:localhost';

export function makeCerts(): TestCerts {
  const dir = mkdtempSync(join(tmpdir(), 'semcache-test-certs-'));
  const p = (name: string) => join(dir, name);
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });

  const makeCa = (name: string, cn: string) => {
    ssl(
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      p(`${name}.key`),
      '-out',
      p(`${name}.crt`),
      '-days',
      '30',
      '-subj',
      `/CN=${cn}`,
    );
    return p(`${name}.crt`);
  };
  /** A key and a CSR; `ext` goes into the CSR (openssl ca copies it). */
  const request = (name: string, cn: string, ext: string | undefined) => {
    const extArgs = ext === undefined ? [] : ['-addext', ext];
    ssl(
      'req',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      p(`${name}.key`),
      '-out',
      p(`${name}.csr`),
      '-subj',
      `/CN=${cn}`,
      ...extArgs,
    );
  };
  const sign = (ca: string, name: string, cn: string, ext: string | undefined): Pair => {
    request(name, cn, ext);
    const extFile = p(`${name}.ext`);
    writeFileSync(extFile, ext === undefined ? '' : `${ext}\n`);
    ssl(
      'x509',
      '-req',
      '-in',
      p(`${name}.csr`),
      '-CA',
      p(`${ca}.crt`),
      '-CAkey',
      p(`${ca}.key`),
      '-CAcreateserial',
      '-out',
      p(`${name}.crt`),
      '-days',
      '30',
      '-extfile',
      extFile,
    );
    return { cert: p(`${name}.crt`), key: p(`${name}.key`) };
  };
  /** Signed by `ca`, valid only in January 2020. */
  const signExpired = (ca: string, name: string, cn: string, ext: string | undefined): Pair => {
    request(name, cn, ext);
    const db = p(`${name}-db`);
    mkdirSync(db);
    writeFileSync(join(db, 'index.txt'), '');
    writeFileSync(join(db, 'serial'), '1000\n');
    writeFileSync(
      p(`${name}-ca.cnf`),
      [
        '[ca]',
        'default_ca = t',
        '[t]',
        `database = ${join(db, 'index.txt')}`,
        `serial = ${join(db, 'serial')}`,
        `new_certs_dir = ${db}`,
        `certificate = ${p(`${ca}.crt`)}`,
        `private_key = ${p(`${ca}.key`)}`,
        'default_md = sha256',
        'policy = any',
        'copy_extensions = copy',
        'unique_subject = no',
        '[any]',
        'commonName = supplied',
        '',
      ].join('\n'),
    );
    ssl(
      'ca',
      '-batch',
      '-notext',
      '-config',
      p(`${name}-ca.cnf`),
      '-in',
      p(`${name}.csr`),
      '-out',
      p(`${name}.crt`),
      '-startdate',
      '20200101000000Z',
      '-enddate',
      '20200131000000Z',
    );
    return { cert: p(`${name}.crt`), key: p(`${name}.key`) };
  };

  const ca = makeCa('ca', 'semcache test CA');
  const otherCa = makeCa('other-ca', 'unrelated test CA');
  return {
    dir,
    ca,
    server: sign('ca', 'server', 'localhost', SAN),
    client: sign('ca', 'client', 'test client', undefined),
    expiredServer: signExpired('ca', 'expired-server', 'localhost', SAN),
    expiredClient: signExpired('ca', 'expired-client', 'expired client', undefined),
    otherCa,
    otherServer: sign('other-ca', 'other-server', 'localhost', SAN),
    otherClient: sign('other-ca', 'other-client', 'other client', undefined),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export interface TlsRedisHandle extends RedisHandle {
  /** The TLS port; `port` stays plain, for readiness checks and for looking at the data. */
  tlsPort: number;
}

/**
 * redis-server with a TLS port presenting `pair` (default: the CA's server
 * certificate) and requiring client certificates signed by the CA
 * (tls-auth-clients yes, Redis's default).
 */
export async function startTlsRedis(
  certs: TestCerts,
  pair: Pair = certs.server,
  args: string[] = [],
): Promise<TlsRedisHandle> {
  const tlsPort = await freePort();
  const redis = await startRedis([
    '--tls-port',
    String(tlsPort),
    '--tls-cert-file',
    pair.cert,
    '--tls-key-file',
    pair.key,
    '--tls-ca-cert-file',
    certs.ca,
    ...args,
  ]);
  return { ...redis, tlsPort };
}

/** Node TLS client options from files: a CA to trust and, if given, a certificate to present. */
export function clientTls(ca: string, pair?: Pair): ConnectionOptions {
  return {
    ca: readFileSync(ca),
    ...(pair === undefined ? {} : { cert: readFileSync(pair.cert), key: readFileSync(pair.key) }),
  };
}

export interface TlsExchange {
  /** The handshake completed (for TLS 1.3 on the client's side: the server may still refuse). */
  secure: boolean;
  /** Everything the server sent, as text. */
  reply: string;
  /** The client-side error, if any (a certificate the client refused, a reset). */
  error: string | undefined;
  closed: boolean;
}

/**
 * Connect with TLS, send `request` once the handshake is done, and collect
 * the reply until the server closes or `waitMs` of silence passes after the
 * first reply byte (or `timeoutMs` in all).
 */
export function tlsExchange(
  port: number,
  options: ConnectionOptions,
  request: string,
  timeoutMs = 5000,
): Promise<TlsExchange> {
  return new Promise((resolve) => {
    const result: TlsExchange = { secure: false, reply: '', error: undefined, closed: false };
    const socket = connect({ host: '127.0.0.1', port, ...options });
    let quiet: NodeJS.Timeout | undefined;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(quiet);
      clearTimeout(overall);
      // A copy: our own destroy() below must not mark it closed by the server.
      resolve({ ...result });
      socket.destroy();
    };
    const overall = setTimeout(finish, timeoutMs);
    socket.on('secureConnect', () => {
      result.secure = true;
      socket.write(request);
    });
    socket.on('data', (chunk: Buffer) => {
      result.reply += chunk.toString('latin1');
      clearTimeout(quiet);
      quiet = setTimeout(finish, 200);
    });
    socket.on('error', (err) => {
      result.error ??= err.message;
    });
    socket.on('close', () => {
      result.closed = true;
      finish();
    });
  });
}
