/* SEMGET text [NS namespace] [THRESHOLD similarity] [FILTER expression] [WITHSCORE] [WITHKEY] */
import { isUtf8 } from 'node:buffer';
import { R, type Reply } from '../../resp/writer.js';
import type { Hit, SemanticCache } from '../../semantic/engine.js';
import { parseOptions } from '../options.js';
import type { ArgDoc } from '../types.js';
import { accessOf, FILTER_ARG, NS_ARG, spec, THRESHOLD_ARG } from './common.js';
import { errorReply } from './errors.js';

const ARGS: ArgDoc[] = [
  { name: 'text', type: 'string' },
  NS_ARG,
  THRESHOLD_ARG,
  FILTER_ARG,
  { name: 'withscore', type: 'pure-token', token: 'WITHSCORE', optional: true },
  { name: 'withkey', type: 'pure-token', token: 'WITHKEY', optional: true },
];

export const semget = (engine: SemanticCache) =>
  spec(
    {
      name: 'semget',
      arity: -2,
      flags: ['readonly'],
      summary:
        'Get the value cached for the most similar text (exact match first) at or above the threshold.',
      complexity: 'O(1) for an exact match, else O(d) to embed plus the index search',
      arguments: ARGS,
    },
    (args, ctx) => {
      // Not guarded(): a hit is the hot path, and one promise (the lookup's)
      // is all it needs. Errors, thrown or rejected, become replies the same way.
      let detail = false;
      let lookup: Promise<Hit | undefined>;
      try {
        const o = parseOptions(args, 2, ARGS);
        detail = o.flag('withscore') || o.flag('withkey');
        lookup = engine.get(
          {
            text: engine.text(args[1]!),
            ns: o.string('namespace'),
            threshold: o.number('similarity'),
            filter: o.string('expression'),
          },
          accessOf(engine, ctx),
        );
      } catch (err) {
        return errorReply(err);
      }
      return lookup.then((hit) => (detail ? detailed(hit) : plain(hit)), errorReply);
    },
    // The hot path: a plain SEMGET (NS allowed) whose text has an exact match
    // is a GET of its key, and GET's reply, when it is a value, is SEMGET's.
    // Anything else (nil, NOPERM, WRONGTYPE) runs the full lookup above.
    (args) => {
      let ns: string | undefined;
      if (args.length === 4 && args[2]!.toString('latin1').toUpperCase() === 'NS') {
        if (!isUtf8(args[3]!)) return undefined;
        ns = args[3]!.toString();
      } else if (args.length !== 2) return undefined;
      // Over the limit, or not UTF-8: the full path refuses it.
      if (args[1]!.length > engine.maxTextBytes || !isUtf8(args[1]!)) return undefined;
      const exact = engine.exactMatch(args[1]!.toString(), ns);
      if (exact === undefined) return undefined;
      const t0 = performance.now();
      return {
        key: exact.key,
        // The entry must still be its record's (another instance may have changed it).
        check: engine.currentThen(exact),
        reply(got) {
          if (got[0] === DOLLAR && got[1] !== MINUS) {
            engine.exactHit(exact, performance.now() - t0);
            return R.raw(got);
          }
          // Not authenticated: the GET's own -NOAUTH is SEMGET's answer.
          return got[0] === MINUS && got.subarray(0, 7).equals(NOAUTH) ? R.raw(got) : undefined;
        },
      };
    },
  );

const DOLLAR = 0x24;
const MINUS = 0x2d;
const NOAUTH = Buffer.from('-NOAUTH');

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
