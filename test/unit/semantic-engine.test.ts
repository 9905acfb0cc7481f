/*
 * The engine (src/semantic/engine.ts) with test doubles: an in-memory store
 * (the part of SemanticStore the engine uses) and the hash embedder behind a
 * double that counts calls and can hold a text back. The vector index is the
 * real one.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { createHashEmbedder } from '../../src/semantic/embedders/hash.js';
import {
  InvalidInputError,
  LoadingError,
  SemanticCache,
  type SourcedEmbedder,
  UnknownNamespaceError,
} from '../../src/semantic/engine.js';
import { faissIndexFactory } from '../../src/semantic/index/factory.js';
import { parseAttrs } from '../../src/semantic/namespace.js';
import type { EntryStore, StoredEntry, Written } from '../../src/semantic/store.js';
import {
  AccessRefusedError,
  EmbedderUnavailableError,
  type KeyAccess,
} from '../../src/semantic/types.js';

interface Rec {
  ns: string;
  text: string;
  vector: Float32Array;
  attrs: string | undefined;
  model: string;
  ver: string;
}

/** The store's contract in memory: values (as SET), records, no TTLs. */
class FakeStore implements EntryStore {
  readonly values = new Map<string, Buffer>();
  readonly recs = new Map<string, Rec>();
  removed: string[] = [];

  private version = 0;

  async put(e: StoredEntry & { exactHash: string }, sha: string): Promise<Written | undefined> {
    const k = e.key.toString('latin1');
    const value = this.values.get(k);
    if (value === undefined) return undefined;
    if (sha !== '' && createHash('sha1').update(value).digest('hex') !== sha) return undefined;
    const ver = `${++this.version}-0`;
    this.recs.set(k, {
      ns: e.ns,
      text: e.text,
      vector: e.vector,
      attrs: e.attrs,
      model: e.model,
      ver,
    });
    return { pttl: -1, ver };
  }

  async records(keys: Buffer[]): Promise<(StoredEntry | undefined)[]> {
    return keys.map((k) => {
      const r = this.recs.get(k.toString('latin1'));
      return r && { key: k, ...r };
    });
  }

  async versions(keys: Buffer[], _applied: string): Promise<(string | undefined)[]> {
    return keys.map((k) => this.recs.get(k.toString('latin1'))?.ver);
  }

  async namespaceSettings(ns: string): Promise<Record<string, string> | undefined> {
    return this.settings.get(ns);
  }

  async remove(keys: Buffer[]): Promise<number> {
    let n = 0;
    for (const key of keys) {
      const k = key.toString('latin1');
      if (this.values.has(k)) continue;
      this.removed.push(k);
      if (this.recs.delete(k)) n++;
    }
    return n;
  }

  async exists(keys: Buffer[]): Promise<boolean[]> {
    return keys.map((k) => this.values.has(k.toString('latin1')));
  }

  async vectors(keys: Buffer[]): Promise<(Float32Array | undefined)[]> {
    return keys.map((k) => this.recs.get(k.toString('latin1'))?.vector);
  }

  /** Keys the client may not read (its reads are refused, as NOPERM would). */
  readonly unreadable = new Set<string>();

  /** The client's view of the values (KeyAccess), with `unreadable` refused. */
  readonly access: KeyAccess = {
    oneShot: false,
    read: async (keys) =>
      keys.map((k) => {
        const name = k.toString('latin1');
        return this.unreadable.has(name) ? undefined : (this.values.get(name) ?? null);
      }),
    exists: async (keys) =>
      keys.map((k) => {
        const name = k.toString('latin1');
        return this.unreadable.has(name) ? undefined : this.values.has(name);
      }),
    write: async (key, value) => {
      this.values.set(key.toString('latin1'), Buffer.from(value));
    },
    readWritable: async (key) => this.values.get(key.toString('latin1')) ?? null,
    del: async (keys) => keys.filter((k) => this.values.delete(k.toString('latin1'))).length,
    delAll: async (keys) => keys.filter((k) => this.values.delete(k.toString('latin1'))).length,
    mayDelAll: async () => {},
    mayInfo: async () => {},
  };

  readonly settings = new Map<string, Record<string, string>>();

  async namespaces(): Promise<Map<string, Record<string, string>>> {
    return new Map(this.settings);
  }

  async saveNamespace(ns: string, fields: Record<string, string>): Promise<void> {
    this.settings.set(ns, { ...this.settings.get(ns), ...fields });
  }

