/*
 * The semantic engine's error catalogue (src/errors.ts, SemErr): codes are a
 * stable contract, each code raises the class its reply needs, with the
 * catalogue's text, and commands/semantic/errors.ts answers each in Redis's
 * style.
 */
import { describe, expect, it } from 'vitest';
import { errorReply } from '../../src/commands/semantic/errors.js';
import { SemErr, type SemErrCode } from '../../src/errors.js';
import { encodeReply } from '../../src/resp/writer.js';
import {
  InvalidInputError,
  LoadingError,
  SemanticError,
  semError,
  UnknownNamespaceError,
} from '../../src/semantic/types.js';

const SAMPLES: { [C in SemErrCode]: Parameters<(typeof SemErr)[C]> } = {
  TEXT_TOO_LONG: [16384],
  TEXT_NOT_UTF8: [],
  NAMESPACE_NAME: [256],
  UNKNOWN_NAMESPACE: ['faq'],
  NAMESPACE_NOT_EMPTY: ['faq', 12],
  NAMESPACE_CHANGED: ['faq'],
  INDEX_CHANGE_NOT_EMPTY: ['faq', 'QUANT'],
  ATTRS_JSON: ['Unexpected end of JSON input'],
  ATTRS_NOT_OBJECT: [],
  VECTOR_DIM: [3, 384],
  VECTOR_INVALID: [],
  LOADING: ['the index from redis'],
  FILTER_SYNTAX: [3, 'bad', ''],
  FILTER_TOO_LONG: [5000, 4096],
  WRONGTYPE: [],
};

const raise = (code: SemErrCode) =>
  (semError as (c: SemErrCode, ...a: unknown[]) => SemanticError)(code, ...SAMPLES[code]);

describe('SemErr, the catalogue', () => {
  it('has exactly the codes callers may rely on', () => {
    expect(Object.keys(SemErr).sort()).toEqual(Object.keys(SAMPLES).sort());
  });

  it('raises each code with its text, as the class its reply needs', () => {
    for (const code of Object.keys(SAMPLES) as SemErrCode[]) {
      const err = raise(code);
      expect(err).toBeInstanceOf(SemanticError);
      expect(err.code).toBe(code);
      expect(err.message).toBe((SemErr[code] as (...a: unknown[]) => string)(...SAMPLES[code]));
      const kind =
        code === 'LOADING'
          ? LoadingError
          : code === 'UNKNOWN_NAMESPACE'
            ? UnknownNamespaceError
            : InvalidInputError;
      expect(err).toBeInstanceOf(kind);
    }
  });

  it('answers in Redis style: LOADING, WRONGTYPE, ERR for the rest', () => {
    const reply = (code: SemErrCode) => encodeReply(errorReply(raise(code)), 2).toString();
    expect(reply('LOADING')).toBe('-LOADING semcache is loading the index from redis\r\n');
    expect(reply('UNKNOWN_NAMESPACE')).toBe("-ERR unknown namespace 'faq'\r\n");
    expect(reply('WRONGTYPE')).toBe(
      '-WRONGTYPE Operation against a key holding the wrong kind of value\r\n',
    );
    expect(reply('TEXT_TOO_LONG')).toBe(
      '-ERR text exceeds maximum allowed size of 16384 bytes (--max-text-bytes)\r\n',
    );
    // Anything that is not a known error is the one internal-error path.
    expect(encodeReply(errorReply(new Error('boom')), 2).toString()).toBe(
      '-ERR semcache internal error: boom\r\n',
    );
  });
});
