/*
 * One run of one of our commands, and the Redis it sees: the client's own.
 *
 * A command reads and writes the client's keys with ctx.redis.send(), which
 * sends plain Redis commands on the client's path: its shared connection
 * (where it is the default user in database 0, fresh as a new connection) or
 * its own connection (with its AUTH, ACL user, SELECT and MULTI). Redis then
 * applies the client's identity and permissions itself: a user that may not
 * SET a key cannot SEMSET it, and gets Redis's own -NOAUTH or -NOPERM. The
 * replies go to the command (internal entries), never to the client.
 *
 * Inside MULTI the run is split in two. At queue time the command runs up to
 * its send(): the commands it sends are queued in the client's transaction,
 * and once Redis answers +QUEUED for all of them the client gets +QUEUED and
 * the run is parked. At EXEC the run gets their elements of EXEC's array,
 * finishes, and its reply takes its place in the array (transaction.ts). A
 * command that never sends is answered +QUEUED when it returns, and its
 * reply kept for EXEC. If Redis refuses a queued command (NOPERM, OOM), the
 * client gets that error at queue time and Redis fails the EXEC, as it would
 * for the plain command.
 *
 * Authentication: a client that did not AUTH on its own connection is the
 * default user. Where the default user needs a password, the run first asks
 * Redis (PING) and answers -NOAUTH as Redis would, before the command does
 * anything; where it does not, the command's own requests are refused by
 * Redis if that changed meanwhile.
 */
import { arityOk, type ClientRedis, type CommandSpec, type FastPath } from '../commands/types.js';
import { Err } from '../errors.js';
import { type Arg, encodeCommand } from '../resp/client-codec.js';
import { R, type Reply } from '../resp/writer.js';
import { AccessRefusedError } from '../semantic/types.js';
import type { AuthState } from '../upstream/auth-state.js';
import { type Entry, newEntry } from './entry.js';
import type { Forwarder } from './forwarder.js';
import type { Session } from './session.js';
import { isQueued, type LocalSlot, type Transaction } from './transaction.js';
import type { UpstreamReader } from './upstream-reader.js';

const QUEUED = R.simple('QUEUED');
const FLAG_TRANSACTION = ['semcache-no-multi-transaction'];
const REPLY_ON = encodeCommand(['CLIENT', 'REPLY', 'ON']);
const REPLY_OFF = encodeCommand(['CLIENT', 'REPLY', 'OFF']);
const NOAUTH = Buffer.from('-NOAUTH');

export interface RunHost {
  readonly id: number;
  readonly session: Session;
  readonly forwarder: Forwarder;
  readonly reader: UpstreamReader;
  /** The entry's reply is known (written in its turn). */
  complete(entry: Entry, reply: Reply): void;
  /** Whether the default user needs a password (auth-state.ts). */
  readonly auth: AuthState;
  /** The database our commands work in (semcache's records are there). */
  readonly storageDb: number;
}

/** The transaction ended without running: the parked run gives up. */
export class TransactionAborted extends Error {}

export class LocalRun implements ClientRedis, LocalSlot {
  sent = 0;
  private sends = 0;
  private queuedReplied = false;
  private parked: { resolve(r: Buffer[]): void; reject(e: Error): void } | undefined;
  private result: Promise<Reply> | undefined;

  constructor(
    private readonly host: RunHost,
    private readonly entry: Entry,
    private readonly spec: CommandSpec,
    private readonly args: Buffer[],
    /** The transaction it was sent in (as predicted at request time). */
    private readonly tx: Transaction | undefined,
    /** CLIENT REPLY OFF was in force: our requests turn replies on for themselves. */
    private readonly replyOff = false,
  ) {}

  get db(): number {
    return this.host.session.db;
  }

  /** Queued in a transaction Redis accepted. */
  get queued(): boolean {
    return this.tx !== undefined && !this.tx.refused;
  }

  start(): void {
    const spec = this.spec;
    const noMulti = this.queued && spec.flags.includes('no-multi');
    if (!arityOk(spec, this.args.length) || noMulti) {
      const error = R.error(noMulti ? Err.notInMulti : Err.wrongArity(spec.name));
      if (!this.queued) {
        this.host.complete(this.entry, error);
        return;
      }
      // Refused at queue time, like Redis: the transaction is flagged so EXEC
      // fails with EXECABORT (Redis refuses the unknown command, and flags it).
      this.request([FLAG_TRANSACTION]).then(() => {
        this.queuedReplied = true;
        this.host.complete(this.entry, error);
      });
      return;
    }
    if (this.host.session.subscribedRESP2) {
      this.host.complete(this.entry, R.error(Err.subscribedContext(this.spec.name)));
      return;
    }
    // The fast path needs no probe: if the client must authenticate, its GET
    // is refused -NOAUTH, which is then the answer.
    const known = this.queued || this.host.session.authenticated;
    const fastOk = !this.queued && !this.replyOff && spec.fast !== undefined;
    if (fastOk && (known || !this.host.auth.required)) {
      const fast = spec.fast!(this.args);
      if (fast !== undefined && this.host.session.db === this.host.storageDb) {
        this.fast(fast);
        return;
      }
    }
    if (known) {
      this.execute();
      return;
    }
    this.host.auth.current().then((required) => {
      if (!required) {
        this.execute();
        return;
      }
      // Ask Redis as this client: it may have become open meanwhile.
      this.request([['PING']]).then(([reply]) => {
        if (reply!.subarray(0, NOAUTH.length).equals(NOAUTH)) {
          this.host.complete(this.entry, R.raw(reply!));
        } else this.execute();
      });
    });
  }

