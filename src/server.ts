/*
 * The listener: it owns the server socket and the set of client connections.
 * It resolves the upstream (given, or an embedded redis-server), enforces
 * --max-clients the way Redis does (an error reply, then close), and shuts
 * down in order: stop accepting, let in-flight replies finish within
 * --shutdown-timeout, then close what is left and the embedded server.
 */
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { semanticCommands } from './commands/semantic/index.js';
import { type CommandSpec, commandTable } from './commands/types.js';
import { type Config, parseRedisUrl, type RedisAddress } from './config.js';
import { type EmbeddedRedis, startEmbeddedRedis } from './embedded-redis.js';
import { Err } from './errors.js';
import { createLogger, type Logger } from './log.js';
import { ClientConnection } from './proxy/connection.js';
import { encodeReply, R } from './resp/writer.js';
import { Router } from './router.js';
import { createSemanticCache, type SemanticRuntime } from './semantic/create.js';
import type { Embedder } from './semantic/types.js';
import { UpstreamLimits } from './upstream/limits.js';
import { ClientLinkLog, LinkLog } from './upstream/link-log.js';
import { RedisClient } from './upstream/redis-client.js';
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

export class SemcacheServer {
  private readonly clients = new Set<ClientConnection>();
  private nextId = 1;
  private readonly shared: SharedUpstream[] = [];
  private closing: Promise<void> | undefined;
  private readonly clientLinks: ClientLinkLog;

  private constructor(
    private readonly server: Server,
    private readonly config: Config,
    private readonly router: Router,
    private readonly upstream: { host: string; port: number },
    private readonly embedded: EmbeddedRedis | undefined,
    private readonly logger: Logger,
    readonly semantic: SemanticRuntime | undefined,
    /** semcache's own connection: the semantic cache's storage, reading the limits. */
    private readonly own: RedisClient,
    readonly limits: UpstreamLimits,
  ) {
    for (let i = 0; i < config.multiplex; i++) {
      this.shared.push(
        new SharedUpstream(
          { ...upstream, connectTimeout: config.connectTimeout },
          new LinkLog(logger, `shared upstream connection ${i + 1}`),
          limits,
        ),
      );
    }
    this.clientLinks = new ClientLinkLog(logger);
    server.on('connection', (socket) => this.accept(socket));
  }

  static async start(opts: ServerOptions): Promise<SemcacheServer> {
    const { config } = opts;
    const logger = opts.logger ?? createLogger(config.logLevel);
    let embedded: EmbeddedRedis | undefined;
    let address: RedisAddress;
    if (config.upstream === undefined) {
      embedded = await startEmbeddedRedis({
        executable: config.redisServer,
        dataDir: config.dataDir,
        logger,
      });
      address = {
        host: '127.0.0.1',
        port: embedded.port,
        username: undefined,
        password: undefined,
        db: 0,
      };
    } else address = parseRedisUrl(config.upstream);
    const upstream = { host: address.host, port: address.port };
    const own = new RedisClient({
      ...address,
      connectTimeout: config.connectTimeout,
      monitor: new LinkLog(logger, 'semcache connection'),
    });
    const limits = new UpstreamLimits(own, config.upstreamMaxBulkLen, logger);
    // Only requests on shared connections are checked against them.
    if (config.multiplex > 0) await limits.start();
    const semantic =
      opts.semantic === false ? undefined : createSemanticCache(config, own, logger, opts.embedder);
    const commands = [
      ...(semantic ? semanticCommands(semantic.engine) : []),
      ...(opts.commands ?? []),
    ];
    const router = new Router(commandTable(commands));
    const server = createServer({ noDelay: true });
    const instance = new SemcacheServer(
      server,
      config,
      router,
      upstream,
      embedded,
      logger,
      semantic,
      own,
      limits,
    );
    server.listen(config.port, config.bind);
    try {
      await Promise.race([
        once(server, 'listening'),
        once(server, 'error').then(([err]) => Promise.reject(err)),
      ]);
    } catch (err) {
      limits.stop();
      await semantic?.close();
      own.close();
      await embedded?.stop();
      throw err;
    }
    logger.info(
      `semcache ready on ${config.bind}:${instance.port}, upstream ${upstream.host}:${upstream.port}`,
    );
    return instance;
  }

  get port(): number {
    const address = this.server.address();
    return typeof address === 'object' && address !== null ? address.port : 0;
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
    if (this.clients.size >= this.config.maxClients) {
      socket.on('error', () => {});
      socket.end(encodeReply(R.error(Err.maxClients), 2));
      return;
    }
    const id = this.nextId++;
    const conn = new ClientConnection(socket, {
      id,
      shared: this.shared.length > 0 ? this.shared[id % this.shared.length] : undefined,
      commands: this.router.commands,
      router: this.router,
      upstream: {
        ...this.upstream,
        connectTimeout: this.config.connectTimeout,
        monitor: this.clientLinks.forClient(id),
      },
      limits: this.limits,
      maxPending: this.config.maxPending,
      maxRequestSize: this.config.maxRequestSize,
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
    this.limits.stop();
    this.clientLinks.close();
    await this.semantic?.close();
    this.own.close();
    await closed;
    await this.embedded?.stop();
  }
}
