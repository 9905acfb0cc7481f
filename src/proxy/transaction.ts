/*
 * A MULTI transaction as the client sees it, and as Redis sees it.
 *
 * Redis answers EXEC with one array element per queued command. The client
 * sees one element per command it sent, and the two differ in two ways:
 *
 *   - our own commands queue zero or more plain Redis commands of their own
 *     (SEMSET queues a SET, SEMGET the GETs of its candidates) and take that
 *     many of Redis's elements; from them the command computes its one reply
 *     (it was parked at queue time, see local-run.ts);
 *   - (P|S)(UN)SUBSCRIBE sends one reply per channel: the first is its array
 *     element, the others follow the whole array as replies of their own
 *     (Redis 7.0 does this, RESP2 and RESP3 alike), so EXEC then has more than
 *     one reply to wait for.
 *
 * Each command of the transaction has a Slot, in request order. A slot's
 * effect mirrors what the command did to connection state (HELLO, AUTH,
 * SELECT, subscriptions) once EXEC shows it ran. Whether a command was queued
 * at all is read from its reply (+QUEUED), not predicted: a MULTI that Redis
 * refuses (NOAUTH, subscribed mode) marks the transaction refused, and the
 * commands pipelined behind it then act at once.
 */
import { splitAggregate } from '../resp/reply-inspect.js';
import { aggregateHeader, encodeReply, type Proto, type Reply } from '../resp/writer.js';
import type { Entry } from './entry.js';

const QUEUED = Buffer.from('+QUEUED\r\n');

/** The reply Redis sends a command it queued in a transaction. */
export function isQueued(reply: Buffer): boolean {
  return reply.length === QUEUED.length && reply.equals(QUEUED);
}

/** A local command of the transaction, parked until EXEC (local-run.ts). */
export interface LocalSlot {
  /** Redis commands it queued: the EXEC elements it takes. */
  readonly sent: number;
  /** EXEC ran: its elements in, its reply out. */
  finish(replies: Buffer[]): Promise<Reply>;
  /** The transaction will not run (DISCARD, EXEC refused or aborted, client gone). */
  abort(): void;
}

export interface Slot {
  /** Mirror the command's effect from its EXEC element; returns how many replies follow the array. */
  effect?: ((element: Buffer) => number) | undefined;
  local?: LocalSlot | undefined;
}

export class Transaction {
  readonly slots: Slot[] = [];
  /** Redis refused the MULTI: there is no transaction. */
  refused = false;

  add(): Slot {
    const slot: Slot = {};
    this.slots.push(slot);
    return slot;
  }

  /**
   * Make `entry` (the EXEC) mirror this transaction from EXEC's replies, when
   * anything in it needs that (effects, our commands); else it passes through.
   * Replies that follow the array (extra subscribe confirmations) are EXEC's
   * too: in RESP3 they are pushes, which only a pubsub entry may claim.
   */
  hookExec(entry: Entry, proto: () => Proto, confirm: (reply: Buffer) => void): void {
    if (!this.slots.some((s) => s.effect || s.local)) return;
    entry.pubsub = true;
    let first = true;
    entry.hook = (reply) => {
      if (!first) {
        confirm(reply);
        return reply;
      }
      first = false;
      return this.execReply(reply, proto, (n) => {
        entry.expect += n;
      });
    };
  }

  /** The transaction ends without running: park nobody forever. */
  abort(): void {
    for (const s of this.slots) s.local?.abort();
  }

  /**
   * EXEC's array for the client: effects applied, our commands' replies in
   * their places. `extra` is told how many more replies follow the array.
   * Synchronous (the bytes as they came) unless one of ours must finish.
   */
  execReply(
    reply: Buffer,
    proto: () => Proto,
    extra: (n: number) => void,
  ): Buffer | Promise<Buffer> {
    const agg = reply[0] === 0x2a ? splitAggregate(reply) : undefined;
    if (agg === undefined || agg.count < 0) {
      // EXECABORT, a WATCH that failed (nil), or no transaction after all.
      this.abort();
      return reply;
    }
    const children = agg.children;
    const parts: (Buffer | Promise<Reply>)[] = [];
    let i = 0;
    let follow = 0;
    let local = false;
    for (const slot of this.slots) {
      if (slot.local !== undefined) {
        local = true;
        const mine = children
          .slice(i, i + slot.local.sent)
          .map(([s, e]) => Buffer.from(reply.subarray(s, e)));
        i += slot.local.sent;
        parts.push(slot.local.finish(mine));
        continue;
      }
      const range = children[i++];
      if (range === undefined) break; // Redis disagrees with our count: pass its bytes on
      const element = reply.subarray(range[0], range[1]);
      if (slot.effect) follow += slot.effect(element);
      parts.push(element);
    }
    if (follow > 0) extra(follow);
    if (!local) return reply;
    return Promise.all(parts).then((done) => {
      const p = proto();
      const out = done.map((x) => (Buffer.isBuffer(x) ? x : encodeReply(x, p)));
      return Buffer.concat([
        reply.subarray(0, agg.headerEnd - headerLength(reply, agg.headerEnd)),
        aggregateHeader('*', out.length),
        ...out,
      ]);
    });
  }
}

/** Length of the header line that ends at `end` (any attribute before it is kept). */
function headerLength(reply: Buffer, end: number): number {
  let start = end - 2;
  while (start > 0 && reply[start - 1] !== 0x0a) start--;
  return end - start;
}
