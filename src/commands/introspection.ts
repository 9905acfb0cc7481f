/*
 * COMMAND, COMMAND COUNT, COMMAND INFO, COMMAND DOCS and COMMAND LIST answer
 * with Redis's commands plus ours, so redis-cli and client libraries see our
 * commands like any other (redis-cli builds its hints from COMMAND DOCS).
 *
 * The request is forwarded unchanged; the upstream reply is spliced, not
 * decoded: only the aggregate header count changes and our entries are
 * appended (or substituted for the nulls Redis returns for names it does not
 * know). Our entries are encoded for the client's protocol at that moment.
 */
import { splitAggregate } from '../resp/reply-inspect.js';
import { aggregateHeader, encodeReply, type Proto, R, type Reply } from '../resp/writer.js';
import type { ArgDoc, CommandSpec, CommandTable } from './types.js';

export type Splice = (reply: Buffer, proto: Proto) => Buffer;

function infoReply(spec: CommandSpec): Reply {
  const keySpecs: Reply[] = [];
  if (spec.firstKey > 0) {
    const rw = spec.flags.includes('write') ? 'RW' : 'RO';
    keySpecs.push(
      R.map([
        [R.bulk('flags'), R.set([R.simple(rw)])],
        [
          R.bulk('begin_search'),
          R.map([
            [R.bulk('type'), R.bulk('index')],
            [R.bulk('spec'), R.map([[R.bulk('index'), R.int(spec.firstKey)]])],
          ]),
        ],
        [
          R.bulk('find_keys'),
          R.map([
            [R.bulk('type'), R.bulk('range')],
            [
              R.bulk('spec'),
              R.map([
                [
                  R.bulk('lastkey'),
                  R.int(spec.lastKey < 0 ? spec.lastKey : spec.lastKey - spec.firstKey),
                ],
                [R.bulk('keystep'), R.int(spec.keyStep)],
                [R.bulk('limit'), R.int(0)],
              ]),
            ],
          ]),
        ],
      ]),
    );
  }
  return R.array([
    R.bulk(spec.name),
    R.int(spec.arity),
    R.set(spec.flags.map((f) => R.simple(f))),
    R.int(spec.firstKey),
    R.int(spec.lastKey),
    R.int(spec.keyStep),
    R.set([R.simple(`@${spec.group}`)]),
    R.array([]),
    R.array(keySpecs),
    R.array([]),
  ]);
}

function argDocReply(arg: ArgDoc): Reply {
  const fields: Array<[Reply, Reply]> = [
    [R.bulk('name'), R.bulk(arg.name)],
    [R.bulk('type'), R.bulk(arg.type)],
  ];
  if (arg.token !== undefined) fields.push([R.bulk('token'), R.bulk(arg.token)]);
  const flags: Reply[] = [];
  if (arg.optional) flags.push(R.simple('optional'));
  if (arg.multiple) flags.push(R.simple('multiple'));
  if (flags.length > 0) fields.push([R.bulk('flags'), R.set(flags)]);
  if (arg.arguments) fields.push([R.bulk('arguments'), R.array(arg.arguments.map(argDocReply))]);
  return R.map(fields);
}

function docsReply(spec: CommandSpec): Reply {
  return R.map([
    [R.bulk('summary'), R.bulk(spec.summary)],
    [R.bulk('since'), R.bulk(spec.since)],
    [R.bulk('group'), R.bulk(spec.group)],
    [R.bulk('complexity'), R.bulk(spec.complexity)],
    [R.bulk('module'), R.bulk('semcache')],
    [R.bulk('arguments'), R.array(spec.arguments.map(argDocReply))],
  ]);
}

/** Returns the splice for a COMMAND request, or undefined to forward it untouched. */
export function commandSplice(args: Buffer[], table: CommandTable): Splice | undefined {
  if (table.size === 0) return undefined;
  const ours = [...table.values()];
  const sub = args.length > 1 ? args[1]!.toString('latin1').toLowerCase() : '';
  const names = args.slice(2).map((a) => a.toString('latin1').toLowerCase());

  const appendAll =
    (entries: (proto: Proto) => Buffer[], perEntry = 1): Splice =>
    (reply, proto) => {
      const agg = splitAggregate(reply);
      if (agg === undefined) return reply;
      const extra = entries(proto);
      return Buffer.concat([
        // Redis's children stay as bytes; only the header is rewritten.
        aggregateHeader(agg.type, agg.count + extra.length * perEntry),
        reply.subarray(agg.headerEnd),
        ...extra,
      ]);
    };

  if (args.length === 1 || (sub === 'info' && names.length === 0)) {
    return appendAll((proto) => ours.map((s) => encodeReply(infoReply(s), proto)));
  }
  if (sub === 'count' && args.length === 2) {
    return (reply, proto) => {
      if (reply[0] !== 0x3a /* : */) return reply;
      const n = Number(reply.subarray(1, reply.length - 2).toString('latin1'));
      return encodeReply(R.int(n + ours.length), proto);
    };
  }
  if (sub === 'list' && args.length === 2) {
    return appendAll((proto) => ours.map((s) => encodeReply(R.bulk(s.name), proto)));
  }
  if (sub === 'info') {
    if (!names.some((n) => table.has(n))) return undefined;
    return (reply, proto) => {
      const agg = splitAggregate(reply);
      if (agg === undefined || agg.children.length !== names.length) return reply;
      const parts: Buffer[] = [reply.subarray(0, agg.headerEnd)];
      agg.children.forEach(([start, end], i) => {
        const spec = table.get(names[i]!);
        parts.push(spec ? encodeReply(infoReply(spec), proto) : reply.subarray(start, end));
      });
      return Buffer.concat(parts);
    };
  }
  if (sub === 'docs') {
    const wanted =
      names.length === 0 ? ours : [...new Set(names)].flatMap((n) => table.get(n) ?? []);
    if (wanted.length === 0) return undefined;
    return (reply, proto) => {
      const agg = splitAggregate(reply);
      if (agg === undefined) return reply;
      // RESP3 answers a map (count = pairs), RESP2 a flat array (count = 2 x pairs).
      const perPair = agg.type === '%' ? 1 : 2;
      const extra = wanted.flatMap((s) => [
        encodeReply(R.bulk(s.name), proto),
        encodeReply(docsReply(s), proto),
      ]);
      return Buffer.concat([
        aggregateHeader(agg.type, agg.count + wanted.length * perPair),
        reply.subarray(agg.headerEnd),
        ...extra,
      ]);
    };
  }
  return undefined;
}
