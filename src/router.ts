/*
 * Routing: which commands are ours, which are forwarded untouched, and which
 * are forwarded but change how the connection frames replies. The decision is
 * cached per spelling of the command name, so the hot path does one Map lookup
 * without lower-casing or allocating beyond the name string.
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

export class Router {
  private readonly cache = new Map<string, Route>();

  constructor(readonly commands: CommandTable) {}

  route(name: Buffer): Route {
    const spelled = name.toString('latin1');
    const cached = this.cache.get(spelled);
    if (cached !== undefined) return cached;
    const lower = spelled.toLowerCase();
    const spec = this.commands.get(lower);
    const special = SPECIAL[lower];
    const route: Route = spec
      ? { kind: 'local', spec }
      : special
        ? ({ kind: special } as Route)
        : shareableCommands.has(lower)
          ? SHARED
          : PINNED;
    // Arbitrary names (typos, garbage) must not grow the cache without bound.
    if (this.cache.size < CACHE_LIMIT) this.cache.set(spelled, route);
    return route;
  }

  commandHook(args: Buffer[], proto: () => Proto): ((reply: Buffer) => Buffer | Reply) | undefined {
    const splice = commandSplice(args, this.commands);
    return splice && ((reply) => splice(reply, proto()));
  }
}