  /** One GET; its reply is the answer, or the command runs in full. */
  private fast(path: FastPath): void {
    const { forwarder, reader } = this.host;
    const entry = newEntry(1);
    const answer = (got: Buffer) => {
      const reply = path.reply(got);
      if (reply !== undefined) this.host.complete(this.entry, reply);
      else this.execute();
    };
    const check = path.check;
    entry.internal =
      check === undefined ? answer : (got) => check((ok) => (ok ? answer(got) : this.execute()));
    const raw = [encodeCommand(['GET', path.key])];
    if (forwarder.canShare(true)) forwarder.sendShared(entry, raw);
    else {
      forwarder.sendOwn(raw);
      reader.expect(entry);
      forwarder.flushSoon();
    }
  }

  private execute(): void {
    let result: Reply | Promise<Reply>;
    try {
      result = this.spec.execute(this.args, { clientId: this.host.id, redis: this });
    } catch (err) {
      result = R.error(Err.internal((err as Error).message));
    }
    if (!this.queued) {
      if (result instanceof Promise) {
        result.then(
          (reply) => this.host.complete(this.entry, reply),
          (err: Error) => this.host.complete(this.entry, R.error(Err.internal(err.message))),
        );
      } else this.host.complete(this.entry, result);
      return;
    }
    this.result = Promise.resolve(result).catch((err: Error) => R.error(Err.internal(err.message)));
    // Returned without sending: queued with no elements of EXEC's array.
    this.result.then(() => {
      if (this.sends === 0) this.answerQueued();
    });
  }

  send(commands: readonly (readonly Arg[])[]): Promise<Buffer[]> {
    this.sends++;
    if (!this.queued) return this.request(commands);
    if (this.sends > 1) {
      return Promise.reject(new Error('a command can send only once in a transaction'));
    }
    return this.request(commands).then((replies) => {
      const refused = replies.find((r) => !isQueued(r));
      if (refused !== undefined) {
        // Redis refused one at queue time and will fail EXEC: the client sees why now.
        this.queuedReplied = true;
        this.host.complete(this.entry, R.raw(refused));
        throw new TransactionAborted('refused at queue time');
      }
      this.sent = replies.length;
      return new Promise<Buffer[]>((resolve, reject) => {
        this.parked = { resolve, reject };
        this.answerQueued();
      });
    });
  }

  private answerQueued(): void {
    if (this.queuedReplied) return;
    this.queuedReplied = true;
    this.host.complete(this.entry, QUEUED);
  }

  dryRun(commands: readonly (readonly Arg[])[]): Promise<Buffer[]> {
    if (this.queued) return Promise.reject(new Error('a dry run cannot be nested in a MULTI'));
    if (this.host.session.watching) {
      return Promise.reject(
        new AccessRefusedError(
          'ERR semcache: this command checks permissions with MULTI/DISCARD, which would UNWATCH your keys; run it before WATCH or after EXEC',
        ),
      );
    }
    return this.request([['MULTI'], ...commands, ['DISCARD']], true).then((r) => r.slice(1, -1));
  }

  finish(replies: Buffer[]): Promise<Reply> {
    this.parked?.resolve(replies);
    this.parked = undefined;
    return this.result ?? Promise.resolve(R.error(Err.internal('transaction slot without a run')));
  }

  abort(): void {
    this.parked?.reject(new TransactionAborted('transaction discarded'));
    this.parked = undefined;
  }

  /**
   * Send on the client's path now; each reply comes back as RESP bytes.
   * `own`: on the client's own connection (opened if need be), for requests
   * that must stay together.
   */
  private request(commands: readonly (readonly Arg[])[], own = false): Promise<Buffer[]> {
    const { forwarder, reader } = this.host;
    return new Promise((resolve) => {
      const replies: Buffer[] = new Array(commands.length);
      let left = commands.length;
      if (left === 0) resolve(replies);
      const shared = !own && !this.queued && forwarder.canShare(true);
      // Replies are off on the client's connection (CLIENT REPLY OFF): on for ours.
      if (this.replyOff && !shared) {
        forwarder.sendOwn([REPLY_ON]);
        const ack = newEntry(1);
        ack.internal = () => {};
        reader.expect(ack);
      }
      commands.forEach((command, i) => {
        const entry = newEntry(1);
        entry.internal = (reply) => {
          replies[i] = reply;
          if (--left === 0) resolve(replies);
        };
        const raw = [encodeCommand(command)];
        if (shared) forwarder.sendShared(entry, raw);
        else {
          forwarder.sendOwn(raw);
          reader.expect(entry);
        }
      });
      if (this.replyOff && !shared) forwarder.sendOwn([REPLY_OFF]);
      forwarder.flushSoon();
    });
  }
}
