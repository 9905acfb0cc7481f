/*
 * Routing: which commands are ours, which are forwarded untouched, and which
 * are forwarded but change how the connection frames replies. The decision is
 * cached per spelling of the command name, keyed by a hash of its bytes, so
 * the hot path hashes a few bytes and compares them, without lower-casing or
 * allocating a string (which cost more than the rest of routing).
 */
import { commandSplice } from './commands/introspection.js';
import { shareableCommands } from './commands/shareable.js';
import type { CommandSpec, CommandTable } from './commands/types.js';
import type { Proto, Reply } from './resp/writer.js';

export type Route =
  | { kind: 'plain'; shareable: boolean }
  | { kind: 'local'; spec: CommandSpec }
  | {
      kind:
        | 'multi'
        | 'exec'
        | 'discard'
        | 'reset'
        | 'hello'
        | 'subscribe'
        | 'unsubscribe'
        | 'monitor'
        | 'quit'
        | 'wait'
        | 'client'
        | 'command'
        | 'auth'
        | 'select'
        | 'watch'
        | 'unwatch'
        | 'sync';
    };

const SPECIAL: Record<string, Route['kind']> = {
  multi: 'multi',
  exec: 'exec',
  discard: 'discard',
  reset: 'reset',
  hello: 'hello',
  subscribe: 'subscribe',
  psubscribe: 'subscribe',
  ssubscribe: 'subscribe',
  unsubscribe: 'unsubscribe',
  punsubscribe: 'unsubscribe',
  sunsubscribe: 'unsubscribe',
  monitor: 'monitor',
  quit: 'quit',
  wait: 'wait',
  waitaof: 'wait',
  client: 'client',
  command: 'command',
  auth: 'auth',
  select: 'select',
  watch: 'watch',
  unwatch: 'unwatch',
  sync: 'sync',
  psync: 'sync',
};

const SHARED: Route = { kind: 'plain', shareable: true };
const PINNED: Route = { kind: 'plain', shareable: false };
const CACHE_LIMIT = 4096;

interface Cached {
  name: Buffer;
  route: Route;
}

export class Router {
  /** Routes by FNV-1a hash of the name as spelled (a Smi), then by its bytes. */
  private readonly cache = new Map<number, Cached[]>();
  private cached = 0;

  constructor(readonly commands: CommandTable) {}

  route(name: Buffer): Route {
    let h = 0x811c9dc5;
    for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name[i]!, 0x01000193);
    h &= 0x3fffffff;
    const bucket = this.cache.get(h);
    if (bucket !== undefined) {
      for (const c of bucket) if (sameBytes(c.name, name)) return c.route;
    }
    const route = this.resolve(name.toString('latin1').toLowerCase());
    // Arbitrary names (typos, garbage) must not grow the cache without bound.
    if (this.cached < CACHE_LIMIT) {
      this.cached++;
      const entry = { name: Buffer.from(name), route };
      if (bucket === undefined) this.cache.set(h, [entry]);
      else bucket.push(entry);
    }
    return route;
  }

  private resolve(lower: string): Route {
    const spec = this.commands.get(lower);
    const special = SPECIAL[lower];
    const route: Route = spec
      ? { kind: 'local', spec }
      : special
        ? ({ kind: special } as Route)
        : shareableCommands.has(lower)
          ? SHARED
          : PINNED;
    return route;
  }

  commandHook(args: Buffer[], proto: () => Proto): ((reply: Buffer) => Buffer | Reply) | undefined {
    const splice = commandSplice(args, this.commands);
    return splice && ((reply) => splice(reply, proto()));
  }
}

function sameBytes(a: Buffer, b: Buffer): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
