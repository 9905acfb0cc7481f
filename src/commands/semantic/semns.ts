/*
 * SEMNS SET namespace [THRESHOLD similarity] [INDEX FLAT|HNSW|AUTO]
 * SEMNS GET namespace
 * SEMNS DEL namespace [FLUSH]
 * SEMNS LIST
 */
import { R } from '../../resp/writer.js';
import type { SemanticCache } from '../../semantic/engine.js';
import { ArgErr, ArgReader, CommandError } from '../args.js';
import { accessOf, nsArg, spec } from './common.js';
import { guarded } from './errors.js';

const KINDS = ['flat', 'hnsw', 'ivf', 'auto'] as const;

export const semns = (engine: SemanticCache) =>
  spec(
    {
      name: 'semns',
      arity: -2,
      // Its permission check (would the client be allowed to delete every key
      // of the namespace?) is a MULTI of its own: not inside the client's.
      flags: ['write', 'no-multi'],
      summary:
        'Create a namespace or set its default threshold and index kind (SET), show them (GET), drop a namespace and its settings (DEL), list namespaces (LIST).',
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
                { name: 'similarity', type: 'double', token: 'THRESHOLD', optional: true },
                { name: 'kind', type: 'string', token: 'INDEX', optional: true },
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
                { name: 'flush', type: 'pure-token', token: 'FLUSH', optional: true },
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
          return R.array([...engine.namespaces.keys()].map((n) => R.bulk(n)));
        }
        if (sub === 'GET' && args.length === 3) {
          const space = engine.namespace(nsArg(r, 'GET'));
          return R.map([
            [R.bulk('namespace'), R.bulk(space.name)],
            [R.bulk('threshold'), R.double(space.threshold ?? engine.opts.threshold)],
            [R.bulk('index'), R.bulk(space.indexKind ?? engine.opts.indexKind)],
            [R.bulk('entries'), R.int(space.entries.size)],
          ]);
        }
        if (sub === 'DEL' && (args.length === 3 || args.length === 4)) {
          const ns = nsArg(r, 'DEL');
          const flush = !r.done && r.option() === 'FLUSH';
          if (!r.done || (args.length === 4 && !flush))
            throw new CommandError(ArgErr.syntax(r.last));
          return R.int(await engine.dropNamespace(ns, flush, access));
        }
        if (sub !== 'SET' || args.length < 3) throw new CommandError(ArgErr.syntax(r.last));
        const ns = nsArg(r, 'SET');
        let threshold: number | undefined;
        let index: (typeof KINDS)[number] | undefined;
        while (!r.done) {
          const opt = r.option();
          if (opt === 'THRESHOLD') threshold = r.float('THRESHOLD', -1, 1);
          else if (opt === 'INDEX') {
            const kind = r.string('INDEX').toLowerCase();
            if (!(KINDS as readonly string[]).includes(kind)) {
              throw new CommandError(ArgErr.syntax(kind));
            }
            index = kind as (typeof KINDS)[number];
          } else throw new CommandError(ArgErr.syntax(r.last));
        }
        await engine.configure(ns, { threshold, index }, access);
        return R.ok;
      }),
  );