  async deleteNamespace(ns: string): Promise<void> {
    this.settings.delete(ns);
  }

  async *scan(): AsyncGenerator<StoredEntry[]> {
    const all = [...this.recs.entries()].map(([k, r]) => ({
      key: Buffer.from(k, 'latin1'),
      ...r,
    }));
    for (let i = 0; i < all.length; i += 3) yield all.slice(i, i + 3);
  }
}

/** The hash embedder, counting, with texts that can be held back until released. */
class FakeEmbedder implements SourcedEmbedder {
  readonly kind = 'hash';
  readonly model: string;
  readonly dim: number;
  calls = 0;
  texts: string[] = [];
  loadGate: Promise<void> | undefined;
  loadError: Error | undefined;
  private readonly inner;
  private readonly held = new Map<string, Promise<void>>();

  constructor(dim = 64) {
    this.inner = createHashEmbedder({ dim });
    this.model = this.inner.model;
    this.dim = dim;
  }

  hold(text: string): () => void {
    let release!: () => void;
    this.held.set(
      text,
      new Promise<void>((r) => {
        release = r;
      }),
    );
    return release;
  }

  async load(): Promise<void> {
    await this.loadGate;
    if (this.loadError) throw this.loadError;
  }

  async embed(texts: string[]): Promise<Float32Array[]> {
    this.calls++;
    this.texts.push(...texts);
    await Promise.all(texts.map((t) => this.held.get(t)));
    return this.inner.embed(texts);
  }

  async embedWithSource(texts: string[]) {
    return (await this.embed(texts)).map((vector) => ({ vector, cached: false }));
  }
}

async function engineWith(
  opts: { store?: FakeStore; embedder?: FakeEmbedder; threshold?: number; start?: boolean } = {},
) {
  const store = opts.store ?? new FakeStore();
  const embedder = opts.embedder ?? new FakeEmbedder();
  const engine = new SemanticCache({
    store,
    embedder,
    threshold: opts.threshold ?? 0.9,
    indexKind: 'flat',
    quant: 'fp32',
    indexFactory: faissIndexFactory({ logger: silentLogger }),
    logger: silentLogger,
  });
  if (opts.start !== false) await engine.start();
  accessOf.set(engine, store.access);
  return { engine, store, embedder };
}

/** Each engine's client access: its store's, unless a test swaps it. */
const accessOf = new WeakMap<SemanticCache, KeyAccess>();
const as = (engine: SemanticCache) => accessOf.get(engine)!;

const b = (s: string) => Buffer.from(s);
const set = (engine: SemanticCache, key: string, text: string, value: string, ns?: string) =>
  engine.set({ key: b(key), text, value: b(value), ttlMode: '', ttl: '', ns }, as(engine));

