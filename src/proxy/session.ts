/*
 * The per-connection state semcache mirrors from Redis, and what each command
 * that touches it means for forwarding. Redis keeps the real state (database,
 * auth, MULTI, protocol, subscriptions); we mirror only what changes how
 * replies are framed or how our own commands answer:
 *
 *   proto          HELLO, RESET: how our replies are encoded
 *   subs, monitor  out-of-band messages; UNSUBSCRIBE's reply count
 *   multi          predicted at request time (Redis has not answered yet when
 *                  we must decide), corrected by MULTI's reply
 *   replyMode      CLIENT REPLY OFF|SKIP silences replies, ours included
 *
 * `plan` is a pure function of a command and this state: it returns the
 * entry to queue (with the hook that mirrors the reply's effect) and any
 * extra request to send first. It never touches a socket, so its rules are
 * tested on their own (test/unit/session.test.ts).
 */

import { encodeCommand } from '../resp/client-codec.js';
import { replyKind, splitAggregate } from '../resp/reply-framer.js';
import type { ParsedCommand } from '../resp/request-parser.js';
import { type Proto, R, type Reply } from '../resp/writer.js';
import type { Route, Router } from '../router.js';
import { type Entry, newEntry } from './entry.js';
import { Subscriptions } from './subscriptions.js';

const GT = 0x3e; // '>' RESP3 push
const STAR = 0x2a;
const PLUS = 0x2b;
const MINUS = 0x2d;
const EMPTY = Buffer.alloc(0);

/**
 * WAIT counts replicas by the write offset of this client's connection; a
 * PUBLISH (propagated to replicas, seen by nobody unless they subscribe to
 * semcache's own channel) moves it past writes sent over a shared connection.
 */
const WAIT_MARKER = encodeCommand(['PUBLISH', '__semcache__:w', '']);

export type SpecialKind = Exclude<Route['kind'], 'plain' | 'local'>;

export type Plan =
  /** Forward the command; `entry` undefined: Redis sends no reply (or it is silenced). */
  | {
      kind: 'forward';
      entry: Entry | undefined;
      /** Send this first, with its own (swallowed) entry. */
      before?: { raw: Buffer[]; entry: Entry };
      /** No more requests are read after this one. */
      closing?: boolean;
    }
  /** Answer here without forwarding, then close (QUIT with no upstream state). */
  | { kind: 'answer'; reply: Reply; close: boolean };

export class Session {
  proto: Proto = 2;
  readonly subs = new Subscriptions();
  monitor = false;
  inMulti = false;
  /** In MULTI: per queued command, what to mirror from its EXEC result. */
  private queuedEffects: (((reply: Buffer) => void) | undefined)[] | undefined;
  /** The client has sent commands over a shared connection (see WAIT_MARKER). */
  usedShared = false;
  replyMode: 'on' | 'off' | 'skip' = 'on';

  constructor(private readonly router: Router) {}

  /** Every command starts here: its EXEC slot, and whether its reply is silenced. */
  begin(): boolean {
    if (this.queuedEffects !== undefined) this.queuedEffects.push(undefined);
    const silent = this.replyMode !== 'on';
    if (this.replyMode === 'skip') this.replyMode = 'on';
    return silent;
  }

  /** RESP2 subscribed mode: only (P|S)(UN)SUBSCRIBE, PING, QUIT and RESET are allowed. */
  get subscribedRESP2(): boolean {
    return this.proto === 2 && this.subs.total() > 0;
  }

