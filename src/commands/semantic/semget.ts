/* SEMGET text [NS namespace] [THRESHOLD similarity] [FILTER expression] [WITHSCORE] [WITHKEY] */
import { R, type Reply } from '../../resp/writer.js';
import type { Hit, SemanticCache } from '../../semantic/engine.js';
import { ArgErr, ArgReader, CommandError } from '../args.js';
import { accessOf, FILTER_ARG, NS_ARG, spec, THRESHOLD_ARG } from './common.js';
import { errorReply } from './errors.js';

export const semget = (engine: SemanticCache) =>
  spec(
    {
      name: 'semget',
      arity: -2,
      flags: ['readonly'],
      summary:
        'Get the value cached for the most similar text (exact match first) at or above the threshold.',
      complexity: 'O(1) for an exact match, else O(d) to embed plus the index search',
      arguments: [
        { name: 'text', type: 'string' },
        NS_ARG,
        THRESHOLD_ARG,
        FILTER_ARG,
        { name: 'withscore', type: 'pure-token', token: 'WITHSCORE', optional: true },
        { name: 'withkey', type: 'pure-token', token: 'WITHKEY', optional: true },
      ],
    },
    (args, ctx) => {
      // Not guarded(): a hit is the hot path, and one promise (the lookup's)
      // is all it needs. Errors, thrown or rejected, become replies the same way.
      let detail = false;
      let lookup: Promise<Hit | undefined>;
      try {
        const r = new ArgReader(args, 2);
        let ns: string | undefined;
        let threshold: number | undefined;
        let filter: string | undefined;
        while (!r.done) {
          const opt = r.option();
          if (opt === 'NS') ns = r.string('NS');
          else if (opt === 'THRESHOLD') threshold = r.float('THRESHOLD', -1, 1);
          else if (opt === 'FILTER') filter = r.string('FILTER');
          else if (opt === 'WITHSCORE' || opt === 'WITHKEY') detail = true;
          else throw new CommandError(ArgErr.syntax(r.last));
        }
        lookup = engine.get(
          { text: args[1]!.toString(), ns, threshold, filter },
          accessOf(engine, ctx),
        );
      } catch (err) {
        return errorReply(err);
      }
      return lookup.then((hit) => (detail ? detailed(hit) : plain(hit)), errorReply);
    },
  );

function plain(hit: Hit | undefined): Reply {
  return hit === undefined ? R.null : R.bulk(hit.value!);
}

function detailed(hit: Hit | undefined): Reply {
  if (hit === undefined) return R.null;
  return R.map([
    [R.bulk('value'), R.bulk(hit.value!)],
    [R.bulk('key'), R.bulk(hit.entry.key)],
    [R.bulk('score'), R.double(hit.score)],
    [R.bulk('text'), R.bulk(hit.entry.text)],
  ]);
}
