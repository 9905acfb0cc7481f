/*
 * Where the model runs for embedders/transformers.ts: a Backend runs one model
 * call (mean-pooled, normalized) on a batch of texts.
 * - In a worker thread (the default): the worker's program is eval'd CommonJS
 *   (no file of its own in src/ or dist/) that loads transformers.js from the
 *   path this thread resolved and answers {id, texts} messages.
 * - In this thread (loadInThread), for tests and tools.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

export function describe(err: unknown): string {
  if (err instanceof Error) {
    const cause = err.cause instanceof Error ? ` (${err.cause.message})` : '';
    return `${err.message}${cause}`;
  }
  return String(err);
}

/** What a backend needs to load the model. */
export interface LoadSpec {
  source: string;
  allowRemote: boolean;
  cacheDir: string | undefined;
  pipelineOptions: Record<string, unknown>;
}

/** A loaded model: runs one model call (mean-pooled, normalized) on a batch. */
export interface Backend {
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

export async function loadInThread(spec: LoadSpec): Promise<Backend> {
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

export function loadInWorker(spec: LoadSpec): Promise<Backend> {
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
