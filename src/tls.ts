/*
 * TLS, both ways: the certificates and keys named by the --tls-* and
 * --upstream-tls-* options, read and checked once at startup, and the TLS
 * listener.
 *
 * Startup does all the file work. A path that cannot be read, a file that
 * holds no certificate, a key that does not belong to its certificate: each
 * stops the start with a message naming the option, so nothing fails later
 * at a client's first connection.
 *
 * The listener hands a client to the server only after its handshake: a
 * tls.TLSSocket is a net.Socket, so from there on it is served exactly like a
 * plain client (the same accept(), --max-clients and ClientConnection). Until
 * then it is held here, bounded two ways, as in Redis: a handshake has
 * --tls-handshake-timeout to finish (an absolute deadline: a client that
 * trickles bytes does not extend it), and a connection still in its handshake
 * counts towards --max-clients (src/networking.c counts a TLS client from
 * accept; at the limit it is dropped, since there is no session yet to carry
 * an error reply). A handshake that fails is logged at debug level and costs
 * only that connection.
 *
 * --tls-auth-clients follows redis.conf: yes (a certificate the CA signed is
 * required), optional (none is accepted, one that does not verify is not),
 * no (none is asked for). Node completes the handshake either way when
 * rejectUnauthorized is off; the decision is made here, from the verify
 * result, so that every refusal is logged with its reason.
 */
import { createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIP, type Socket } from 'node:net';
import {
  type ConnectionOptions,
  checkServerIdentity,
  createServer,
  type Server,
  type TLSSocket,
} from 'node:tls';
import type { Config } from './config.js';
import { Err } from './errors.js';
import type { Logger } from './log.js';
import { refuse } from './refuse.js';
import { causeOf } from './upstream/connect.js';

/** A TLS file that cannot be used; the message names the option and the path. */
export class TlsFileError extends Error {}

function read(flag: string, path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new TlsFileError(`--${flag} ${path}: ${(err as Error).message}`);
  }
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g;

/** Every certificate in a PEM file; at least one, each one parsed. */
function readCerts(flag: string, path: string): { pem: string; certs: X509Certificate[] } {
  const pem = read(flag, path);
  const blocks = pem.match(PEM_CERT) ?? [];
  if (blocks.length === 0) throw new TlsFileError(`--${flag} ${path}: no PEM certificate in it`);
  try {
    return { pem, certs: blocks.map((b) => new X509Certificate(b)) };
  } catch (err) {
    throw new TlsFileError(`--${flag} ${path}: ${(err as Error).message}`);
  }
}

function readKey(flag: string, path: string): { pem: string; key: KeyObject } {
  const pem = read(flag, path);
  try {
    return { pem, key: createPrivateKey(pem) };
  } catch (err) {
    throw new TlsFileError(
      `--${flag} ${path}: not a usable unencrypted PEM private key (${(err as Error).message})`,
    );
  }
}

/** A certificate and its key; a certificate past its dates is only warned about, as by Redis. */
function readPair(
  certFlag: string,
  certPath: string,
  keyFlag: string,
  keyPath: string,
  logger: Logger,
): { cert: string; key: string } {
  const { pem: cert, certs } = readCerts(certFlag, certPath);
  const { pem: key, key: keyObject } = readKey(keyFlag, keyPath);
  const leaf = certs[0]!;
  if (!leaf.checkPrivateKey(keyObject)) {
    throw new TlsFileError(`--${keyFlag} ${keyPath} is not the key of --${certFlag} ${certPath}`);
  }
  const now = Date.now();
  if (Date.parse(leaf.validTo) < now || Date.parse(leaf.validFrom) > now) {
    logger.warn(
      `--${certFlag} ${certPath} is not valid now (${leaf.validFrom} to ${leaf.validTo}): peers will refuse it`,
    );
  }
  return { cert, key };
}

export interface ServerTls {
  cert: string;
  key: string;
  ca: string | undefined;
  authClients: Config['tlsAuthClients'];
  handshakeTimeout: number;
}

/** The TLS port's certificate, key and CA, or undefined without --tls-port. */
export function loadServerTls(config: Config, logger: Logger): ServerTls | undefined {
  if (config.tlsPort === 'off') return undefined;
  // parseConfig made sure the files that the settings need are named.
  const pair = readPair(
    'tls-cert-file',
    config.tlsCertFile!,
    'tls-key-file',
    config.tlsKeyFile!,
    logger,
  );
  const ca =
    config.tlsCaCertFile === undefined
      ? undefined
      : readCerts('tls-ca-cert-file', config.tlsCaCertFile).pem;
  return {
    ...pair,
    ca,
    authClients: config.tlsAuthClients,
    handshakeTimeout: config.tlsHandshakeTimeout,
  };
}

