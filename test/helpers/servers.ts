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
import type { SemanticCache } from '../../src/semantic/engine.js';
import type { Embedder } from '../../src/semantic/types.js';
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
  try {
    await waitForPong('127.0.0.1', p, 10_000);
  } catch (err) {
    // Not up in time: it must not outlive the test that started it.
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
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
  const server = await SemcacheServer.start({
    config,
    commands,
    logger: silentLogger,
    semantic: false,
  });
  return { server, port: server.port, stop: () => server.close() };
}

export interface SemanticProxyHandle extends ProxyHandle {
  /** The proxy's semantic engine (state, namespaces, stats). */
  engine: SemanticCache;
}

export interface SemanticProxyOptions {
  /** Longest wait for the engine to leave 'loading' (default 20 s). */
  timeoutMs?: number;
  /** Return a proxy whose engine failed to load instead of throwing (default false). */
  allowFailed?: boolean;
  /** false: return at once, while the engine may still be loading (default true). */
  waitReady?: boolean;
}

/**
 * A semcache with the SEM* commands in front of the redis on `upstreamPort`:
 * embedder 'hash' unless overridden (or `embedder` given, e.g. a counting
 * double), resolved once the engine is 'ready' (model loaded, index rebuilt).
 */
export async function startSemanticProxy(
  upstreamPort: number,
  overrides: Partial<Config> = {},
  embedder?: Embedder,
  options: SemanticProxyOptions = {},
): Promise<SemanticProxyHandle> {
  const config = defaultConfig({
    port: 0,
    upstream: `redis://127.0.0.1:${upstreamPort}`,
    embedder: 'hash',
    ...overrides,
  });
  const server = await SemcacheServer.start({
    config,
    logger: silentLogger,
    semantic: true,
    ...(embedder ? { embedder } : {}),
  });
  const engine = server.semantic?.engine;
  if (engine === undefined) {
    await server.close();
    throw new Error('startSemanticProxy: the server has no semantic engine');
  }
  const handle = { server, port: server.port, engine, stop: () => server.close() };
  if (options.waitReady === false) return handle;
  const deadline = Date.now() + (options.timeoutMs ?? 20_000);
  while (engine.state === 'loading' && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 10));
  }
  if (engine.state !== 'ready' && !(engine.state === 'failed' && options.allowFailed)) {
    const state = engine.state;
    await server.close();
    throw new Error(`startSemanticProxy: engine state '${state}' (wanted 'ready')`);
  }
  return handle;
}
