/* SEMINDEX key text [NS namespace] [ATTRS json] */
import { R } from '../../resp/writer.js';
import type { SemanticCache } from '../../semantic/engine.js';
import { ArgErr, ArgReader, CommandError } from '../args.js';
import { accessOf, NS_ARG, nsArg, spec, utf8Arg } from './common.js';
import { guarded } from './errors.js';

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
      arguments: [
        { name: 'key', type: 'key' },
        { name: 'text', type: 'string' },
        NS_ARG,
        { name: 'json', type: 'string', token: 'ATTRS', optional: true },
      ],
    },
    (args, ctx) =>
      guarded(async () => {
        const r = new ArgReader(args, 3);
        let ns: string | undefined;
        let attrs: string | undefined;
        while (!r.done) {
          const opt = r.option();
          if (opt === 'NS') ns = nsArg(r, 'NS');
          else if (opt === 'ATTRS') attrs = utf8Arg(r, 'ATTRS', 'ATTRS');
          else throw new CommandError(ArgErr.syntax(r.last));
        }
        const ok = await engine.index(
          { key: args[1]!, text: engine.text(args[2]!), ns, attrs },
          accessOf(engine, ctx),
        );
        return R.int(ok ? 1 : 0);
      }),
  );
