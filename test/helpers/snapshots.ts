/*
 * Shared by the snapshot tests (test/integration/snapshots.test.ts and
 * snapshot-join.test.ts): a redis-server and sidecars started with `--index
 * hnsw`, entries of known texts, and the checks that a graph answers and
 * that each record's own vector finds it.
 */
import { Redis } from 'ioredis';
import { expect } from 'vitest';
import { type Sidecar, seminfo, startSidecar } from './fleet.js';
import { waitFor } from './proc.js';
import { startRedis } from './servers.js';

export const N = 3000;
// Namespaces of 1,000 entries or more share their graph (10,000 by default).
export const HNSW = ['--index', 'hnsw', '--snapshot-min-entries', '1000'];

export async function setup(cleanups: (() => unknown)[]) {
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

export const info = seminfo;

/** Positions in the default namespace's saved snapshot (null: none yet). */
export const saved = (direct: Redis) => direct.hget('semcache:snap:default', 'vectors');

export const text = (i: number) => `note ${i} on topic ${(i * 7919) % 1009} and place ${i % 97}`;

export async function fill(s: Sidecar, from: number, to: number, value = (i: number) => `v${i}`) {
  const pipe = s.client.pipeline();
  for (let i = from; i < to; i++) pipe.call('SEMSET', `e:${i}`, text(i), value(i));
  const r = (await pipe.exec())!;
  for (const [err] of r) expect(err).toBe(null);
}

/** A graph that answers: the index is HNSW, nothing builds, and near texts find their entries. */
export async function servesFromGraph(
  s: Sidecar,
  sample: number[],
  value = (i: number) => `v${i}`,
) {
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
export async function ownVectorsFound(s: Sidecar, direct: Redis, sample: number[]) {
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
export function vectorsTaken(s: Sidecar): [number, number] | undefined {
  const m = /(\d+) vectors taken from the snapshot, (\d+) read from redis/.exec(s.log());
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

/** A saves its graph of N entries (one of most of them) and stops; B starts and loads it. */
export async function savedThenLoaded(
  env: Awaited<ReturnType<typeof setup>>,
  beforeB = async () => {},
) {
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
