/*
 * The command line, as a user runs it: `node dist/cli.js`. Help and errors,
 * environment variables, serving in front of a given Redis or an embedded
 * redis-server, clean shutdown on SIGTERM, persistence of the embedded data.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { OPTIONS as SrcOptions } from '../../src/config.js';
import { freePort } from '../../src/embedded-redis.js';
import { runProcess, sleep } from '../helpers/proc.js';
import { cmd, RawClient, request } from '../helpers/raw.js';
import { type RedisHandle, startRedis } from '../helpers/servers.js';

const root = resolve(import.meta.dirname, '../..');
const cliPath = join(root, 'dist/cli.js');

/** The option table of the build under test (dist/config.js is compiled from src/config.ts). */
let OPTIONS: typeof SrcOptions;
let envName: (flag: string) => string;
let redis: RedisHandle;
const tempDirs: string[] = [];

beforeAll(async () => {
  if (!existsSync(cliPath)) {
    const build = await runProcess('npm', ['run', 'build'], { timeoutMs: 120_000 });
    if (build.code !== 0) throw new Error(`npm run build failed:\n${build.stdout}${build.stderr}`);
  }
  const config = (await import(pathToFileURL(join(root, 'dist/config.js')).href)) as {
    OPTIONS: typeof SrcOptions;
    envName: (flag: string) => string;
  };
  OPTIONS = config.OPTIONS;
  envName = config.envName;
  redis = await startRedis();
}, 150_000);

afterAll(async () => {
  await redis?.stop();
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'semcache-cli-test-'));
  tempDirs.push(d);
  return d;
}

/** The environment without any SEMCACHE_* variable of the caller, plus `extra`. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('SEMCACHE_')) env[k] = v;
  // The semantic layer, where the build has one, must not fetch a model in tests;
  // a build without it ignores the variable.
  env.SEMCACHE_EMBEDDER = 'hash';
  return { ...env, ...extra };
}

function cli(args: string[], env: Record<string, string> = {}) {
  return runProcess(process.execPath, [cliPath, ...args], {
    env: cleanEnv(env),
    timeoutMs: 15_000,
  });
}

interface Running {
  child: ChildProcess;
  stderr: () => string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
  /** Port of the embedded redis-server, when semcache started one. */
  embeddedPort: () => number | undefined;
}

const running: Running[] = [];

