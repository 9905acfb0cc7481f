/*
 * SEMSEARCH <TEXT text | FP32 blob | VALUES num value [value ...]> [NS namespace]
 *   [COUNT count] [THRESHOLD similarity] [FILTER expression] [FETCHK fetch-k] [MMR lambda]
 *   [WITHSCORES] [WITHVALUES] [WITHATTRIBS]
 * The query forms follow Redis 8's VSIM (FP32 is little-endian float32).
 */
import { R, type Reply } from '../../resp/writer.js';
import type { SemanticCache } from '../../semantic/engine.js';
import { ArgErr, type ArgReader, CommandError } from '../args.js';
import { parseOptions } from '../options.js';
import type { ArgDoc } from '../types.js';
import { accessOf, FILTER_ARG, NS_ARG, spec, THRESHOLD_ARG } from './common.js';
import { guarded } from './errors.js';

const MAX_COUNT = 10_000;
const MAX_DIM = 65_536;

/** FP32 blob: little-endian float32s, 1 to MAX_DIM of them. */
function fp32(r: ArgReader, token: string): Float32Array {
  const blob = r.buffer(token);
  if (blob.length === 0 || blob.length % 4 !== 0 || blob.length / 4 > MAX_DIM) {
    throw new CommandError(ArgErr.fp32Length);
  }
  const vector = new Float32Array(blob.length / 4);
  for (let i = 0; i < vector.length; i++) vector[i] = blob.readFloatLE(i * 4);
  return vector;
}

/** VALUES n v1 ... vn. */
function values(r: ArgReader, token: string): Float32Array {
  const n = r.integer(token, 1, MAX_DIM);
  const vector = new Float32Array(n);
  for (let i = 0; i < n; i++) vector[i] = r.float(token, -3.4e38, 3.4e38);
  return vector;
}

const ARGS: ArgDoc[] = [
  {
    name: 'query',
    type: 'oneof',
    arguments: [
      { name: 'text', type: 'string', token: 'TEXT' },
      { name: 'blob', type: 'string', token: 'FP32', check: { read: fp32 } },
      {
        name: 'values',
        type: 'block',
        token: 'VALUES',
        check: { read: values },
        arguments: [
          { name: 'num', type: 'integer' },
          { name: 'value', type: 'double', multiple: true },
        ],
      },
    ],
  },
  NS_ARG,
  {
    name: 'count',
    type: 'integer',
    token: 'COUNT',
    optional: true,
    check: { min: 1, max: MAX_COUNT },
  },
  THRESHOLD_ARG,
  FILTER_ARG,
  {
    name: 'fetch-k',
    type: 'integer',
    token: 'FETCHK',
    optional: true,
    check: { min: 1, max: MAX_COUNT * 10 },
  },
  { name: 'lambda', type: 'double', token: 'MMR', optional: true, check: { min: 0, max: 1 } },
  { name: 'withscores', type: 'pure-token', token: 'WITHSCORES', optional: true },
  { name: 'withvalues', type: 'pure-token', token: 'WITHVALUES', optional: true },
  { name: 'withattribs', type: 'pure-token', token: 'WITHATTRIBS', optional: true },
];

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
      arguments: ARGS,
    },
    (args, ctx) =>
      guarded(async () => {
        const o = parseOptions(args, 1, ARGS);
        const textArg = o.buffer('text');
        const text = textArg === undefined ? undefined : engine.text(textArg);
        const vector = o.value<Float32Array>('blob') ?? o.value<Float32Array>('values');
        const withs = {
          scores: o.flag('withscores'),
          values: o.flag('withvalues'),
          attribs: o.flag('withattribs'),
        };
        const req = {
          text,
          vector,
          ns: o.string('namespace'),
          count: o.number('count') ?? 10,
          threshold: o.number('similarity'),
          filter: o.string('expression'),
          fetchK: o.number('fetch-k'),
          mmr: o.number('lambda'),
          withValues: withs.values,
        };
        const hits = await engine.search(req, accessOf(engine, ctx));
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
