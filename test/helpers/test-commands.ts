/*
 * Test doubles for our command table: small local commands with controllable
 * latency, so ordering and context rules can be tested before (and apart
 * from) the semantic-cache commands.
 */
import type { CommandSpec } from '../../src/commands/types.js';
import { R } from '../../src/resp/writer.js';

const base = {
  flags: ['readonly'],
  firstKey: 0,
  lastKey: 0,
  keyStep: 0,
  group: 'semcache',
  since: '0.1.0',
  complexity: 'O(1)',
};

/** TESTECHO message [delay-ms]: the message, after the delay. */
export const testEcho: CommandSpec = {
  ...base,
  name: 'testecho',
  arity: -2,
  summary: 'Echo a message after an optional delay (test double).',
  arguments: [
    { name: 'message', type: 'string' },
    { name: 'delay', type: 'integer', optional: true },
  ],
  execute(args) {
    const delay = args[2] ? Number(args[2].toString()) : 0;
    const reply = R.bulk(args[1]!);
    if (delay <= 0) return reply;
    return new Promise((resolve) => setTimeout(() => resolve(reply), delay));
  },
};

/** TESTMAP: a map {a: 1, b: [x]}: RESP3 `%`, RESP2 flat array. */
export const testMap: CommandSpec = {
  ...base,
  name: 'testmap',
  arity: 1,
  summary: 'Reply with a small map (test double).',
  arguments: [],
  execute() {
    return R.map([
      [R.bulk('a'), R.int(1)],
      [R.bulk('b'), R.array([R.bulk('x'), R.null])],
    ]);
  },
};

/** TESTFAIL: throws, to check that a failing command answers -ERR and nothing crashes. */
export const testFail: CommandSpec = {
  ...base,
  name: 'testfail',
  arity: 1,
  summary: 'Throw (test double).',
  arguments: [],
  execute() {
    throw new Error('boom');
  },
};

/** TESTNOMULTI: like a Redis command flagged no-multi (refused inside MULTI). */
export const testNoMulti: CommandSpec = {
  ...base,
  flags: ['readonly', 'no-multi'],
  name: 'testnomulti',
  arity: 1,
  summary: 'Reply OK; refused in a transaction (test double).',
  arguments: [],
  execute() {
    return R.ok;
  },
};

/**
 * TESTGET key [key ...]: GETs the keys as the client (ctx.redis) and replies
 * with an array of their raw replies' first lines: checks requests made on the
 * client's behalf, inside and outside MULTI.
 */
export const testGet: CommandSpec = {
  ...base,
  name: 'testget',
  arity: -2,
  firstKey: 1,
  lastKey: -1,
  keyStep: 1,
  summary: 'GET keys as the client and echo the raw replies (test double).',
  arguments: [{ name: 'key', type: 'key', multiple: true }],
  async execute(args, ctx) {
    const replies = await ctx.redis.send(args.slice(1).map((k) => ['GET', k]));
    return R.array(replies.map((r) => R.bulk(r.toString('latin1').replace(/\r\n$/, ''))));
  },
};

export const testCommands = [testEcho, testMap, testFail, testNoMulti, testGet];
