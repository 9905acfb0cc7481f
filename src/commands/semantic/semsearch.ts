/*
 * SEMSEARCH (TEXT text | FP32 blob | VALUES n v1 ... vn) [NS namespace] [COUNT k]
 *   [THRESHOLD similarity] [FILTER expression] [FETCHK n] [MMR lambda]
 *   [WITHSCORES] [WITHVALUES] [WITHATTRIBS]
 * The query forms follow Redis 8's VSIM (FP32 is little-endian float32).
 */
import { R, type Reply } from '../../resp/writer.js';
import type { SemanticCache } from '../../semantic/engine.js';
import { ArgErr, ArgReader, CommandError } from '../args.js';
import { accessOf, FILTER_ARG, NS_ARG, nsArg, spec, THRESHOLD_ARG, utf8Arg } from './common.js';
import { guarded } from './errors.js';

const MAX_COUNT = 10_000;
const MAX_DIM = 65_536;

export const semsearch = (engine: SemanticCache) =>
  spec(
    {
      name: 'semsearch',
      arity: -3,
      flags: ['readonly'],
      summary:
        'Top entries most similar to a text or a vector, with optional filter and MMR diversity.',
      complexity:
        'O(d) to embed a text plus the index search for COUNT (FETCHK with FILTER or MMR)',
      arguments: [
        {
          name: 'query',
          type: 'oneof',
          arguments: [
            { name: 'text', type: 'string', token: 'TEXT' },
            { name: 'blob', type: 'string', token: 'FP32' },
            { name: 'num', type: 'integer', token: 'VALUES' },
          ],
        },
        NS_ARG,
        { name: 'count', type: 'integer', token: 'COUNT', optional: true },
        THRESHOLD_ARG,
        FILTER_ARG,
        { name: 'fetch-k', type: 'integer', token: 'FETCHK', optional: true },
        { name: 'lambda', type: 'double', token: 'MMR', optional: true },
        { name: 'withscores', type: 'pure-token', token: 'WITHSCORES', optional: true },
        { name: 'withvalues', type: 'pure-token', token: 'WITHVALUES', optional: true },
        { name: 'withattribs', type: 'pure-token', token: 'WITHATTRIBS', optional: true },
      ],
    },
    (args, ctx) =>
      guarded(async () => {
        const r = new ArgReader(args, 1);
        const form = r.option();
        let text: string | undefined;
        let vector: Float32Array | undefined;
        if (form === 'TEXT') text = engine.text(r.buffer('TEXT'));
        else if (form === 'FP32') {
          const blob = r.buffer('FP32');
          if (blob.length === 0 || blob.length % 4 !== 0 || blob.length / 4 > MAX_DIM) {
            throw new CommandError(ArgErr.fp32Length);
          }
          vector = new Float32Array(blob.length / 4);
          for (let i = 0; i < vector.length; i++) vector[i] = blob.readFloatLE(i * 4);
        } else if (form === 'VALUES') {
          const n = r.integer('VALUES', 1, MAX_DIM);
          vector = new Float32Array(n);
          for (let i = 0; i < n; i++) vector[i] = r.float('VALUES', -3.4e38, 3.4e38);
        } else throw new CommandError(ArgErr.syntax(r.last));
        let ns: string | undefined;
        let count = 10;
        let threshold: number | undefined;
        let filter: string | undefined;
        let fetchK: number | undefined;
        let mmr: number | undefined;
        const withs = { scores: false, values: false, attribs: false };
        while (!r.done) {
          const opt = r.option();
          if (opt === 'NS') ns = nsArg(r, 'NS');
          else if (opt === 'COUNT') count = r.integer('COUNT', 1, MAX_COUNT);
          else if (opt === 'THRESHOLD') threshold = r.float('THRESHOLD', -1, 1);
          else if (opt === 'FILTER') filter = utf8Arg(r, 'FILTER', 'FILTER');
          else if (opt === 'FETCHK') fetchK = r.integer('FETCHK', 1, MAX_COUNT * 10);
          else if (opt === 'MMR') mmr = r.float('MMR', 0, 1);
          else if (opt === 'WITHSCORES') withs.scores = true;
          else if (opt === 'WITHVALUES') withs.values = true;
          else if (opt === 'WITHATTRIBS') withs.attribs = true;
          else throw new CommandError(ArgErr.syntax(r.last));
        }
        const hits = await engine.search(
          { text, vector, ns, count, threshold, filter, fetchK, mmr, withValues: withs.values },
          accessOf(engine, ctx),
        );
        if (!withs.scores && !withs.values && !withs.attribs) {
          return R.array(hits.map((h) => R.bulk(h.entry.key)));
        }
        return R.array(
          hits.map((h) => {
            const fields: Array<[Reply, Reply]> = [
              [R.bulk('key'), R.bulk(h.entry.key)],
              [R.bulk('text'), R.bulk(h.entry.text)],
            ];
            if (withs.scores) fields.push([R.bulk('score'), R.double(h.score)]);
            if (withs.values) fields.push([R.bulk('value'), R.bulk(h.value!)]);
            if (withs.attribs) {
              fields.push([
                R.bulk('attrs'),
                h.entry.attrsJson ? R.bulk(h.entry.attrsJson) : R.null,
              ]);
            }
            return R.map(fields);
          }),
        );
      }),
  );
