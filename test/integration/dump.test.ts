/*
 * `semcache export` and `semcache import` as a user runs them (`node
 * dist/cli.js`), against real redis-servers on free loopback ports: round
 * trips of texts, vectors, attributes, binary keys and values and TTLs;
 * import into another namespace, merges, a dump of another model embedded
 * again, a running semcache serving imported entries after a restart, and
 * dumps that cannot be read. The dumps used as bad input are written here by
 * hand, not by the code under test.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Redis } from 'ioredis';
import { beforeAll, describe, expect, it } from 'vitest';
import { createHashEmbedder } from '../../src/semantic/embedders/hash.js';
import { stopAfterEach } from '../helpers/cleanup.js';
import { runProcess, sleep } from '../helpers/proc.js';
import { type RedisHandle, startRedis, startSemanticProxy } from '../helpers/servers.js';

const root = resolve(import.meta.dirname, '../..');
const cliPath = join(root, 'dist/cli.js');
const cleanups = stopAfterEach();
const HASH_MODEL = 'hash:hash-v1-384:384';
const BIN_KEY = Buffer.from([0x6b, 0x00, 0xff, 0x0a, 0x0d]);
const BIN_VALUE = Buffer.from(Array.from({ length: 256 }, (_, i) => i));

beforeAll(async () => {
  if (!existsSync(cliPath)) {
    const build = await runProcess('npm', ['run', 'build'], { timeoutMs: 120_000 });
    if (build.code !== 0) throw new Error(`npm run build failed:\n${build.stdout}${build.stderr}`);
  }
}, 150_000);

function env(): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('SEMCACHE_')) out[k] = v;
  out.SEMCACHE_EMBEDDER = 'hash';
  return out;
}

function cli(args: string[], input?: string | Buffer) {
  return runProcess(process.execPath, [cliPath, ...args], {
    env: env(),
    timeoutMs: 30_000,
    ...(input === undefined ? {} : { input }),
  });
}

async function redis(): Promise<{ r: RedisHandle; c: Redis }> {
  const r = await startRedis();
  cleanups.push(() => r.stop());
  const c = new Redis({ port: r.port });
  cleanups.push(() => c.disconnect());
  return { r, c };
}

/** Entries written through a semcache (hash embedder) in front of `r`, which is then stopped. */
async function seed(r: RedisHandle): Promise<void> {
  const proxy = await startSemanticProxy(r.port);
  const c = new Redis({ port: proxy.port });
  try {
    await c.call(
      'SEMSET',
      'answer:1',
      'wohnung near ostsee',
      'Try Warnemünde',
      'PX',
      '600000',
      'ATTRS',
      '{"lang":"de","year":2024}',
    );
    await c.call('SEMSET', BIN_KEY, 'binary key and value', BIN_VALUE);
    await c.call('SEMSET', 'plain', 'hello world', 'v');
    await c.call('SEMNS', 'SET', 'docs', 'THRESHOLD', '0.6');
    await c.call('SEMSET', 'd:1', 'a doc about the baltic sea', 'docval', 'NS', 'docs');
  } finally {
    c.disconnect();
    await proxy.stop();
  }
}

const rec = (key: string | Buffer) =>
  Buffer.concat([Buffer.from('semcache:rec:'), Buffer.from(key)]);

async function record(c: Redis, key: string | Buffer) {
  const [ns, text, vec, attrs, model] = await c.hmgetBuffer(
    rec(key),
    'ns',
    'text',
    'vec',
    'attrs',
    'model',
  );
  return {
    ns: ns?.toString(),
    text: text?.toString(),
    vec,
    attrs: attrs?.toString(),
    model: model?.toString(),
  };
}

/** A dump written by hand: header, entries, end line (count given or the true one). */
function dump(header: object, entries: object[], end: number | null = entries.length): string {
  const lines = [header, ...entries].map((o) => JSON.stringify(o));
  if (end !== null) lines.push(JSON.stringify({ end: true, entries: end }));
  return `${lines.join('\n')}\n`;
}

const fp32 = (values: number[]) => Buffer.from(new Float32Array(values).buffer).toString('base64');
const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64');