describe('SemanticCache with test doubles', () => {
  it('an exact match is answered without the embedder, with score 1', async () => {
    const { engine, embedder } = await engineWith();
    await set(engine, 'k', 'House near Ostsee', 'v');
    const calls = embedder.calls;
    const hit = await engine.get({ text: '  house NEAR ostsee!!' }, as(engine));
    expect(hit?.value?.toString()).toBe('v');
    expect(hit?.exact).toBe(true);
    expect(hit?.score).toBe(1);
    expect(embedder.calls).toBe(calls);
    const space = engine.namespace(undefined);
    expect([space.hits, space.exactHits, space.misses]).toEqual([1, 1, 0]);
  });

  it('writes to one key apply in arrival order, even when the later one embeds first', async () => {
    const { engine, store, embedder } = await engineWith();
    const release = embedder.hold('the slow first text');
    const first = set(engine, 'k', 'the slow first text', 'v1');
    const second = set(engine, 'k', 'the quick second text', 'v2');
    await new Promise((r) => setTimeout(r, 20));
    release();
    await Promise.all([first, second]);
    expect(store.values.get('k')?.toString()).toBe('v2');
    expect(store.recs.get('k')?.text).toBe('the quick second text');
    expect(
      (await engine.get({ text: 'the quick second text' }, as(engine)))?.value?.toString(),
    ).toBe('v2');
    expect(
      await engine.get({ text: 'the slow first text', threshold: 0.99 }, as(engine)),
    ).toBeUndefined();
    expect(engine.namespace(undefined).entries.size).toBe(1);
  });

  it('SEMGET: the best candidate gone, the next one above the threshold answers', async () => {
    const { engine, store } = await engineWith();
    await set(engine, 'k1', 'house near ostsee', 'v1');
    await set(engine, 'k2', 'a house near the ostsee', 'v2');
    store.values.delete('k2'); // deleted by someone else
    const hit = await engine.get({ text: 'the house near the ostsee', threshold: 0.3 }, as(engine));
    expect(store.removed).toContain('k2'); // dropped, record removed
    expect(hit?.entry.key.toString()).toBe('k1');
    expect(hit?.value?.toString()).toBe('v1');
  });

  it('a candidate the client may not read is skipped, not dropped: the next one answers', async () => {
    const { engine, store } = await engineWith();
    await set(engine, 'secret:1', 'house near ostsee', 'hunter2');
    await set(engine, 'app:1', 'a house near the ostsee', 'ok');
    store.unreadable.add('secret:1');
    const exact = await engine.get({ text: 'house near ostsee', threshold: 0.3 }, as(engine));
    expect(exact?.entry.key.toString()).toBe('app:1');
    expect(exact?.value?.toString()).toBe('ok');
    const top = await engine.search(
      { text: 'house near ostsee', count: 5, withValues: true },
      as(engine),
    );
    expect(top.map((h) => h.entry.key.toString())).toEqual(['app:1']);
    expect(store.removed).not.toContain('secret:1');
    expect(engine.namespace(undefined).entries.size).toBe(2); // kept for clients that may read it
    store.unreadable.clear();
    expect((await engine.get({ text: 'house near ostsee' }, as(engine)))?.value?.toString()).toBe(
      'hunter2',
    );
  });

  it('a write the client is refused leaves no record and no entry', async () => {
    const { engine, store } = await engineWith();
    const refusing: KeyAccess = {
      ...store.access,
      write: async () => {
        throw new AccessRefusedError(
          'NOPERM this user has no permissions to access one of the keys used as arguments',
        );
      },
    };
    await expect(
      engine.set(
        { key: b('x'), text: 'a text', value: b('v'), ttlMode: '', ttl: '', ns: 'fresh' },
        refusing,
      ),
    ).rejects.toThrow('NOPERM');
    expect(engine.namespaces.has('fresh')).toBe(false);
    expect([store.values.size, store.recs.size, engine.namespace(undefined).entries.size]).toEqual([
      0, 0, 0,
    ]);
  });

  it('SEMSET racing another writer: the record follows the value that stayed', async () => {
    const { engine, store } = await engineWith();
    const racing: KeyAccess = {
      ...store.access,
      write: async (key, value) => {
        store.values.set(key.toString('latin1'), Buffer.from(value));
        store.values.set(key.toString('latin1'), Buffer.from('written by someone else'));
      },
    };
    await engine.set(
      { key: b('k'), text: 'a text', value: b('mine'), ttlMode: '', ttl: '' },
      racing,
    );
    expect(store.recs.has('k')).toBe(false);
    expect(engine.namespace(undefined).entries.size).toBe(0);
  });

  it('SEMSEARCH: entries gone do not reduce COUNT', async () => {
    const { engine, store } = await engineWith();
    for (let i = 0; i < 6; i++) await set(engine, `k${i}`, `lorem ipsum ${'x'.repeat(i + 1)}`, 'v');
    const top = await engine.search(
      { text: 'lorem ipsum x', count: 3, withValues: false },
      as(engine),
    );
    expect(top).toHaveLength(3);
    store.values.delete(top[0]!.entry.key.toString());
    const again = await engine.search(
      { text: 'lorem ipsum x', count: 3, withValues: false },
      as(engine),
    );
    expect(again).toHaveLength(3);
  });

  it('SEMSEARCH with a selective filter searches deeper until COUNT entries pass', async () => {
    const { engine } = await engineWith();
    for (let i = 0; i < 200; i++) {
      const rare = i % 40 === 3;
      await engine.set(
        {
          key: b(`k${i}`),
          text: rare ? `zebra quokka ${i}` : `common report ${i}`,
          value: b('v'),
          ttlMode: '',
          ttl: '',
          attrs: JSON.stringify({ rare }),
        },
        as(engine),
      );
    }
    const hits = await engine.search(
      {
        text: 'common report',
        count: 5,
        filter: '.rare',
        fetchK: 8,
        withValues: false,
      },
      as(engine),
    );
    expect(hits.map((h) => h.entry.key.toString()).sort()).toEqual(
      ['k3', 'k43', 'k83', 'k123', 'k163'].sort(),
    );
  });

  it('rebuilds from the store on start, without calling the model', async () => {
    const { engine, store } = await engineWith();
    await set(engine, 'k1', 'house near ostsee', 'v1');
    await set(engine, 'k2', 'train to hamburg', 'v2', 'other');
    const embedder = new FakeEmbedder();
    const { engine: again } = await engineWith({ store, embedder });
    expect(again.state).toBe('ready');
    expect(embedder.calls).toBe(0);
    expect((await again.get({ text: 'house near ostsee' }, as(again)))?.value?.toString()).toBe(
      'v1',
    );
    expect(
      (await again.get({ text: 'train to hamburg', ns: 'other' }, as(again)))?.value?.toString(),
    ).toBe('v2');
  });

  it('records of another model are embedded again on start (docs/storage.md "Model changes")', async () => {
    const { engine, store } = await engineWith({ embedder: new FakeEmbedder(64) });
    await set(engine, 'k1', 'house near ostsee', 'v1');
    await set(engine, 'k2', 'train to hamburg', 'v2', 'other');
    const embedder = new FakeEmbedder(32);
    const { engine: again } = await engineWith({ store, embedder });
    expect(again.state).toBe('ready');
    expect([...embedder.texts].sort()).toEqual(['house near ostsee', 'train to hamburg']);
    expect(store.recs.get('k1')?.vector.length).toBe(32);
    expect(store.recs.get('k1')?.model).toBe('hash:hash-v1-32:32');
    const hit = await again.get({ text: 'a house near the ostsee', threshold: 0.3 }, as(again));
    expect(hit?.entry.key.toString()).toBe('k1');
  });

  it('loading, then failed: typed errors', async () => {
    const embedder = new FakeEmbedder();
    let release!: () => void;
    embedder.loadGate = new Promise<void>((r) => {
      release = r;
    });
    embedder.loadError = new EmbedderUnavailableError('no model here', 'use --embedder hash');
    const { engine } = await engineWith({ embedder, start: false });
    const started = engine.start();
    expect(engine.state).toBe('loading');
    await expect(engine.get({ text: 'x' }, as(engine))).rejects.toBeInstanceOf(LoadingError);
    await expect(set(engine, 'k', 't', 'v')).rejects.toBeInstanceOf(LoadingError);
    release();
    await started;
    expect(engine.state).toBe('failed');
    await expect(engine.get({ text: 'x' }, as(engine))).rejects.toBeInstanceOf(
      EmbedderUnavailableError,
    );
    await expect(engine.embed('x')).rejects.toThrow('no model here');
  });

  it('namespaces: unknown ones are errors; a flush removes only its own', async () => {
    const { engine, store } = await engineWith();
    await expect(engine.get({ text: 'x', ns: 'nope' }, as(engine))).rejects.toBeInstanceOf(
      UnknownNamespaceError,
    );
    await set(engine, 'a1', 'same text', 'va', 'a');
    await set(engine, 'b1', 'same text', 'vb', 'b');
    expect((await engine.get({ text: 'same text', ns: 'a' }, as(engine)))?.value?.toString()).toBe(
      'va',
    );
    expect((await engine.get({ text: 'same text', ns: 'b' }, as(engine)))?.value?.toString()).toBe(
      'vb',
    );
    expect(await engine.flush('a', as(engine))).toBe(1);
    expect(store.values.has('a1')).toBe(false);
    expect(store.values.get('b1')?.toString()).toBe('vb');
    expect((await engine.get({ text: 'same text', ns: 'b' }, as(engine)))?.value?.toString()).toBe(
      'vb',
    );
  });

  it('bad vectors and attributes are InvalidInputError', async () => {
    const { engine } = await engineWith();
    await set(engine, 'k', 'text', 'v');
    await expect(
      engine.search({ vector: new Float32Array(64), count: 1, withValues: false }, as(engine)),
    ).rejects.toBeInstanceOf(InvalidInputError);
    await expect(
      engine.search(
        { vector: new Float32Array(3).fill(1), count: 1, withValues: false },
        as(engine),
      ),
    ).rejects.toThrow('vector has 3 dimensions, the index has 64');
    expect(() => parseAttrs('{')).toThrow(InvalidInputError);
    expect(() => parseAttrs('[1]')).toThrow('ATTRS must be a JSON object');
  });
});
