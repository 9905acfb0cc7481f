/* SEMSET key text value [EX seconds | PX milliseconds | KEEPTTL] [NS namespace] [ATTRS json] */
import { string2ll } from '../../resp/redis-text.js';
import { R } from '../../resp/writer.js';
import type { SemanticCache } from '../../semantic/engine.js';
import type { TtlMode } from '../../semantic/store.js';
import { ArgErr, type ArgReader, CommandError } from '../args.js';
import { parseOptions } from '../options.js';
import type { ArgDoc } from '../types.js';
import { ATTRS_ARG, accessOf, NS_ARG, spec } from './common.js';
import { guarded } from './errors.js';

const expire = (r: ArgReader, token: string) => expireArg(r.buffer(token), token as 'EX' | 'PX');

const ARGS: ArgDoc[] = [
  { name: 'key', type: 'key' },
  { name: 'text', type: 'string' },
  { name: 'value', type: 'string' },
  {
    name: 'expiration',
    type: 'oneof',
    optional: true,
    arguments: [
      { name: 'seconds', type: 'integer', token: 'EX', check: { read: expire } },
      { name: 'milliseconds', type: 'integer', token: 'PX', check: { read: expire } },
      { name: 'keepttl', type: 'pure-token', token: 'KEEPTTL' },
    ],
  },
  NS_ARG,
  ATTRS_ARG,
];

export const semset = (engine: SemanticCache) =>
  spec(
    {
      name: 'semset',
      arity: -4,
      flags: ['write', 'denyoom'],
      firstKey: 1,
      lastKey: 1,
      keyStep: 1,
      summary: 'Set the value of a key like SET and index its text for semantic lookups.',
      complexity: 'O(d) for the embedding plus O(log N) (HNSW) or O(1) (flat) to index',
      arguments: ARGS,
    },
    (args, ctx) =>
      guarded(async () => {
        const o = parseOptions(args, 4, ARGS);
        const ttlMode = (o.chosen('expiration') ?? '') as TtlMode;
        const ttl = o.string('seconds') ?? o.string('milliseconds') ?? '';
        await engine.set(
          {
            key: args[1]!,
            text: engine.text(args[2]!),
            value: args[3]!,
            ttlMode,
            ttl,
            ns: o.string('namespace'),
            attrs: o.string('json'),
          },
          accessOf(engine, ctx),
        );
        return R.ok;
      }),
  );

const LLONG_MAX = 2n ** 63n - 1n;

/**
 * EX/PX as SET checks them (getExpireMillisecondsOrReply in t_string.c): an
 * int64, positive, and not past LLONG_MAX milliseconds from now; the errors
 * name SEMSET. Returns the number as the client wrote it, for Redis's SET.
 */
function expireArg(arg: Buffer, unit: 'EX' | 'PX'): string {
  if (Number.isNaN(string2ll(arg, 0, arg.length))) throw new CommandError(ArgErr.notInteger);
  const text = arg.toString('latin1');
  const n = BigInt(text);
  if (n <= 0n || (unit === 'EX' && n > LLONG_MAX / 1000n)) {
    throw new CommandError(ArgErr.expire('semset'));
  }
  const ms = unit === 'EX' ? n * 1000n : n;
  if (ms + BigInt(Date.now()) > LLONG_MAX) throw new CommandError(ArgErr.expire('semset'));
  return text;
}