describe('export and import', () => {
  it('round trip: texts, vectors, attributes, binary keys and values, TTLs', async () => {
    const a = await redis();
    const b = await redis();
    await seed(a.r);
    const out = await cli(['export', '--ns', 'default', '--upstream', a.r.url]);
    expect(out.stderr).toBe('semcache export: exported 3 entries of namespace default\n');
    expect(out.code).toBe(0);
    const lines = out.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(5);
    const header = JSON.parse(lines[0]!);
    expect(header).toMatchObject({
      semcache_dump: 1,
      model: HASH_MODEL,
      ns: 'default',
      settings: {},
    });
    expect(JSON.parse(lines[4]!)).toEqual({ end: true, entries: 3 });

    const imp = await cli(['import', '--upstream', b.r.url], out.stdout);
    expect(imp.stderr).toBe(
      'semcache import: imported 3 entries (0 re-embedded, 0 replaced) into namespace default\n',
    );
    expect(imp.code).toBe(0);
    for (const key of ['answer:1', BIN_KEY, 'plain']) {
      expect(await b.c.getBuffer(key)).toEqual(await a.c.getBuffer(key));
      expect(await record(b.c, key)).toEqual(await record(a.c, key));
    }
    expect(await b.c.getBuffer(BIN_KEY)).toEqual(BIN_VALUE);
    expect((await record(b.c, 'answer:1')).attrs).toBe('{"lang":"de","year":2024}');
    const pttl = await b.c.pttl('answer:1');
    expect(pttl).toBeGreaterThan(500_000);
    expect(pttl).toBeLessThanOrEqual(600_000);
    expect(await b.c.pttl(rec('answer:1'))).toBeGreaterThan(500_000);
    expect(await b.c.pttl('plain')).toBe(-1);
    expect(await b.c.pttl(rec('plain'))).toBe(-1);
    // Exported again, the same entries (TTLs aside, they run).
    const again = await cli(['export', '--ns', 'default', '--upstream', b.r.url]);
    const strip = (text: string) =>
      text
        .trimEnd()
        .split('\n')
        .slice(1)
        .map((l) => ({ ...JSON.parse(l), pttl: 0 }))
        .sort((x, y) => (x.key < y.key ? -1 : 1));
    expect(strip(again.stdout)).toEqual(strip(out.stdout));
  }, 60_000);

  it('--ns imports into another namespace, which gets the dump settings when it is new', async () => {
    const a = await redis();
    const b = await redis();
    await seed(a.r);
    const out = await cli(['export', '--ns', 'docs', '--upstream', a.r.url]);
    expect(JSON.parse(out.stdout.split('\n')[0]!).settings).toMatchObject({ threshold: '0.6' });
    const imp = await cli(['import', '--ns', 'other', '--upstream', b.r.url], out.stdout);
    expect(imp.code).toBe(0);
    expect(imp.stderr).toMatch(
      /imported 1 entries \(0 re-embedded, 0 replaced\) into namespace other; namespace other created with the dump's settings/,
    );
    expect(await b.c.hgetall('semcache:ns:other')).toEqual(await a.c.hgetall('semcache:ns:docs'));
    expect((await record(b.c, 'd:1')).ns).toBe('other');
    expect(await b.c.keys('semcache:exact:other:*')).toHaveLength(1);
    expect(await b.c.keys('semcache:*docs*')).toEqual([]);
  }, 60_000);

  it('merges into a namespace with entries: same key replaced, others kept, its settings kept', async () => {
    const a = await redis();
    const b = await redis();
    await seed(a.r);
    const proxy = await startSemanticProxy(b.r.port);
    const p = new Redis({ port: proxy.port });
    await p.call('SEMNS', 'SET', 'docs', 'THRESHOLD', '0.3');
    await p.call('SEMSET', 'mine', 'my own entry', 'kept', 'NS', 'docs');
    await p.call('SEMSET', 'd:1', 'an older text', 'old', 'NS', 'docs');
    p.disconnect();
    await proxy.stop();
    const out = await cli(['export', '--ns', 'docs', '--upstream', a.r.url]);
    const imp = await cli(['import', '--upstream', b.r.url], out.stdout);
    expect(imp.code).toBe(0);
    expect(imp.stderr).toMatch(
      /imported 1 entries \(0 re-embedded, 1 replaced\) into namespace docs; namespace docs existed, its settings kept/,
    );
    expect(await b.c.hget('semcache:ns:docs', 'threshold')).toBe('0.3');
    expect(await b.c.get('d:1')).toBe('docval');
    expect((await record(b.c, 'd:1')).text).toBe('a doc about the baltic sea');
    expect(await b.c.get('mine')).toBe('kept');
    expect((await record(b.c, 'mine')).ns).toBe('docs');
    // The old text's exact key went with its record (the store's script).
    expect(await b.c.keys('semcache:exact:docs:*')).toHaveLength(2);
  }, 60_000);

  it('an entry of another model is embedded again with the configured embedder', async () => {
    const b = await redis();
    const input = dump(
      {
        semcache_dump: 1,
        semcache: '0.0.1',
        model: 'test:tiny:4',
        ns: 'tiny',
        settings: {},
        exported_at: 0,
      },
      [
        {
          key: b64('t:1'),
          text: 'flat by the baltic sea',
          value: b64('v1'),
          pttl: -1,
          vec: fp32([1, 0, 0, 0]),
        },
        {
          key: b64('t:2'),
          text: 'cheap pizza in berlin',
          value: b64('v2'),
          pttl: -1,
          vec: fp32([0, 1, 0, 0]),
        },
      ],
    );
    const imp = await cli(['import', '--upstream', b.r.url], input);
    expect(imp.stderr).toMatch(
      /imported 2 entries \(2 re-embedded, 0 replaced\) into namespace tiny\n/,
    );
    const hash = createHashEmbedder({});
    const [v1] = await hash.embed(['flat by the baltic sea']);
    const r1 = await record(b.c, 't:1');
    expect(r1.model).toBe(HASH_MODEL);
    expect(r1.vec).toEqual(Buffer.from(v1!.buffer));
  }, 60_000);

  it('a running semcache answers from imported entries after a restart', async () => {
    const a = await redis();
    const b = await redis();
    await seed(a.r);
    const server = await serve(b.r.url);
    const defaults = await cli(['export', '--ns', 'default', '--upstream', a.r.url]);
    const docs = await cli(['export', '--ns', 'docs', '--upstream', a.r.url]);
    expect((await cli(['import', '--upstream', b.r.url], defaults.stdout)).code).toBe(0);
    expect((await cli(['import', '--ns', 'other', '--upstream', b.r.url], docs.stdout)).code).toBe(
      0,
    );
    server.kill('SIGTERM');
    await new Promise((done) => server.once('exit', done));
    const again = await serve(b.r.url);
    const port = Number(/ready on 127\.0\.0\.1:(\d+)/.exec(stderrOf.get(again)!)![1]);
    const c = new Redis({ port });
    cleanups.push(() => c.disconnect());
    expect(await c.call('SEMGET', 'house near ostsee', 'THRESHOLD', '0.3')).toBe('Try Warnemünde');
    expect(await c.call('SEMGET', 'wohnung near ostsee')).toBe('Try Warnemünde'); // exact tier
    expect(await c.call('SEMSEARCH', 'TEXT', 'the baltic sea', 'NS', 'other')).toEqual(['d:1']);
    expect(await c.call('SEMNS', 'GET', 'other')).toEqual(
      expect.arrayContaining(['threshold', '0.59999999999999998']),
    );
  }, 60_000);
});