/** Start semcache and wait until it logs that it is ready. */
async function serve(args: string[], env: Record<string, string> = {}): Promise<Running> {
  const child = spawn(process.execPath, [cliPath, ...args], {
    env: cleanEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr!.on('data', (c: Buffer) => {
    err += c.toString();
  });
  child.stdout!.resume();
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>(
    (done) => child.once('exit', (code, signal) => done({ code, signal, at: Date.now() })),
  );
  const r: Running = {
    child,
    stderr: () => err,
    exit,
    embeddedPort: () => {
      const m = /embedded redis-server started on 127\.0\.0\.1:(\d+)/.exec(err);
      return m ? Number(m[1]) : undefined;
    },
  };
  running.push(r);
  const deadline = Date.now() + 15_000;
  while (!/semcache ready on/.test(err)) {
    if (child.exitCode !== null || Date.now() > deadline) {
      throw new Error(`semcache did not start (exit ${child.exitCode}):\n${err}`);
    }
    await sleep(20);
  }
  return r;
}

/** Does something accept connections and answer PING on this port? */
async function answers(port: number): Promise<boolean> {
  return new Promise((done) => {
    const s = connect({ host: '127.0.0.1', port });
    s.setTimeout(1000, () => {
      s.destroy();
      done(false);
    });
    s.once('connect', () => s.write('PING\r\n'));
    s.once('data', (d) => {
      s.destroy();
      done(d.toString().startsWith('+PONG'));
    });
    s.once('error', () => done(false));
  });
}

/** Ask a redis-server (ours, left running by accident) to go away. */
async function shutdownRedis(port: number): Promise<void> {
  if (!(await answers(port))) return;
  const c = await RawClient.open(port);
  c.write(cmd('SHUTDOWN', 'NOSAVE'));
  await c.until(() => false, 2000);
  c.close();
}

afterEach(async () => {
  for (const r of running.splice(0)) {
    if (r.child.exitCode === null && r.child.signalCode === null) {
      r.child.kill('SIGKILL');
      await r.exit;
    }
    const port = r.embeddedPort();
    if (port !== undefined) await shutdownRedis(port);
  }
});

describe('help and argument errors', () => {
  it('--help lists every flag and its environment variable, and exits 0', async () => {
    const res = await cli(['--help']);
    expect(res.code).toBe(0);
    expect(res.stderr).toBe('');
    expect(OPTIONS.length).toBeGreaterThan(5);
    for (const opt of OPTIONS) {
      expect(res.stdout).toContain(`--${opt.flag} `);
      expect(res.stdout).toContain(envName(opt.flag));
    }
    expect(res.stdout).toContain('--help');
    // A long flag's text starts on the next line rather than running into it.
    for (const line of res.stdout.split('\n').filter((l) => l.startsWith('  --')))
      expect(line).toMatch(/^ {2}--\S+( <value>)?( {2,}\S.*)?$/);
    expect((await cli(['-h'])).stdout).toBe(res.stdout);
  });

  it('--version prints the package version', async () => {
    const res = await cli(['--version']);
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/^semcache \d+\.\d+\.\d+\n$/);
  });

  it.each([
    [['--bogus'], /Unknown option '--bogus'/],
    [['extra-positional'], /positional/i],
    [['--port', 'abc'], /--port: 'abc' is not a non-negative integer/],
    [['--port', '70000'], /--port: port 70000 is out of range/],
    [['--port', '-1'], /--port/],
    [['--max-clients', '0'], /--max-clients: '0' is out of range/],
    [['--ef-search', '100001'], /--ef-search: '100001' is out of range \(maximum 100000\)/],
    [['--nprobe', '70000'], /--nprobe: '70000' is out of range \(maximum 65536\)/],
    [['--connect-timeout', '1.5'], /--connect-timeout/],
    [['--log-level', 'loud'], /--log-level: expected one of debug, info, warn, error/],
    [
      ['--upstream', 'http://127.0.0.1:6379'],
      /--upstream: only redis:\/\/ and rediss:\/\/ are supported/,
    ],
    [['--upstream', 'redis://127.0.0.1:6379/x'], /--upstream: bad database/],
    [['--port'], /--port/],
  ])('%j exits 2 with a message', async (args, message) => {
    const res = await cli(args);
    expect(res.code).toBe(2);
    expect(res.stdout).toBe('');
    expect(res.stderr).toMatch(message);
    expect(res.stderr).toMatch(/^semcache: /);
    expect(res.stderr).toContain("Try 'semcache --help'.");
  });

  it('a bad value in the environment exits 2 naming the variable', async () => {
    const res = await cli([], { SEMCACHE_PORT: 'abc' });
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/SEMCACHE_PORT: 'abc' is not a non-negative integer/);
    const level = await cli([], { SEMCACHE_LOG_LEVEL: 'chatty' });
    expect(level.code).toBe(2);
    expect(level.stderr).toMatch(/SEMCACHE_LOG_LEVEL/);
    // A valid flag overrides a bad environment value (the flag wins).
    const ok = await cli(['--log-level', 'warn', '--help'], { SEMCACHE_LOG_LEVEL: 'chatty' });
    expect(ok.code).toBe(0);
  });
});

