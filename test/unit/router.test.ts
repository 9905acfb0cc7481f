/*
 * Router (src/router.ts): routes are cached per spelling of the name, keyed
 * by a hash of its bytes; names whose hashes collide still get their own
 * routes, and garbage names never grow the cache past its bound.
 */
import { describe, expect, it } from 'vitest';
import { commandTable } from '../../src/commands/types.js';
import { Router } from '../../src/router.js';
import { testEcho } from '../helpers/test-commands.js';

const b = (s: string) => Buffer.from(s, 'latin1');

describe('Router', () => {
  it('routes by name in any case, the same answer every time', () => {
    const router = new Router(commandTable([testEcho]));
    for (let i = 0; i < 3; i++) {
      expect(router.route(b('GET'))).toEqual({ kind: 'plain', shareable: true });
      expect(router.route(b('get'))).toEqual({ kind: 'plain', shareable: true });
      expect(router.route(b('SeLeCt'))).toEqual({ kind: 'select' });
      expect(router.route(b('blpop'))).toEqual({ kind: 'plain', shareable: false });
      expect(router.route(b('TESTECHO'))).toMatchObject({ kind: 'local', spec: testEcho });
    }
  });

  it('two names with the same hash keep their own routes', () => {
    // FNV-1a of both, masked to 30 bits, is 825004001.
    const local = { ...testEcho, name: 'x3rnw' };
    const router = new Router(commandTable([local]));
    for (let i = 0; i < 2; i++) {
      expect(router.route(b('x3rnw'))).toMatchObject({ kind: 'local', spec: local });
      expect(router.route(b('xkpba'))).toEqual({ kind: 'plain', shareable: false });
    }
  });

  it('past 4096 cached names, new names are still routed right', () => {
    const router = new Router(commandTable([]));
    for (let i = 0; i < 5000; i++) {
      expect(router.route(b(`garbage${i}`))).toEqual({ kind: 'plain', shareable: false });
    }
    expect(router.route(b('Get'))).toEqual({ kind: 'plain', shareable: true });
    expect(router.route(b('garbage4999'))).toEqual({ kind: 'plain', shareable: false });
  });
});
