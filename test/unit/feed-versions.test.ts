/*
 * Versions of entries (feed ids, docs/fleet.md): their order, and the rules
 * by which the entry table takes records from the rebuild, the feed and an
 * instance's own writes: an older record never replaces a newer entry, a
 * removal forgets only older entries, and a resync forgets what it did not
 * see unless something newer touched it. The feed's parsing of XRANGE.
 */
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { EntryTable } from '../../src/semantic/entries.js';
import { parseEntries } from '../../src/semantic/feed-stream.js';
import { faissIndexFactory } from '../../src/semantic/index/factory.js';
import { compareVer } from '../../src/semantic/namespace.js';
import type { EntryStore, StoredEntry } from '../../src/semantic/store.js';

const DIM = 4;

function table(): EntryTable {
  return new EntryTable({
    store: { remove: async () => 0 } as unknown as EntryStore,
    dim: () => DIM,
    indexKind: 'flat',
    quant: 'fp32',
    indexFactory: faissIndexFactory({ logger: silentLogger }),
    logger: silentLogger,
    loading: () => false,
    stopped: () => false,
  });
}

function rec(key: string, text: string, ver: string, ns = 'default'): StoredEntry {
  return {
    key: Buffer.from(key),
    ns,
    text,
    vector: new Float32Array([1, 0, 0, 0]),
    attrs: undefined,
    model: 'm',
    ver,
  };
}

describe('feed ids as versions', () => {
  it('order by time, then sequence; "" is older than any', () => {
    expect(compareVer('5-0', '5-0')).toBe(0);
    expect(compareVer('5-1', '5-0')).toBeGreaterThan(0);
    expect(compareVer('10-0', '9-99')).toBeGreaterThan(0);
    expect(compareVer('1796483815265-0', '1796483815265-12')).toBeLessThan(0);
    expect(compareVer('', '1-0')).toBeLessThan(0);
    expect(compareVer('1-0', '')).toBeGreaterThan(0);
    expect(compareVer('', '')).toBe(0);
  });

  it('an older record never replaces a newer entry; the same version is not indexed again', () => {
    const t = table();
    t.addStored([rec('k', 'new text', '20-0')]);
    const first = t.entryOf(Buffer.from('k'))!;
    t.addStored([rec('k', 'old text', '10-0')]);
    expect(t.entryOf(Buffer.from('k'))!.text).toBe('new text');
    t.addStored([rec('k', 'new text', '20-0')]);
    expect(t.entryOf(Buffer.from('k'))).toBe(first);
    expect(t.isNewer(Buffer.from('k'), '15-0')).toBe(false);
    expect(t.isNewer(Buffer.from('k'), '25-0')).toBe(true);
    t.addStored([rec('k', 'newest text', '30-0')]);
    const e = t.entryOf(Buffer.from('k'))!;
    expect([e.text, e.ver]).toEqual(['newest text', '30-0']);
    // The old text's exact match went with the old entry.
    expect([...t.namespace(undefined).exact.values()].map((x) => x.text)).toEqual(['newest text']);
    expect(t.namespace(undefined).index!.size).toBe(1);
  });

  it('a removal forgets only an entry older than it', () => {
    const t = table();
    t.addStored([rec('k', 'text', '20-0')]);
    expect(t.forgetOlder(Buffer.from('k'), '10-0')).toBe(false);
    expect(t.entryOf(Buffer.from('k'))).toBeDefined();
    expect(t.forgetOlder(Buffer.from('k'), '21-0')).toBe(true);
    expect(t.entryOf(Buffer.from('k'))).toBeUndefined();
    expect(t.namespace(undefined).index!.size).toBe(0);
  });

  it('a resync forgets what it neither read nor wrote, whatever its version', () => {
    const t = table();
    // 'c' is newer than anything the (restarted, empty) stream will hold.
    t.addStored([rec('a', 'a', '1-0'), rec('b', 'b', '2-0'), rec('c', 'c', '900-0')]);
    t.beginResync();
    t.addStored([rec('a', 'a', '1-0')]);
    // Written meanwhile by this instance: kept though the scan did not meet it.
    t.addStored([rec('d', 'd', '150-0')]);
    expect(t.endResync(true)).toBe(2);
    expect(['a', 'b', 'c', 'd'].map((k) => t.entryOf(Buffer.from(k)) !== undefined)).toEqual([
      true,
      false,
      false,
      true,
    ]);
    // A failed resync forgets nothing.
    t.beginResync();
    expect(t.endResync(false)).toBe(0);
    expect(t.size).toBe(2);
  });

  it('parses XRANGE replies into events; unknown fields and malformed items are ignored', () => {
    const events = parseEntries([
      ['1-0', ['op', 's', 'key', Buffer.from([0, 255]), 'o', 'abc']],
      ['2-0', ['op', 'n', 'ns', 'de', 'o', 'abc', 'extra', 'x']],
      'garbage',
      ['3-0', 'not fields'],
      ['4-0', ['op', 'h', 'o', 'xyz']],
    ] as never);
    expect(events.map((e) => [e.id, e.op, e.key, e.ns, e.origin])).toEqual([
      ['1-0', 's', Buffer.from([0, 255]), undefined, 'abc'],
      ['2-0', 'n', undefined, 'de', 'abc'],
      ['4-0', 'h', undefined, undefined, 'xyz'],
    ]);
  });
});
