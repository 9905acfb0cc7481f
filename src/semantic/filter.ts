/*
 * FILTER expressions over an entry's JSON attributes, after Redis 8 vector
 * sets (VSIM ... FILTER, modules/vector-sets/expr.c), so that an expression
 * written for Redis means the same here:
 *     .year >= 1980 and .genre in ["action", "drama"] and "ork" in .city
 *
 * Grammar, loosest first (expr.c's precedence): or || | and && |
 * == != < <= > >= in (left-assoc) | + - | * / % | ** (right-assoc) |
 * prefix ! not - | primary. Primaries: numbers, "double" or 'single' quoted
 * strings (\n \r \t; \x is x), null, true and false (1 and 0: Redis has no
 * booleans), tuples of literals ([1, "a"], trailing comma allowed as in
 * Redis), selectors and parentheses. A selector is `.field`, or `.a.b` into
 * nested objects (an extension: Redis reads top-level keys only); names are
 * [A-Za-z0-9_-]+ as in Redis, so `.year-1` is the field "year-1". Keywords
 * are lower case. Unary minus takes any operand and binds tighter than **
 * (in Redis the minus belongs to the number: -2 ** 2 is 4).
 *
 * Evaluation follows expr.c and never throws:
 *   - no attributes, or any selector missing or holding something else than
 *     a number, string, boolean, null or flat array of those: the whole
 *     expression is false, even under `not` or `or` (Redis gives up at the
 *     first such selector);
 *   - == and != compare strings as strings, numbers as numbers, null only
 *     equals null, and any other mix as numbers; the other operators work on
 *     numbers. A string counts as the number it spells in full (strtod),
 *     otherwise 0, and so do null and tuples: `.name == 0` holds for "abc";
 *   - `x in [...]` is membership by ==, `"sub" in "string"` a substring test;
 *   - and, or, not give 1 or 0; the expression holds when its value is a
 *     non-zero number, a non-empty string or a tuple.
 *
 * Tokens and syntax errors are filter-lexer.ts's. compileFilter() builds
 * closures once (no eval); a filter call resolves each
 * distinct selector once. Limits, so a client cannot make the server recurse
 * or allocate without bound: FILTER_MAX_LENGTH characters, FILTER_MAX_DEPTH
 * nested parentheses and prefix operators.
 */
import { SemErr } from '../errors.js';
import {
  FilterSyntaxError,
  type Scalar,
  syntaxError,
  type Token,
  tokenize,
  type Value,
} from './filter-lexer.js';

export { FilterSyntaxError };

export const FILTER_MAX_LENGTH = 4096;
export const FILTER_MAX_DEPTH = 64;

export type Filter = (attrs: Record<string, unknown> | undefined) => boolean;

type Node = (env: Value[]) => Value;

const MISSING = Symbol('missing');

const LEVELS = ['or ||', 'and &&', '== != < <= > >= in', '+ -', '* / %'].map((l) => l.split(' '));

// ---- values, as expr.c treats them ------------------------------------

