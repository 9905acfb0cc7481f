/*
 * SEMNS SET namespace [THRESHOLD similarity] [INDEX <FLAT | HNSW | IVF | AUTO>]
 *   [QUANT <FP32 | Q8>]
 * SEMNS GET namespace
 * SEMNS DEL namespace [FLUSH]
 * SEMNS LIST
 */
import { R } from '../../resp/writer.js';
import type { SemanticCache } from '../../semantic/engine.js';
import { ArgErr, ArgReader, CommandError } from '../args.js';
import { parseOptions } from '../options.js';
import type { ArgDoc } from '../types.js';
import { accessOf, nsArg, spec, THRESHOLD_ARG } from './common.js';
import { guarded } from './errors.js';

const KINDS = ['flat', 'hnsw', 'ivf', 'auto'] as const;
const QUANTS = ['fp32', 'q8'] as const;

/** SEMNS SET's options, after the namespace. */
const SET_OPTIONS: ArgDoc[] = [
  THRESHOLD_ARG,
  {
    name: 'index',
    type: 'block',
    token: 'INDEX',
    optional: true,
    arguments: [
      {
        name: 'kind',
        type: 'oneof',
        arguments: KINDS.map((k) => ({ name: k, type: 'pure-token', token: k.toUpperCase() })),
      },
    ],
  },
  {
    name: 'quant',
    type: 'block',
    token: 'QUANT',
    optional: true,
    arguments: [
      {
        name: 'quant',
        type: 'oneof',
        arguments: QUANTS.map((q) => ({ name: q, type: 'pure-token', token: q.toUpperCase() })),
      },
    ],
  },
];
/** SEMNS DEL's option, after the namespace. */
const DEL_OPTIONS: ArgDoc[] = [
  { name: 'flush', type: 'pure-token', token: 'FLUSH', optional: true },
];

export const semns = (engine: SemanticCache) =>
  spec(
    {
      name: 'semns',
      arity: -2,
      // Its permission check (would the client be allowed to delete every key
      // of the namespace?) is a MULTI of its own: not inside the client's.
      flags: ['write', 'no-multi'],
      summary:
        'Create a namespace or set its default threshold, index kind and quantization (SET), show them (GET), drop a namespace and its settings (DEL), list namespaces (LIST).',
      complexity: 'O(1), LIST O(number of namespaces), DEL ... FLUSH O(entries of the namespace)',
      arguments: [
        {
          name: 'subcommand',
          type: 'oneof',
          arguments: [
            {
              name: 'set',
              type: 'block',
              arguments: [
                { name: 'set', type: 'pure-token', token: 'SET' },
                { name: 'namespace', type: 'string' },
                ...SET_OPTIONS,
              ],
            },
            {
              name: 'get',
              type: 'block',
              arguments: [
                { name: 'get', type: 'pure-token', token: 'GET' },
                { name: 'namespace', type: 'string' },
              ],
            },
            {
              name: 'del',
              type: 'block',
              arguments: [
                { name: 'del', type: 'pure-token', token: 'DEL' },
                { name: 'namespace', type: 'string' },
                ...DEL_OPTIONS,
              ],
            },
            { name: 'list', type: 'pure-token', token: 'LIST' },
          ],
        },
      ],
    },
    (args, ctx) =>
      guarded(async () => {
        const access = accessOf(engine, ctx);
        const r = new ArgReader(args, 1);
        const sub = r.option();
        if ((sub === 'LIST' && r.done) || (sub === 'GET' && args.length === 3)) {
          await access.mayInfo();
        }
        if (sub === 'LIST' && r.done) {
          return R.array(engine.info().namespaces.map((n) => R.bulk(n)));
        }
        if (sub === 'GET' && args.length === 3) {
          const s = engine.namespaceSettings(nsArg(r, 'GET'));
          return R.map([
            [R.bulk('namespace'), R.bulk(s.name)],
            [R.bulk('threshold'), R.double(s.threshold)],
            [R.bulk('index'), R.bulk(s.index)],
            [R.bulk('quant'), R.bulk(s.quant)],
            [R.bulk('entries'), R.int(s.entries)],
          ]);
        }
        if (sub === 'DEL' && (args.length === 3 || args.length === 4)) {
          const ns = nsArg(r, 'DEL');
          const flush = parseOptions(args, 3, DEL_OPTIONS).flag('flush');
          return R.int(await engine.dropNamespace(ns, flush, access));
        }
        if (sub !== 'SET' || args.length < 3) throw new CommandError(ArgErr.syntax(r.last));
        const ns = nsArg(r, 'SET');
        const o = parseOptions(args, 3, SET_OPTIONS);
        const threshold = o.number('similarity');
        const index = o.string('index') as (typeof KINDS)[number] | undefined;
        const quant = o.string('quant') as (typeof QUANTS)[number] | undefined;
        await engine.configure(ns, { threshold, index, quant }, access);
        return R.ok;
      }),
  );
