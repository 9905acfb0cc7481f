/* Shared bits of the SEM* command modules. */
import type { ArgDoc, CommandSpec } from '../types.js';

export const NS_ARG: ArgDoc = { name: 'namespace', type: 'string', token: 'NS', optional: true };
export const FILTER_ARG: ArgDoc = {
  name: 'expression',
  type: 'string',
  token: 'FILTER',
  optional: true,
};
export const THRESHOLD_ARG: ArgDoc = {
  name: 'similarity',
  type: 'double',
  token: 'THRESHOLD',
  optional: true,
};

type Meta = Omit<CommandSpec, 'execute' | 'group' | 'since' | 'keyStep' | 'firstKey' | 'lastKey'> &
  Partial<Pick<CommandSpec, 'firstKey' | 'lastKey' | 'keyStep'>>;

/** Defaults shared by our commands: group "semcache", since 0.1.0, no keys unless given. */
export function spec(meta: Meta, execute: CommandSpec['execute']): CommandSpec {
  return {
    group: 'semcache',
    since: '0.1.0',
    firstKey: 0,
    lastKey: 0,
    keyStep: 0,
    ...meta,
    execute,
  };
}
