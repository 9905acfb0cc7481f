/*
 * Where the replies of semcache's own Redis client go (redis-client.ts). The
 * client keeps one Pending per command written, in order; each reply framed
 * off the socket settles the oldest, and a lost connection fails all that
 * are left. A call() waits for one reply, a pipeline() for n, and an
 * MgetBatch is one MGET shared by the value reads asked for in one turn of
 * the event loop, handing each caller the values of its own keys.
 */
import { RedisReplyError, type RedisValue } from '../resp/client-codec.js';

/** Where a reply goes: each command queues one, in the order it is written. */
export interface Pending {
  settle(reply: RedisValue): void;
  fail(err: Error): void;
}

/** The promise of call(): an error reply rejects it. */
export class CallWaiter implements Pending {
  constructor(
    private readonly resolve: (v: RedisValue) => void,
    private readonly reject: (e: Error) => void,
  ) {}
  settle(reply: RedisValue): void {
    if (reply instanceof RedisReplyError) this.reject(reply);
    else this.resolve(reply);
  }
  fail(err: Error): void {
    this.reject(err);
  }
}

/** The promise of pipeline(): queued once per command, resolves with all n replies. */
export class PipelineWaiter implements Pending {
  private readonly replies: RedisValue[] = [];
  constructor(
    private readonly n: number,
    private readonly resolve: (v: RedisValue[]) => void,
    private readonly reject: (e: Error) => void,
  ) {}
  settle(reply: RedisValue): void {
    this.replies.push(reply);
    if (this.replies.length === this.n) this.resolve(this.replies);
  }
  fail(err: Error): void {
    this.reject(err);
  }
}

/** Keys per MGET at most; a longer run of mget() calls starts another. */
export const MGET_MAX_KEYS = 1024;
export const MGET = Buffer.from('MGET');

export interface MgetCall {
  keys: readonly Buffer[];
  resolve(v: (Buffer | null)[]): void;
  reject(e: Error): void;
  /** Positions of its keys in the MGET: one number for the usual single key. */
  at: number | number[];
}

/** MGET's reply as values (nil for a missing key and for one that holds no string). */
export function stringValues(reply: RedisValue): (Buffer | null)[] | undefined {
  return Array.isArray(reply) ? reply.map((v) => (Buffer.isBuffer(v) ? v : null)) : undefined;
}

/**
 * The MGET that consecutive mget() calls share. A key asked for twice (the
 * same Buffer object: a hot entry hit by many clients at once) is sent once.
 */
export class MgetBatch implements Pending {
  readonly keys: Buffer[] = [];
  /** Key bytes (latin1, one char per byte) -> position in the MGET. */
  private readonly slots = new Map<string, number>();
  private readonly calls: MgetCall[] = [];

  /** `alone` reads one call's keys with an MGET of their own. */
  constructor(private readonly alone: (keys: readonly Buffer[]) => Promise<(Buffer | null)[]>) {}

  add(keys: readonly Buffer[], resolve: MgetCall['resolve'], reject: MgetCall['reject']): void {
    const at = keys.length === 1 ? this.slot(keys[0]!) : keys.map((k) => this.slot(k));
    this.calls.push({ keys, resolve, reject, at });
  }

  private slot(key: Buffer): number {
    const name = key.toString('latin1');
    let i = this.slots.get(name);
    if (i === undefined) {
      i = this.keys.push(key) - 1;
      this.slots.set(name, i);
    }
    return i;
  }

  settle(reply: RedisValue): void {
    if (reply instanceof RedisReplyError && this.calls.length > 1) {
      // Whatever failed (a key the ACL forbids...) must fail only the callers
      // it would have failed on their own: ask again, each call by itself.
      for (const c of this.calls) this.alone(c.keys).then(c.resolve, c.reject);
      return;
    }
    const values = stringValues(reply);
    if (values === undefined) {
      this.fail(reply instanceof Error ? reply : new RedisReplyError('unexpected MGET reply'));
      return;
    }
    for (const c of this.calls) {
      c.resolve(typeof c.at === 'number' ? [values[c.at]!] : c.at.map((i) => values[i]!));
    }
  }

  fail(err: Error): void {
    for (const c of this.calls) c.reject(err);
  }
}
