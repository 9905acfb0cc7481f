/*
 * Shared HNSW graphs (docs/fleet.md, "Snapshots"), with real semcache
 * processes on one real redis-server and the real faiss-node addon: an
 * instance that starts beside a saved graph loads it instead of building;
 * two that start at once build once (the lease), the other adopts the
 * graph when it is saved; a snapshot adopted while writes race with it
 * loses none of them. `--index hnsw` makes every namespace a graph from
 * the first entry, so a few thousand entries are enough.
 */
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { stopAfterEach } from '../helpers/cleanup.js';
import { type Sidecar, seminfo, startSidecar } from '../helpers/fleet.js';
import { sleep, waitFor } from '../helpers/proc.js';
import { startRedis } from '../helpers/servers.js';

const cleanups = stopAfterEach();
const N = 3000;
// Namespaces of 1,000 entries or more share their graph (10,000 by default).
const HNSW = ['--index', 'hnsw', '--snapshot-min-entries', '1000'];

async function setup() {
  const redis = await startRedis();
  cleanups.push(() => redis.stop());
  const direct = new Redis({ port: redis.port });
  cleanups.push(() => direct.disconnect());
  const start = async (args: string[] = HNSW, opts?: { ready?: boolean }) => {
    const s = await startSidecar(redis.url, args, opts);
    cleanups.push(() => s.kill());
    return s;
  };
  return { redis, direct, start };
}

const info = seminfo;

/** Positions in the default namespace's saved snapshot (null: none yet). */
const saved = (direct: Redis) => direct.hget('semcache:snap:default', 'vectors');

const text = (i: number) => `note ${i} on topic ${(i * 7919) % 1009} and place ${i % 97}`;

async function fill(s: Sidecar, from: number, to: number, value = (i: number) => `v${i}`) {
  const pipe = s.client.pipeline();
  for (let i = from; i < to; i++) pipe.call('SEMSET', `e:${i}`, text(i), value(i));
  const r = (await pipe.exec())!;
  for (const [err] of r) expect(err).toBe(null);
}

/** A graph that answers: the index is HNSW, nothing builds, and near texts find their entries. */
async function servesFromGraph(s: Sidecar, sample: number[], value = (i: number) => `v${i}`) {
  const ns = await info(s, 'default');
  expect(ns.index).toBe('hnsw');
  for (const i of sample) {
    // Not the exact text: the vector index answers.
    const got = await s.client.call('SEMGET', `${text(i)} please`, 'THRESHOLD', '0.5');
    expect(got).toBe(value(i));
  }
}

/**
 * Each sampled entry's own vector, as Redis holds it, finds that entry with
 * score 1 in `s` (the vectors `s` indexed are the records', wherever it read them).
 */
async function ownVectorsFound(s: Sidecar, direct: Redis, sample: number[]) {
  for (const i of sample) {
    const vec = await direct.hgetBuffer(`semcache:rec:e:${i}`, 'vec');
    expect(vec?.length).toBe(384 * 4);
    const got = (await s.client.call(
      'SEMSEARCH',
      'FP32',
      vec!,
      'COUNT',
      '1',
      'WITHSCORES',
    )) as unknown[][];
    expect(String(got[0]?.[1])).toBe(`e:${i}`);
    expect(Number(got[0]?.at(-1))).toBeGreaterThan(0.99999);
  }
}

