/*
 * The worker threads FAISS indexes are built and loaded in (builder.ts says
 * what runs there; one message is one job, answered with the address of the
 * index the thread released, or an error).
 *
 * A build runs in the process's kept build thread when that is free, else
 * in a thread of its own; a load always in a thread of its own. Starting a
 * thread costs about 35 ms of CPU at normal priority (V8's isolate, the
 * addon, then lowering its own priority, which runs `chrt`), and an
 * extension of a graph comes every tailMax writes (1,024 below 10,000
 * entries): paid once per process rather than per build. The kept thread
 * holds the process open only while it runs a job, and sends a job's ArrayBuffers
 * back with its answer (transferred, then garbage here), so it holds none
 * of them while it waits for the next. A thread of its own exits after its
 * job. A kept thread that dies is replaced at the next build.
 */
import { Worker } from 'node:worker_threads';
import { addonPath, FaissIndex } from './faiss.js';

type Role = 'build' | 'load';

interface Reply {
  address?: bigint;
  error?: string;
}

interface Pending {
  what: Role;
  dim: number;
  resolve: (index: FaissIndex) => void;
  reject: (err: Error) => void;
}

/** Threads started, kept or not (for tests and stats). */
let started = 0;

export function threadsStarted(): number {
  return started;
}

export class IndexThreads {
  #kept: { worker: Worker; job: Pending | undefined } | undefined;

  /** `source`: the worker's code (CommonJS, eval'd); it reads workerData.addon and .nice. */
  constructor(private readonly source: string) {}

  /** Run one job (`message`, with `transfer` moved to the thread); the index it released. */
  run(what: Role, message: object, transfer: ArrayBuffer[], dim: number): Promise<FaissIndex> {
    return new Promise<FaissIndex>((resolve, reject) => {
      const job: Pending = { what, dim, resolve, reject };
      if (what === 'build') {
        this.#kept ??= this.#keep();
        if (this.#kept.job === undefined) {
          this.#kept.job = job;
          this.#kept.worker.ref(); // a job awaited keeps the process alive
          this.#kept.worker.postMessage(message, transfer);
          return;
        }
      }
      this.#once(job, message, transfer);
    });
  }

  #start(role: Role): Worker {
    started++;
    return new Worker(this.source, {
      eval: true,
      // None of the process's options: the source is CommonJS whatever --input-type says,
      // and Node refuses a worker any V8 option (node --max-old-space-size=4096 failed
      // every build with ERR_WORKER_INVALID_EXEC_ARGV; V8's options apply to every thread).
      execArgv: [],
      workerData: { addon: addonPath(), nice: role === 'build' },
      name: `semcache-index-${role}`,
    });
  }

  #keep(): { worker: Worker; job: Pending | undefined } {
    const kept = { worker: this.#start('build'), job: undefined as Pending | undefined };
    const fail = (why: string) => {
      if (this.#kept === kept) this.#kept = undefined;
      const job = kept.job;
      kept.job = undefined;
      if (job) job.reject(new Error(`index ${job.what} failed: ${why}`));
    };
    kept.worker.on('message', (msg: Reply) => {
      const job = kept.job;
      kept.job = undefined;
      kept.worker.unref(); // idle: it does not hold the process open
      if (job) answer(job, msg);
    });
    kept.worker.once('error', (err) => {
      fail(err.message);
      void kept.worker.terminate();
    });
    kept.worker.once('exit', (code) => fail(`worker exited (code ${code})`));
    return kept;
  }

  #once(job: Pending, message: object, transfer: ArrayBuffer[]): void {
    const worker = this.#start(job.what);
    let settled = false;
    const settle = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      fn();
      void worker.terminate();
    };
    worker.once('message', (msg: Reply) => settle(() => answer(job, msg)));
    worker.once('error', (err) =>
      settle(() => job.reject(new Error(`index ${job.what} failed: ${err.message}`))),
    );
    worker.once('exit', (code) =>
      settle(() => job.reject(new Error(`index ${job.what} worker exited (code ${code})`))),
    );
    worker.postMessage(message, transfer);
  }
}

/** The index a thread released, adopted here; or its error. */
function answer(job: Pending, msg: Reply): void {
  if (msg.address === undefined) {
    job.reject(new Error(`index ${job.what} failed: ${msg.error ?? 'no reason given'}`));
    return;
  }
  try {
    job.resolve(FaissIndex.adopt(msg.address, job.dim));
  } catch (err) {
    job.reject(err as Error);
  }
}
