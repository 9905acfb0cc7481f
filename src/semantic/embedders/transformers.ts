/*
 * The default embedder: a sentence-embedding model (Xenova/all-MiniLM-L6-v2
 * unless told otherwise) run by transformers.js on onnxruntime-node, with mean
 * pooling and L2 normalization, i.e. what sentence-transformers computes.
 *
 * Nothing is loaded before the first load() or embed(): transformers.js (and
 * with it onnxruntime-node's native library) is imported lazily, so a proxy
 * that does not use this embedder never pays for it.
 *
 * Event loop: onnxruntime-node creates sessions and runs them synchronously on
 * the calling thread (behind a setImmediate). Measured with the MiniLM shape on
 * 2 cores: session creation blocks ~0.25-0.35 s, a batch of 32 short texts
 * ~0.2-0.35 s, 8 texts of 512 tokens ~1.5 s. So by default (`worker: true`)
 * the model lives in a worker thread and the caller's event loop never runs
 * it; `worker: false` runs it in the calling thread, in model calls of bounded
 * size with a yield to the event loop between them.
 *
 * Model files: with dtype fp32 (the default here, and transformers.js's own
 * default on the Node CPU device) the model is <dir>/onnx/model.onnx; other
 * dtypes load <dir>/onnx/model_<suffix>.onnx (q8 -> model_quantized.onnx,
 * fp16 -> model_fp16.onnx, ...), next to config.json and tokenizer.json.
 */

import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';
import { type Embedder, EmbedderUnavailableError } from '../types.js';

export const DEFAULT_TRANSFORMERS_MODEL = 'Xenova/all-MiniLM-L6-v2';

/** transformers.js dtypes (each selects an ONNX file, see DTYPE_FILE_SUFFIX). */
export type TransformersDtype = 'fp32' | 'fp16' | 'q8' | 'int8' | 'uint8' | 'q4' | 'q4f16' | 'bnb4';

/** The file-name suffix transformers.js 4.x appends to onnx/model for each dtype. */
const DTYPE_FILE_SUFFIX: Record<TransformersDtype, string> = {
  fp32: '',
  fp16: '_fp16',
  q8: '_quantized',
  int8: '_int8',
  uint8: '_uint8',
  q4: '_q4',
  q4f16: '_q4f16',
  bnb4: '_bnb4',
};

export interface TransformersEmbedderOptions {
  /** Hugging Face model id; default Xenova/all-MiniLM-L6-v2. Also the reported model name. */
  model?: string;
  /**
   * A local model directory (config.json, tokenizer.json, onnx/model.onnx): loaded
   * from there only, never downloaded.
   */
  modelDir?: string;
  /** Where downloaded models are cached (transformers.js env.cacheDir). */
  cacheDir?: string;
  /** Which ONNX file to load; default fp32 (onnx/model.onnx). */
  dtype?: TransformersDtype;
  /** Allow downloads from the Hugging Face hub; default true without modelDir, false with it. */
  allowRemote?: boolean;
  /** onnxruntime intra-op threads; default onnxruntime's (one per core). */
  threads?: number;
  /** Most texts per model call; default 32. */
  maxBatch?: number;
  /** Run the model in a worker thread (default true), keeping the caller's event loop free. */
  worker?: boolean;
}

/** An Embedder that holds a model (and possibly a thread) until closed. */
export interface TransformersEmbedder extends Embedder {
  /** Frees the model and stops its worker; a later load() or embed() loads again. */
  close(): Promise<void>;
}

/** What the user can do when the model cannot be had. */
export function transformersRemedy(dtype: TransformersDtype = 'fp32'): string {
  const file = `onnx/model${DTYPE_FILE_SUFFIX[dtype]}.onnx`;
  return `use --model-dir <dir with config.json, tokenizer.json and ${file}>, or --embedder hash`;
}

/** The model's positions; longer inputs are truncated by the tokenizer. */
const MAX_TOKENS = 512;
/**
 * Padded token slots per model call (texts x longest text). Attention memory
 * grows with texts x length^2, so long texts go in smaller batches.
 */
