/*
 * The embedded backing Redis: when no --upstream is given, semcache runs a
 * redis-server child on a free loopback port with its own data directory
 * (append-only file on, so cached values and their index records survive a
 * restart), and stops it when the proxy stops.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from './log.js';
import { encodeCommand } from './resp/client-codec.js';

export async function freePort(host = '127.0.0.1'): Promise<number> {
  const server = createServer();
  server.listen(0, host);
  await once(server, 'listening');
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  server.close();
  await once(server, 'close');
  return port;
}

const PING = encodeCommand(['PING']);

/** Resolves once a PING on host:port is answered, or rejects after `timeoutMs`. */
export async function waitForPong(host: string, port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((done) => {
      const socket = connect({ host, port });
      socket.setTimeout(500, () => socket.destroy());
      socket.once('connect', () => socket.write(PING));
      socket.once('data', (data) => {
        socket.destroy();
        // A server that wants a password is up too.
        done(/^(\+PONG|-NOAUTH)/.test(data.toString()));
      });
      socket.once('error', () => done(false));
      socket.once('close', () => done(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`redis on ${host}:${port} did not answer PING`);
    await sleep(50);
  }
}

export interface EmbeddedRedis {
  port: number;
  stop(): Promise<void>;
  /** Signal the server to stop without waiting (the caller is about to exit). */
  kill(): void;
}

export async function startEmbeddedRedis(opts: {
  executable: string;
  dataDir: string;
  logger: Logger;
  port?: number;
}): Promise<EmbeddedRedis> {
  const dir = resolve(opts.dataDir);
  mkdirSync(dir, { recursive: true });
  const port = opts.port ?? (await freePort());
  const logFd = openSync(resolve(dir, 'redis.log'), 'a');
  const child: ChildProcess = spawn(
    opts.executable,
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--appendonly',
      'yes',
      '--appendfsync',
      'everysec',
      '--save',
      '',
      '--daemonize',
      'no',
      '--protected-mode',
      'yes',
    ],
    { stdio: ['ignore', logFd, logFd] },
  );
  closeSync(logFd);
  const exited = once(child, 'exit');
  const failed = new Promise<never>((_, reject) => {
    child.once('error', (err) =>
      reject(
        new Error(
          `cannot start ${opts.executable}: ${err.message} (install redis-server or pass --upstream)`,
        ),
      ),
    );
    child.once('exit', (code) =>
      reject(new Error(`${opts.executable} exited with code ${code}; see ${dir}/redis.log`)),
    );
  });
  failed.catch(() => {});
  await Promise.race([waitForPong('127.0.0.1', port, 10_000), failed]);
  opts.logger.info(`embedded redis-server started on 127.0.0.1:${port}, data in ${dir}`);
  return {
    port,
    kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
      opts.logger.info('embedded redis-server stopped');
    },
  };
}