/**
 * Connection options for a rediss:// upstream on `host`. Verification is
 * always on: the CA file (else Node's bundled roots) and the name, which is
 * --upstream-tls-server-name or the URL's host. An IP address is checked
 * against the certificate's IP entries but not sent as SNI (RFC 6066).
 */
export function loadUpstreamTls(config: Config, host: string, logger: Logger): ConnectionOptions {
  const name = config.upstreamTlsServerName ?? host;
  const options: ConnectionOptions = {
    rejectUnauthorized: true,
    checkServerIdentity: (_host, cert) => checkServerIdentity(name, cert),
  };
  if (isIP(name) === 0) options.servername = name;
  if (config.upstreamTlsCaCertFile !== undefined) {
    options.ca = readCerts('upstream-tls-ca-cert-file', config.upstreamTlsCaCertFile).pem;
  }
  if (config.upstreamTlsCertFile !== undefined && config.upstreamTlsKeyFile !== undefined) {
    Object.assign(
      options,
      readPair(
        'upstream-tls-cert-file',
        config.upstreamTlsCertFile,
        'upstream-tls-key-file',
        config.upstreamTlsKeyFile,
        logger,
      ),
    );
  }
  return options;
}

/** Why a client that finished its handshake may not stay, or undefined. */
export function clientCertProblem(
  mode: ServerTls['authClients'],
  socket: TLSSocket,
): string | undefined {
  if (mode === 'no' || socket.authorized) return undefined;
  const sent = Object.keys(socket.getPeerCertificate()).length > 0;
  if (!sent) return mode === 'yes' ? 'TLS client certificate required' : undefined;
  return `TLS client certificate refused (${String(socket.authorizationError)})`;
}

export interface TlsListenerOptions {
  tls: ServerTls;
  /** May one more connection start its handshake? `handshaking` are under way already. */
  admit(handshaking: number): boolean;
  /** A client past its handshake (and its certificate check). */
  onClient(socket: TLSSocket): void;
  logger: Logger;
}

const peer = (s: Socket) => `${s.remoteAddress}:${s.remotePort}`;

export class TlsListener {
  readonly server: Server;
  /** Connections in their handshake, by peer address (unique while open). */
  private readonly handshaking = new Map<string, Socket>();

  constructor(opts: TlsListenerOptions) {
    const { tls, logger } = opts;
    this.server = createServer({
      cert: tls.cert,
      key: tls.key,
      ...(tls.ca === undefined ? {} : { ca: tls.ca }),
      requestCert: tls.authClients !== 'no',
      rejectUnauthorized: false,
      handshakeTimeout: tls.handshakeTimeout,
      noDelay: true,
    });
    // The raw TCP connection, before the handshake (tls.Server wraps it first).
    this.server.on('connection', (raw: Socket) => {
      raw.on('error', () => {});
      if (!opts.admit(this.handshaking.size)) {
        raw.destroy();
        return;
      }
      const key = peer(raw);
      this.handshaking.set(key, raw);
      raw.once('close', () => {
        if (this.handshaking.get(key) === raw) this.handshaking.delete(key);
      });
    });
    this.server.on('tlsClientError', (err, socket) => {
      // A client that hung up has no address left to show.
      const who = socket.remoteAddress === undefined ? 'a client' : peer(socket);
      logger.debug(`TLS handshake with ${who} failed: ${causeOf(err)}`);
      // Node leaves the socket open after a handshake timeout once this event has a listener.
      socket.destroy();
    });
    this.server.on('secureConnection', (socket: TLSSocket) => {
      this.handshaking.delete(peer(socket));
      const problem = clientCertProblem(tls.authClients, socket);
      if (problem !== undefined) {
        logger.debug(`TLS client ${peer(socket)}: ${problem}`);
        // Redis ends such a handshake with an alert ("connection reset" to
        // the client); Node can only close after it, so the client is told why.
        refuse(socket, Err.tlsClientCertificate(problem));
        return;
      }
      opts.onClient(socket);
    });
  }

  /** Connections still in their handshake (they count towards --max-clients). */
  get pending(): number {
    return this.handshaking.size;
  }

  get port(): number {
    const address = this.server.address();
    return typeof address === 'object' && address !== null ? address.port : 0;
  }

  /** Stop accepting and drop connections that have not finished their handshake. */
  close(): Promise<void> {
    const closed = new Promise<void>((done) => this.server.close(() => done()));
    for (const raw of this.handshaking.values()) raw.destroy();
    return closed;
  }
}
