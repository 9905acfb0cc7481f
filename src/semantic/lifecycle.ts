/*
 * The semantic cache's life cycle (engine.ts owns one): load the model, then
 * rebuild the index from Redis (rebuild.ts), trying again every
 * STORAGE_RETRY_MS while semcache's own connection fails (unreachable,
 * refused credentials), adopt the fleet's snapshots before any build may
 * start, then apply the change feed from the position taken before the
 * records were read, or the oldest snapshot's whose entries were taken
 * instead of their records (snapshot-held.ts). Failure is a state the
 * commands report (ready()), never a rejection.
 */
import type { EngineOptions } from './engine-types.js';
import type { ChangeFeed } from './feed.js';
import { trimSoon } from './index/heap-trim.js';
import type { Entry, Namespace } from './namespace.js';
import { indexFromRedis, type RebuildDeps, rebuildFromRedis, storageError } from './rebuild.js';
import { HeldJoin } from './snapshot-held.js';
import type { SnapshotSync } from './snapshot-sync.js';
import { since } from './stats.js';
import { EmbedderUnavailableError, type StorageUnavailableError, semError } from './types.js';

/** Milliseconds between attempts to rebuild from Redis after semcache's own connection failed. */
const STORAGE_RETRY_MS = 5000;

export interface LifecycleParts {
  opts: Pick<EngineOptions, 'logger' | 'embedder'>;
  snapshots: SnapshotSync | undefined;
  feed: ChangeFeed | undefined;
  namespaces: () => Iterable<Namespace>;
  rebuildDeps: () => RebuildDeps;
}

export class Lifecycle {
  state: 'loading' | 'ready' | 'failed' = 'loading';
  loadingWhat = 'the embedding model';
  #stopped = false;
  private failure: EmbedderUnavailableError | StorageUnavailableError | undefined;

  constructor(private readonly p: LifecycleParts) {}

  get stopped(): boolean {
    return this.#stopped;
  }

  /** A start still retrying gives up. */
  stop(): void {
    this.#stopped = true;
  }

  async start(): Promise<void> {
    const { logger, embedder } = this.p.opts;
    try {
      const t = process.hrtime.bigint();
      await embedder.load();
      logger.info(
        `embedder ${embedder.kind} ${embedder.model} ready (dim ${embedder.dim}, ${since(t).toFixed(0)} ms)`,
      );
    } catch (err) {
      this.fail(
        err instanceof EmbedderUnavailableError
          ? err
          : new EmbedderUnavailableError((err as Error).message, 'check the log'),
      );
      return;
    }
    this.loadingWhat = 'the index from redis';
    const snapshots = this.p.snapshots;
    snapshots?.prefetch();
    // Changes made while the rebuild reads are applied after it, from `head`.
    let head = '0-0';
    let namespaces: Promise<Map<string, Record<string, string>>> | undefined;
    if (snapshots !== undefined) {
      // The settings and the snapshots' list both walk the keyspace (SCAN): at once.
      try {
        head = (await this.p.feed?.head()) ?? head;
        namespaces = this.p.rebuildDeps().store.namespaces(true);
        namespaces.catch(() => {}); // the rebuild asks again
      } catch {
        // The rebuild tries again.
      }
    }
    // Which records' vectors the fleet's snapshots hold: those are not read from Redis.
    const covered = snapshots === undefined ? undefined : await snapshots.coverage();
    // Kept across attempts: an entry read without its vector is not read again.
    const unindexed: Entry[] = [];
    // The entries snapshots hold whole: taken, and their records not read (snapshot-held.ts).
    const table = this.p.rebuildDeps().entries;
    const held = covered && (await HeldJoin.take(table, covered.takeHeld(), unindexed));
    if (
      !(await this.retrying(async () => {
        if (namespaces === undefined) head = (await this.p.feed?.head()) ?? head;
        const lean = covered?.size ? covered.covered : undefined;
        const read = {
          covered: lean,
          held: held?.taken ? held.isHeld : undefined,
          unindexed,
          namespaces,
        };
        namespaces = undefined;
        await rebuildFromRedis(this.p.rebuildDeps(), read);
      }))
    )
      return;
    if (held?.taken) {
      const gone = held.forgetGone();
      this.p.opts.logger.info(
        `${held.taken} entries taken from snapshots, ${gone} of them forgotten (their record is gone); the feed from ${held.feedFrom(head)}`,
      );
      head = held.feedFrom(head);
    }
    // Before any build may start: another instance's graph, where there is one.
    await snapshots?.loadAll(unindexed, async (entries) => {
      await this.retrying(() => indexFromRedis(this.p.rebuildDeps(), entries));
    });
    if (this.#stopped) return;
    this.state = 'ready';
    this.failure = undefined;
    for (const space of this.p.namespaces()) space.index?.bulkLoad(false);
    trimSoon(); // the records' reply buffers, freed
    this.p.feed?.start(head);
  }

  /**
   * Run `step` until it succeeds, every STORAGE_RETRY_MS while semcache's
   * own connection to Redis fails; false when stopped first.
   */
  private async retrying(step: () => Promise<void>): Promise<boolean> {
    while (!this.#stopped) {
      try {
        await step();
        return true;
      } catch (err) {
        this.fail(storageError(err as Error));
        await new Promise((r) => setTimeout(r, STORAGE_RETRY_MS).unref());
      }
    }
    return false;
  }

  private fail(failure: EmbedderUnavailableError | StorageUnavailableError): void {
    const again = this.failure?.message === failure.message;
    this.state = 'failed';
    this.failure = failure;
    if (!again) this.p.opts.logger.error(`semantic cache unavailable: ${failure.message}`);
  }

  /** Throws unless commands can be served (LoadingError, or why it failed). */
  ready(): void {
    if (this.state === 'loading') throw semError('LOADING', this.loadingWhat);
    if (this.state === 'failed') throw this.failure!;
  }
}
