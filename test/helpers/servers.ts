/*
 * Real servers for integration tests: a redis-server on a free loopback port
 * (no persistence, its own temp dir) and a semcache in-process in front of it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CommandSpec } from '../../src/commands/types.js';
import { type Config, defaultConfig } from '../../src/config.js';
import { freePort, waitForPong } from '../../src/embedded-redis.js';
import { silentLogger } from '../../src/log.js';
import { SemcacheServer } from '../../src/server.js';

export interface RedisHandle {
  port: number;
  url: string;
  process: ChildProcess;
  stop(): Promise<void>;
  /** Kill hard (SIGKILL), as a crash would. */
  kill(): Promise<void>;
}

export async function startRedis(args: string[] = [], port?: number): Promise<RedisHandle> {
  const p = port ?? (await freePort());
  const dir = mkdtempSync(join(tmpdir(), 'semcache-test-redis-'));
  const child = spawn(
    'redis-server',
    [
      '--port',
      String(p),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      dir,
      ...args,
    ],
    { stdio: 'ignore' },
  );
  const exited = once(child, 'exit');
  await waitForPong('127.0.0.1', p, 10_000);
  const end = async (signal: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill(signal);
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  return {
    port: p,
    url: `redis://127.0.0.1:${p}`,
    process: child,
    stop: () => end('SIGTERM'),
    kill: () => end('SIGKILL'),
  };
}

export interface ProxyHandle {
  server: SemcacheServer;
  port: number;
  stop(): Promise<void>;
}

export async function startProxy(
  upstreamPort: number,
  overrides: Partial<Config> = {},
  commands: CommandSpec[] = [],
): Promise<ProxyHandle> {
  const config = defaultConfig({
    port: 0,
    upstream: `redis://127.0.0.1:${upstreamPort}`,
    ...overrides,
  });
  const server = await SemcacheServer.start({ config, commands, logger: silentLogger });
  return { server, port: server.port, stop: () => server.close() };
}
