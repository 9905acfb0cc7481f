/*
 * Many sidecars, one cache (docs/fleet.md): three real semcache processes in
 * front of one real redis-server. A change made through any of them is seen
 * by the others (exact, near, SEMSEARCH, namespaces and their settings,
 * SEMDEL, SEMFLUSH, SEMINDEX of a key another client wrote); an entry
 * changed through one is never answered for its old text by another, not
 * even before the change arrived; an instance killed while loading catches
 * up when restarted; a feed trimmed past a paused instance makes it resync
 * in full, with correct answers after; Redis restarted under them empties
 * every instance's view. Run against the built CLI (npm test builds first).
 */
import { describe, expect, it } from 'vitest';
import { stopAfterEach } from '../helpers/cleanup.js';
import { type Sidecar, seminfo, startFleet, startSidecar } from '../helpers/fleet.js';
import { ensureTinyModel } from '../helpers/model.js';
import { sleep, waitFor } from '../helpers/proc.js';
import { type RedisHandle, startRedis } from '../helpers/servers.js';

const cleanups = stopAfterEach();

const fleet = (n: number, args: string[] = [], redisArgs: string[] = []) =>
  startFleet(cleanups, n, args, redisArgs);

const info = seminfo;

const semget = (s: Sidecar, text: string, ...rest: string[]) =>
  s.client.call('SEMGET', text, ...rest) as Promise<string | null>;
/** SEMGET, null while it fails (a namespace made elsewhere is unknown until its event arrives). */
const settled = (s: Sidecar, text: string, ...rest: string[]) =>
  semget(s, text, ...rest).catch(() => null);
const keysOf = (s: Sidecar, text: string, ...rest: string[]) =>
  s.client.call('SEMSEARCH', 'TEXT', text, ...rest) as Promise<string[]>;

