/* SEMINDEX key text [NS namespace] [ATTRS json] */
import { R } from '../../resp/writer.js';
import type { SemanticCache } from '../../semantic/engine.js';
import { parseOptions } from '../options.js';
import type { ArgDoc } from '../types.js';
import { ATTRS_ARG, accessOf, NS_ARG, spec } from './common.js';
import { guarded } from './errors.js';

const ARGS: ArgDoc[] = [
  { name: 'key', type: 'key' },
  { name: 'text', type: 'string' },
  NS_ARG,
  ATTRS_ARG,
];

export const semindex = (engine: SemanticCache) =>
  spec(
    {
      name: 'semindex',
      arity: -3,
      flags: ['write'],
      firstKey: 1,
      lastKey: 1,
      keyStep: 1,
      summary:
        'Index the text of a key that already holds a value (written by another app); 1 if indexed, 0 if the key does not exist.',
      complexity: 'O(d) for the embedding plus the index insert',
      arguments: ARGS,
    },
    (args, ctx) =>
      guarded(async () => {
        const o = parseOptions(args, 3, ARGS);
        const ok = await engine.index(
          {
            key: args[1]!,
            text: engine.text(args[2]!),
            ns: o.string('namespace'),
            attrs: o.string('json'),
          },
          accessOf(engine, ctx),
        );
        return R.int(ok ? 1 : 0);
      }),
  );
