/*
 * The FILTER language's tokens (filter.ts has the grammar and the values):
 * numbers, "double" or 'single' quoted strings (\n \r \t; \x is x), null,
 * true and false, tuples of literals (a constant, as in Redis), selectors
 * `.a.b`, keywords and operators. Errors say where, as a 0-based UTF-16
 * offset and the word or character found there (SemErr.FILTER_SYNTAX).
 */
import { SemErr } from '../errors.js';
import { InvalidInputError } from './types.js';

/** A FILTER that does not parse (or is too long); `position` is the 0-based UTF-16 offset of `near` (undefined: the end). */
export class FilterSyntaxError extends InvalidInputError {
  constructor(
    code: 'FILTER_SYNTAX' | 'FILTER_TOO_LONG',
    message: string,
    readonly position: number,
    readonly near: string | undefined,
  ) {
    super(code, message);
  }
}

export type Scalar = number | string | null;
export type Value = Scalar | readonly Scalar[];
export type Token =
  | { t: 'value'; v: Value; pos: number; text: string }
  | { t: 'sel'; path: string[]; pos: number; text: string }
  | { t: 'op' | 'end'; pos: number; text: string };

const SPACE = /[ \t\n\v\f\r]*/y;
const NUMBER = /-?\d+(?:\.\d*)?(?:[eE][+-]?\d+)?/y;
const STRING = /"((?:[^"\\]|\\[\s\S])*)"|'((?:[^'\\]|\\[\s\S])*)'/y;
const SELECTOR = /(?:\.[A-Za-z0-9_-]+)+/y;
const WORD = /[A-Za-z_][A-Za-z0-9_]*/y;
const OPERATOR = /\*\*|[<>=!]=|&&|\|\||[-+*/%<>!()]/y;
const KEYWORDS = new Set(['and', 'or', 'not', 'in']);
const LITERALS: Record<string, Scalar> = { null: null, true: 1, false: 0 };
const ESCAPES: Record<string, string> = { n: '\n', r: '\r', t: '\t' };

/** `re` (sticky) matched at `pos`. */
function match(re: RegExp, src: string, pos: number): RegExpExecArray | null {
  re.lastIndex = pos;
  return re.exec(src);
}

export function syntaxError(pos: number, near: string | undefined, why = ''): FilterSyntaxError {
  return new FilterSyntaxError('FILTER_SYNTAX', SemErr.FILTER_SYNTAX(pos, near, why), pos, near);
}

/** An error at `pos`, "near" the word there or its one character. */
function errorAt(src: string, pos: number, why?: string): FilterSyntaxError {
  const near =
    pos >= src.length
      ? undefined
      : (match(WORD, src, pos)?.[0] ?? String.fromCodePoint(src.codePointAt(pos)!));
  return syntaxError(pos, near, why);
}

/** A literal (number, string, null/true/false) at `pos`, as in tuples and as a primary. */
function literal(src: string, pos: number): { v: Scalar; text: string } | undefined {
  const num = match(NUMBER, src, pos)?.[0];
  if (num) return { v: Number(num), text: num };
  const str = match(STRING, src, pos);
  if (str)
    return {
      v: (str[1] ?? str[2]!).replace(/\\([\s\S])/g, (_, e: string) => ESCAPES[e] ?? e),
      text: str[0],
    };
  if (src[pos] === '"' || src[pos] === "'") {
    throw syntaxError(pos, src.slice(pos), ': unterminated string');
  }
  const word = match(WORD, src, pos)?.[0];
  if (word && Object.hasOwn(LITERALS, word)) return { v: LITERALS[word]!, text: word };
  return undefined;
}

export function tokenize(src: string): Token[] {
  const tokens: Token[] = [];
  for (let p = 0; ; ) {
    p += match(SPACE, src, p)![0].length;
    if (p >= src.length) return [...tokens, { t: 'end', pos: p, text: '' }];
    let tok: Token | undefined;
    let text: string | undefined;
    const lit = src[p] === '-' ? undefined : literal(src, p); // a leading minus is unary
    if (lit) tok = { t: 'value', v: lit.v, pos: p, text: lit.text };
    else if ((text = match(SELECTOR, src, p)?.[0]))
      tok = { t: 'sel', path: text.slice(1).split('.'), pos: p, text };
    else if (src[p] === '[') tok = tuple(src, p);
    else if ((text = match(WORD, src, p)?.[0] ?? match(OPERATOR, src, p)?.[0])) {
      if (/^[A-Za-z_]/.test(text) && !KEYWORDS.has(text)) throw syntaxError(p, text);
      tok = { t: 'op', pos: p, text };
    }
    if (!tok) throw errorAt(src, p);
    tokens.push(tok);
    p += tok.text.length;
  }
}

/** A tuple at `p`: literals only, as in Redis, so it is a constant. */
function tuple(src: string, p: number): Token {
  const out: Scalar[] = [];
  let q = p + 1;
  for (;;) {
    q += match(SPACE, src, q)![0].length;
    if (src[q] === ']') break;
    const lit = literal(src, q);
    if (!lit) throw errorAt(src, q);
    out.push(lit.v);
    q += lit.text.length;
    q += match(SPACE, src, q)![0].length;
    if (src[q] === ']') break;
    if (src[q] !== ',') throw errorAt(src, q);
    q++;
  }
  return { t: 'value', v: out, pos: p, text: src.slice(p, q + 1) };
}
