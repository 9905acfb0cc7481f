import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  compileFilter,
  FILTER_MAX_DEPTH,
  FILTER_MAX_LENGTH,
  FilterSyntaxError,
} from '../../src/semantic/filter.js';

const alice = {
  age: 25,
  name: 'Alice',
  active: true,
  retired: false,
  scores: [85, 90, 95],
  city: 'New York',
  tags: ['x', 'y', 1],
  nested: { a: { b: 3 }, s: 'deep' },
  nul: null,
  'year-1': 7,
  empty: '',
  numstr: '42',
  hex: '0x10',
  padded: ' 12',
  trailing: '12 ',
  obj: { k: 1 },
  deeparr: [[1]],
  quote: 'a"b',
  newline: 'l1\nl2',
};
const bob = { age: 30, name: 'Bob', active: false, scores: [70, 75, 80], city: 'Boston' };
const charlie = { age: 35, name: 'Charlie', scores: [60, 65, 70], city: 'Seattle' };

const run = (expr: string, attrs: Record<string, unknown> | undefined = alice) =>
  compileFilter(expr)(attrs);

describe('filter: evaluation (cases from Redis tests/filter_expr.py and more)', () => {
  const table: [string, boolean][] = [
    // comparisons and strings
    ['.age == 25', true],
    ['.age > 25', false],
    ['.age <= 30', true],
    ['.name == "Alice"', true],
    [".name == 'Alice'", true],
    ['.name != "Alice"', false],
    ['.active', true],
    ['.retired', false],
    ['.active == true', true],
    ['.retired == false', true],
    ['!(.age == 25)', false],
    ['not .retired', true],
    ['.age > 20 and .age < 30', true],
    ['.age > 20 && .age < 24', false],
    ['.age < 20 or .name == "Alice"', true],
    ['.age < 20 || .age > 99', false],
    // in: membership and substring
    ['.age in [25, 35]', true],
    ['.age in [24, 35]', false],
    ['.name in ["Alice", "David"]', true],
    ['.name in ["alice"]', false],
    ['"lic" in .name', true],
    ['"ork" in .city', true],
    ['"xyz" in .name', false],
    ['"Ali" in .name', true],
    ['"ice" in .name', true],
    ['"Alice" in .name', true],
    ['"" in .name', true],
    ['.name in ""', false],
    ['"" in ""', true],
    ['90 in .scores', true],
    ['91 in .scores', false],
    ['"y" in .tags', true],
    ['1 in .tags', true],
    ['"1" in .tags', true], // mixed types compare as numbers, as in Redis
    ['.age in 25', false], // neither a tuple nor two strings
    ['1 in []', false],
    // arithmetic
    ['.age + 10 == 35', true],
    ['.age * 2 > 60', false],
    ['.age / 5 == 5', true],
    ['.age % 2 == 1', true],
    ['.age ** 2 == 625', true],
    ['.age - 1 == 24', true],
    ['(.age - 2000) ** 2 > 100', true],
    // missing or unsupported attributes make the whole expression false
    ['.missing == "value"', false],
    ['.missing', false],
    ['not .missing', false],
    ['!(.missing == 1)', false],
    ['.missing == 1 or .age == 25', false],
    ['.age == 25 or .missing', false],
    ['.obj', false],
    ['.obj == 1 or 1', false],
    ['.deeparr', false],
    ['.age-1 == 24', false], // the field "age-1", as in Redis
    ['.year-1 == 7', true],
    // nested selectors (extension)
    ['.nested.a.b == 3', true],
    ['.nested.s == "deep"', true],
    ['.nested.a', false],
    ['.nested.x.y', false],
    ['.age.x', false],
    ['.scores.0', false],
    // inherited properties are not attributes
    ['.constructor', false],
    ['.toString', false],
    ['.__proto__', false],
    ['.hasOwnProperty', false],
    // null
    ['.nul == null', true],
    ['.nul != null', false],
    ['.nul', false],
    ['.nul == 0', false],
    ['null == null', true],
    ['null', false],
    // truthiness of the result
    ['.scores', true],
    ['.empty', false],
    ['.name', true],
    ['[]', true],
    ['0', false],
    ['0.0', false],
    ['"0"', true],
    ['1 / 0', true],
    ['0 / 0', true], // NaN is not 0: true, as in C
    ['true', true],
    ['false', false],
    // strings as numbers (strtod over the whole string, else 0)
    ['.numstr == 42', true],
    ['.numstr + 1 == 43', true],
    ['.numstr == "42"', true],
    ['.numstr == "42.0"', false], // two strings compare as strings
    ['.hex == 16', true],
    ['.padded == 12', true],
    ['.trailing == 0', true],
    ['.name == 0', true], // a non-numeric string counts as 0, as in Redis
    ['.name < 1', true],
    ['"inf" > 1e308', true],
    ['"1e3" == 1000', true],
    // escapes, after Redis tests/filter_string_escape.py
    ['.quote == "a\\"b"', true],
    [".quote == 'a\"b'", true],
    ['"\\"b" in .quote', true],
    ['.quote in ["zzz", "a\\"b"]', true],
    ['.newline == "l1\\nl2"', true],
    ['"a\\\\b" == \'a\\\\b\'', true],
    ['"\\q" == "q"', true],
  ];
  for (const [expr, expected] of table) {
    it(`${expr} -> ${expected}`, () => {
      expect(run(expr)).toBe(expected);
    });
  }

  it('selects the expected rows from a small table (Redis filter_expr.py)', () => {
    const rows = { alice, bob, charlie };
    const select = (expr: string) =>
      Object.entries(rows)
        .filter(([, attrs]) => compileFilter(expr)(attrs))
        .map(([k]) => k);
    expect(select('.age > 25')).toEqual(['bob', 'charlie']);
    expect(select('.active')).toEqual(['alice']);
    expect(select('!(.age == 25)')).toEqual(['bob', 'charlie']);
    expect(select('.age in [25, 35]')).toEqual(['alice', 'charlie']);
    expect(select('"" in .name')).toEqual(['alice', 'bob', 'charlie']);
    expect(select('.active == false')).toEqual(['bob']); // charlie has no .active
    expect(
      select('(.age > 20 and .age < 40) and (.city == "Boston" or .city == "New York")'),
    ).toEqual(['alice', 'bob']);
  });

  it('never matches an entry without attributes, matches {} when no selector is used', () => {
    expect(compileFilter('1 == 1')(undefined)).toBe(false);
    expect(run('1 == 1', {})).toBe(true);
    expect(run('.a', {})).toBe(false);
  });

  it('treats a throwing getter or proxy as a missing attribute', () => {
    const getter = Object.defineProperty({}, 'x', {
      enumerable: true,
      get() {
        throw new Error('boom');
      },
    });
    expect(run('.x == 1 or 1', getter)).toBe(false);
    const proxy = new Proxy(
      {},
      {
        getOwnPropertyDescriptor() {
          throw new Error('boom');
        },
      },
    );
    expect(run('.x', proxy)).toBe(false);
  });

  it('is reusable: one compiled filter over many attribute objects', () => {
    const f = compileFilter('.n % 3 == 0 and .n > 0');
    const hits = Array.from({ length: 10 }, (_, n) => f({ n })).filter(Boolean).length;
    expect(hits).toBe(3);
  });
});