describe('what export leaves out', () => {
  it('an entry whose value is gone since its record was written, and an unknown namespace', async () => {
    const a = await redis();
    await seed(a.r);
    await a.c.del('plain'); // directly: the record stays until a sweep
    const out = await cli(['export', '--ns', 'default', '--upstream', a.r.url]);
    expect(out.code).toBe(0);
    expect(out.stderr).toBe(
      'semcache export: exported 2 entries of namespace default (1 left out: value gone since the scan)\n',
    );
    expect(out.stdout).not.toContain(b64('plain'));
    const none = await cli(['export', '--ns', 'nope', '--upstream', a.r.url]);
    expect(none).toMatchObject({
      code: 1,
      stdout: '',
      stderr: "semcache export: namespace 'nope' not found\n",
    });
  }, 60_000);
});

const HEADER = {
  semcache_dump: 1,
  semcache: '0.1.0',
  model: HASH_MODEL,
  ns: 'bad',
  settings: {},
  exported_at: 0,
};
const unit = fp32([1, ...new Array(383).fill(0)]);
const good = (k: string) => ({
  key: b64(k),
  text: `text of ${k}`,
  value: b64(`value of ${k}`),
  pttl: -1,
  vec: unit,
});

describe('limits and permissions', () => {
  it('export leaves out a value too large for a dump line, names its key, and exits 1', async () => {
    const a = await redis();
    const proxy = await startSemanticProxy(a.r.port);
    const p = new Redis({ port: proxy.port });
    cleanups.push(() => proxy.stop());
    cleanups.push(() => p.disconnect());
    // 4/3 of 48.1 MiB in base64 passes the 64 MiB line.
    await p.call('SEMSET', 'huge', 'a huge value', Buffer.alloc(48.1 * 1024 * 1024, 0x41));
    await p.call('SEMSET', 'small', 'a small value', 's');
    const out = await cli(['export', '--ns', 'default', '--upstream', a.r.url]);
    expect(out.stderr).toMatch(
      /key "huge": left out, its value \(50436505 bytes\) makes a dump line over 67108864 bytes/,
    );
    expect(out.stderr).toMatch(/exported 1 entries of namespace default \(1 left out: too large\)/);
    expect(out.code).toBe(1);
    expect(out.stdout.trimEnd().split('\n')).toHaveLength(3);
    expect(out.stdout).toContain(b64('small'));
  }, 60_000);

  it("import as semcache's own user (read-only on clients' keys) stops at the first SET, naming the remedy", async () => {
    const b = await redis();
    await b.c.call('ACL', 'SETUSER', 'semcache', 'on', '>pw', '~semcache:*', '%R~*', '+@all');
    const url = `redis://semcache:pw@127.0.0.1:${b.r.port}`;
    const res = await cli(['import', '--upstream', url], dump(HEADER, [good('ok:1')]));
    expect(res.stderr).toMatch(
      /^semcache import: line 2: redis refused the SET: NOPERM .*\(import writes the values: its Redis user must be allowed to write these keys, docs\/security.md\)\n$/,
    );
    expect(res.code).toBe(1);
    expect(await b.c.keys('*')).toEqual([]);
  }, 60_000);
});

