import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createOpenAIEmbedder } from '../../src/semantic/embedders/openai.js';
import { EmbedderUnavailableError } from '../../src/semantic/types.js';

/*
 * A fake OpenAI-compatible server on port 0. Its vectors are deterministic
 * and deliberately not normalized: [length, first char code, 1, 0, ...].
 */
const DIM = 8;

interface Recorded {
  method: string | undefined;
  url: string | undefined;
  auth: string | undefined;
  contentType: string | undefined;
  body: { model: string; input: string[] };
}

type Mode =
  | { kind: 'ok'; shuffle?: boolean; dim?: number }
  | { kind: 'delay'; ms: number }
  | { kind: 'status'; status: number; body: string }
  | { kind: 'raw'; body: string }
  | { kind: 'reply'; make: (input: string[]) => unknown };

let mode: Mode = { kind: 'ok' };
let requests: Recorded[] = [];
let server: Server;
let base: string;

function vectorFor(text: string, dim = DIM): number[] {
  const v = new Array<number>(dim).fill(0);
  v[0] = text.length + 1;
  if (dim > 1) v[1] = text.charCodeAt(0) || 0;
  if (dim > 2) v[2] = 1;
  return v;
}

function normalized(v: number[]): number[] {
  const n = Math.hypot(...v);
  return v.map((x) => Math.fround(x / n));
}

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  let raw = '';
  for await (const chunk of req) raw += chunk;
  const body = JSON.parse(raw) as Recorded['body'];
  requests.push({
    method: req.method,
    url: req.url,
    auth: req.headers.authorization,
    contentType: req.headers['content-type'],
    body,
  });
  const send = (status: number, text: string) => {
    res.writeHead(status, { 'content-type': 'application/json' }).end(text);
  };
  const data = (dim?: number) =>
    body.input.map((t, index) => ({ object: 'embedding', index, embedding: vectorFor(t, dim) }));
  switch (mode.kind) {
    case 'ok': {
      const d = data(mode.dim);
      if (mode.shuffle) d.reverse();
      return send(200, JSON.stringify({ object: 'list', data: d, model: body.model }));
    }
    case 'delay':
      await new Promise((r) => setTimeout(r, mode.kind === 'delay' ? mode.ms : 0));
      return send(200, JSON.stringify({ data: data() }));
    case 'status':
      return send(mode.status, mode.body);
    case 'raw':
      return send(200, mode.body);
    case 'reply':
      return send(200, JSON.stringify(mode.make(body.input)));
  }
}

