/*
 * The per-connection state semcache mirrors from Redis, and what each command
 * that touches it means for forwarding. Redis keeps the real state (database,
 * auth, MULTI, protocol, subscriptions); we mirror only what changes how
 * replies are framed or how our own commands answer:
 *
 *   proto          HELLO, RESET: how our replies are encoded
 *   subs, monitor  out-of-band messages; UNSUBSCRIBE's reply count
 *   tx             the open transaction (transaction.ts): predicted at request
 *                  time, corrected by MULTI's reply; whether a command was
 *                  queued is read from its reply (+QUEUED)
 *   replyMode      CLIENT REPLY OFF|SKIP silences replies, ours included
 *   authenticated  AUTH or HELLO AUTH succeeded here (until RESET): our
 *                  commands need not ask Redis whether the client may run
 *   db             SELECT: our commands run only in semcache's database
 *
 * `plan` is a pure function of a command and this state: it returns the
 * entry to queue (with the hook that mirrors the reply's effect) and any
 * extra request to send first. It never touches a socket, so its rules are
 * tested on their own (test/unit/session.test.ts).
 */

import { encodeCommand } from '../resp/client-codec.js';
import { replyKind } from '../resp/reply-inspect.js';
import type { ParsedCommand } from '../resp/request-parser.js';
import { type Proto, R, type Reply } from '../resp/writer.js';
import type { Route, Router } from '../router.js';
import { type Entry, newEntry } from './entry.js';
import { Subscriptions } from './subscriptions.js';
import { isQueued, type Slot, Transaction } from './transaction.js';

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
  /** The transaction commands are queued in, from MULTI (as sent) to EXEC/DISCARD. */
  tx: Transaction | undefined;
  /** The command being planned: its place in the transaction, if any. */
  slot: Slot | undefined;
  /** The client has sent commands over a shared connection (see WAIT_MARKER). */
  usedShared = false;
  replyMode: 'on' | 'off' | 'skip' = 'on';
  authenticated = false;
  db = 0;
  /** WATCH succeeded; EXEC, DISCARD, UNWATCH and RESET end it. */
  watching = false;
  /** CLIENT REPLY SKIP sent: Redis skips the reply of the next command it runs. */
  private redisSkip = false;

  constructor(private readonly router: Router) {}

  /** Predicted: MULTI sent and not (yet) refused, no EXEC/DISCARD sent since. */
  get inMulti(): boolean {
    return this.tx !== undefined && !this.tx.refused;
  }

  /**
   * Was Redis told to skip the next reply (CLIENT REPLY SKIP), with nothing
   * run since? A command of ours after it must use up the skip itself.
   */
  takeRedisSkip(): boolean {
    const pending = this.redisSkip;
    this.redisSkip = false;
    return pending;
  }

  /** Every command starts here: its transaction slot, and whether its reply is silenced. */
  begin(): boolean {
    this.slot = this.tx?.add();
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
      case 'multi': {
        if (this.tx !== undefined) {
          // A nested MULTI is refused without being queued: it has no EXEC slot.
          this.tx.slots.pop();
          break;
        }
        const tx = new Transaction();
        this.tx = tx;
        // Redis can refuse MULTI (subscribed mode, NOAUTH): then there is no transaction.
        entry.hook = (reply) => {
          if (reply[0] === MINUS) {
            tx.refused = true;
            tx.abort();
            if (this.tx === tx) this.tx = undefined;
          }
          return reply;
        };
        break;
      }
      case 'exec':
        this.watching = false;
        this.exec(entry);
        break;
      case 'discard':
        this.watching = false;
        this.tx?.abort();
        this.tx = undefined;
        break;
      case 'watch':
        entry.hook = (reply) => {
          if (reply[0] === PLUS) this.watching = true;
          return reply;
        };
        break;
      case 'unwatch':
        this.watching = false;
        break;
      case 'wait':
        if (this.usedShared && !this.inMulti) {
          before = { raw: [WAIT_MARKER], entry: newEntry(1, () => EMPTY) };
        }
        break;
      case 'reset':
        this.tx?.abort();
        this.tx = undefined;
        this.replyMode = 'on';
        silent = false;
        entry.hook = (reply) => {
          if (reply[0] === PLUS) this.reset();
          return reply;
        };
        break;
      case 'hello': {
        const version = args.length > 1 ? Number(args[1]!.toString('latin1')) : 0;
        const auth = args.some((a) => a.toString('latin1').toLowerCase() === 'auth');
        this.mirror(entry, (reply) => {
          if (reply[0] === MINUS || reply[0] === 0x21 /* ! */) return;
          if (version === 2 || version === 3) this.proto = version;
          if (auth) this.authenticated = true;
        });
        break;
      }
      case 'auth':
        this.mirror(entry, (reply) => {
          if (reply[0] === PLUS) this.authenticated = true;
        });
        break;
      case 'select': {
        const db = Number(args[1]?.toString('latin1'));
        this.mirror(entry, (reply) => {
          if (reply[0] === PLUS) this.db = db;
        });
        break;
      }
      case 'subscribe':
      case 'unsubscribe':
        this.subs.expect(entry, kind === 'subscribe', cmd.args, this.tx, this.slot);
        break;
      case 'monitor':
        entry.hook = (reply) => {
          if (reply[0] === PLUS && !isQueued(reply)) this.monitor = true;
          return reply;
        };
        break;
      case 'quit':
        // No connection state upstream to end: answer it here.
        if (!pinned) return { kind: 'answer', reply: R.ok, close: true };
        // QUIT is never queued, not even in MULTI: answered, then the connection closes.
        this.tx?.slots.pop();
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
            this.redisSkip = mode === 'skip';
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

  /**
   * A command whose effect on connection state is `apply(reply)`: at once if
   * Redis ran it, at EXEC (from its array element) if Redis queued it.
   */
  private mirror(entry: Entry, apply: (reply: Buffer) => void): void {
    const slot = this.slot;
    if (slot !== undefined) {
      slot.effect = (element) => {
        apply(element);
        return 0;
      };
    }
    entry.hook = (reply) => {
      if (!isQueued(reply)) apply(reply);
      return reply;
    };
  }

  private exec(entry: Entry): void {
    const tx = this.tx;
    this.tx = undefined;
    tx?.hookExec(
      entry,
      () => this.proto,
      (reply) => this.subs.confirm(reply),
    );
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
    this.authenticated = false;
    this.db = 0;
    this.watching = false;
  }
}
