/*
 * Shared HNSW graphs (docs/fleet.md, "Snapshots"), with real semcache
 * processes on one real redis-server and the real faiss-node addon (joining
 * beside a saved graph: snapshot-join.test.ts): two instances that start
 * at once build once (the lease), the other adopts the
 * graph when it is saved; a snapshot adopted while writes race with it
 * loses none of them. `--index hnsw` makes every namespace a graph from
 * the first entry, so a few thousand entries are enough.
 */
import { describe, expect, it } from 'vitest';
import { stopAfterEach } from '../helpers/cleanup.js';
import type { Sidecar } from '../helpers/fleet.js';
import { sleep, waitFor } from '../helpers/proc.js';
import * as h from '../helpers/snapshots.js';

const cleanups = stopAfterEach();
const setup = () => h.setup(cleanups);
const { N, HNSW, info, saved, fill, servesFromGraph, ownVectorsFound, vectorsTaken } = h;

describe('shared HNSW snapshots', () => {
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
