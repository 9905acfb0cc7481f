/*
 * Protected mode (docs/security.md), like Redis's: semcache bound to a
 * non-loopback address with no password needed anywhere serves loopback
 * clients only. The outside client is a real one: redis-cli in a network
 * namespace this test makes, talking over a veth pair to an address of the
 * host's (root only; CI runs as root).
 */
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Err } from '../../src/errors.js';
import { runProcess } from '../helpers/proc.js';
import { cmd, RawClient, request } from '../helpers/raw.js';
import { type RedisHandle, startProxy, startRedis } from '../helpers/servers.js';

const isRoot = process.getuid?.() === 0;
const tag = `${process.pid % 10000}`;
const NS = `semcache-pm-${tag}`;
const HOST_IF = `vsh${tag}`;
const NS_IF = `vsc${tag}`;
const net = 10 + (process.pid % 200);
const HOST_IP = `10.${net}.77.1`;
const NS_IP = `10.${net}.77.2`;
const DENIED_START =
  'DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface.';

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: 'pipe' });
}

/** redis-cli in the namespace, against the host's veth address. */
async function outsideCli(port: number, ...args: string[]): Promise<string> {
  const res = await runProcess('ip', [
    'netns',
    'exec',
    NS,
    'redis-cli',
    '-h',
    HOST_IP,
    '-p',
    String(port),
    ...args,
  ]);
  return (res.stdout + res.stderr).trim();
}

describe.skipIf(!isRoot)('protected mode, client in a network namespace', () => {
  let open: RedisHandle;
  let locked: RedisHandle;

  beforeAll(async () => {
    ip('netns', 'add', NS);
    ip('link', 'add', HOST_IF, 'type', 'veth', 'peer', 'name', NS_IF);
    ip('link', 'set', NS_IF, 'netns', NS);
    ip('addr', 'add', `${HOST_IP}/24`, 'dev', HOST_IF);
    ip('link', 'set', HOST_IF, 'up');
    ip('netns', 'exec', NS, 'ip', 'addr', 'add', `${NS_IP}/24`, 'dev', NS_IF);
    ip('netns', 'exec', NS, 'ip', 'link', 'set', NS_IF, 'up');
    ip('netns', 'exec', NS, 'ip', 'link', 'set', 'lo', 'up');
    open = await startRedis();
    locked = await startRedis(['--requirepass', 'pw']);
  });

  afterAll(async () => {
    try {
      ip('netns', 'del', NS);
    } catch {}
    try {
      ip('link', 'del', HOST_IF);
    } catch {}
    await open?.stop();
    await locked?.stop();
  });

  it('redis-server itself: the reference (DENIED from outside, served on loopback)', async () => {
    const r = await startRedis(['--bind', '0.0.0.0', '--protected-mode', 'yes']);
    try {
      expect(await outsideCli(r.port, 'PING')).toContain(DENIED_START);
    } finally {
      await r.stop();
    }
  });

  it('bound to 0.0.0.0, no password anywhere: outside clients get DENIED and are closed', async () => {
    const proxy = await startProxy(open.port, { bind: '0.0.0.0' });
    try {
      const out = await outsideCli(proxy.port, 'PING');
      expect(out).toBe(Err.protectedMode);
      expect(out.startsWith(DENIED_START)).toBe(true);
      // Loopback clients are served.
      const local = await RawClient.open(proxy.port);
      expect(await request(local, cmd('PING'))).toBe('+PONG\r\n');
      local.close();
    } finally {
      await proxy.stop();
    }
  });

  it('a password on the backing Redis: outside clients are served (and must AUTH)', async () => {
    const proxy = await startProxy(locked.port, { bind: '0.0.0.0' });
    try {
      expect(await outsideCli(proxy.port, 'PING')).toContain('NOAUTH');
      expect(await outsideCli(proxy.port, '-a', 'pw', '--no-auth-warning', 'PING')).toBe('PONG');
    } finally {
      await proxy.stop();
    }
  });

  it('--protected-mode no, or a loopback bind: outside clients are served', async () => {
    const proxy = await startProxy(open.port, { bind: '0.0.0.0', protectedMode: 'no' });
    try {
      expect(await outsideCli(proxy.port, 'PING')).toBe('PONG');
    } finally {
      await proxy.stop();
    }
    // Bound to loopback, nobody outside can reach it at all: nothing to protect.
    const loop = await startProxy(open.port, { bind: '127.0.0.1' });
    try {
      expect(await outsideCli(loop.port, 'PING')).toMatch(/Connection refused|Could not connect/);
    } finally {
      await loop.stop();
    }
  });
});
