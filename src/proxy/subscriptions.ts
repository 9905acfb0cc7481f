/*
 * The channels, patterns and shard channels a client is subscribed to, as the
 * upstream confirmed them. We need them for two framing decisions: in RESP2 a
 * subscribed client receives messages as plain arrays (out of band), and
 * UNSUBSCRIBE without arguments gets one reply per channel it drops.
 */
import { decodeFlatArray, replyKind } from '../resp/reply-inspect.js';
import type { Entry } from './entry.js';
import { isQueued, type Slot, type Transaction } from './transaction.js';

export type Family = 'channel' | 'pattern' | 'shard';

const CONFIRMATIONS: Record<string, [Family, boolean]> = {
  subscribe: ['channel', true],
  unsubscribe: ['channel', false],
  psubscribe: ['pattern', true],
  punsubscribe: ['pattern', false],
  ssubscribe: ['shard', true],
  sunsubscribe: ['shard', false],
};

export class Subscriptions {
  private readonly sets: Record<Family, Set<string>> = {
    channel: new Set(),
    pattern: new Set(),
    shard: new Set(),
  };

  /** The family a (P|S)(UN)SUBSCRIBE command name acts on. */
  family(name: Buffer): Family {
    const c = name[0]! | 0x20;
    if (c === 0x70 /* p */) return 'pattern';
    // SSUBSCRIBE and SUNSUBSCRIBE; SUBSCRIBE (s, u, b) and UNSUBSCRIBE are channels.
    const shard = c === 0x73 && ((name[1]! | 0x20) === 0x73 || (name[2]! | 0x20) === 0x6e);
    return shard ? 'shard' : 'channel';
  }

  static isConfirmation(reply: Buffer): boolean {
    const kind = replyKind(reply);
    return kind !== undefined && kind in CONFIRMATIONS;
  }

  /** Apply a confirmation reply ([kind, channel, count]); anything else is ignored. */
  confirm(reply: Buffer): void {
    const kind = replyKind(reply);
    const rule = kind === undefined ? undefined : CONFIRMATIONS[kind];
    if (rule === undefined) return;
    const channel = decodeFlatArray(reply)?.[1];
    if (!Buffer.isBuffer(channel)) return; // UNSUBSCRIBE with nothing subscribed: channel is null
    const set = this.sets[rule[0]];
    if (rule[1]) set.add(channel.toString('latin1'));
    else set.delete(channel.toString('latin1'));
  }

  /**
   * What a (P|S)(UN)SUBSCRIBE run inside EXEC did, from its arguments (the
   * confirmations of a multi-channel one do not all sit in EXEC's array).
   * Unsubscribing from no names drops the whole family.
   */
  apply(family: Family, subscribe: boolean, names: string[]): void {
    const set = this.sets[family];
    if (!subscribe && names.length === 0) set.clear();
    for (const name of names) {
      if (subscribe) set.add(name);
      else set.delete(name);
    }
  }

  /**
   * Set up the entry of a (P|S)(UN)SUBSCRIBE: its confirmations update the
   * sets; how many replies it gets is known once every earlier reply is in
   * (one +QUEUED if it was queued in a transaction Redis accepted); queued,
   * it takes effect at EXEC, where its first confirmation is its element of
   * the array and the others follow the array.
   */
  expect(
    entry: Entry,
    subscribe: boolean,
    args: Buffer[],
    tx: Transaction | undefined,
    slot: Slot | undefined,
  ): void {
    const family = this.family(args[0]!);
    const names = args.slice(1).map((a) => a.toString('latin1'));
    entry.pubsub = true;
    entry.hook = (reply) => {
      if (!isQueued(reply)) this.confirm(reply);
      return reply;
    };
    const count = () =>
      subscribe || names.length > 0 ? Math.max(1, names.length) : Math.max(1, this.count(family));
    entry.expect = 0;
    entry.lazyExpect = () => (slot !== undefined && tx?.refused === false ? 1 : count());
    if (slot !== undefined) {
      slot.effect = () => {
        const n = count();
        this.apply(family, subscribe, names);
        return n - 1;
      };
    }
  }

  count(family: Family): number {
    return this.sets[family].size;
  }

  total(): number {
    return this.sets.channel.size + this.sets.pattern.size + this.sets.shard.size;
  }

  clear(): void {
    for (const set of Object.values(this.sets)) set.clear();
  }
}
