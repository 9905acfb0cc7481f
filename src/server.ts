/*
 * The listener: it owns the server socket and the set of client connections.
 * It starts from the upstream resolve.ts finds (given, or an embedded
 * redis-server) and semcache's own connections to it (own-links.ts),
 * enforces --max-clients the way Redis does (an error reply, then close), and shuts
 * down in order: stop accepting, let in-flight replies finish within
 * --shutdown-timeout, then close what is left and the embedded server.
 */
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { semanticCommands } from './commands/semantic/index.js';
import { type CommandSpec, commandTable } from './commands/types.js';
import type { Config } from './config.js';
import type { EmbeddedRedis } from './embedded-redis.js';
import { Err } from './errors.js';
import { createLogger, type Logger } from './log.js';
import { ClientConnection } from './proxy/connection.js';
import { refuse } from './refuse.js';
import { Router } from './router.js';
import { createSemanticCache, type SemanticRuntime } from './semantic/create.js';
import type { Embedder } from './semantic/types.js';
import { loadServerTls, TlsListener } from './tls.js';
import { AuthState } from './upstream/auth-state.js';
import type { UpstreamLimits } from './upstream/limits.js';
import { ClientLinkLog, LinkLog } from './upstream/link-log.js';
import { type Hidden, OwnConnections } from './upstream/own-connections.js';
import { openOwnLinks } from './upstream/own-links.js';
import type { RedisClient } from './upstream/redis-client.js';
import { resolveUpstream } from './upstream/resolve.js';
import { SharedUpstream } from './upstream/shared-upstream.js';

export interface ServerOptions {
  config: Config;
  /** Our own commands; tests inject extra ones. */
  commands?: CommandSpec[];
  logger?: Logger;
  /** false: a plain proxy without the SEM* commands (default true). */
  semantic?: boolean;
  /** Replaces the embedder the configuration names (tests, benchmarks). */
  embedder?: Embedder;
}

/** A loopback address (or name): what Redis's protected mode calls a local client. */
function isLoopback(address: string | undefined): boolean {
  if (address === undefined) return false;
  const a = address.toLowerCase();
  return a === 'localhost' || a === '::1' || a.startsWith('127.') || a.startsWith('::ffff:127.');
}

export class SemcacheServer {
  private readonly clients = new Set<ClientConnection>();
  private nextId = 1;
  private readonly shared: SharedUpstream[] = [];
  /** Whether the upstream's default user needs a password (auth-state.ts). */
  readonly auth: AuthState;
  /** --protected-mode yes and bound to more than loopback. */
  private readonly protectedMode: boolean;
  private closing: Promise<void> | undefined;
  /** The --tls-port listener; its clients join `clients` after their handshake. */
  private tls: TlsListener | undefined;
  private readonly clientLinks: ClientLinkLog;
  /** Our shared and probe connections: their housekeeping is hidden from MONITOR. */
  private readonly housekeeping = new OwnConnections();

  private constructor(
    private readonly server: Server,
    private readonly config: Config,
    private readonly router: Router,
    private readonly upstream: { host: string; port: number },
    private readonly storageDb: number,
    private readonly embedded: EmbeddedRedis | undefined,
    private readonly logger: Logger,
    readonly semantic: SemanticRuntime | undefined,
    /** semcache's own connection: the semantic cache's storage, reading the limits. */
    private readonly own: RedisClient,
    readonly limits: UpstreamLimits,
  ) {
    this.protectedMode = config.protectedMode === 'yes' && !isLoopback(config.bind);
    const options = { ...upstream, connectTimeout: config.connectTimeout };
    const ours = (hidden: Hidden) => ({
      ...options,
      own: { connections: this.housekeeping, hidden },
    });
    this.auth = new AuthState(ours('all'), 1000, logger);
    for (let i = 0; i < config.multiplex; i++) {
      this.shared.push(
        new SharedUpstream(
          ours('reset'),
          new LinkLog(logger, `shared upstream connection ${i + 1}`),
          this.auth,
        ),
      );
    }
    const first = this.shared[0];
    if (first !== undefined) this.auth.via = () => first.ping();
    this.clientLinks = new ClientLinkLog(logger);
    server.on('connection', (socket) => this.accept(socket));
  }