const TOKEN_BUDGET = 4096;

/** An upper bound of a text's token count: WordPiece never yields more tokens than characters. */
function tokenBound(text: string): number {
  return Math.min(MAX_TOKENS, text.length + 2);
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const cause = err.cause instanceof Error ? ` (${err.cause.message})` : '';
    return `${err.message}${cause}`;
  }
  return String(err);
}

/** What a backend needs to load the model. */
interface LoadSpec {
  source: string;
  allowRemote: boolean;
  cacheDir: string | undefined;
  pipelineOptions: Record<string, unknown>;
}

/** A loaded model: runs one model call (mean-pooled, normalized) on a batch. */
interface Backend {
  readonly hidden: unknown;
  /** True once the backend can no longer run (its worker died, or it was closed). */
  readonly dead: boolean;
  run(texts: string[]): Promise<{ dims: number[]; data: ArrayLike<number> }>;
  close(): Promise<void>;
}

/** The part of transformers.js's FeatureExtractionPipeline this module uses. */
interface Extractor {
  (
    texts: string[],
    options: { pooling: 'mean'; normalize: boolean },
  ): Promise<{ dims: number[]; data: ArrayLike<number> }>;
  model: { config: { hidden_size?: unknown } };
  dispose(): Promise<unknown>;
}

// ------------------------------------------------------------- in-thread

async function loadInThread(spec: LoadSpec): Promise<Backend> {
  let lib: typeof import('@huggingface/transformers');
  try {
    lib = await import('@huggingface/transformers');
  } catch (err) {
    throw new Error(`cannot load @huggingface/transformers / onnxruntime-node: ${describe(err)}`);
  }
  // transformers.js settings are process-wide (per thread)
  lib.env.allowRemoteModels = spec.allowRemote;
  if (spec.cacheDir !== undefined) lib.env.cacheDir = spec.cacheDir;
  const pipe = await lib.pipeline('feature-extraction', spec.source, spec.pipelineOptions);
  const extractor = pipe as unknown as Extractor;
  let closed = false;
  return {
    hidden: extractor.model.config.hidden_size,
    get dead() {
      return closed;
    },
    run: (texts) =>
      closed
        ? Promise.reject(new Error('embedder closed'))
        : extractor(texts, { pooling: 'mean', normalize: true }),
    close: async () => {
      closed = true;
      await extractor.dispose();
    },
  };
}

// ---------------------------------------------------------------- worker

/*
 * The worker's program (CommonJS, run with eval so that it needs no file of its
 * own in src/ or dist/). It loads the CommonJS build of transformers.js from
 * the path the main thread resolved, then answers {id, texts} messages.
 */
const WORKER_SOURCE = `
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const describe = (err) => err instanceof Error
  ? err.message + (err.cause instanceof Error ? ' (' + err.cause.message + ')' : '')
  : String(err);
let extractor;
(async () => {
  try {
    const lib = require(workerData.modulePath);
    lib.env.allowRemoteModels = workerData.allowRemote;
    if (workerData.cacheDir !== undefined) lib.env.cacheDir = workerData.cacheDir;
    extractor = await lib.pipeline('feature-extraction', workerData.source, workerData.pipelineOptions);
    parentPort.postMessage({ type: 'ready', hidden: extractor.model.config.hidden_size });
  } catch (err) {
    parentPort.postMessage({ type: 'failed', message: describe(err) });
  }
})();
parentPort.on('message', async (msg) => {
  if (msg.type === 'close') {
    if (extractor) await extractor.dispose().catch(() => {});
    parentPort.close();
    return;
  }
  try {
    const r = await extractor(msg.texts, { pooling: 'mean', normalize: true });
    const data = Float32Array.from(r.data);
    parentPort.postMessage({ type: 'result', id: msg.id, dims: r.dims, data }, [data.buffer]);
  } catch (err) {
    parentPort.postMessage({ type: 'result', id: msg.id, error: describe(err) });
  }
});
`;