describe('serving', () => {
  it('--upstream: serves in front of the given redis; SIGTERM exits 0 and leaves it alone', async () => {
    const port = await freePort();
    const s = await serve(['--port', String(port), '--upstream', redis.url]);
    expect(s.stderr()).toContain(
      `semcache ready on 127.0.0.1:${port}, upstream 127.0.0.1:${redis.port}`,
    );
    const c = await RawClient.open(port);
    expect(await request(c, cmd('SET', 'cli:up', 'through'))).toBe('+OK\r\n');
    c.close();
    const direct = await RawClient.open(redis.port);
    expect(await request(direct, cmd('GET', 'cli:up'))).toBe('$7\r\nthrough\r\n');
    direct.close();
    const t = Date.now();
    s.child.kill('SIGTERM');
    const { code, at } = await s.exit;
    expect(code).toBe(0);
    expect(at - t).toBeLessThan(3000);
    expect(await answers(port)).toBe(false);
    expect(await answers(redis.port)).toBe(true);
  });

  it('environment variables configure it, and flags win over them', async () => {
    const envPort = await freePort();
    const s = await serve([], {
      SEMCACHE_PORT: String(envPort),
      SEMCACHE_UPSTREAM: redis.url,
      SEMCACHE_MAX_CLIENTS: '1',
    });
    const c = await RawClient.open(envPort);
    expect(await request(c, cmd('PING'))).toBe('+PONG\r\n');
    // SEMCACHE_MAX_CLIENTS=1 took effect.
    const second = await RawClient.open(envPort);
    expect((await second.until(() => false, 2000)).toString()).toBe(
      '-ERR max number of clients reached\r\n',
    );
    c.close();
    s.child.kill('SIGTERM');
    expect((await s.exit).code).toBe(0);

    const flagPort = await freePort();
    const otherEnvPort = await freePort();
    const t = await serve(['--port', String(flagPort), '--max-clients', '5'], {
      SEMCACHE_PORT: String(otherEnvPort),
      SEMCACHE_UPSTREAM: redis.url,
      SEMCACHE_MAX_CLIENTS: '1',
    });
    expect(t.stderr()).toContain(`ready on 127.0.0.1:${flagPort}`);
    expect(await answers(otherEnvPort)).toBe(false);
    const clients = await Promise.all([RawClient.open(flagPort), RawClient.open(flagPort)]);
    for (const k of clients) expect(await request(k, cmd('PING'))).toBe('+PONG\r\n');
    for (const k of clients) k.close();
    t.child.kill('SIGTERM');
    expect((await t.exit).code).toBe(0);
  });

  it('without --upstream: embedded redis-server serves, and is gone after SIGTERM', async () => {
    const dir = tempDir();
    const port = await freePort();
    const s = await serve(['--port', String(port), '--data-dir', dir]);
    const embedded = s.embeddedPort();
    expect(embedded).toBeDefined();
    expect(embedded).not.toBe(port);
    const c = await RawClient.open(port);
    expect(await request(c, cmd('SET', 'emb:k', 'v'))).toBe('+OK\r\n');
    expect(await request(c, cmd('GET', 'emb:k'))).toBe('$1\r\nv\r\n');
    // The embedded server has append-only persistence on, in the data dir.
    expect(await request(c, cmd('CONFIG', 'GET', 'appendonly'), 1)).toBe(
      '*2\r\n$10\r\nappendonly\r\n$3\r\nyes\r\n',
    );
    c.close();
    expect(await answers(embedded!)).toBe(true);

    const t = Date.now();
    s.child.kill('SIGTERM');
    const { code, at } = await s.exit;
    expect(code).toBe(0);
    expect(at - t).toBeLessThan(5000);
    expect(await answers(port)).toBe(false);
    expect(await answers(embedded!)).toBe(false);
    expect(existsSync(join(dir, 'redis.log'))).toBe(true);
  });

  it('SIGTERM while a BLPOP is in flight, --shutdown-timeout 500: exits within ~2 s', async () => {
    const port = await freePort();
    const s = await serve([
      '--port',
      String(port),
      '--upstream',
      redis.url,
      '--shutdown-timeout',
      '500',
    ]);
    const c = await RawClient.open(port);
    c.write(cmd('BLPOP', 'cli:never', '0'));
    await sleep(100);
    expect(c.received.length).toBe(0);
    const t = Date.now();
    s.child.kill('SIGTERM');
    const { code, at } = await s.exit;
    expect(code).toBe(0);
    expect(at - t).toBeLessThan(2000);
    expect(at - t).toBeGreaterThanOrEqual(400);
    await c.until(() => false, 1000);
    expect(c.closed).toBe(true);
    // No reply was made up for the BLPOP.
    expect(c.received.length).toBe(0);
    expect(s.stderr()).toMatch(/SIGTERM received/);
    // New connections are refused once shutdown started.
    expect(await answers(port)).toBe(false);
  });

  it('data written through the embedded server survives a restart with the same --data-dir', async () => {
    const dir = tempDir();
    const port = await freePort();
    const first = await serve(['--port', String(port), '--data-dir', dir]);
    const c = await RawClient.open(port);
    expect(await request(c, cmd('SET', 'persist:k', 'kept'))).toBe('+OK\r\n');
    expect(await request(c, cmd('HSET', 'persist:h', 'f', 'v'))).toBe(':1\r\n');
    expect(await request(c, cmd('RPUSH', 'persist:l', 'a', 'b', 'c'))).toBe(':3\r\n');
    c.close();
    first.child.kill('SIGTERM');
    expect((await first.exit).code).toBe(0);
    expect(readdirSync(dir).some((f) => f.startsWith('appendonly'))).toBe(true);

    const port2 = await freePort();
    const second = await serve(['--port', String(port2), '--data-dir', dir]);
    const d = await RawClient.open(port2);
    expect(await request(d, cmd('GET', 'persist:k'))).toBe('$4\r\nkept\r\n');
    expect(await request(d, cmd('HGET', 'persist:h', 'f'))).toBe('$1\r\nv\r\n');
    expect(await request(d, cmd('LRANGE', 'persist:l', '0', '-1'))).toBe(
      '*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n',
    );
    d.close();
    second.child.kill('SIGTERM');
    expect((await second.exit).code).toBe(0);
  });

  it('SIGINT shuts down cleanly too', async () => {
    const port = await freePort();
    const s = await serve(['--port', String(port), '--upstream', redis.url]);
    const c = await RawClient.open(port);
    expect(await request(c, cmd('PING'))).toBe('+PONG\r\n');
    s.child.kill('SIGINT');
    expect((await s.exit).code).toBe(0);
    expect(s.stderr()).toMatch(/SIGINT received/);
    await c.until(() => false, 1000);
    expect(c.closed).toBe(true);
  });

  // BUG: the second signal calls process.exit(1) at once without stopping the
  // embedded redis-server, which is left running (orphaned) on the data dir.
  // A semcache restarted on the same --data-dir then starts a second
  // redis-server appending to the same append-only file. Expected: the
  // embedded server is at least sent SIGTERM before exiting.
  it('a second SIGTERM exits at once, and the embedded redis-server goes too', async () => {
    const dir = tempDir();
    const port = await freePort();
    const s = await serve([
      '--port',
      String(port),
      '--data-dir',
      dir,
      '--shutdown-timeout',
      '10000',
    ]);
    const embedded = s.embeddedPort()!;
    const c = await RawClient.open(port);
    c.write(cmd('BLPOP', 'cli:never', '0'));
    await sleep(100);
    s.child.kill('SIGTERM');
    await sleep(200);
    expect(s.child.exitCode).toBeNull();
    const t = Date.now();
    s.child.kill('SIGTERM');
    const { code, at } = await s.exit;
    c.close();
    expect(code).toBe(1);
    expect(at - t).toBeLessThan(1000);
    expect(s.stderr()).toMatch(/SIGTERM again: exiting now/);
    // Give a redis-server that got SIGTERM time to finish.
    let alive = true;
    for (let i = 0; i < 20 && alive; i++) {
      alive = await answers(embedded);
      if (alive) await sleep(100);
    }
    expect(alive).toBe(false);
  });

  it('a port already in use: exits 1 and stops the embedded redis-server it started', async () => {
    const blocker = createServer();
    blocker.listen(0, '127.0.0.1');
    await new Promise((r) => blocker.once('listening', r));
    const busy = (blocker.address() as { port: number }).port;
    try {
      const dir = tempDir();
      const res = await runProcess(
        process.execPath,
        [cliPath, '--port', String(busy), '--data-dir', dir],
        {
          env: cleanEnv(),
          timeoutMs: 15_000,
        },
      );
      expect(res.code).toBe(1);
      expect(res.stderr).toMatch(/cannot start: .*EADDRINUSE/);
      const m = /embedded redis-server started on 127\.0\.0\.1:(\d+)/.exec(res.stderr);
      expect(m).not.toBeNull();
      const embedded = Number(m![1]);
      const gone = !(await answers(embedded));
      if (!gone) await shutdownRedis(embedded);
      expect(gone).toBe(true);
    } finally {
      blocker.close();
    }
  });
});
