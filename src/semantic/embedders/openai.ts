/*
 * Embedder for any OpenAI-compatible embeddings endpoint: OpenAI itself,
 * vLLM, llama.cpp's server, Ollama's /v1, text-embeddings-inference, LiteLLM.
 *
 * Model: one POST `${url}/embeddings` with `{ model, input: [texts] }` per
 * chunk of at most maxBatch texts; chunks go one after another, not in
 * parallel, so a big request cannot flood a small local server. The reply's
 * `data[i].embedding` is put back in input order by `data[i].index` (servers
 * may reorder), checked (count, one dimension for all, finite numbers) and
 * L2-normalized here, because not every server normalizes.
 *
 * The dimension comes from options.dim or is learned from the first reply;
 * load() makes one tiny request so a wrong URL, key or model fails at startup
 * rather than on the first SEMSET. Every failure (refused, timeout, HTTP
 * error, malformed reply) is an EmbedderUnavailableError whose message names
 * the endpoint and the cause; the API key never appears in a message.
 */
import { type Embedder, EmbedderUnavailableError } from '../types.js';

export interface OpenAIEmbedderOptions {
  /** Base URL including the API version, e.g. http://localhost:8000/v1. */
  url: string;
  model: string;
  /** Sent as `Authorization: Bearer <key>` when given. */
  apiKey?: string;
  /** Expected dimension; learned from the first reply when omitted. */
  dim?: number;
  /** Per request, including reading the reply. Default 10000. */
  timeoutMs?: number;
  /** Most texts per request; larger inputs are split. Default 256. */
  maxBatch?: number;
  /** Environment variable the remedy tells the user to check for the key. */
  keyEnv?: string;
}

/** A server's error text is shown to the user; keep a runaway HTML page short. */
const MAX_SERVER_TEXT = 200;

export function createOpenAIEmbedder(options: OpenAIEmbedderOptions): Embedder {
  return new OpenAIEmbedder(options);
}

class OpenAIEmbedder implements Embedder {
  readonly kind = 'openai';
  readonly model: string;
  readonly #endpoint: string;
  readonly #apiKey: string | undefined;
  readonly #timeoutMs: number;
  readonly #maxBatch: number;
  readonly #remedy: string;
  #dim: number;
  #loading: Promise<void> | undefined;

  constructor(o: OpenAIEmbedderOptions) {
    for (const [name, v] of [
      ['dim', o.dim],
      ['timeoutMs', o.timeoutMs],
      ['maxBatch', o.maxBatch],
    ] as const) {
      if (v !== undefined && (!Number.isInteger(v) || v < 1))
        throw new RangeError(`${name} must be a positive integer, got ${v}`);
    }
    this.model = o.model;
    this.#endpoint = `${o.url.replace(/\/+$/, '')}/embeddings`;
    this.#apiKey = o.apiKey || undefined;
    this.#timeoutMs = o.timeoutMs ?? 10_000;
    this.#maxBatch = o.maxBatch ?? 256;
    this.#dim = o.dim ?? 0;
    this.#remedy =
      `check --embed-url (is an OpenAI-compatible server listening at ${this.#endpoint}?), ` +
      `--embed-model and the API key in ${o.keyEnv ?? 'SEMCACHE_EMBED_KEY'}, ` +
      'or use --embedder hash for the offline lexical embedder';
  }

  get dim(): number {
    return this.#dim;
  }

