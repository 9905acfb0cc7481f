/*
 * The IndexFactory semcache runs with: a FAISS-backed VectorIndex
 * (vector-index.ts) per namespace, with the command line's efSearch and
 * nprobe. The first index it makes checks that faiss-node carries
 * semcache's patch, and says once in the log what is missing if not.
 */
import type { Logger } from '../../log.js';
import type { IndexFactory } from '../types.js';
import { patched } from './faiss.js';
import { createVectorIndex } from './vector-index.js';

export interface FaissFactoryOptions {
  /** HNSW efSearch; undefined: by index size (autoEfSearch). */
  efSearch?: number | undefined;
  /** IVF nprobe; undefined: the index's default. */
  nprobe?: number | undefined;
  /** VectorIndexOptions.extendGraph; default false. */
  extendGraph?: boolean;
  logger: Logger;
}

export function faissIndexFactory(opts: FaissFactoryOptions): IndexFactory {
  let checked = false;
  return ({ dim, kind, quant, onBuild, mayBuild }) => {
    if (!checked) {
      checked = true;
      if (!patched()) {
        opts.logger.warn(
          "faiss-node lacks semcache's patch (a prebuilt binary?): HNSW builds run on the event loop and IVF is unavailable; run `bash scripts/build-faiss.sh` with libfaiss-dev installed",
        );
      }
    }
    return createVectorIndex({
      dim,
      kind,
      ...(quant === undefined ? {} : { quant }),
      ...(opts.efSearch === undefined ? {} : { efSearch: opts.efSearch }),
      ...(opts.nprobe === undefined ? {} : { nprobe: opts.nprobe }),
      ...(opts.extendGraph === undefined ? {} : { extendGraph: opts.extendGraph }),
      ...(onBuild === undefined ? {} : { onBuild }),
      ...(mayBuild === undefined ? {} : { mayBuild }),
    });
  };
}
