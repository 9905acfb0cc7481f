/*
 * A script that runs past busy-reply-threshold, through semcache in both
 * upstream modes, against redis-server directly: other clients get -BUSY at
 * once, SCRIPT KILL (and FUNCTION KILL) from another client reaches Redis and
 * ends it, and the script's caller gets Redis's error. With scripts on a
 * shared connection, the other clients' commands (and the SCRIPT KILL) used
 * to wait behind the script instead. Redis's own suite has this scenario
 * ("Timedout scripts ...") but skips it against an external server.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sleep } from '../helpers/proc.js';
import { cmd, RawClient, request } from '../helpers/raw.js';
import { type ProxyHandle, type RedisHandle, startProxy, startRedis } from '../helpers/servers.js';

let redis: RedisHandle;
const proxies: ProxyHandle[] = [];
const raws: RawClient[] = [];

beforeAll(async () => {
  redis = await startRedis(['--busy-reply-threshold', '100']);
  for (const multiplex of [1, 0]) proxies.push(await startProxy(redis.port, { multiplex }));
  const admin = await RawClient.open(redis.port);
  const lib =
    "#!lua name=busylib\nredis.register_function('spin', function() while true do end end)";
  expect(await request(admin, cmd('FUNCTION', 'LOAD', 'REPLACE', lib))).toBe('$7\r\nbusylib\r\n');
  admin.close();
});

afterAll(async () => {
  for (const r of raws) r.close();
  for (const p of proxies) await p.stop();
  await redis?.stop();
});

async function open(port: number): Promise<RawClient> {
  const c = await RawClient.open(port);
  raws.push(c);
  return c;
}

/** One run of the scenario against `port`: every reply, as bytes. */
async function busy(port: number, start: Buffer, kill: Buffer) {
  const caller = await open(port);
  const other = await open(port);
  const killer = await open(port);
  // The others have talked before, as a client in the middle of its work would have.
  expect(await request(other, cmd('PING'))).toBe('+PONG\r\n');
  expect(await request(killer, cmd('PING'))).toBe('+PONG\r\n');
  caller.write(start);
  await sleep(400); // well past busy-reply-threshold
  const replies = {
    get: await request(other, cmd('GET', 'busy:k'), 1, 2000),
    kill: await request(killer, kill, 1, 2000),
    caller: (await caller.until((b) => b.includes('\r\n'), 3000)).toString('latin1'),
    after: await request(other, cmd('PING'), 1, 2000),
  };
  // Redis names the script by its SHA in the error; it is the same script each time.
  return replies;
}

const scenarios = [
  {
    name: 'EVAL, SCRIPT KILL',
    start: cmd('EVAL', 'local i = 0 while true do i = i + 1 end', '0'),
    kill: cmd('SCRIPT', 'KILL'),
  },
  { name: 'FCALL, FUNCTION KILL', start: cmd('FCALL', 'spin', '0'), kill: cmd('FUNCTION', 'KILL') },
];

describe.each(scenarios)('a busy script: $name', ({ start, kill }) => {
  it('answers exactly as redis-server does, in both upstream modes', async () => {
    const direct = await busy(redis.port, start, kill);
    expect(direct.get).toMatch(/^-BUSY /);
    expect(direct.kill).toBe('+OK\r\n');
    expect(direct.caller).toMatch(/^-ERR .*killed by user/);
    expect(direct.after).toBe('+PONG\r\n');
    for (const proxy of proxies) expect(await busy(proxy.port, start, kill)).toEqual(direct);
  });
});
