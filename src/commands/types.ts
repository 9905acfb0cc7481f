/*
 * The shape of one of our own commands. Commands are a table of small modules
 * (Principle 3): the connection checks arity and context in one place, then
 * calls `execute`, which returns a typed Reply and never sees bytes.
 */
import type { Arg } from '../resp/client-codec.js';
import type { Reply } from '../resp/writer.js';
import type { ArgReader } from './args.js';

/**
 * A documented argument, in the shape of Redis's COMMAND DOCS, plus what
 * options.ts needs to parse it (`check`, not shown by COMMAND DOCS).
 */
export interface ArgDoc {
  name: string;
  type: 'string' | 'integer' | 'double' | 'key' | 'pattern' | 'pure-token' | 'oneof' | 'block';
  token?: string;
  optional?: boolean;
  multiple?: boolean;
  arguments?: ArgDoc[];
  check?: ArgCheck;
}

/** How options.ts reads and checks an argument's value, beyond its type. */
export interface ArgCheck {
  /** integer, double: the inclusive range. */
  min?: number;
  max?: number;
  /** string: must be valid UTF-8, and this names it in the error. */
  utf8?: string;
  /** Reads the value itself, from just after the token. */
  read?: (r: ArgReader, token: string) => unknown;
}

/**
 * Redis as the client that sent the command sees it: its identity (AUTH, ACL
 * user), its database, its transaction. What a command does to the client's
 * keys goes through here, so Redis itself decides what the client may do.
 */
export interface ClientRedis {
  /**
   * Run commands as the client, in order, after everything it sent before;
   * resolves with the raw reply of each (RESP2 or RESP3, as the client speaks).
   * In a transaction (`queued`) they are queued in the client's MULTI and the
   * promise resolves at EXEC; a command may then send only once.
   */
  send(commands: readonly (readonly Arg[])[]): Promise<Buffer[]>;
  /**
   * Would Redis queue these commands for the client? They are queued in a
   * MULTI of its own and discarded (never run); resolves with Redis's reply
   * to each (+QUEUED, or why not). Not inside the client's own MULTI, and not
   * while it WATCHes keys (DISCARD would unwatch them): then it rejects.
   */
  dryRun(commands: readonly (readonly Arg[])[]): Promise<Buffer[]>;
  /** Inside MULTI: send() queues, and its replies come at EXEC. */
  readonly queued: boolean;
  /** The database the client has selected. */
  readonly db: number;
}

export interface CommandContext {
  /** Unique id of the client connection (not Redis's CLIENT ID). */
  readonly clientId: number;
  readonly redis: ClientRedis;
}

/**
 * A command's fast path: one GET on the client's path whose reply may be the
 * whole answer (an exact-hit SEMGET). `reply` turns GET's raw reply into the
 * command's, or returns undefined to run the command in full instead.
 */
export interface FastPath {
  key: Buffer;
  reply(getReply: Buffer): Reply | undefined;
  /**
   * Started with the GET: calls back false when the answer must not be the
   * GET's after all (the command then runs in full).
   */
  check?: (done: (ok: boolean) => void) => void;
}

export interface CommandSpec {
  /** Lower-case name. */
  name: string;
  /** Redis rule: positive = exact argc including the name, negative = at least -arity. */
  arity: number;
  /** COMMAND INFO flags, e.g. 'write', 'readonly', 'fast'. */
  flags: string[];
  /** 1-based positions of keys, as COMMAND INFO reports them (0 when there are none). */
  firstKey: number;
  lastKey: number;
  keyStep: number;
  group: string;
  summary: string;
  since: string;
  complexity: string;
  arguments: ArgDoc[];
  execute(args: Buffer[], ctx: CommandContext): Reply | Promise<Reply>;
  /** Optional: a cheaper way to answer, tried first outside transactions. */
  fast?(args: Buffer[]): FastPath | undefined;
}

export type CommandTable = ReadonlyMap<string, CommandSpec>;

export function commandTable(specs: CommandSpec[]): CommandTable {
  return new Map(specs.map((s) => [s.name, s]));
}

export function arityOk(spec: CommandSpec, argc: number): boolean {
  return spec.arity >= 0 ? argc === spec.arity : argc >= -spec.arity;
}