type WorkerReply =
  | { type: 'ready'; hidden: unknown }
  | { type: 'failed'; message: string }
  | { type: 'result'; id: number; dims: number[]; data: Float32Array }
  | { type: 'result'; id: number; error: string };

function loadInWorker(spec: LoadSpec): Promise<Backend> {
  let modulePath: string;
  try {
    modulePath = createRequire(import.meta.url).resolve('@huggingface/transformers');
  } catch (err) {
    return Promise.reject(new Error(`cannot find @huggingface/transformers: ${describe(err)}`));
  }
  const worker = new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: { ...spec, modulePath },
    name: 'semcache-embedder',
  });

  type Pending = {
    resolve: (r: { dims: number[]; data: Float32Array }) => void;
    reject: (e: Error) => void;
  };
  const pending = new Map<number, Pending>();
  let nextId = 1;
  let dead: Error | undefined;
  const exited = new Promise<void>((r) => worker.once('exit', () => r()));
  // The worker keeps the process alive only while it has work.
  worker.unref();

  let rejectLoad: (err: Error) => void = () => {};
  const fail = (err: Error): void => {
    dead ??= err;
    rejectLoad(err); // no effect once loaded
    for (const p of pending.values()) p.reject(err);
    pending.clear();
  };

  return new Promise<Backend>((resolveLoad, reject) => {
    rejectLoad = reject;
    worker.on('error', (err) => fail(new Error(`embedding worker failed: ${describe(err)}`)));
    worker.on('exit', (code) => fail(new Error(`embedding worker exited (code ${code})`)));
    worker.on('message', (msg: WorkerReply) => {
      if (msg.type === 'ready') {
        resolveLoad(backend(msg.hidden));
      } else if (msg.type === 'failed') {
        fail(new Error(msg.message));
        void worker.terminate();
      } else {
        const p = pending.get(msg.id);
        if (!p) return;
        pending.delete(msg.id);
        if (pending.size === 0) worker.unref();
        if ('error' in msg) p.reject(new Error(msg.error));
        else p.resolve({ dims: msg.dims, data: msg.data });
      }
    });
    // ref while loading, so that a caller awaiting load() keeps the process alive
    worker.ref();
  }).finally(() => {
    if (pending.size === 0) worker.unref();
  });

  function backend(hidden: unknown): Backend {
    return {
      hidden,
      get dead() {
        return dead !== undefined;
      },
      run(texts) {
        if (dead) return Promise.reject(dead);
        const id = nextId++;
        return new Promise((res, rej) => {
          pending.set(id, { resolve: res, reject: rej });
          worker.ref();
          worker.postMessage({ type: 'run', id, texts });
        });
      },
      async close() {
        const wasDead = dead !== undefined;
        fail(new Error('embedder closed'));
        if (!wasDead) {
          worker.ref();
          worker.postMessage({ type: 'close' });
        }
        // a worker that does not leave by itself within 2 s is stopped
        const timer = setTimeout(() => void worker.terminate(), 2000);
        await exited;
        clearTimeout(timer);
      },
    };
  }
}

// --------------------------------------------------------------- embedder

class TransformersEmbedderImpl implements TransformersEmbedder {
  readonly kind = 'transformers';
  readonly model: string;
  readonly #opts: TransformersEmbedderOptions;
  readonly #dtype: TransformersDtype;
  readonly #maxBatch: number;
  readonly #worker: boolean;
  #dim = 0;
  #loading: Promise<Backend> | undefined;