beforeAll(async () => {
  server = createServer((req, res) => void handle(req, res));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

beforeEach(() => {
  mode = { kind: 'ok' };
  requests = [];
});

async function failure(p: Promise<unknown>): Promise<EmbedderUnavailableError> {
  const err = await p.then(
    () => expect.unreachable('expected a rejection'),
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(EmbedderUnavailableError);
  const e = err as EmbedderUnavailableError;
  expect(e.remedy).toMatch(/--embed-url/);
  expect(e.remedy).toMatch(/SEMCACHE_EMBED_KEY/);
  expect(e.remedy).toMatch(/--embedder hash/);
  return e;
}

describe('openai embedder: requests', () => {
  it('posts { model, input } to <url>/embeddings, stripping a trailing slash', async () => {
    const e = createOpenAIEmbedder({ url: `${base}/`, model: 'm-1' });
    expect(e.kind).toBe('openai');
    expect(e.model).toBe('m-1');
    await e.embed(['hello', 'world']);
    expect(requests).toHaveLength(1);
    const [r] = requests;
    expect(r!.method).toBe('POST');
    expect(r!.url).toBe('/v1/embeddings');
    expect(r!.contentType).toBe('application/json');
    expect(r!.body).toEqual({ model: 'm-1', input: ['hello', 'world'] });
  });

  it('sends the bearer key only when one is given', async () => {
    await createOpenAIEmbedder({ url: base, model: 'm', apiKey: 'sk-test' }).embed(['a']);
    await createOpenAIEmbedder({ url: base, model: 'm' }).embed(['a']);
    expect(requests.map((r) => r.auth)).toEqual(['Bearer sk-test', undefined]);
  });

  it('splits inputs larger than maxBatch and keeps the order', async () => {
    const e = createOpenAIEmbedder({ url: base, model: 'm', maxBatch: 3 });
    const texts = ['a', 'bb', 'ccc', 'dddd', 'eeeee', 'ffffff', 'g'];
    const vs = await e.embed(texts);
    expect(requests.map((r) => r.body.input)).toEqual([
      ['a', 'bb', 'ccc'],
      ['dddd', 'eeeee', 'ffffff'],
      ['g'],
    ]);
    expect(vs.map((v) => Array.from(v))).toEqual(texts.map((t) => normalized(vectorFor(t))));
  });

  it('makes no request for no texts', async () => {
    expect(await createOpenAIEmbedder({ url: base, model: 'm' }).embed([])).toEqual([]);
    expect(requests).toHaveLength(0);
  });
});

describe('openai embedder: replies', () => {
  it('L2-normalizes the vectors', async () => {
    const [v] = await createOpenAIEmbedder({ url: base, model: 'm' }).embed(['xyz']);
    expect(v).toBeInstanceOf(Float32Array);
    expect(Array.from(v!)).toEqual(normalized(vectorFor('xyz')));
    expect(Math.hypot(...v!)).toBeCloseTo(1, 6);
  });

  it('orders the vectors by index, not by position in data', async () => {
    mode = { kind: 'ok', shuffle: true };
    const vs = await createOpenAIEmbedder({ url: base, model: 'm' }).embed(['a', 'bb', 'ccc']);
    expect(vs.map((v) => Array.from(v))).toEqual(
      ['a', 'bb', 'ccc'].map((t) => normalized(vectorFor(t))),
    );
  });

  it('learns the dimension on load() with one tiny request, once', async () => {
    const e = createOpenAIEmbedder({ url: base, model: 'm' });
    expect(e.dim).toBe(0);
    await Promise.all([e.load(), e.load()]);
    await e.load();
    expect(e.dim).toBe(DIM);
    expect(requests).toHaveLength(1);
    expect(requests[0]!.body.input).toHaveLength(1);
  });

  it('retries load() after a failure', async () => {
    const e = createOpenAIEmbedder({ url: base, model: 'm' });
    mode = { kind: 'status', status: 503, body: 'warming up' };
    await failure(e.load());
    mode = { kind: 'ok' };
    await e.load();
    expect(e.dim).toBe(DIM);
  });

  it('takes the dimension from the options and rejects vectors that differ', async () => {
    const e = createOpenAIEmbedder({ url: base, model: 'm', dim: 16 });
    expect(e.dim).toBe(16);
    const err = await failure(e.embed(['a']));
    expect(err.message).toMatch(/returned 8-dimensional vectors, expected 16/);
  });

  it('rejects a later reply whose dimension changed', async () => {
    const e = createOpenAIEmbedder({ url: base, model: 'm' });
    await e.embed(['a']);
    mode = { kind: 'ok', dim: 4 };
    const err = await failure(e.embed(['a']));
    expect(err.message).toMatch(/returned 4-dimensional vectors, expected 8/);
    expect(e.dim).toBe(DIM);
  });

  it('validates option values', () => {
    expect(() => createOpenAIEmbedder({ url: base, model: 'm', maxBatch: 0 })).toThrow(RangeError);
    expect(() => createOpenAIEmbedder({ url: base, model: 'm', dim: -1 })).toThrow(RangeError);
  });
});

describe('openai embedder: errors', () => {
  it('connection refused names the URL and the cause', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const url = `http://127.0.0.1:${port}/v1`;
    const err = await failure(createOpenAIEmbedder({ url, model: 'm' }).embed(['a']));
    expect(err.message).toContain(`${url}/embeddings`);
    expect(err.message).toMatch(/ECONNREFUSED/);
  });

  it('times out', async () => {
    mode = { kind: 'delay', ms: 1000 };
    const e = createOpenAIEmbedder({ url: base, model: 'm', timeoutMs: 50 });
    const err = await failure(e.embed(['a']));
    expect(err.message).toMatch(/no reply within 50 ms/);
  });

  it('HTTP 401 carries the server message and never the key', async () => {
    mode = {
      kind: 'status',
      status: 401,
      body: JSON.stringify({ error: { message: 'Incorrect API key provided', type: 'auth' } }),
    };
    const e = createOpenAIEmbedder({ url: base, model: 'm', apiKey: 'sk-secret' });
    const err = await failure(e.embed(['a']));
    expect(err.message).toBe(
      `embedding server ${base}/embeddings unavailable: HTTP 401: Incorrect API key provided`,
    );
    expect(`${err.message} ${err.remedy}`).not.toContain('sk-secret');
  });

  it.each([
    [500, JSON.stringify({ message: 'model not loaded' }), 'HTTP 500: model not loaded'],
    [422, JSON.stringify({ detail: 'input too long' }), 'HTTP 422: input too long'],
    [404, 'Not Found', 'HTTP 404: Not Found'],
    [502, '', 'HTTP 502'],
    [500, 'x'.repeat(1000), `HTTP 500: ${'x'.repeat(200)}...`],
  ])('HTTP %i with %j -> %s', async (status, body, expected) => {
    mode = { kind: 'status', status, body };
    const err = await failure(createOpenAIEmbedder({ url: base, model: 'm' }).embed(['a']));
    expect(err.message).toMatch(new RegExp(`unavailable: ${expected.replace(/[.*+?]/g, '\\$&')}$`));
  });

  it('malformed JSON', async () => {
    mode = { kind: 'raw', body: '<html>oops' };
    const err = await failure(createOpenAIEmbedder({ url: base, model: 'm' }).embed(['a']));
    expect(err.message).toMatch(/malformed JSON in the reply: "<html>oops"/);
  });

  const bad: [string, (input: string[]) => unknown, RegExp][] = [
    ['no data', () => ({ object: 'list' }), /no "data" array/],
    ['null reply', () => null, /no "data" array/],
    [
      'wrong count',
      (i) => ({ data: [{ index: 0, embedding: [1] }].slice(0, i.length - 1) }),
      /returned 0 embeddings for 1 inputs/,
    ],
    ['index out of range', () => ({ data: [{ index: 5, embedding: [1, 2] }] }), /bad index 5/],
    [
      'duplicate index',
      () => ({
        data: [
          { index: 0, embedding: [1] },
          { index: 0, embedding: [1] },
        ],
      }),
      /index 0 appears twice/,
    ],
    ['not numbers', () => ({ data: [{ index: 0, embedding: ['a', 'b'] }] }), /holds "a"/],
    ['no embedding', () => ({ data: [{ index: 0 }] }), /embedding is not a list of numbers/],
    ['zero vector', () => ({ data: [{ index: 0, embedding: [0, 0] }] }), /zero vector/],
    [
      'mixed dimensions',
      () => ({
        data: [
          { index: 0, embedding: [1, 2] },
          { index: 1, embedding: [1] },
        ],
      }),
      /1-dimensional vectors, expected 2/,
    ],
  ];
  for (const [what, make, message] of bad) {
    it(`rejects a reply with ${what}`, async () => {
      mode = { kind: 'reply', make };
      const texts = what === 'duplicate index' || what === 'mixed dimensions' ? ['a', 'b'] : ['a'];
      const e = createOpenAIEmbedder({ url: base, model: 'm' });
      const err = await failure(e.embed(texts));
      expect(err.message).toMatch(message);
      expect(e.dim).toBe(0); // nothing learned from a rejected reply
    });
  }
});