describe('filter: precedence and associativity', () => {
  const table: [string, boolean][] = [
    ['2 + 3 * 4 == 14', true],
    ['(2 + 3) * 4 == 20', true],
    ['2 ** 3 ** 2 == 512', true], // right-assoc
    ['(2 ** 3) ** 2 == 64', true],
    ['2 * 3 ** 2 == 18', true],
    ['-2 ** 2 == 4', true], // the minus binds first, as Redis's number literal
    ['2 ** -1 == 0.5', true],
    ['- -3 == 3', true],
    ['3 - -2 == 5', true],
    ['10 - 4 - 3 == 3', true], // left-assoc
    ['100 / 10 / 5 == 2', true],
    ['7 % 3 == 1', true],
    ['-7 % 3 == -1', true], // fmod keeps the dividend's sign
    ['1 or 0 and 0', true], // and binds tighter than or
    ['(1 or 0) and 0', false],
    ['0 and 1 or 1', true],
    ['not 1 == 0', true], // (not 1) == 0: not binds tightest, as in Redis
    ['not (1 == 0)', true],
    ['!0 + 1 == 2', true],
    ['!!5 == 1', true],
    ['not not 0', false],
    ['1 < 2 == 1', true], // (1 < 2) == 1
    ['3 > 2 > 1', false], // (3 > 2) > 1
    ['1 + 2 in [3]', true], // (1 + 2) in [3]
    ['1 == 1 in [1]', true], // (1 == 1) in [1]
    ['.age > 20 && .age < 30 || .name == "Bob"', true],
    ['(1 or 0) == 1', true], // logical operators give 1 or 0
    ['(5 and "x") == 1', true],
    ['1e2 == 100', true],
    ['5. == 5', true],
  ];
  for (const [expr, expected] of table) {
    it(`${expr} -> ${expected}`, () => {
      expect(run(expr)).toBe(expected);
    });
  }
});