  /** A forwarded command of the connection-state kind: what to send and queue. */
  plan(cmd: ParsedCommand, kind: SpecialKind, silentIn: boolean, pinned: boolean): Plan {
    let silent = silentIn;
    const entry = newEntry(1);
    const args = cmd.args;
    let before: { raw: Buffer[]; entry: Entry } | undefined;
    let closing = false;
    switch (kind) {
      case 'multi':
        // A nested MULTI is refused without being queued: it has no EXEC slot.
        if (this.inMulti) this.queuedEffects?.pop();
        else this.queuedEffects = [];
        this.inMulti = true;
        // Redis can refuse MULTI (subscribed mode, NOAUTH): then there is no transaction.
        entry.hook = (reply) => {
          if (reply[0] === MINUS && this.queuedEffects !== undefined) {
            this.inMulti = false;
            this.queuedEffects = undefined;
          }
          return reply;
        };
        break;
      case 'exec': {
        // Queued commands take effect now: mirror those that change framing.
        const effects = this.queuedEffects;
        this.inMulti = false;
        this.queuedEffects = undefined;
        if (effects?.some((e) => e !== undefined)) {
          entry.hook = (reply) => {
            const agg = splitAggregate(reply);
            agg?.children.forEach(([s, e], i) => {
              effects[i]?.(reply.subarray(s, e));
            });
            return reply;
          };
        }
        break;
      }
      case 'discard':
        this.inMulti = false;
        this.queuedEffects = undefined;
        break;
      case 'wait':
        if (this.usedShared && !this.inMulti) {
          before = { raw: [WAIT_MARKER], entry: newEntry(1, () => EMPTY) };
        }
        break;
      case 'reset':
        this.inMulti = false;
        this.replyMode = 'on';
        silent = false;
        entry.hook = (reply) => {
          if (reply[0] === PLUS) this.reset();
          return reply;
        };
        break;
      case 'hello': {
        const version = args.length > 1 ? Number(args[1]!.toString('latin1')) : 0;
        const apply = (reply: Buffer) => {
          if (reply[0] !== MINUS && (version === 2 || version === 3)) this.proto = version;
        };
        // In MULTI, HELLO runs at EXEC (the last slot is this command's).
        if (this.queuedEffects) this.queuedEffects[this.queuedEffects.length - 1] = apply;
        else
          entry.hook = (reply) => {
            apply(reply);
            return reply;
          };
        break;
      }
      case 'subscribe':
      case 'unsubscribe':
        if (!this.inMulti) this.subscription(entry, kind, cmd);
        break;
      case 'monitor':
        entry.hook = (reply) => {
          if (reply[0] === PLUS && !this.inMulti) this.monitor = true;
          return reply;
        };
        break;
      case 'quit':
        // No connection state upstream to end: answer it here.
        if (!pinned) return { kind: 'answer', reply: R.ok, close: true };
        // QUIT is never queued, not even in MULTI: answered, then the connection closes.
        entry.closeAfter = true;
        silent = false;
        closing = true;
        break;
      case 'client':
        if (
          !this.inMulti &&
          args.length === 3 &&
          args[1]!.toString('latin1').toLowerCase() === 'reply'
        ) {
          const mode = args[2]!.toString('latin1').toLowerCase();
          if (mode === 'on' || mode === 'off' || mode === 'skip') {
            this.replyMode = mode;
            // Redis sends no reply to CLIENT REPLY OFF/SKIP themselves.
            if (mode !== 'on') return { kind: 'forward', entry: undefined };
            silent = false;
          }
        }
        break;
      case 'command':
        entry.hook = this.router.commandHook(args, () => this.proto);
        break;
    }
    return {
      kind: 'forward',
      entry: silent ? undefined : entry,
      ...(before ? { before } : {}),
      ...(closing ? { closing } : {}),
    };
  }

  private subscription(entry: Entry, kind: 'subscribe' | 'unsubscribe', cmd: ParsedCommand): void {
    const family = this.subs.family(cmd.args[0]!);
    const n = cmd.args.length - 1;
    entry.pubsub = true;
    entry.hook = (reply) => {
      this.subs.confirm(reply);
      return reply;
    };
    if (kind === 'subscribe' || n > 0) entry.expect = Math.max(1, n);
    else {
      // Redis answers once per channel of that family, or once if there were none.
      entry.expect = 0;
      entry.lazyExpect = () => Math.max(1, this.subs.count(family));
    }
  }

  /** Not a reply to any request: a push, a RESP2 pub/sub message, a MONITOR line. */
  isOutOfBand(reply: Buffer, target: Entry | undefined): boolean {
    const first = reply[0];
    if (first === GT) {
      // RESP3 pushes are out of band, except the confirmations a (un)subscribe awaits.
      return !(target?.pubsub === true && Subscriptions.isConfirmation(reply));
    }
    if (first === STAR && this.subscribedRESP2) {
      const kind = replyKind(reply);
      return kind === 'message' || kind === 'pmessage' || kind === 'smessage';
    }
    // MONITOR lines: "+<unix time> [db addr] ...". No command reply starts with a digit.
    return this.monitor && first === PLUS && reply[1]! >= 0x30 && reply[1]! <= 0x39;
  }

  /** May replies go to the client unexamined (no monitor lines or RESP2 messages to sort out)? */
  get plainReplies(): boolean {
    return !this.monitor && !this.subscribedRESP2;
  }

  /** RESET succeeded: the connection is as new. */
  private reset(): void {
    this.proto = 2;
    this.subs.clear();
    this.monitor = false;
  }
}