const STRTOD =
  /^[ \t\n\v\f\r]*([+-]?)(?:(inf(?:inity)?)|(nan)|0x([0-9a-f]+)|((?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?))$/i;

/** A string read as C's strtod must read all of it, else 0 (expr.c's exprTokenToNum). */
function strtod(s: string): number {
  const m = STRTOD.exec(s);
  if (!m) return 0;
  if (m[3]) return Number.NaN;
  const n = m[2] ? Number.POSITIVE_INFINITY : m[4] ? Number.parseInt(m[4], 16) : Number(m[5]);
  return m[1] === '-' ? -n : n;
}

const toNum = (v: Value): number =>
  typeof v === 'number' ? v : typeof v === 'string' ? strtod(v) : 0;
const truthy = (v: Value): boolean =>
  typeof v === 'number' ? v !== 0 : typeof v === 'string' ? v.length > 0 : v !== null;

function equal(a: Value, b: Value): boolean {
  if (typeof a === 'string' && typeof b === 'string') return a === b;
  if (typeof a === 'number' && typeof b === 'number') return a === b;
  if (a === null || b === null) return a === b;
  return toNum(a) === toNum(b);
}

function contains(a: Value, b: Value): boolean {
  if (Array.isArray(b)) return b.some((x) => equal(a, x));
  return typeof a === 'string' && typeof b === 'string' && b.includes(a);
}

const BINARY: Record<string, (a: Value, b: Value) => Value> = {
  '*': (a, b) => toNum(a) * toNum(b),
  '/': (a, b) => toNum(a) / toNum(b),
  '%': (a, b) => toNum(a) % toNum(b), // fmod, like C
  '+': (a, b) => toNum(a) + toNum(b),
  '-': (a, b) => toNum(a) - toNum(b),
  '>': (a, b) => +(toNum(a) > toNum(b)),
  '>=': (a, b) => +(toNum(a) >= toNum(b)),
  '<': (a, b) => +(toNum(a) < toNum(b)),
  '<=': (a, b) => +(toNum(a) <= toNum(b)),
  '==': (a, b) => +equal(a, b),
  '!=': (a, b) => +!equal(a, b),
  in: (a, b) => +contains(a, b),
};

function scalar(x: unknown): Scalar | typeof MISSING {
  if (typeof x === 'number' || typeof x === 'string' || x === null) return x;
  return typeof x === 'boolean' ? +x : MISSING;
}

/** An attribute as an expression value, or MISSING (the expression is then false). */
function resolve(attrs: object, path: string[]): Value | typeof MISSING {
  let cur: unknown = attrs;
  for (const key of path) {
    if (typeof cur !== 'object' || cur === null || Array.isArray(cur) || !Object.hasOwn(cur, key))
      return MISSING;
    cur = (cur as Record<string, unknown>)[key];
  }
  if (!Array.isArray(cur)) return scalar(cur);
  const items = cur.map(scalar);
  return items.includes(MISSING) ? MISSING : (items as Scalar[]);
}

// ---- parsing to closures ----------------------------------------------

export function compileFilter(src: string): Filter {
  if (src.length > FILTER_MAX_LENGTH) {
    const msg = SemErr.FILTER_TOO_LONG(src.length, FILTER_MAX_LENGTH);
    throw new FilterSyntaxError('FILTER_TOO_LONG', msg, FILTER_MAX_LENGTH, undefined);
  }
  const tokens = tokenize(src);
  const paths: string[][] = [];
  const slots = new Map<string, number>();
  let i = 0;
  let depth = 0;
  const isOp = (ops: string[]) => tokens[i]!.t === 'op' && ops.includes(tokens[i]!.text);
  const fail = (tok: Token): never => {
    throw syntaxError(tok.pos, tok.t === 'end' ? undefined : tok.text);
  };
  const nested = (tok: Token, parse: () => Node): Node => {
    if (++depth > FILTER_MAX_DEPTH)
      throw syntaxError(tok.pos, tok.text, ` (nested deeper than ${FILTER_MAX_DEPTH})`);
    const node = parse();
    depth--;
    return node;
  };

  // Left-assoc levels in a loop: a long chain grows the tree, not the parser's stack.
  const level = (n: number): Node => {
    if (n === LEVELS.length) return power();
    let left = level(n + 1);
    while (isOp(LEVELS[n]!)) {
      const op = tokens[i++]!.text;
      const [l, r] = [left, level(n + 1)];
      if (n === 0) left = (env) => +(truthy(l(env)) || truthy(r(env)));
      else if (n === 1) left = (env) => +(truthy(l(env)) && truthy(r(env)));
      else {
        const f = BINARY[op]!;
        left = (env) => f(l(env), r(env));
      }
    }
    return left;
  };

  // a ** b ** c is a ** (b ** c): gathered in a loop, folded from the right.
  const power = (): Node => {
    const operands = [unary()];
    while (isOp(['**'])) {
      i++;
      operands.push(unary());
    }
    return operands.reduceRight((exp, base) => (env) => toNum(base(env)) ** toNum(exp(env)));
  };

  const unary = (): Node => {
    const tok = tokens[i]!;
    if (!isOp(['!', 'not', '-'])) return primary();
    i++;
    const operand = nested(tok, unary);
    return tok.text === '-' ? (env) => -toNum(operand(env)) : (env) => +!truthy(operand(env));
  };

  const primary = (): Node => {
    const tok = tokens[i++]!;
    if (tok.t === 'value') {
      const v = tok.v;
      return () => v;
    }
    if (tok.t === 'sel') {
      const key = tok.path.join('.');
      let slot = slots.get(key);
      if (slot === undefined) slots.set(key, (slot = paths.push(tok.path) - 1));
      const s = slot;
      return (env) => env[s]!;
    }
    if (tok.t !== 'op' || tok.text !== '(') return fail(tok);
    const inner = nested(tok, () => level(0));
    if (!isOp([')'])) fail(tokens[i]!);
    i++;
    return inner;
  };

  const root = level(0);
  if (tokens[i]!.t !== 'end') fail(tokens[i]!);

  return (attrs) => {
    if (typeof attrs !== 'object' || attrs === null) return false; // Redis: no attributes, no match
    const env = new Array<Value>(paths.length);
    try {
      for (let k = 0; k < paths.length; k++) {
        const v = resolve(attrs, paths[k]!);
        if (v === MISSING) return false;
        env[k] = v;
      }
    } catch {
      return false; // a throwing getter or proxy among the attributes
    }
    return truthy(root(env));
  };
}
