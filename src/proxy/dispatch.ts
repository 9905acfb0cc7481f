/*
 * What each client command becomes, in the order the client sent them:
 *
 *   plain      forwarded as its bytes: over the shared connection while the
 *              client has no connection state and the command needs none
 *              (router.ts), else over the client's own connection
 *   special    forwarded too, with the entry Session.plan gives it (a hook
 *              that mirrors the reply's effect on connection state)
 *   local      one of ours: a LocalRun, started by the LocalScheduler in its
 *              turn
 *   sync       SYNC/PSYNC: the connection becomes a raw tunnel (tunnel.ts)
 *
 * Every command that gets a reply has an Entry in the reply queue, in
 * request order, whatever path it takes.
 *
 * A command's bytes are views of the client read buffer, valid only during
 * dispatch (src/util/read-buffer.ts). Plain forwarding copies them into its
 * batch (or the scheduler does, if it holds them); every other path may keep
 * args or raw bytes (hooks, our commands, the tunnel), so it gets a copy.
 */
import type { CommandSpec } from '../commands/types.js';
import { encodeCommand } from '../resp/client-codec.js';
import type { ParsedCommand, RequestParser } from '../resp/request-parser.js';
import type { Router } from '../router.js';
import { stable } from '../util/read-buffer.js';
import { type Entry, newEntry } from './entry.js';
import { LocalRun, type RunHost } from './local-run.js';
import type { LocalScheduler } from './local-scheduler.js';
import type { ReplyQueue } from './reply-queue.js';
import type { Session } from './session.js';
import { syncPlan } from './tunnel.js';

/** `cmd` with every view of the client read buffer copied. */
function stableCommand(cmd: ParsedCommand): ParsedCommand {
  return { args: cmd.args.map(stable), raw: cmd.raw.map(stable), inline: cmd.inline };
}

/** Sent for a command of ours that CLIENT REPLY SKIP applies to (see dispatch). */
const CLIENT_REPLY_ON = encodeCommand(['CLIENT', 'REPLY', 'ON']);
const EMPTY = Buffer.alloc(0);

export interface DispatchHost extends RunHost {
  readonly replies: ReplyQueue;
  readonly scheduler: LocalScheduler;
  readonly parser: RequestParser;
  readonly router: Router;
  /** No more requests are read (QUIT, protocol error, lost upstream, shutdown). */
  readonly closing: boolean;
  stopReading(): void;
  /** SYNC/PSYNC: raw bytes both ways from here on. */
  openTunnel(raw: Buffer[]): void;
}

export class Dispatcher {
  constructor(private readonly host: DispatchHost) {}

  /** One parsed command of the client's (the parser's callback). */
  readonly dispatch = (parsed: ParsedCommand): void => {
    const host = this.host;
    if (host.closing) return;
    const session: Session = host.session;
    const route = host.router.route(parsed.args[0]!);
    // Plain forwarding copies into its batch; ours keep only their args (local()).
    const cmd = route.kind === 'plain' || route.kind === 'local' ? parsed : stableCommand(parsed);
    // CLIENT REPLY OFF/SKIP silence replies of forwarded and local commands alike.
    const silent = session.begin();
    // Redis would skip the reply of the next command it runs: if that is not
    // this one (ours), use the skip up here (CLIENT REPLY ON still answers +OK;
    // it is swallowed).
    if (session.takeRedisSkip() && route.kind === 'local') {
      this.forward(
        [CLIENT_REPLY_ON],
        newEntry(1, () => EMPTY),
      );
    }
    switch (route.kind) {
      case 'plain':
        // Only unpinned clients share, and they are never silenced (CLIENT pins).
        if (host.forwarder.canShare(route.shareable)) this.share(cmd.raw);
        else this.forward(cmd.raw, silent ? undefined : newEntry(1));
        return;
      case 'local':
        this.local(cmd, route.spec, silent);
        return;
      case 'sync': {
        const plan = syncPlan(session.inMulti, host.replies.length);
        if (plan === 'tunnel') host.openTunnel(cmd.raw);
        else if (plan === 'forward') this.forward(cmd.raw, newEntry(1));
        else host.replies.pushLocal(plan);
        return;
      }
      case 'auth':
        // An AUTH lifts the unauthenticated caps for the commands after it
        // without waiting for its reply: if it fails, Redis applies them itself
        // on this client's own connection (AUTH pins), and closes only that one.
        host.parser.setAuthenticated(true);
        break;
      case 'hello':
        if (cmd.args.length > 2) host.parser.setAuthenticated(true); // HELLO ... AUTH
        break;
      case 'reset':
        host.parser.setAuthenticated(!host.auth.required);
        break;
    }
    const plan = session.plan(cmd, route.kind, silent, host.forwarder.pinned);
    if (plan.kind === 'answer') {
      host.stopReading();
      host.replies.pushLocal(plan.reply).closeAfter = plan.close;
      return;
    }
    if (plan.before) this.forward(plan.before.raw, plan.before.entry);
    if (plan.closing) host.stopReading();
    this.forward(cmd.raw, plan.entry);
  };

  /** Over the shared connection (or held behind our commands). */
  private share(raw: Buffer[]): void {
    const host = this.host;
    const entry = newEntry(1);
    host.replies.push(entry);
    host.scheduler.lastForwarded = entry;
    host.session.usedShared = true;
    host.scheduler.shared(entry, raw);
  }

  /** Over the client's own connection (opened now if need be). */
  forward(raw: Buffer[], entry: Entry | undefined): void {
    const host = this.host;
    host.forwarder.pin();
    host.scheduler.own(raw, entry);
    if (entry === undefined) return;
    host.scheduler.lastForwarded = entry;
    host.replies.push(entry);
  }

  private local(cmd: ParsedCommand, spec: CommandSpec, silent: boolean): void {
    const host = this.host;
    const session = host.session;
    const entry = silent ? newEntry(0) : host.replies.pushLocal(undefined);
    const replyOff = session.replyMode === 'off';
    const args = cmd.args.map(stable);
    const run = new LocalRun(host, entry, spec, args, session.tx, replyOff);
    if (session.slot !== undefined) session.slot.local = run;
    host.scheduler.local(entry, spec.flags.includes('write'), () => run.start());
  }
}