describe('filter: syntax errors', () => {
  const errors: [string, number, string][] = [
    ['', 0, 'end of expression'],
    ['   ', 3, 'end of expression'],
    ['.a ==', 5, 'end of expression'],
    ['(.a == 1', 8, 'end of expression'],
    ['.a == 1)', 7, "')'"],
    ['.a == == 1', 6, "'=='"],
    ['.a 1', 3, "'1'"],
    ['.a .b', 3, "'.b'"],
    ['and .a', 0, "'and'"],
    ['.a AND .b', 3, "'AND'"],
    ['foo == 1', 0, "'foo'"],
    ['.a = 1', 3, "'='"],
    ['.a & 1', 3, "'&'"],
    ['.a | 1', 3, "'|'"],
    ['()', 1, "')'"],
    ['.', 0, "'.'"],
    ['@', 0, "'@'"],
    ['é == 1', 0, "'é'"],
    ['😀', 0, "'😀'"],
    ['1 **', 4, 'end of expression'],
    ['1 2', 2, "'2'"],
    ['1.2.3', 3, "'.3'"],
    ['[1, .a]', 4, "'.'"],
    ['[1 2]', 3, "'2'"],
    ['[1,', 3, 'end of expression'],
    ['[,]', 1, "','"],
    ['[(1)]', 1, "'('"],
    ['[[1]]', 1, "'['"],
    ['.a in [1, foo]', 10, "'foo'"],
    ['"abc', 0, `'"abc': unterminated string`],
    ["'abc\\'", 0, `''abc\\'': unterminated string`],
    [
      '.a == "0123456789012345678901234567890',
      6,
      `'"01234567890123456789012...': unterminated string`,
    ],
  ];
  for (const [expr, position, near] of errors) {
    it(`${JSON.stringify(expr)} -> at position ${position} near ${near}`, () => {
      const err = (() => {
        try {
          compileFilter(expr);
        } catch (e) {
          return e;
        }
        return expect.unreachable('no syntax error');
      })();
      expect(err).toBeInstanceOf(FilterSyntaxError);
      const e = err as FilterSyntaxError;
      expect(e.message).toBe(
        `syntax error in FILTER expression at position ${position} near ${near}`,
      );
      expect(e.position).toBe(position);
    });
  }

  it('limits nesting depth to FILTER_MAX_DEPTH', () => {
    const parens = (n: number) => `${'('.repeat(n)}1${')'.repeat(n)}`;
    expect(run(parens(FILTER_MAX_DEPTH))).toBe(true);
    expect(() => compileFilter(parens(FILTER_MAX_DEPTH + 1))).toThrow(
      `syntax error in FILTER expression at position ${FILTER_MAX_DEPTH} near '(' (nested deeper than ${FILTER_MAX_DEPTH})`,
    );
    expect(run(`${'!'.repeat(FILTER_MAX_DEPTH)}1`)).toBe(true);
    expect(() => compileFilter(`${'!'.repeat(FILTER_MAX_DEPTH + 1)}1`)).toThrow(FilterSyntaxError);
    expect(() => compileFilter(`${'-'.repeat(FILTER_MAX_DEPTH + 1)}1`)).toThrow(FilterSyntaxError);
  });

  it('limits the length to FILTER_MAX_LENGTH, and the longest chains evaluate', () => {
    // The deepest closure trees the length allows: 2045 additions, 1365 powers.
    const sum = `1${'+1'.repeat(2044)}==2045 `;
    expect(sum.length).toBe(FILTER_MAX_LENGTH);
    expect(run(sum)).toBe(true);
    const powers = `1${'**1'.repeat((FILTER_MAX_LENGTH - 1) / 3)}`;
    expect(powers.length).toBe(FILTER_MAX_LENGTH);
    expect(run(powers)).toBe(true);
    expect(() => compileFilter(`${sum}1`)).toThrow(
      `FILTER expression too long (${FILTER_MAX_LENGTH + 1} characters, the limit is ${FILTER_MAX_LENGTH})`,
    );
  });
});