describe('dumps that cannot be read', () => {
  const wellFormed = dump(HEADER, [good('ok:1'), good('ok:2')]);
  const cases: [string, string | Buffer, RegExp, string[]][] = [
    ['empty input', '', /^semcache import: line 1: the input is empty, not a semcache dump\n$/, []],
    ['not a dump', '{"hello":1}\n', /line 1: not a semcache dump/, []],
    [
      'a newer format',
      dump({ ...HEADER, semcache_dump: 2 }, []),
      /line 1: dump format 2 is newer than this semcache reads \(1\)/,
      [],
    ],
    [
      'a line that is not JSON',
      `${JSON.stringify(HEADER)}\n${JSON.stringify(good('ok:1'))}\n{"key": nope\n`,
      /line 3: not valid JSON/,
      ['ok:1'],
    ],
    [
      'a vector of the wrong length',
      dump(HEADER, [good('ok:1'), { ...good('bad:1'), vec: fp32([1, 0, 0]) }]),
      /line 3: 'vec' has 12 bytes, model hash:hash-v1-384:384 needs 1536 \(384 FP32\)/,
      ['ok:1'],
    ],
    [
      'a NaN in the vector',
      dump(HEADER, [{ ...good('bad:1'), vec: fp32([Number.NaN, ...new Array(383).fill(0)]) }]),
      /line 2: 'vec' has a NaN or infinite component/,
      [],
    ],
    [
      'a value that is not base64',
      dump(HEADER, [{ ...good('bad:1'), value: 'no!' }]),
      /line 2: 'value' is not a base64 string/,
      [],
    ],
    [
      'a TTL of 0',
      dump(HEADER, [{ ...good('bad:1'), pttl: 0 }]),
      /line 2: 'pttl' is not a positive number of milliseconds or -1/,
      [],
    ],
    [
      'attributes that are not an object',
      dump(HEADER, [{ ...good('bad:1'), attrs: '[1]' }]),
      /line 2: 'attrs': ATTRS must be a JSON object/,
      [],
    ],
    [
      'cut in the middle of a line',
      wellFormed.slice(0, wellFormed.indexOf(b64('ok:2')) + 20),
      /line 3: the dump ends in the middle of this line \(truncated\)/,
      ['ok:1'],
    ],
    [
      'no end line',
      dump(HEADER, [good('ok:1'), good('ok:2')], null),
      /line 4: the dump ends without its end line \(truncated\)/,
      ['ok:1', 'ok:2'],
    ],
    [
      'an end line with another count',
      dump(HEADER, [good('ok:1')], 2),
      /line 3: the end line counts 2 entries, the dump has 1/,
      ['ok:1'],
    ],
    [
      'a line after the end line',
      `${dump(HEADER, [good('ok:1')])}${JSON.stringify(good('bad:1'))}\n`,
      /line 4: data after the end line \(line 3\)/,
      ['ok:1'],
    ],
    [
      'a line over 64 MiB',
      Buffer.concat([
        Buffer.from(`${JSON.stringify(HEADER)}\n`),
        Buffer.alloc(64 * 1024 * 1024 + 1, 0x61),
      ]),
      /line 2: line longer than 67108864 bytes/,
      [],
    ],
  ];

  it.each(cases)(
    '%s: exit 1, the line named, nothing of it written',
    async (_, input, message, written) => {
      const b = await redis();
      const res = await cli(['import', '--upstream', b.r.url], input);
      expect(res.stderr).toMatch(message);
      expect(res.code).toBe(1);
      // The entries before the bad line are imported (documented), nothing of or after it.
      const keys = (await b.c.keys('*')).filter((k) => !k.startsWith('semcache:')).sort();
      expect(keys).toEqual(written);
      expect(await b.c.keys('semcache:rec:*')).toHaveLength(written.length);
      // --check finds the same fault and writes nothing, without a Redis.
      const check = await runProcess(process.execPath, [cliPath, 'import', '--check'], {
        env: env(),
        input,
      });
      expect(check.stderr).toMatch(message);
      expect(check.code).toBe(1);
    },
    60_000,
  );

  it('--check reads a good dump whole and writes nothing', async () => {
    const res = await cli(['import', '--check'], dump(HEADER, [good('ok:1'), good('ok:2')]));
    expect(res).toMatchObject({
      code: 0,
      stderr: `semcache import: dump ok: 2 entries of namespace bad, model ${HASH_MODEL}\n`,
    });
  });

  it.each([
    [['export', '--upstream', 'redis://127.0.0.1:1'], /semcache export: --ns <name> is required/],
    [['export', '--ns', 'x'], /semcache export: --upstream is required/],
    [['import'], /semcache import: --upstream is required/],
    [['import', '--bogus'], /semcache import: Unknown option '--bogus'/],
    [['export', '--ns', 'x', '--check'], /semcache export: Unknown option '--check'/],
    [['import', '--ns', '', '--check'], /semcache import: --ns: '' is not a namespace name/],
  ])('usage error %j exits 2', async (args, message) => {
    const res = await cli(args);
    expect(res.stderr).toMatch(message);
    expect(res.stderr).toContain(`Try 'semcache ${args[0]} --help'.`);
    expect(res).toMatchObject({ code: 2, stdout: '' });
  });

  it('an unreachable Redis exits 1 naming it', async () => {
    const res = await cli(['import', '--upstream', 'redis://127.0.0.1:1'], dump(HEADER, []));
    expect(res.stderr).toMatch(/^semcache import: failed: redis 127\.0\.0\.1:1 unreachable/);
    expect(res.code).toBe(1);
  });

  it('--help of each subcommand, and semcache --help names them', async () => {
    expect((await cli(['export', '--help'])).stdout).toMatch(/^Usage: semcache export --ns <name>/);
    expect((await cli(['import', '--help'])).stdout).toMatch(
      /^Usage: semcache import \[--ns <name>\]/,
    );
    const help = (await cli(['--help'])).stdout;
    expect(help).toContain('semcache export --ns <name>');
    expect(help).toContain('semcache import [--ns <name>]');
  });
});

const stderrOf = new Map<ChildProcess, string>();

/** A semcache process in front of `upstream`, once it says it is ready. */
async function serve(upstream: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [cliPath, '--port', '0', '--upstream', upstream], {
    env: env(),
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  stderrOf.set(child, '');
  child.stderr!.on('data', (d: Buffer) => stderrOf.set(child, stderrOf.get(child) + d.toString()));
  cleanups.push(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const deadline = Date.now() + 15_000;
  while (!/index rebuilt from redis/.test(stderrOf.get(child)!)) {
    if (child.exitCode !== null || Date.now() > deadline)
      throw new Error(`semcache did not start:\n${stderrOf.get(child)}`);
    await sleep(20);
  }
  return child;
}
