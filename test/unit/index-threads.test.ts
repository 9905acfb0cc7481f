/*
 * The threads indexes are built in (index/threads.ts), with the real addon:
 * builds one after the other share the kept build thread; a build while it
 * is busy gets a thread of its own; a failed build leaves the kept thread
 * serving; and the kept thread does not hold a process open.
 */
import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildIndex } from '../../src/semantic/index/builder.js';
import { type FaissIndex, newHnswIP } from '../../src/semantic/index/faiss.js';
import { threadsStarted } from '../../src/semantic/index/threads.js';
import { clusteredVectors, DIM } from '../helpers/vectors.js';

const vectors = (n: number, seed: number) => {
  const xs = new Float32Array(n * DIM);
  for (const [i, v] of clusteredVectors(n, seed).entries()) xs.set(v, i * DIM);
  return xs;
};
const graph = () => newHnswIP(DIM, { m: 16, efConstruction: 40, efSearch: 64 });

describe('index build threads', () => {
  it('builds one after the other share the kept thread; one while it is busy gets its own', async () => {
    (await buildIndex({ template: graph(), vectors: vectors(50, 1) })).dispose(); // the kept thread exists
    const before = threadsStarted();
    for (let i = 0; i < 3; i++) {
      const xs = vectors(200, 2 + i);
      const built = await buildIndex({ template: graph(), vectors: xs });
      expect(built.ntotal()).toBe(200);
      expect(xs.length).toBe(0); // transferred to the thread
      built.dispose();
    }
    expect(threadsStarted()).toBe(before);
    const both = await Promise.all([
      buildIndex({ template: graph(), vectors: vectors(300, 5) }),
      buildIndex({ template: graph(), vectors: vectors(300, 6) }),
    ]);
    expect(both.map((b) => b.ntotal())).toEqual([300, 300]);
    expect(threadsStarted()).toBe(before + 1);
    for (const b of both) b.dispose();
  });

  it('a failed build is a rejection, and the kept thread serves the next one', async () => {
    (await buildIndex({ template: graph(), vectors: vectors(10, 7) })).dispose();
    const before = threadsStarted();
    const junk = {
      dim: DIM,
      toBuffer: () => Buffer.from('not a FAISS index'),
      dispose: () => {},
    } as unknown as FaissIndex;
    await expect(buildIndex({ template: junk, vectors: vectors(1, 8) })).rejects.toThrow(
      /index build failed: .*/,
    );
    const next = await buildIndex({ template: graph(), vectors: vectors(20, 9) });
    expect(next.ntotal()).toBe(20);
    next.dispose();
    expect(threadsStarted()).toBe(before);
  });

  it('the kept thread does not hold a process open', () => {
    const builder = resolve('dist/semantic/index/builder.js');
    const faiss = resolve('dist/semantic/index/faiss.js');
    const script = `
      const { buildIndex } = await import(${JSON.stringify(builder)});
      const { newHnswIP } = await import(${JSON.stringify(faiss)});
      const built = await buildIndex({
        template: newHnswIP(4, { m: 8, efConstruction: 40, efSearch: 16 }),
        vectors: new Float32Array([1, 0, 0, 0, 0, 1, 0, 0]),
      });
      console.log(built.ntotal());`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    // A process held open would be killed at the timeout, and execFileSync would throw.
    expect(out.trim()).toBe('2');
  });
});
