/* Shared bits of the SEM* command modules. */
import type { SemanticCache } from '../../semantic/engine.js';
import type { KeyAccess } from '../../semantic/types.js';
import type { ArgReader } from '../args.js';
import { utf8Text } from '../options.js';
import type { ArgDoc, CommandContext, CommandSpec } from '../types.js';
import { clientAccess } from './access.js';

/** The client's keys, as the client (access.ts): every SEM command reaches them through this. */
export function accessOf(engine: SemanticCache, ctx: CommandContext): KeyAccess {
  return clientAccess(ctx.redis, engine.db);
}

/*
 * Arguments that are text to us (a namespace name, ATTRS JSON, a FILTER
 * expression) must be valid UTF-8 (check.utf8), because we compare them as
 * strings and decoding two different invalid byte strings could make them
 * the same.
 */

/** A namespace name as SEMNS's positional argument. */
export const nsArg = (r: ArgReader, option: string): string =>
  utf8Text(r.buffer(option), 'namespace');

export const NS_ARG: ArgDoc = {
  name: 'namespace',
  type: 'string',
  token: 'NS',
  optional: true,
  check: { utf8: 'namespace' },
};
export const FILTER_ARG: ArgDoc = {
  name: 'expression',
  type: 'string',
  token: 'FILTER',
  optional: true,
  check: { utf8: 'FILTER' },
};
export const THRESHOLD_ARG: ArgDoc = {
  name: 'similarity',
  type: 'double',
  token: 'THRESHOLD',
  optional: true,
  check: { min: -1, max: 1 },
};
export const ATTRS_ARG: ArgDoc = {
  name: 'json',
  type: 'string',
  token: 'ATTRS',
  optional: true,
  check: { utf8: 'ATTRS' },
};

type Meta = Omit<CommandSpec, 'execute' | 'group' | 'since' | 'keyStep' | 'firstKey' | 'lastKey'> &
  Partial<Pick<CommandSpec, 'firstKey' | 'lastKey' | 'keyStep'>>;

/** Defaults shared by our commands: group "semcache", since 0.1.0, no keys unless given. */
export function spec(
  meta: Meta,
  execute: CommandSpec['execute'],
  fast?: CommandSpec['fast'],
): CommandSpec {
  return {
    group: 'semcache',
    since: '0.1.0',
    firstKey: 0,
    lastKey: 0,
    keyStep: 0,
    ...meta,
    execute,
    ...(fast ? { fast } : {}),
  };
}