/** How many vectors a joiner took from the snapshot and read from Redis, from its log. */
function vectorsTaken(s: Sidecar): [number, number] | undefined {
  const m = /(\d+) vectors taken from the snapshot, (\d+) read from redis/.exec(s.log());
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

/** A saves its graph of N entries (one of most of them) and stops; B starts and loads it. */
async function savedThenLoaded(env: Awaited<ReturnType<typeof setup>>, beforeB = async () => {}) {
  const a = await env.start();
  await fill(a, 0, N);
  // A saves after every graph it builds; wait for one of most of the entries.
  expect(await waitFor(async () => Number(await saved(env.direct)) >= N - 1100, 30_000)).toBe(true);
  await a.stop();
  await beforeB();
  const b = await env.start();
  expect(await waitFor(() => /snapshot loaded/.test(b.log()), 15_000)).toBe(true);
  expect(b.log()).not.toMatch(/hnsw index of \d+ vectors built/);
  return b;
}

describe('shared HNSW snapshots', () => {
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

  it('two instances starting at once build once; the other adopts the graph when saved', async () => {
    const { start, direct } = await setup();
    const seed = await start(['--index', 'flat', '--snapshots', 'off']);
    await fill(seed, 0, N);
    await seed.stop();
    const [a, b] = await Promise.all([start(), start()]);
    const built = (s: Sidecar) => /hnsw index of \d+ vectors built/.test(s.log());
    const loaded = (s: Sidecar) => /hnsw snapshot loaded/.test(s.log());
    expect(
      await waitFor(async () => (built(a) && loaded(b)) || (built(b) && loaded(a)), 60_000),
    ).toBe(true);
    // Exactly one built, exactly one waited and loaded.
    expect([built(a), built(b)].filter(Boolean).length).toBe(1);
    const [holder, other] = built(a) ? [a, b] : [b, a];
    expect((await info(holder)).snapshot_leases).toBe(1);
    expect((await info(other)).snapshot_waiting).toBe(0);
    for (const s of [holder, other]) await servesFromGraph(s, [3, 1500, 2998]);
    // A graceful stop gives the lease up at once (else it runs out in 60 s).
    expect(await direct.get('semcache:snaplease:default')).toBe(
      String((await info(holder)).instance_id),
    );
    await holder.stop();
    expect(await direct.exists('semcache:snaplease:default')).toBe(0);
  });

  it('a q8 graph is loaded by a q8 instance; one started with --quant fp32 refuses it and builds its own', async () => {
    const { start, direct } = await setup();
    const Q8 = [...HNSW, '--quant', 'q8'];
    const a = await start(Q8);
    await fill(a, 0, N);
    expect(await waitFor(async () => Number(await saved(direct)) >= N - 1100, 30_000)).toBe(true);
    await a.stop();
    const b = await start(Q8);
    expect(await waitFor(() => /hnsw snapshot loaded/.test(b.log()), 15_000)).toBe(true);
    expect(await info(b, 'default')).toMatchObject({ index: 'hnsw', quant: 'q8' });
    await servesFromGraph(b, [0, 1500, 2999]);
    // A q8 graph's bytes hold no float vectors: read from Redis, all of them.
    const [taken, read] = vectorsTaken(b) ?? [-1, -1];
    expect([taken, read > N - 1100]).toEqual([0, true]);
    const c = await start(); // fp32
    expect(await waitFor(() => /hnsw index of \d+ vectors built/.test(c.log()), 60_000)).toBe(true);
    expect(c.log()).toMatch(/snapshot is not fp32 \(another --quant\?\): building here/);
    expect((await info(c)).snapshot_loads).toBe(0);
    expect(await info(c, 'default')).toMatchObject({ index: 'hnsw', quant: 'fp32' });
    await servesFromGraph(c, [0, 1500, 2999]);
    await ownVectorsFound(c, direct, [0, 1500, 2999]);
  });

  it('below --snapshot-min-entries, each instance builds its own graph and nobody waits', async () => {
    const { start, direct } = await setup();
    const [a, b] = [await start(['--index', 'hnsw']), await start(['--index', 'hnsw'])];
    await fill(a, 0, 50);
    for (const s of [a, b]) {
      expect(
        await waitFor(async () => {
          const ns = await info(s, 'default');
          return ns.entries === 50 && ns.index === 'hnsw' && ns.index_building === 0;
        }, 15_000),
      ).toBe(true);
      const i = await info(s);
      expect([i.snapshot_leases, i.snapshot_waiting, i.snapshot_saves]).toEqual([0, 0, 0]);
    }
    expect(await direct.keys('semcache:snap[:cl]*')).toEqual([]);
    await servesFromGraph(b, [0, 25, 49]);
  });

  it('a graph that only grew is extended by the lease holder and shared; the other adopts its paced saves', async () => {
    const { start, direct } = await setup();
    const args = [...HNSW, '--hnsw-extend', 'on'];
    const [a, b] = [await start(args), await start(args)];
    for (let at = 0; at < N; at += 500) await fill(a, at, at + 500);
    // Both built their first graphs alone (below 1,000 entries); past it, one holds the lease.
    const extended = (s: Sidecar) => /hnsw index of \d+ vectors extended by \d+/.test(s.log());
    expect(
      await waitFor(async () => {
        const [ia, ib] = [await info(a), await info(b)];
        return Number(ia.snapshot_leases) + Number(ib.snapshot_leases) === 1;
      }, 30_000),
    ).toBe(true);
    const holder = (await info(a)).snapshot_leases === 1 ? a : b;
    const other = holder === a ? b : a;
    expect(await waitFor(() => extended(holder), 30_000)).toBe(true);
    // Its last save, paced, covers most of the entries, and the other adopts it.
    expect(await waitFor(async () => Number(await saved(direct)) >= N - 1100, 30_000)).toBe(true);
    for (const s of [holder, other]) {
      expect(
        await waitFor(async () => {
          const ns = await info(s, 'default');
          return ns.entries === N && ns.index === 'hnsw' && ns.index_building === 0;
        }, 30_000),
      ).toBe(true);
    }
    expect((await info(holder)).snapshot_saves).toBeGreaterThanOrEqual(1);
    expect((await info(other)).snapshot_saves).toBe(0);
    expect((await info(other)).snapshot_loads).toBeGreaterThanOrEqual(1);
    for (const s of [a, b]) await servesFromGraph(s, [0, 1500, 2999]);
  });

  it('a snapshot adopted while writes race with it loses none of them', async () => {
    const { start, direct } = await setup();
    const a = await start();
    await fill(a, 0, N);
    // A saves after every graph it builds; wait for one of most of the entries.
    expect(await waitFor(async () => Number(await saved(direct)) >= N - 1100, 30_000)).toBe(true);
    // B starts and loads the snapshot while A re-sets entries it covers and
    // adds new ones, in small batches, until B has loaded it.
    let b: Sidecar | undefined;
    const joining = start().then((s) => {
      b = s;
    });
    const moved = (i: number) => (i < 100 ? `w${i}` : `v${i}`);
    await fill(a, 0, 100, moved); // same texts, new values: new versions
    let added = N;
    while (b === undefined || !/hnsw snapshot loaded/.test(b.log())) {
      // About 1,000 writes/s: a writer far faster than its graph builds
      // leaves snapshots covering too little to be used (docs/fleet.md).
      await fill(a, added, added + 20);
      added += 20;
      await sleep(20);
      if (added > N + 20_000) throw new Error(`B never loaded the snapshot:\n${b?.log()}`);
    }
    await joining;
    await fill(a, added, added + 20); // and after
    added += 20;
    expect(await waitFor(async () => (await info(b!)).entries === added, 15_000)).toBe(true);
    expect(await waitFor(async () => (await info(b!)).feed_lag_ms === 0)).toBe(true);
    await servesFromGraph(b!, [0, 50, 99, 100, 2000, N + 1, added - 30, added - 1], moved);
  });
});
