/*
 * Giving the C heap's free pages back (patch v5's mallocTrim, heap-trim.ts):
 * in a process of its own, FAISS indexes of about 46 KB each are made and
 * nine in ten disposed, which leaves their memory free in the middle of
 * glibc's heap, where free() does not give it back; trimHeap() must. And
 * trimSoon() runs one trim for any number of requests made before it runs.
 */
import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { patched } from '../../src/semantic/index/faiss.js';
import { TRIM_DELAY_MS, trimSoon, trims } from '../../src/semantic/index/heap-trim.js';

describe('heap trim', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('gives back the pages of disposed indexes that free() kept', () => {
    expect(patched()).toBe(true);
    const faiss = resolve('dist/semantic/index/faiss.js');
    const script = `
      const { newFlatIP, trimHeap } = await import(${JSON.stringify(faiss)});
      const { readFileSync } = await import('node:fs');
      const rss = () => Number(/VmRSS:\\s+(\\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1]) * 1024;
      const v = new Float32Array(30 * 384).fill(1 / Math.sqrt(384));
      const all = Array.from({ length: 4000 }, () => { const f = newFlatIP(384); f.add(v); return f; });
      all.forEach((f, i) => { if (i % 10 !== 0) f.dispose(); });
      const before = rss();
      const trimmed = trimHeap();
      console.log(JSON.stringify({ trimmed, freed: before - rss(), kept: all.filter((f, i) => i % 10 === 0).length }));`;
    const out = JSON.parse(
      execFileSync(process.execPath, ['--input-type=module', '-e', script], {
        encoding: 'utf8',
        timeout: 30_000,
      }),
    );
    expect(out.trimmed).toBe(true);
    expect(out.kept).toBe(400);
    // 3,600 indexes of 30 x 384 floats (46 KB) disposed: 166 MB free, most of it in holes.
    expect(out.freed).toBeGreaterThan(80e6);
  });

  it('runs one trim for the requests made before it runs', () => {
    vi.useFakeTimers();
    const before = trims().count;
    trimSoon();
    trimSoon();
    vi.advanceTimersByTime(TRIM_DELAY_MS - 1);
    expect(trims().count).toBe(before);
    trimSoon();
    vi.advanceTimersByTime(1);
    expect(trims().count).toBe(before + 1);
    trimSoon();
    vi.advanceTimersByTime(TRIM_DELAY_MS);
    expect(trims().count).toBe(before + 2);
  });
});
