/*
 * ByteBatch (src/util/byte-batch.ts) and SentRequests
 * (src/upstream/sent-requests.ts): parts are copied as they come (their
 * source may be overwritten right after), batches that share the slab stay
 * apart, big parts of their own are passed on, and requests can be cut out
 * of written batches again, whatever was answered before.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SentRequests } from '../../src/upstream/sent-requests.js';
import { ByteBatch } from '../../src/util/byte-batch.js';
import { readBuffer } from '../../src/util/read-buffer.js';

const str = (parts: Buffer[]) => Buffer.concat(parts).toString('latin1');

/** `s` as a view of the read buffer at `at`, as a client's request arrives. */
function volatile(s: string, at = 0): Buffer {
  const n = readBuffer.write(s, at, 'latin1');
  return readBuffer.subarray(at, at + n);
}

describe('ByteBatch', () => {
  it('copies each part: overwriting the source afterwards changes nothing', () => {
    const batch = new ByteBatch();
    batch.append(volatile('*1\r\n$4\r\nPING\r\n'));
    batch.append(volatile('GET k\r\n'));
    readBuffer.fill(0xa5, 0, 64);
    expect(batch.length).toBe(21);
    const out = batch.take();
    expect(out).toHaveLength(1); // contiguous in the slab
    expect(str(out)).toBe('*1\r\n$4\r\nPING\r\nGET k\r\n');
    expect(batch.length).toBe(0);
    expect(batch.take()).toEqual([]);
  });

  it('batches appending in turn keep their own bytes, in order', () => {
    const a = new ByteBatch();
    const b = new ByteBatch();
    for (let i = 0; i < 100; i++) {
      a.append(volatile(`a${i} `));
      b.append(volatile(`b${i} `));
    }
    const wantA = Array.from({ length: 100 }, (_, i) => `a${i} `).join('');
    const wantB = Array.from({ length: 100 }, (_, i) => `b${i} `).join('');
    expect(str(a.take())).toBe(wantA);
    expect(str(b.take())).toBe(wantB);
  });

  it('a big part of its own is passed on as it is; a big view of the read buffer is copied', () => {
    const batch = new ByteBatch();
    const big = Buffer.alloc(100_000, 7);
    batch.append(volatile('SET k '));
    batch.append(big);
    batch.append(volatile('\r\n', 100));
    const out = batch.take();
    expect(out).toHaveLength(3);
    expect(out[1]).toBe(big);
    const view = volatile('x'.repeat(10_000));
    const b2 = new ByteBatch();
    b2.append(view);
    readBuffer.fill(0xa5, 0, 10_000);
    const [copy] = b2.take();
    expect(copy).not.toBe(view);
    expect(copy!.toString()).toBe('x'.repeat(10_000));
  });

  it('clear() forgets the gathered bytes; empty parts add nothing', () => {
    const batch = new ByteBatch();
    batch.append(volatile('lost'));
    batch.clear();
    batch.append(Buffer.alloc(0));
    expect(batch.length).toBe(0);
    batch.append(volatile('kept'));
    expect(str(batch.take())).toBe('kept');
  });

  it('any sizes, across slab boundaries: what comes out is what went in', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 70_000 }), { maxLength: 12 }), (sizes) => {
        const batch = new ByteBatch();
        const want: Buffer[] = [];
        sizes.forEach((n, i) => {
          const part = Buffer.alloc(n, i + 1);
          want.push(part);
          batch.append(n <= readBuffer.length ? volatile(part.toString('latin1')) : part);
        });
        readBuffer.fill(0xa5);
        expect(Buffer.concat(batch.take()).equals(Buffer.concat(want))).toBe(true);
      }),
      { numRuns: 50 },
    );
  });
});

describe('SentRequests', () => {
  it('requests not answered come back whole, from written batches and the gathered one', () => {
    const sent = new SentRequests();
    sent.add([volatile('RESET\r\n')]);
    sent.add([volatile('GET a\r\n')]);
    sent.add([volatile('SET b '), Buffer.alloc(5000, 0x62), volatile('\r\n', 100)]);
    expect(str(sent.take())).toContain('GET a\r\n');
    sent.add([volatile('RESET\r\n')]);
    sent.add([volatile('INCR c\r\n')]);
    sent.take();
    sent.add([volatile('GET d\r\n')]); // gathered, not written
    readBuffer.fill(0xa5);
    sent.answered(); // RESET
    sent.answered(); // GET a
    const again = sent.drain().map((r) => r.toString('latin1'));
    expect(again).toEqual([
      `SET b ${'b'.repeat(5000)}\r\n`,
      'RESET\r\n',
      'INCR c\r\n',
      'GET d\r\n',
    ]);
    expect(sent.gathered).toBe(0);
    expect(sent.drain()).toEqual([]);
  });

  it('answering every request lets go of every batch; clear() forgets all', () => {
    const sent = new SentRequests();
    for (let batch = 0; batch < 3; batch++) {
      for (let i = 0; i < 4; i++) sent.add([volatile(`GET ${batch}:${i}\r\n`)]);
      sent.take();
    }
    for (let i = 0; i < 12; i++) sent.answered();
    expect(sent.drain()).toEqual([]);
    sent.add([volatile('PING\r\n')]);
    sent.clear();
    expect(sent.gathered).toBe(0);
    expect(sent.drain()).toEqual([]);
  });
});
