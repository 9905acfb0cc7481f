/*
 * semcache processes for fleet tests: real `node dist/cli.js` processes in
 * front of one redis-server, each on a free loopback port, with the hash
 * embedder. Each is ready when its log says the rebuild is done; a client
 * (ioredis, RESP2) talks to it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { sleep } from './proc.js';
import { startRedis } from './servers.js';

const cliPath = join(import.meta.dirname, '../../dist/cli.js');

export interface Sidecar {
  child: ChildProcess;
  port: number;
  client: Redis;
  /** Everything it logged so far. */
  log(): string;
  /** SIGKILL, as a crash would. */
  kill(): Promise<void>;
  /** SIGTERM, and wait for the exit. */
  stop(): Promise<void>;
}

function env(): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('SEMCACHE_')) out[k] = v;
  out.SEMCACHE_EMBEDDER = 'hash';
  return out;
}

/**
 * A semcache process in front of `upstream`. `ready` (default true) waits
 * for the rebuild from Redis to finish; false returns once it listens.
 */
export async function startSidecar(
  upstream: string,
  args: string[] = [],
  opts: { ready?: boolean; timeoutMs?: number } = {},
): Promise<Sidecar> {
  const child = spawn(process.execPath, [cliPath, '--port', '0', '--upstream', upstream, ...args], {
    env: env(),
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  child.stderr!.on('data', (d: Buffer) => {
    log += d.toString();
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const deadline = Date.now() + (opts.timeoutMs ?? 20_000);
  const want = opts.ready === false ? /semcache ready on/ : /index rebuilt from redis/;
  while (!want.test(log)) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`semcache did not start:\n${log}`);
    }
    await sleep(20);
  }
  const port = Number(/semcache ready on [\d.]+:(\d+)/.exec(log)![1]);
  const client = new Redis({ port, lazyConnect: false, maxRetriesPerRequest: 1 });
  client.on('error', () => {});
  const end = async (signal: NodeJS.Signals) => {
    client.disconnect();
    if (child.exitCode === null && child.signalCode === null) {
      child.kill(signal);
      await exited;
    }
  };
  return {
    child,
    port,
    client,
    log: () => log,
    kill: () => end('SIGKILL'),
    stop: () => end('SIGTERM'),
  };
}

/** SEMINFO (or SEMINFO NS ns) of a sidecar, as an object. */
export function seminfo(s: Sidecar, ns?: string): Promise<Record<string, unknown>> {
  const args = ns === undefined ? [] : ['NS', ns];
  return s.client.call('SEMINFO', ...args).then((r) => {
    const a = r as unknown[];
    const out: Record<string, unknown> = {};
    for (let i = 0; i + 1 < a.length; i += 2) out[String(a[i])] = a[i + 1];
    return out;
  });
}

/** A redis-server and `n` sidecars in front of it, stopped by `cleanups` (stopAfterEach()). */
export async function startFleet(
  cleanups: (() => unknown)[],
  n: number,
  args: string[] = [],
  redisArgs: string[] = [],
) {
  const redis = await startRedis(redisArgs);
  cleanups.push(() => redis.stop());
  const sidecars: Sidecar[] = [];
  for (let i = 0; i < n; i++) {
    const s = await startSidecar(redis.url, args);
    cleanups.push(() => s.kill());
    sidecars.push(s);
  }
  const direct = new Redis({ port: redis.port });
  cleanups.push(() => direct.disconnect());
  return { redis, sidecars, direct };
}
