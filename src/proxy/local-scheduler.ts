/*
 * When our own commands run, and when the forwarded commands around them are
 * sent, so that a pipeline mixing both behaves as if Redis ran it in order:
 *
 *   - a local command starts once the forwarded command before it has been
 *     answered (it sees that command's effect, and the subscription state at
 *     that point);
 *   - a local read also waits for the local write before it;
 *   - a forwarded command is sent once every local command before it is done
 *     (those after it do not hold it back).
 *
 * Local reads after reads run concurrently, so a pipeline of lookups shares
 * model calls. The outbox holds what waits behind an unfinished local
 * command, in request order; it is empty in the common case, and then
 * forwarded commands go straight to the forwarder. Request bytes it holds
 * are copied out of the client read buffer first (src/util/read-buffer.ts).
 */
import { stable } from '../util/read-buffer.js';
import type { Entry } from './entry.js';

type Item =
  | { gate: Entry }
  | { entry: Entry; raw: Buffer[] }
  | { parts: Buffer[]; awaits: Entry | undefined };

export interface Sender {
  /** Over the shared connection; `entry` takes the reply. */
  sendShared(entry: Entry, raw: Buffer[]): void;
  /** Over the client's own connection (opened if need be); `awaits` takes the reply. */
  sendOwn(parts: Buffer[], awaits: Entry | undefined): void;
  /** Write what was queued. */
  flush(): void;
}

export class LocalScheduler {
  private outbox: Item[] = [];
  /** The newest forwarded entry: a local command starts once it has been answered. */
  lastForwarded: Entry | undefined;
  /** The newest local write: local reads and forwarded commands wait for it. */
  private lastLocalWrite: Entry | undefined;

  constructor(private readonly sender: Sender) {}

  /** A forwarded command for the shared connection. */
  shared(entry: Entry, raw: Buffer[]): void {
    if (this.outbox.length > 0) this.outbox.push({ entry, raw: raw.map(stable) });
    else this.sender.sendShared(entry, raw);
  }

  /**
   * Request bytes for the client's own connection. `awaits` waits for the
   * reply from when the bytes are sent: requests our running commands make
   * meanwhile go ahead of held ones, and replies come in the order sent.
   */
  own(parts: Buffer[], awaits: Entry | undefined): void {
    if (this.outbox.length > 0) this.outbox.push({ parts: parts.map(stable), awaits });
    else this.sender.sendOwn(parts, awaits);
  }

  /**
   * The own connection failed before it was up: requests held for it are
   * dropped, never to be sent later; those awaiting a reply are returned, to
   * be answered with the failure in their turn.
   */
  dropOwn(): Entry[] {
    const answered: Entry[] = [];
    this.outbox = this.outbox.filter((item) => {
      if (!('parts' in item)) return true;
      if (item.awaits !== undefined) answered.push(item.awaits);
      return false;
    });
    return answered;
  }

  /** Run a local command's `start` in its turn (see the rules above). */
  local(entry: Entry, write: boolean, start: () => void): void {
    const barriers = [this.lastForwarded, write ? undefined : this.lastLocalWrite];
    if (write) this.lastLocalWrite = entry;
    entry.local = true;
    this.outbox.push({ gate: entry });
    this.after(barriers, start);
  }

  /** An entry got its reply: wake what waited for it. */
  settle(entry: Entry): void {
    entry.done = true;
    if (entry.local) this.pump();
    const waiters = entry.waiters;
    if (waiters === undefined) return;
    entry.waiters = undefined;
    for (const w of waiters) w();
  }

  /** Run `fn` once every entry in `barriers` is done. */
  private after(barriers: (Entry | undefined)[], fn: () => void): void {
    const pending = barriers.find((b) => b !== undefined && !b.done);
    if (pending === undefined) fn();
    else (pending.waiters ??= []).push(() => this.after(barriers, fn));
  }

  /** A local command finished: send what it held, up to the next unfinished one. */
  private pump(): void {
    while (this.outbox.length > 0) {
      const item = this.outbox[0]!;
      if ('gate' in item && !item.gate.done) break;
      this.outbox.shift();
      if ('parts' in item) this.sender.sendOwn(item.parts, item.awaits);
      else if ('entry' in item) this.sender.sendShared(item.entry, item.raw);
    }
    this.sender.flush();
  }
}