describe('filter: properties', () => {
  const pieces = [
    '.a',
    '.b',
    '.a.b',
    '.s',
    '.arr',
    '.missing',
    '1',
    '2.5',
    '-',
    '0',
    '1e3',
    '"x"',
    "'y'",
    '""',
    'null',
    'true',
    'false',
    '[1, "x"]',
    '[]',
    '[',
    ']',
    ',',
    '(',
    ')',
    '!',
    'not',
    'and',
    'or',
    '&&',
    '||',
    '==',
    '!=',
    '<',
    '<=',
    '>',
    '>=',
    'in',
    '+',
    '*',
    '/',
    '%',
    '**',
    ' ',
    '"',
    "'",
    '\\',
    '.',
    '=',
    '&',
    'é',
    '\n',
  ];
  const soup = fc.array(fc.constantFrom(...pieces), { maxLength: 20 }).map((ps) => ps.join(' '));
  const tight = fc.array(fc.constantFrom(...pieces), { maxLength: 20 }).map((ps) => ps.join(''));
  const source = fc.oneof(soup, tight, fc.string({ maxLength: 40 }), fc.string({ unit: 'binary' }));
  const attrs = fc.oneof(
    fc.record({
      a: fc.jsonValue(),
      b: fc.oneof(fc.integer(), fc.string(), fc.double(), fc.boolean()),
      s: fc.string(),
      arr: fc.array(fc.oneof(fc.integer(), fc.string(), fc.constant(null))),
    }),
    fc.dictionary(fc.string(), fc.jsonValue()),
    fc.object(),
  );

  it('compiling random text throws nothing but FilterSyntaxError', () => {
    fc.assert(
      fc.property(source, (src) => {
        try {
          compileFilter(src);
        } catch (e) {
          expect(e).toBeInstanceOf(FilterSyntaxError);
        }
      }),
      { numRuns: 5000 },
    );
  });

  it('compiled filters never throw on random attributes and return booleans', () => {
    let compiled = 0;
    fc.assert(
      fc.property(source, fc.array(attrs, { maxLength: 4 }), (src, objects) => {
        let f: ReturnType<typeof compileFilter>;
        try {
          f = compileFilter(src);
        } catch {
          return;
        }
        compiled++;
        for (const o of [...objects, undefined, {}]) expect(typeof f(o)).toBe('boolean');
      }),
      { numRuns: 3000 },
    );
    expect(compiled).toBeGreaterThan(50); // the generator does reach valid expressions
  });

  it('not (e) is the negation of e when every selector is present', () => {
    const literal = fc.constantFrom('1', '0', '2.5', '"x"', '""', 'null', '[1]', '.a', '.s');
    const op = fc.constantFrom(
      '+',
      '-',
      '*',
      '/',
      '%',
      '**',
      '==',
      '!=',
      '<',
      '>=',
      'in',
      'and',
      'or',
    );
    const expr = fc
      .tuple(literal, fc.array(fc.tuple(op, literal), { maxLength: 6 }))
      .map(([first, rest]) => [first, ...rest.flat()].join(' '));
    fc.assert(
      fc.property(expr, fc.integer({ min: -3, max: 3 }), fc.string({ maxLength: 3 }), (e, a, s) => {
        const attrs = { a, s };
        expect(run(`not (${e})`, attrs)).toBe(!run(e, attrs));
      }),
    );
  });
});