  static async start(opts: ServerOptions): Promise<SemcacheServer> {
    const { config } = opts;
    const logger = opts.logger ?? createLogger(config.logLevel);
    // Certificates are read before anything starts: a bad file stops the start.
    const serverTls = loadServerTls(config, logger);
    const { address, embedded } = await resolveUpstream(config, logger);
    const upstream = { host: address.host, port: address.port, tls: address.tls };
    const { own, limits, connect } = await openOwnLinks(config, address, logger);
    const semantic =
      opts.semantic === false
        ? undefined
        : createSemanticCache(config, own, address.db, logger, opts.embedder, connect);
    const commands = [
      ...(semantic ? semanticCommands(semantic.engine) : []),
      ...(opts.commands ?? []),
    ];
    const router = new Router(commandTable(commands));
    const server = createServer({ noDelay: true, allowHalfOpen: true });
    const instance = new SemcacheServer(
      server,
      config,
      router,
      upstream,
      address.db,
      embedded,
      logger,
      semantic,
      own,
      limits,
    );
    // The first answer comes before clients do (a few ms; bounded by --connect-timeout).
    await instance.auth.probe();
    try {
      if (config.port !== 'off') await listen(server, config.port, config.bind);
      if (serverTls !== undefined && config.tlsPort !== 'off') {
        instance.tls = new TlsListener({
          tls: serverTls,
          admit: (handshaking) =>
            instance.closing === undefined &&
            instance.clients.size + handshaking < config.maxClients,
          onClient: (socket) => instance.accept(socket),
          logger,
        });
        await listen(instance.tls.server, config.tlsPort, config.bind);
      }
    } catch (err) {
      instance.auth.close();
      server.close();
      instance.tls?.server.close();
      limits.stop();
      await semantic?.close();
      own.close();
      await embedded?.stop();
      throw err;
    }
    const on = [
      ...(config.port === 'off' ? [] : [`${config.bind}:${instance.port}`]),
      ...(instance.tls === undefined ? [] : [`${config.bind}:${instance.tlsPort} (TLS)`]),
    ];
    const overTls = upstream.tls === undefined ? '' : ' (TLS)';
    logger.info(
      `semcache ready on ${on.join(' and ')}, upstream ${upstream.host}:${upstream.port}${overTls}`,
    );
    if (config.port === 0 && instance.tls !== undefined) {
      // Redis reads "port 0" as "no plain port": say what it means here.
      logger.warn(
        `--port 0 opened plain TCP on free port ${instance.port}; --port off serves TLS only`,
      );
    }
    return instance;
  }

  get port(): number {
    const address = this.server.address();
    return typeof address === 'object' && address !== null ? address.port : 0;
  }

  /** The TLS port, 0 without --tls-port. */
  get tlsPort(): number {
    return this.tls?.port ?? 0;
  }

  get upstreamAddress(): { host: string; port: number } {
    return this.upstream;
  }

  get clientCount(): number {
    return this.clients.size;
  }

  /** Memory held for clients, for tests and INFO-like reporting. */
  stats(): { clients: number; bufferedBytes: number; pendingCommands: number } {
    let bufferedBytes = 0;
    let pendingCommands = 0;
    for (const c of this.clients) {
      bufferedBytes += c.bufferedBytes;
      pendingCommands += c.pendingCommands;
    }
    return { clients: this.clients.size, bufferedBytes, pendingCommands };
  }

  private accept(socket: Socket): void {
    if (this.closing !== undefined) {
      socket.destroy();
      return;
    }
    // Connections still in their TLS handshake count too, as in Redis.
    if (this.clients.size + (this.tls?.pending ?? 0) >= this.config.maxClients) {
      refuse(socket, Err.maxClients);
      return;
    }
    if (this.protectedMode && !isLoopback(socket.remoteAddress)) {
      // Protected mode (like Redis's): until Redis says a password is needed, loopback only.
      socket.pause();
      socket.on('error', () => {});
      void this.auth.current().then((required) => {
        if (!required) refuse(socket, Err.protectedMode);
        else if (this.closing === undefined && !socket.destroyed) {
          this.serve(socket);
          socket.resume();
        } else socket.destroy();
      });
      return;
    }
    this.serve(socket);
  }

  private serve(socket: Socket): void {
    const id = this.nextId++;
    const conn = new ClientConnection(socket, {
      id,
      shared: this.shared.length > 0 ? this.shared[id % this.shared.length] : undefined,
      router: this.router,
      upstream: {
        ...this.upstream,
        connectTimeout: this.config.connectTimeout,
        monitor: this.clientLinks.forClient(id),
      },
      limits: this.limits,
      maxPending: this.config.maxPending,
      maxRequestSize: this.config.maxRequestSize,
      auth: this.auth,
      housekeeping: this.housekeeping,
      storageDb: this.storageDb,
      logger: this.logger,
      onClose: (c) => this.clients.delete(c),
    });
    this.clients.add(conn);
  }

  /** Exit now: drop clients and signal the embedded redis-server (it saves and exits). */
  abort(): void {
    for (const client of this.clients) client.destroy();
    this.embedded?.kill();
  }

  /** Stop accepting, let pending replies go out (bounded), then close everything. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    const closed = new Promise<void>((done) => this.server.close(() => done()));
    const tlsClosed = this.tls?.close();
    for (const client of this.clients) client.shutdown();
    const deadline = Date.now() + this.config.shutdownTimeout;
    while (this.clients.size > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    if (this.clients.size > 0) {
      this.logger.warn(`closing ${this.clients.size} client(s) with replies still pending`);
      for (const client of this.clients) client.destroy();
    }
    for (const shared of this.shared) shared.close();
    this.auth.close();
    this.limits.stop();
    this.clientLinks.close();
    await this.semantic?.close();
    this.own.close();
    await closed;
    await tlsClosed;
    await this.embedded?.stop();
  }
}

async function listen(server: Server, port: number, bind: string): Promise<void> {
  server.listen(port, bind);
  await Promise.race([
    once(server, 'listening'),
    once(server, 'error').then(([err]) => Promise.reject(err)),
  ]);
}
