/*
 * Session (src/proxy/session.ts) without sockets: which entry each
 * state-changing command gets, and how the replies Redis sends update the
 * mirrored state. The integration tests (stateful.test.ts) check the same
 * rules end to end against redis-server.
 */
import { describe, expect, it } from 'vitest';
import { commandTable } from '../../src/commands/types.js';
import type { Entry } from '../../src/proxy/entry.js';
import { type Plan, Session, type SpecialKind } from '../../src/proxy/session.js';
import { encodeCommand } from '../../src/resp/client-codec.js';
import type { ParsedCommand } from '../../src/resp/request-parser.js';
import { Router } from '../../src/router.js';

const router = new Router(commandTable([]));

function cmd(...args: string[]): ParsedCommand {
  return { args: args.map((a) => Buffer.from(a)), raw: [encodeCommand(args)], inline: false };
}

/** Plan a special command the way the connection does: begin(), then plan(). */
function plan(s: Session, pinned: boolean, ...args: string[]): Plan {
  const silent = s.begin();
  const route = router.route(Buffer.from(args[0]!));
  if (route.kind === 'plain' || route.kind === 'local')
    throw new Error(`${args[0]} is not special`);
  return s.plan(cmd(...args), route.kind as SpecialKind, silent, pinned);
}

function entryOf(p: Plan): Entry {
  if (p.kind !== 'forward' || p.entry === undefined) throw new Error('no entry');
  return p.entry;
}

/** Feed a reply to an entry's hook, as the reader does. */
function reply(e: Entry, bytes: string): void {
  e.hook?.(Buffer.from(bytes, 'latin1'));
}