describe('a fleet of three on one redis', () => {
  it('a write through each is seen by the others', async () => {
    const {
      sidecars: [a, b, c],
      direct,
    } = await fleet(3);
    // SEMSET through A: exact, near and SEMSEARCH on B and C.
    expect(await a!.client.call('SEMSET', 'k1', 'house near ostsee', 'v1')).toBe('OK');
    for (const s of [b!, c!]) {
      expect(await waitFor(() => semget(s, 'house near ostsee'))).toBe('v1');
      expect(await semget(s, 'a house near the ostsee', 'THRESHOLD', '0.5')).toBe('v1');
      expect(await keysOf(s, 'house near ostsee')).toEqual(['k1']);
    }
    // A namespace made through B, with an entry: known to A and C.
    await b!.client.call('SEMSET', 'k2', 'train to hamburg', 'v2', 'NS', 'de');
    expect(await waitFor(() => settled(a!, 'train to hamburg', 'NS', 'de'))).toBe('v2');
    expect(await waitFor(() => settled(c!, 'train to hamburg', 'NS', 'de'))).toBe('v2');
    // Settings made through C: seen by A and B.
    await c!.client.call('SEMNS', 'SET', 'de', 'THRESHOLD', '0.55');
    for (const s of [a!, b!]) {
      const threshold = async () => {
        const r = (await s.client.call('SEMNS', 'GET', 'de')) as unknown[];
        return Number(r[r.indexOf('threshold') + 1]);
      };
      expect(await waitFor(async () => (await threshold()) === 0.55)).toBe(true);
    }
    // A new namespace's index settings through A: seen by C, whose index there is q8.
    await a!.client.call('SEMNS', 'SET', 'small', 'INDEX', 'HNSW', 'QUANT', 'Q8');
    const quantOf = async () => {
      const r = (await c!.client.call('SEMNS', 'GET', 'small').catch(() => [])) as unknown[];
      return r[r.indexOf('quant') + 1];
    };
    expect(await waitFor(async () => (await quantOf()) === 'q8')).toBe(true);
    // SEMINDEX through C of a key another client wrote: found through A.
    await direct.set('k3', 'written by someone else');
    expect(await c!.client.call('SEMINDEX', 'k3', 'bread baking at home')).toBe(1);
    expect(await waitFor(() => semget(a!, 'bread baking at home'))).toBe('written by someone else');
    // SEMDEL through A: gone from B's and C's SEMSEARCH.
    expect(await a!.client.call('SEMDEL', 'k1')).toBe(1);
    for (const s of [b!, c!]) {
      // (Without THRESHOLD, SEMSEARCH lists the nearest entries, whatever their score.)
      expect(
        await waitFor(async () => !(await keysOf(s, 'house near ostsee')).includes('k1')),
      ).toBe(true);
      expect(await waitFor(async () => (await info(s)).entries === 2)).toBe(true);
    }
    // SEMFLUSH NS through B: every instance's view of the namespace is empty.
    expect(await b!.client.call('SEMFLUSH', 'NS', 'de')).toBe(1);
    for (const s of [a!, c!]) {
      expect(
        await waitFor(async () => (await keysOf(s, 'train to hamburg', 'NS', 'de')).length === 0),
      ).toBe(true);
      expect((await info(s, 'de')).entries).toBe(0);
    }
    // SEMNS DEL through A: the namespace is unknown everywhere.
    await a!.client.call('SEMNS', 'DEL', 'de');
    for (const s of [b!, c!]) {
      expect(
        await waitFor(async () => {
          const r = (await info(s)).namespaces as string[];
          return !r.includes('de');
        }),
      ).toBe(true);
    }
    // Each instance counts the events it applied and is caught up.
    for (const s of [a!, b!, c!]) {
      const i = await info(s);
      expect(i.feed_events as number).toBeGreaterThan(0);
      expect(await waitFor(async () => (await info(s)).feed_lag_ms === 0)).toBe(true);
    }
  });

  it('an entry re-set with another text through one is never answered for its old text by another', async () => {
    const {
      sidecars: [a, b],
    } = await fleet(2);
    for (let i = 0; i < 30; i++) {
      const key = `mi:${i}`;
      await a!.client.call('SEMSET', key, `how to bake bread ${i}`, 'bread');
      expect(await waitFor(() => semget(b!, `how to bake bread ${i}`))).toBe('bread');
      await a!.client.call('SEMSET', key, `stock market crash ${i}`, 'stocks');
      // At once, before the change can have arrived: the old text misses.
      expect(await semget(b!, `how to bake bread ${i}`)).toBe(null);
      expect(await waitFor(() => semget(b!, `stock market crash ${i}`))).toBe('stocks');
    }
  });

  it('an instance killed while loading catches up when restarted', async () => {
    const {
      redis,
      sidecars: [a],
    } = await fleet(1);
    const pipe = a!.client.pipeline();
    for (let i = 0; i < 3000; i++)
      pipe.call('SEMSET', `load:${i}`, `text number ${i} of the load`, `v${i}`);
    await pipe.exec();
    const c = await startSidecar(redis.url, [], { ready: false });
    cleanups.push(() => c.kill());
    await c.kill();
    // Written while it was down.
    await a!.client.call('SEMSET', 'late', 'written while c was down', 'late-v');
    await a!.client.call('SEMDEL', 'load:0');
    const again = await startSidecar(redis.url);
    cleanups.push(() => again.kill());
    expect((await info(again)).entries).toBe(3000);
    expect(await semget(again, 'written while c was down')).toBe('late-v');
    expect(await keysOf(again, 'text number 0 of the load', 'COUNT', '5')).not.toContain('load:0');
    // And follows what comes after.
    await a!.client.call('SEMSET', 'later', 'written after c came back', 'later-v');
    expect(await waitFor(() => semget(again, 'written after c came back'))).toBe('later-v');
  });

  it('a feed trimmed past a paused instance makes it resync in full, with correct answers after', async () => {
    const {
      sidecars: [a, c],
    } = await fleet(2, ['--feed-maxlen', '1000']);
    for (let i = 0; i < 20; i++) await a!.client.call('SEMSET', `old:${i}`, `old entry ${i}`, 'o');
    expect(await waitFor(async () => (await info(c!)).entries === 20)).toBe(true);
    c!.child.kill('SIGSTOP');
    try {
      await a!.client.call('SEMDEL', 'old:0', 'old:1');
      await a!.client.call('SEMSET', 'old:2', 'a new text for two', 'n');
      const pipe = a!.client.pipeline();
      for (let i = 0; i < 3000; i++) pipe.call('SEMSET', `new:${i}`, `new entry ${i}`, 'n');
      await pipe.exec();
    } finally {
      c!.child.kill('SIGCONT');
    }
    expect(await waitFor(async () => ((await info(c!)).feed_resyncs as number) >= 1, 15_000)).toBe(
      true,
    );
    expect(await waitFor(async () => (await info(c!)).entries === 3018, 15_000)).toBe(true);
    expect(await semget(c!, 'old entry 0')).toBe(null);
    expect(await semget(c!, 'old entry 2')).toBe(null);
    expect(await semget(c!, 'a new text for two')).toBe('n');
    expect(await semget(c!, 'new entry 2999')).toBe('n');
    expect(await semget(c!, 'old entry 5')).toBe('o');
    expect(c!.log()).toMatch(/resyncing in full/);
  });

  it('redis restarted under them, empty: every view empties, and writes flow again', async () => {
    const {
      redis,
      sidecars: [a, b],
    } = await fleet(2);
    await a!.client.call('SEMSET', 'r1', 'before the restart', 'v');
    expect(await waitFor(() => semget(b!, 'before the restart'))).toBe('v');
    const port = redis.port;
    await redis.stop();
    const again: RedisHandle = await startRedis([], port);
    cleanups.push(() => again.stop());
    for (const s of [a!, b!]) {
      expect(await waitFor(async () => (await info(s)).entries === 0, 15_000)).toBe(true);
    }
    expect(await semget(b!, 'before the restart')).toBe(null);
    await waitFor(async () => {
      try {
        return (await a!.client.call('SEMSET', 'r2', 'after the restart', 'w')) === 'OK';
      } catch {
        return false;
      }
    }, 10_000);
    expect(await waitFor(() => semget(b!, 'after the restart'), 10_000)).toBe('w');
    await sleep(0);
  });

  it('with keyspace notifications, a key deleted or expired by a plain client leaves every view at once', async () => {
    const {
      sidecars: [a, b, c],
      direct,
    } = await fleet(3, [], ['--notify-keyspace-events', 'Egx']);
    for (const s of [a!, b!, c!]) expect((await info(s)).keyspace_events).toBe('on');
    await a!.client.call('SEMSET', 'gone', 'deleted by a plain client', 'v');
    await a!.client.call('SEMSET', 'brief', 'expires soon', 'w', 'PX', '300');
    for (const s of [b!, c!])
      expect(await waitFor(async () => (await info(s)).entries === 2)).toBe(true);
    await direct.del('gone');
    // No lookup, no sweep (60 s away): the notifications alone.
    for (const s of [a!, b!, c!]) {
      expect(await waitFor(async () => (await info(s)).entries === 0, 5000)).toBe(true);
      expect((await info(s)).keyspace_drops as number).toBeGreaterThanOrEqual(1);
    }
    expect(await direct.exists('semcache:rec:gone', 'semcache:rec:brief')).toBe(0);
  });

  it('with the real transformers pipeline (its dimension known only once loaded), writes propagate', async () => {
    const modelDir = await ensureTinyModel();
    const {
      sidecars: [a, b],
    } = await fleet(2, ['--embedder', 'transformers', '--model-dir', modelDir]);
    await a!.client.call('SEMSET', 't1', 'house near ostsee', 'v1');
    expect(await waitFor(() => semget(b!, 'house near ostsee'), 10_000)).toBe('v1');
    expect(await keysOf(b!, 'house near ostsee')).toEqual(['t1']);
  });

  it('without them (redis default), they are off and say so', async () => {
    const {
      sidecars: [a],
    } = await fleet(1);
    expect((await info(a!)).keyspace_events).toBe('off');
    expect(a!.log()).toMatch(/keyspace notifications not used/);
  });
});
