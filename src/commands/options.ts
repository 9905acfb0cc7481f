/*
 * One option parser for our commands, driven by the ArgDoc table each command
 * declares, which is also what COMMAND DOCS shows and what the syntax lines in
 * docs/commands.md are checked against (syntax.ts, test/unit/syntax.test.ts):
 * what a command documents is what it parses.
 *
 * Model: after a command's positional arguments come tokens in any order.
 * - A token names an argument with that `token`, at the top level of the
 *   table or inside a `oneof` group (EX | PX | KEEPTTL); case-insensitive.
 * - Its value is read by the argument's type: `pure-token` is true, `integer`
 *   and `double` are range-checked (`check.min`, `check.max`), `string` is
 *   the raw bytes, or valid UTF-8 text when `check.utf8` names it; a `block` holding one `oneof` of pure tokens
 *   (INDEX <FLAT | HNSW | IVF | AUTO>) is one of those tokens (lower-cased);
 *   `check.read` reads anything else (VALUES n v1 ... vn, EX's integer as
 *   SET checks it).
 * - A plain option given twice keeps the last value, as Redis's options do;
 *   two members of one `oneof` group (EX 1 PX 1, EX 1 EX 2) are a syntax
 *   error, as SET's are. A required `oneof` group that is missing is one too.
 * - An unknown token is `ERR syntax error near '<token>'`.
 * Errors are Redis's own texts where Redis has them (src/errors.ts, ArgErr).
 */
import { isUtf8 } from 'node:buffer';

import { ArgErr, ArgReader, CommandError } from './args.js';
import type { ArgDoc } from './types.js';

/** What the parser knows of each token: the argument, and its group if any. */
interface TokenEntry {
  doc: ArgDoc;
  group: ArgDoc | undefined;
}

/** What a command's options came to, by argument name (groups by group name). */
export class Options {
  readonly #values = new Map<string, unknown>();
  readonly #chosen = new Map<string, string>();

  set(name: string, value: unknown): void {
    this.#values.set(name, value);
  }

  choose(group: string, token: string): void {
    this.#chosen.set(group, token);
  }

  has(name: string): boolean {
    return this.#values.has(name);
  }

  /** The value of a string option: text when it has check.utf8 (or is a block's choice). */
  string(name: string): string | undefined {
    return this.#values.get(name) as string | undefined;
  }

  buffer(name: string): Buffer | undefined {
    return this.#values.get(name) as Buffer | undefined;
  }

  number(name: string): number | undefined {
    return this.#values.get(name) as number | undefined;
  }

  flag(name: string): boolean {
    return this.#values.get(name) === true;
  }

  /** What check.read made of a token's arguments. */
  value<T>(name: string): T | undefined {
    return this.#values.get(name) as T | undefined;
  }

  /** The token chosen from a `oneof` group (upper case), if any. */
  chosen(group: string): string | undefined {
    return this.#chosen.get(group);
  }
}

/** An argument that is text to us, decoded; `what` names it when it is not valid UTF-8. */
export function utf8Text(arg: Buffer, what: string): string {
  if (!isUtf8(arg)) throw new CommandError(ArgErr.notUtf8(what));
  return arg.toString();
}

const tables = new WeakMap<readonly ArgDoc[], Map<string, TokenEntry>>();

/** The tokens of `docs`, cached per table. */
function tokensOf(docs: readonly ArgDoc[]): Map<string, TokenEntry> {
  let table = tables.get(docs);
  if (table !== undefined) return table;
  table = new Map();
  for (const doc of docs) {
    if (doc.token !== undefined) table.set(doc.token.toUpperCase(), { doc, group: undefined });
    else if (doc.type === 'oneof') {
      for (const member of doc.arguments ?? []) {
        if (member.token === undefined) throw new Error(`${doc.name}: a member has no token`);
        table.set(member.token.toUpperCase(), { doc: member, group: doc });
      }
    }
  }
  tables.set(docs, table);
  return table;
}

/** Parses args[start..] against the token arguments of `docs` (positional ones are skipped). */
export function parseOptions(args: Buffer[], start: number, docs: readonly ArgDoc[]): Options {
  const table = tokensOf(docs);
  const out = new Options();
  const r = new ArgReader(args, start);
  while (!r.done) {
    const token = r.option();
    const entry = table.get(token);
    if (entry === undefined) throw new CommandError(ArgErr.syntax(r.last));
    const { doc, group } = entry;
    if (group !== undefined) {
      if (out.chosen(group.name) !== undefined) throw new CommandError(ArgErr.syntax(r.last));
      out.choose(group.name, token);
    }
    out.set(doc.name, readValue(r, doc, token));
  }
  for (const doc of docs) {
    if (doc.type === 'oneof' && doc.token === undefined && !doc.optional) {
      if (out.chosen(doc.name) === undefined) {
        throw new CommandError(ArgErr.syntax(args[start]?.toString() ?? ''));
      }
    }
  }
  return out;
}

function readValue(r: ArgReader, doc: ArgDoc, token: string): unknown {
  const check = doc.check ?? {};
  if (check.read !== undefined) return check.read(r, token);
  switch (doc.type) {
    case 'pure-token':
      return true;
    case 'block': {
      const choices = doc.arguments?.length === 1 ? doc.arguments[0]!.arguments : undefined;
      if (doc.arguments?.[0]?.type !== 'oneof' || choices === undefined) {
        throw new Error(`${doc.name}: a block option needs check.read`);
      }
      const arg = r.buffer(token);
      const v = arg.toString('latin1').toUpperCase();
      if (!choices.some((c) => c.type === 'pure-token' && c.token === v)) {
        throw new CommandError(ArgErr.syntax(arg.toString()));
      }
      return v.toLowerCase();
    }
    case 'integer':
      return r.integer(token, check.min, check.max);
    case 'double':
      return r.float(token, check.min ?? -Number.MAX_VALUE, check.max ?? Number.MAX_VALUE);
    default: {
      const arg = r.buffer(token);
      return check.utf8 === undefined ? arg : utf8Text(arg, check.utf8);
    }
  }
}