  constructor(opts: TransformersEmbedderOptions) {
    this.#opts = opts;
    this.model = opts.model ?? DEFAULT_TRANSFORMERS_MODEL;
    this.#dtype = opts.dtype ?? 'fp32';
    if (!Object.hasOwn(DTYPE_FILE_SUFFIX, this.#dtype)) {
      throw new TypeError(`unknown dtype ${String(this.#dtype)}`);
    }
    this.#maxBatch = Math.max(1, Math.floor(opts.maxBatch ?? 32));
    this.#worker = opts.worker ?? true;
  }

  get dim(): number {
    return this.#dim;
  }

  async load(): Promise<void> {
    await this.#backend();
  }

  /** One shared load; a failed load is forgotten so that a later call retries. */
  #backend(): Promise<Backend> {
    this.#loading ??= this.#load().catch((err: unknown) => {
      this.#loading = undefined;
      throw err;
    });
    return this.#loading;
  }

  async #load(): Promise<Backend> {
    const { modelDir, cacheDir, threads } = this.#opts;
    // An absolute directory is never a valid hub id, so transformers.js reads it
    // as a path (not relative to env.localModelPath).
    const source = modelDir === undefined ? this.model : resolve(modelDir);
    const where = modelDir === undefined ? `model ${this.model}` : `model directory ${source}`;
    const remedy = transformersRemedy(this.#dtype);
    const allowRemote = this.#opts.allowRemote ?? modelDir === undefined;
    const spec: LoadSpec = {
      source,
      allowRemote,
      cacheDir: cacheDir === undefined ? undefined : resolve(cacheDir),
      pipelineOptions: {
        dtype: this.#dtype,
        local_files_only: !allowRemote,
        ...(cacheDir === undefined ? {} : { cache_dir: resolve(cacheDir) }),
        ...(threads === undefined ? {} : { session_options: { intraOpNumThreads: threads } }),
      },
    };

    let backend: Backend;
    try {
      backend = await (this.#worker ? loadInWorker(spec) : loadInThread(spec));
    } catch (err) {
      throw new EmbedderUnavailableError(
        `cannot load the embedding ${where} (dtype ${this.#dtype}): ${describe(err)}`,
        remedy,
      );
    }
    const hidden = backend.hidden;
    if (typeof hidden !== 'number' || !Number.isInteger(hidden) || hidden <= 0) {
      await backend.close().catch(() => {});
      throw new EmbedderUnavailableError(
        `the embedding ${where} has no valid hidden_size in config.json`,
        remedy,
      );
    }
    this.#dim = hidden;
    return backend;
  }

  /** The loaded backend; one that died (say, its worker crashed) is replaced by a new load. */
  async #live(): Promise<Backend> {
    const loading = this.#backend();
    const backend = await loading;
    if (!backend.dead) return backend;
    if (this.#loading === loading) this.#loading = undefined;
    return this.#backend();
  }

  async embed(texts: string[]): Promise<Float32Array[]> {
    const backend = await this.#live();
    if (texts.length === 0) return [];
    const dim = this.#dim;
    const out = new Array<Float32Array>(texts.length);

    // Longest first, so each model call pads little; results go back in order.
    // Padding does not change a text's vector (masked attention, masked mean).
    const order = texts.map((_, i) => i);
    order.sort((a, b) => texts[b]!.length - texts[a]!.length || a - b);

    let start = 0;
    while (start < order.length) {
      const longest = tokenBound(texts[order[start]!]!);
      const count = Math.min(this.#maxBatch, Math.max(1, Math.floor(TOKEN_BUDGET / longest)));
      const idx = order.slice(start, start + count);
      // in-thread, let other work run between model calls
      if (start > 0 && !this.#worker) await yieldToLoop();
      const result = await backend.run(idx.map((i) => texts[i]!));
      if (result.dims.length !== 2 || result.dims[0] !== idx.length || result.dims[1] !== dim) {
        throw new Error(
          `embedding model returned shape [${result.dims.join(', ')}], expected [${idx.length}, ${dim}]`,
        );
      }
      const data = result.data;
      idx.forEach((textIndex, row) => {
        const v = new Float32Array(dim);
        for (let j = 0; j < dim; j++) v[j] = data[row * dim + j]!;
        out[textIndex] = v;
      });
      start += count;
    }
    return out;
  }

  async close(): Promise<void> {
    const loading = this.#loading;
    this.#loading = undefined;
    if (!loading) return;
    const backend = await loading.catch(() => undefined);
    await backend?.close();
  }
}

/** The transformers.js embedder; nothing is loaded until load() or embed(). */
export function createTransformersEmbedder(
  opts: TransformersEmbedderOptions = {},
): TransformersEmbedder {
  return new TransformersEmbedderImpl(opts);
}