  load(): Promise<void> {
    // A failed load is forgotten so a later call can retry once the server is up.
    this.#loading ??= this.embed(['semcache']).then(
      () => undefined,
      (err: unknown) => {
        this.#loading = undefined;
        throw err;
      },
    );
    return this.#loading;
  }

  async embed(texts: string[]): Promise<Float32Array[]> {
    const out: Float32Array[] = [];
    for (let i = 0; i < texts.length; i += this.#maxBatch) {
      out.push(...(await this.#request(texts.slice(i, i + this.#maxBatch))));
    }
    return out;
  }

  async #request(texts: string[]): Promise<Float32Array[]> {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (this.#apiKey) headers.authorization = `Bearer ${this.#apiKey}`;
    let status: number;
    let body: string;
    try {
      const res = await fetch(this.#endpoint, {
        method: 'POST',
        headers,
        body: JSON.stringify({ model: this.model, input: texts }),
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
      status = res.status;
      body = await res.text();
    } catch (err) {
      throw this.#fail(this.#describe(err));
    }
    if (status < 200 || status > 299) throw this.#fail(`HTTP ${status}${serverMessage(body)}`);
    let json: unknown;
    try {
      json = JSON.parse(body);
    } catch {
      throw this.#fail(`malformed JSON in the reply: ${JSON.stringify(clip(body))}`);
    }
    return this.#vectors(json, texts.length);
  }

  /** Checks the reply's shape and returns normalized vectors in input order. */
  #vectors(json: unknown, expected: number): Float32Array[] {
    const data = (json as { data?: unknown } | null)?.data;
    if (!Array.isArray(data)) throw this.#fail('malformed reply: no "data" array');
    if (data.length !== expected)
      throw this.#fail(`returned ${data.length} embeddings for ${expected} inputs`);
    const out = new Array<Float32Array | undefined>(expected);
    // Learned from the first vector unless known, so every later vector (and
    // every later reply) must agree; kept only once the whole reply passed.
    let dim = this.#dim;
    for (const [pos, item] of data.entries()) {
      const { index = pos, embedding } = (item ?? {}) as { index?: unknown; embedding?: unknown };
      if (typeof index !== 'number' || !Number.isInteger(index) || index < 0 || index >= expected)
        throw this.#fail(`malformed reply: bad index ${JSON.stringify(index)}`);
      if (out[index]) throw this.#fail(`malformed reply: index ${index} appears twice`);
      if (!Array.isArray(embedding) || embedding.length === 0)
        throw this.#fail(`malformed reply: data[${pos}].embedding is not a list of numbers`);
      if (dim !== 0 && embedding.length !== dim)
        throw this.#fail(`returned ${embedding.length}-dimensional vectors, expected ${dim}`);
      dim = embedding.length;
      out[index] = this.#normalize(embedding, pos);
    }
    this.#dim = dim;
    return out as Float32Array[];
  }

  #normalize(embedding: unknown[], pos: number): Float32Array {
    let norm = 0;
    for (const x of embedding) {
      if (typeof x !== 'number' || !Number.isFinite(x))
        throw this.#fail(`malformed reply: data[${pos}].embedding holds ${JSON.stringify(x)}`);
      norm += x * x;
    }
    if (norm === 0) throw this.#fail(`malformed reply: data[${pos}].embedding is a zero vector`);
    const inv = 1 / Math.sqrt(norm);
    return Float32Array.from(embedding as number[], (x) => x * inv);
  }

  #describe(err: unknown): string {
    const e = err as {
      name?: string;
      message?: string;
      cause?: { code?: string; message?: string };
    };
    if (e.name === 'TimeoutError' || e.name === 'AbortError')
      return `no reply within ${this.#timeoutMs} ms`;
    // undici reports "fetch failed" and puts the socket error in `cause`.
    return e.cause?.message ?? e.cause?.code ?? e.message ?? String(err);
  }

  #fail(cause: string): EmbedderUnavailableError {
    return new EmbedderUnavailableError(
      `embedding server ${this.#endpoint} unavailable: ${cause}`,
      this.#remedy,
    );
  }
}

/** ": <message>" from an error body in the OpenAI, TEI or plain-text style, or "". */
function serverMessage(body: string): string {
  let text = body.trim();
  try {
    const j = JSON.parse(body) as { error?: unknown; message?: unknown; detail?: unknown };
    const err = j?.error as { message?: unknown } | string | undefined;
    const m = typeof err === 'string' ? err : (err?.message ?? j?.message ?? j?.detail);
    if (typeof m === 'string') text = m;
  } catch {
    // not JSON: the body itself is the message
  }
  return text ? `: ${clip(text)}` : '';
}

function clip(s: string): string {
  return s.length > MAX_SERVER_TEXT ? `${s.slice(0, MAX_SERVER_TEXT)}...` : s;
}
