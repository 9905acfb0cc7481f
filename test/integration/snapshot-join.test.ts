/*
 * Joining beside a saved graph (docs/fleet.md, "Joining"), with real semcache
 * processes on one real redis-server: the joiner takes the entries and the
 * vectors the snapshot holds instead of reading the records; records
 * changed, deleted or added after the snapshot are replaced by the feed,
 * forgotten or read; a stream trimmed past the snapshot makes it resync in
 * full; a manifest of an older version (no `head`) is still loaded.
 */
import { describe, expect, it } from 'vitest';
import { stopAfterEach } from '../helpers/cleanup.js';
import { waitFor } from '../helpers/proc.js';
import * as h from '../helpers/snapshots.js';

const cleanups = stopAfterEach();
const setup = () => h.setup(cleanups);
const { N, info, text, fill, servesFromGraph, ownVectorsFound, vectorsTaken, savedThenLoaded } = h;

describe('joining beside a shared HNSW snapshot', () => {
  it('an instance that starts beside a saved graph loads it instead of building', async () => {
    const env = await setup();
    const { direct } = env;
    const b = await savedThenLoaded(env);
    const used = /hnsw snapshot loaded, (\d+) of \d+ positions used \(3000 entries\)/.exec(b.log());
    expect((await info(b)).snapshot_loads).toBe(1);
    // The entries were taken from the snapshot, no record read; the vectors of those in the graph
    // from its bytes, the others' (A's tail) from their records.
    expect(b.log()).toMatch(/3000 entries taken from snapshots, 0 of them forgotten/);
    expect(b.log()).toMatch(/rebuilt from redis: 0 entries in/);
    expect(vectorsTaken(b)).toEqual([Number(used?.[1]), N - Number(used?.[1])]);
    await servesFromGraph(b, [0, 1, 500, 1999, 2500, 2999]);
    await ownVectorsFound(b, direct, [0, 1, 2, 500, 1000, 1500, 1999, 2000, 2500, 2998, 2999]);
    // B found it by a walk (A saved it named in P snaps, not yet complete), which completed P snaps.
    expect((await direct.smembers('semcache:snaps')).sort()).toEqual(['', 'default']);
    // The next one reads the set instead.
    const c = await env.start();
    expect(await waitFor(() => /hnsw snapshot loaded/.test(c.log()), 15_000)).toBe(true);
    await c.stop();
    // SEMFLUSH empties the namespace: its snapshot goes with it.
    expect(await b.client.call('SEMFLUSH')).toBe(N);
    expect(await direct.keys('semcache:snap:*')).toEqual([]);
    expect(await direct.smembers('semcache:snaps')).toEqual(['']);
    expect(await direct.keys('semcache:snapchunk:*')).toEqual([]);
  });

  it('records changed or deleted after the snapshot: forgotten when gone, replaced by the feed when changed', async () => {
    const env = await setup();
    const { direct } = env;
    const moved = (i: number) => (i % 100 === 7 ? `w${i}` : `v${i}`);
    const b = await savedThenLoaded(env, async () => {
      // Behind the graph's back, through an instance that shares nothing: new
      // versions of 30 entries (same texts, other values), and 30 deleted.
      const seed = await env.start(['--index', 'flat', '--snapshots', 'off']);
      for (let i = 7; i < N; i += 100) {
        await seed.client.call('SEMSET', `e:${i}`, text(i), moved(i));
        expect(await seed.client.call('SEMDEL', `e:${i + 1}`)).toBe(1);
      }
      // And 10 new ones: not in the snapshot, read from their records.
      await fill(seed, N, N + 10);
      await seed.stop();
    });
    // The deleted ones: their keys were not found by the scan, and forgotten before any answer.
    expect(b.log()).toMatch(/3000 entries taken from snapshots, 30 of them forgotten/);
    expect(b.log()).toMatch(/rebuilt from redis: 10 entries in/);
    expect((await info(b, 'default')).entries).toBe(N - 30 + 10);
    const [taken, read] = vectorsTaken(b) ?? [0, 0];
    expect(taken).toBeGreaterThan(N - 1100);
    expect(taken + read).toBe(N - 30);
    for (const i of [N, N + 9]) expect(await b.client.call('SEMGET', text(i))).toBe(`v${i}`);
    // The changed ones: at the snapshot's version until the feed, replayed from the snapshot's
    // position, brings theirs; never answered with the old value meanwhile (the version check).
    for (const i of [7, 1507, 2907]) {
      const got = await b.client.call('SEMGET', text(i));
      expect(got === null || got === moved(i)).toBe(true);
    }
    expect(
      await waitFor(async () => (await b.client.call('SEMGET', text(2907))) === moved(2907)),
    ).toBe(true);
    await servesFromGraph(b, [0, 7, 107, 1507, 2907, 2999], moved);
    for (const i of [8, 1508, 2908])
      expect(await b.client.call('SEMGET', text(i))).not.toBe(`v${i}`);
    await ownVectorsFound(b, direct, [7, 107, 1507, 2907, 0, 2999]);
  });

  it('a snapshot older than what the feed still holds: the joiner resyncs in full, then answers right', async () => {
    const env = await setup();
    const { direct } = env;
    const b = await savedThenLoaded(env, async () => {
      const seed = await env.start(['--index', 'flat', '--snapshots', 'off']);
      await seed.client.call('SEMSET', 'e:5', 'a text that replaced note five', 'new5');
      expect(await seed.client.call('SEMDEL', 'e:6')).toBe(1);
      await seed.stop();
      // Every event gone, the snapshot's position among them: the feed cannot say what changed.
      await direct.xtrim('semcache:feed', 'MAXLEN', 0);
    });
    expect(b.log()).toMatch(/3000 entries taken from snapshots, 1 of them forgotten/);
    expect(await waitFor(async () => ((await info(b)).feed_resyncs as number) >= 1, 15_000)).toBe(
      true,
    );
    expect(b.log()).toMatch(/resyncing in full/);
    expect(await waitFor(() => /resync: \d+ entries whose record is gone/.test(b.log()))).toBe(
      true,
    );
    expect((await info(b, 'default')).entries).toBe(N - 1);
    expect(await b.client.call('SEMGET', 'a text that replaced note five')).toBe('new5');
    expect(await b.client.call('SEMGET', text(5))).toBe(null);
    expect(await b.client.call('SEMGET', text(6))).toBe(null);
    await servesFromGraph(b, [0, 1999, 2999]);
  });

  it("loads a snapshot whose manifest predates 'head' (slots and FAISS bytes joined on the event loop)", async () => {
    const env = await setup();
    const { direct } = env;
    const b = await savedThenLoaded(env, async () => {
      // The slots end on a chunk boundary: the loader joins only them, FAISS's chunks go to the worker.
      const head = Number(await direct.hget('semcache:snap:default', 'head'));
      expect(head).toBeGreaterThan(N - 1100);
      // A snapshot written before the field existed: everything is joined, then decoded.
      expect(await direct.hdel('semcache:snap:default', 'head')).toBe(1);
    });
    await servesFromGraph(b, [0, 1, 1999, 2999]);
    // Its slots come only with the whole: every record is read with its vector.
    expect(b.log()).toMatch(/rebuilt from redis: 3000 entries in/);
    expect(vectorsTaken(b)).toBeUndefined();
    await ownVectorsFound(b, direct, [0, 1999, 2999]);
  });
});
