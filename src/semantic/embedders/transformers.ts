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

import { resolve } from 'node:path';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { type Embedder, EmbedderUnavailableError } from '../types.js';
import {
  type Backend,
  describe,
  type LoadSpec,
  loadInThread,
  loadInWorker,
} from './model-backend.js';

export const DEFAULT_TRANSFORMERS_MODEL = 'Xenova/all-MiniLM-L6-v2';

/** onnxruntime session config entries: its thread pools sleep when idle instead of spinning. */
const NO_SPINNING = {
  'session.intra_op.allow_spinning': '0',
  'session.inter_op.allow_spinning': '0',
};

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
        session_options: {
          ...(threads === undefined ? {} : { intraOpNumThreads: threads }),
          // onnxruntime's threads spin between operators by default: 0.2 of
          // a core on 2 cores here, taken from the event loop, Redis and the
          // clients while a batch runs, for no throughput (docs/benchmarks.md).
          extra: NO_SPINNING,
        },
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