describe('Session', () => {
  it('HELLO 3 switches the protocol only once Redis accepts it', () => {
    const s = new Session(router);
    const bad = entryOf(plan(s, true, 'HELLO', '3', 'AUTH', 'app', 'wrong'));
    reply(bad, '-WRONGPASS invalid username-password pair or user is disabled.\r\n');
    expect(s.proto).toBe(2);
    const good = entryOf(plan(s, true, 'HELLO', '3'));
    expect(s.proto).toBe(2); // not before the reply
    reply(good, '%1\r\n$6\r\nserver\r\n$5\r\nredis\r\n');
    expect(s.proto).toBe(3);
  });

  it('HELLO inside MULTI takes effect from the EXEC array, at its own slot', () => {
    const s = new Session(router);
    entryOf(plan(s, true, 'MULTI'));
    s.begin(); // SET k v, queued: slot 0
    const hello = entryOf(plan(s, true, 'HELLO', '3'));
    reply(hello, '+QUEUED\r\n'); // queued: nothing changes yet
    expect(s.proto).toBe(2);
    const exec = entryOf(plan(s, true, 'EXEC'));
    expect(s.inMulti).toBe(false);
    reply(exec, '*2\r\n+OK\r\n%1\r\n$5\r\nproto\r\n:3\r\n');
    expect(s.proto).toBe(3);
  });

  it('a MULTI that Redis refuses ends the predicted transaction; commands behind it act at once', () => {
    const s = new Session(router);
    const multi = entryOf(plan(s, true, 'MULTI'));
    expect(s.inMulti).toBe(true);
    // Pipelined behind the MULTI, planned before its reply: predicted queued.
    const hello = entryOf(plan(s, true, 'HELLO', '3'));
    const sub = entryOf(plan(s, true, 'SUBSCRIBE', 'a', 'b'));
    reply(multi, '-ERR Command not allowed inside a transaction\r\n');
    expect(s.inMulti).toBe(false);
    reply(hello, '%1\r\n$5\r\nproto\r\n:3\r\n'); // not +QUEUED: it ran
    expect(s.proto).toBe(3);
    expect(sub.lazyExpect?.()).toBe(2); // two confirmations, not one +QUEUED
  });

  it('SUBSCRIBE a b inside MULTI: one +QUEUED, then at EXEC the first confirmation in the array and one more after it', () => {
    const s = new Session(router);
    reply(entryOf(plan(s, true, 'MULTI')), '+OK\r\n');
    const sub = entryOf(plan(s, true, 'SUBSCRIBE', 'a', 'b'));
    expect(sub.lazyExpect?.()).toBe(1);
    reply(sub, '+QUEUED\r\n');
    expect(s.subs.total()).toBe(0);
    const exec = entryOf(plan(s, true, 'EXEC'));
    expect(exec.expect).toBe(1);
    reply(exec, '*1\r\n*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n');
    expect(exec.expect).toBe(2); // the confirmation of b follows the array
    expect(s.subs.count('channel')).toBe(2);
    expect(s.subscribedRESP2).toBe(true);
    const unsub = entryOf(plan(s, true, 'UNSUBSCRIBE'));
    expect(unsub.lazyExpect?.()).toBe(2);
  });

  it('AUTH, HELLO AUTH and SELECT are mirrored from their replies; RESET forgets them', () => {
    const s = new Session(router);
    reply(
      entryOf(plan(s, true, 'AUTH', 'wrong')),
      '-WRONGPASS invalid username-password pair or user is disabled.\r\n',
    );
    expect(s.authenticated).toBe(false);
    reply(entryOf(plan(s, true, 'AUTH', 'app', 'pw')), '+OK\r\n');
    expect(s.authenticated).toBe(true);
    reply(entryOf(plan(s, true, 'SELECT', '3')), '+OK\r\n');
    expect(s.db).toBe(3);
    reply(entryOf(plan(s, true, 'SELECT', '99')), '-ERR DB index is out of range\r\n');
    expect(s.db).toBe(3);
    reply(entryOf(plan(s, true, 'RESET')), '+RESET\r\n');
    expect([s.authenticated, s.db]).toEqual([false, 0]);
    reply(entryOf(plan(s, true, 'HELLO', '2', 'AUTH', 'app', 'pw')), '*0\r\n');
    expect(s.authenticated).toBe(true);
  });

  it('DISCARD ends the transaction; a HELLO queued before it never applies', () => {
    const s = new Session(router);
    entryOf(plan(s, true, 'MULTI'));
    plan(s, true, 'HELLO', '3');
    plan(s, true, 'DISCARD');
    expect(s.inMulti).toBe(false);
    const exec = entryOf(plan(s, true, 'EXEC'));
    reply(exec, '-ERR EXEC without MULTI\r\n');
    expect(s.proto).toBe(2);
  });

  it('SUBSCRIBE expects one reply per channel; UNSUBSCRIBE without arguments one per subscription', () => {
    const s = new Session(router);
    const sub = entryOf(plan(s, true, 'SUBSCRIBE', 'a', 'b'));
    expect(sub.lazyExpect?.()).toBe(2);
    expect(sub.pubsub).toBe(true);
    reply(sub, '*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n');
    reply(sub, '*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n');
    expect(s.subs.count('channel')).toBe(2);
    expect(s.subscribedRESP2).toBe(true);
    const unsub = entryOf(plan(s, true, 'UNSUBSCRIBE'));
    expect(unsub.expect).toBe(0);
    expect(unsub.lazyExpect?.()).toBe(2);
    const punsub = entryOf(plan(s, true, 'PUNSUBSCRIBE'));
    expect(punsub.lazyExpect?.()).toBe(1); // no patterns: one reply all the same
  });

  it('sorts out-of-band replies: pushes, RESP2 messages while subscribed, MONITOR lines', () => {
    const s = new Session(router);
    const push = Buffer.from('>3\r\n$7\r\nmessage\r\n$1\r\na\r\n$1\r\nx\r\n');
    const msg = Buffer.from('*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$1\r\nx\r\n');
    expect(s.isOutOfBand(push, undefined)).toBe(true);
    expect(s.isOutOfBand(msg, undefined)).toBe(false); // not subscribed: an ordinary array
    const sub = entryOf(plan(s, true, 'SUBSCRIBE', 'a'));
    const confirm = Buffer.from('>3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n');
    expect(s.isOutOfBand(confirm, sub)).toBe(false); // a confirmation the entry awaits
    reply(sub, '*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n');
    expect(s.isOutOfBand(msg, undefined)).toBe(true);
    expect(s.plainReplies).toBe(false);
    const mon = entryOf(plan(s, true, 'MONITOR'));
    reply(mon, '+OK\r\n');
    expect(s.isOutOfBand(Buffer.from('+1700000000.1 [0 127.0.0.1:1] "ping"\r\n'), undefined)).toBe(
      true,
    );
    expect(s.isOutOfBand(Buffer.from('+OK\r\n'), undefined)).toBe(false);
  });

  it('RESET restores protocol 2, no subscriptions, no MONITOR, replies on', () => {
    const s = new Session(router);
    reply(entryOf(plan(s, true, 'HELLO', '3')), '%0\r\n');
    reply(entryOf(plan(s, true, 'SUBSCRIBE', 'a')), '>3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n');
    plan(s, true, 'CLIENT', 'REPLY', 'OFF');
    expect(s.begin()).toBe(true);
    const reset = entryOf(plan(s, true, 'RESET')); // never silenced
    reply(reset, '+RESET\r\n');
    expect([s.proto, s.subs.total(), s.monitor, s.replyMode]).toEqual([2, 0, false, 'on']);
  });

  it('CLIENT REPLY OFF and SKIP get no reply; SKIP silences exactly the next command', () => {
    const s = new Session(router);
    const off = plan(s, true, 'CLIENT', 'REPLY', 'SKIP');
    expect(off).toEqual({ kind: 'forward', entry: undefined });
    expect(s.begin()).toBe(true); // the skipped one
    expect(s.begin()).toBe(false);
    plan(s, true, 'CLIENT', 'REPLY', 'OFF');
    expect(s.begin()).toBe(true);
    const on = plan(s, true, 'CLIENT', 'REPLY', 'ON');
    expect(entryOf(on).expect).toBe(1);
  });

  it('QUIT: answered here when unpinned, forwarded and closing when pinned', () => {
    expect(plan(new Session(router), false, 'QUIT')).toEqual({
      kind: 'answer',
      reply: { t: 'simple', v: 'OK' },
      close: true,
    });
    const p = plan(new Session(router), true, 'QUIT');
    expect(p.kind === 'forward' && p.closing).toBe(true);
    expect(entryOf(p).closeAfter).toBe(true);
  });

  it('WAIT after shared writes sends a swallowed PUBLISH first', () => {
    const s = new Session(router);
    const alone = plan(s, true, 'WAIT', '1', '0');
    expect(alone.kind === 'forward' && alone.before).toBeUndefined();
    s.usedShared = true;
    const p = plan(s, true, 'WAIT', '1', '0');
    if (p.kind !== 'forward' || p.before === undefined) throw new Error('no marker');
    expect(Buffer.concat(p.before.raw).toString()).toBe(
      '*3\r\n$7\r\nPUBLISH\r\n$14\r\n__semcache__:w\r\n$0\r\n\r\n',
    );
    expect(p.before.entry.hook?.(Buffer.from(':0\r\n'))).toEqual(Buffer.alloc(0));
  });
});

describe('Subscriptions.family', () => {
  it('names each (P|S)(UN)SUBSCRIBE family', () => {
    const s = new Session(router).subs;
    const f = (n: string) => s.family(Buffer.from(n));
    expect(
      ['SUBSCRIBE', 'unsubscribe', 'PSUBSCRIBE', 'punsubscribe', 'SSUBSCRIBE', 'sunsubscribe'].map(
        f,
      ),
    ).toEqual(['channel', 'channel', 'pattern', 'pattern', 'shard', 'shard']);
  });
});
