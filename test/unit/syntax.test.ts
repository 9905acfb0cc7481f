/*
 * One description per command: the ArgDoc table that COMMAND DOCS shows and
 * the option parser reads (src/commands/options.ts) also renders the syntax
 * lines of docs/commands.md (src/commands/syntax.ts). This checks that every
 * command's lines are in that file as rendered, and that the parser takes
 * what the table says and refuses what it does not.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { type ArgReader, CommandError } from '../../src/commands/args.js';
import { parseOptions } from '../../src/commands/options.js';
import { semanticCommands } from '../../src/commands/semantic/index.js';
import { syntaxLines } from '../../src/commands/syntax.js';
import type { ArgDoc } from '../../src/commands/types.js';
import type { SemanticCache } from '../../src/semantic/engine.js';

const specs = semanticCommands({} as SemanticCache);

/** The lines of docs/commands.md's code blocks, continuation lines joined. */
function documentedLines(): string[] {
  const md = readFileSync(new URL('../../docs/commands.md', import.meta.url), 'utf8');
  const lines: string[] = [];
  for (const block of md.matchAll(/```\n([\s\S]*?)```/g)) {
    for (const line of block[1]!.split('\n')) {
      if (/^\s+\S/.test(line) && lines.length > 0) lines[lines.length - 1] += ` ${line.trim()}`;
      else if (line.trim() !== '') lines.push(line.trim());
    }
  }
  return lines;
}

describe('syntax lines', () => {
  const documented = documentedLines();
  it.each(specs.map((s) => [s.name.toUpperCase(), s] as const))(
    '%s is documented as declared',
    (_, spec) => {
      const lines = syntaxLines(spec);
      expect(lines.length).toBeGreaterThan(0);
      for (const line of lines) expect(documented).toContain(line);
    },
  );

  it('renders Redis-style: optional, required and optional choices, blocks, multiples', () => {
    const spec = specs.find((s) => s.name === 'semsearch')!;
    expect(syntaxLines(spec)[0]).toMatch(
      /^SEMSEARCH <TEXT text \| FP32 blob \| VALUES num value \[value \.\.\.\]> \[NS namespace\]/,
    );
    expect(syntaxLines(specs.find((s) => s.name === 'semns')!)).toEqual([
      'SEMNS SET namespace [THRESHOLD similarity] [INDEX <FLAT | HNSW | IVF | AUTO>] [QUANT <FP32 | Q8>]',
      'SEMNS GET namespace',
      'SEMNS DEL namespace [FLUSH]',
      'SEMNS LIST',
    ]);
  });
});

describe('parseOptions', () => {
  const docs: ArgDoc[] = [
    { name: 'key', type: 'key' },
    {
      name: 'expiration',
      type: 'oneof',
      optional: true,
      arguments: [
        { name: 'seconds', type: 'integer', token: 'EX', check: { min: 1, max: 100 } },
        { name: 'keepttl', type: 'pure-token', token: 'KEEPTTL' },
      ],
    },
    { name: 'ns', type: 'string', token: 'NS', optional: true, check: { utf8: 'namespace' } },
    { name: 'score', type: 'double', token: 'SCORE', optional: true, check: { min: -1, max: 1 } },
    {
      name: 'pair',
      type: 'block',
      token: 'PAIR',
      optional: true,
      check: { read: (r: ArgReader, t: string) => [r.string(t), r.string(t)] },
      arguments: [
        { name: 'a', type: 'string' },
        { name: 'b', type: 'string' },
      ],
    },
    {
      name: 'mode',
      type: 'block',
      token: 'MODE',
      optional: true,
      arguments: [
        {
          name: 'm',
          type: 'oneof',
          arguments: [
            { name: 'fast', type: 'pure-token', token: 'FAST' },
            { name: 'slow', type: 'pure-token', token: 'SLOW' },
          ],
        },
      ],
    },
  ];
  const parse = (...a: (string | Buffer)[]) =>
    parseOptions(
      ['CMD', 'k', ...a].map((x) => (Buffer.isBuffer(x) ? x : Buffer.from(x))),
      2,
      docs,
    );
  const error = (...a: (string | Buffer)[]) => {
    try {
      parse(...a);
    } catch (err) {
      expect(err).toBeInstanceOf(CommandError);
      return (err as Error).message;
    }
    throw new Error('no error');
  };

  it('reads every kind of option, tokens case-insensitive, in any order; the last of a repeat wins', () => {
    const o = parse(
      'ns',
      'a',
      'ex',
      '5',
      'Score',
      '0.5',
      'PAIR',
      'x',
      'y',
      'mode',
      'fast',
      'NS',
      'b',
    );
    expect(o.chosen('expiration')).toBe('EX');
    expect(o.number('seconds')).toBe(5);
    expect(o.number('score')).toBe(0.5);
    expect(o.string('ns')).toBe('b');
    expect(o.value('pair')).toEqual(['x', 'y']);
    expect(o.string('mode')).toBe('fast');
    expect(parse('KEEPTTL').flag('keepttl')).toBe(true);
    expect(parse().has('ns')).toBe(false);
  });

  it("refuses what the table does not allow, in Redis's words", () => {
    expect(error('BOGUS')).toBe("ERR syntax error near 'BOGUS'");
    expect(error('EX', '5', 'KEEPTTL')).toBe("ERR syntax error near 'KEEPTTL'");
    expect(error('EX', '5', 'EX', '6')).toBe("ERR syntax error near 'EX'");
    expect(error('EX', 'x')).toBe('ERR value is not an integer or out of range');
    expect(error('EX', '0')).toBe('ERR EX must be between 1 and 100');
    expect(error('SCORE', 'nan')).toBe('ERR value is not a valid float');
    expect(error('SCORE', '2')).toBe('ERR SCORE must be between -1 and 1');
    expect(error('NS')).toBe('ERR syntax error: NS needs a value');
    expect(error('NS', Buffer.from([0xff]))).toBe('ERR namespace must be valid UTF-8');
    expect(error('MODE', 'medium')).toBe("ERR syntax error near 'medium'");
    expect(error('PAIR', 'x')).toBe('ERR syntax error: PAIR needs a value');
  });

  it('a required choice must be made', () => {
    const required: ArgDoc[] = [
      {
        name: 'q',
        type: 'oneof',
        arguments: [
          { name: 't', type: 'string', token: 'TEXT' },
          { name: 'v', type: 'string', token: 'VEC' },
        ],
      },
      { name: 'n', type: 'integer', token: 'N', optional: true },
    ];
    const args = ['CMD', 'N', '1'].map((x) => Buffer.from(x));
    expect(() => parseOptions(args, 1, required)).toThrow("ERR syntax error near 'N'");
    const o = parseOptions([...args, Buffer.from('VEC'), Buffer.from('v')], 1, required);
    expect(o.buffer('v')?.toString()).toBe('v');
  });
});
