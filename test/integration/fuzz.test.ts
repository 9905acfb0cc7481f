/*
 * A fast slice of the differential protocol fuzzer (scripts/fuzz-protocol.mjs), run as a user
 * runs it: 2,000 fixed-seed cases against a real redis-server and semcache in both upstream
 * modes must show no difference but the documented ones, semcache must stay up, its RSS bounded
 * (the script checks both and exits non-zero otherwise). The harness itself is checked against
 * a proxy that mangles reply bytes: it must fail.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runProcess } from '../helpers/proc.js';

const root = resolve(import.meta.dirname, '../..');
const script = join(root, 'scripts/fuzz-protocol.mjs');

interface Summary {
  cases: number;
  modes: number[];
  legs: number;
  matches: number;
  exceptions: Record<string, number>;
  inconclusive: number;
  mismatches: number;
  parserMismatches: number;
  first: unknown[];
}

/** Runs the script; SIGTERM (not SIGKILL) on timeout, so it stops its servers. */
function fuzz(args: string[], timeoutMs = 60_000): Promise<{ code: number | null; out: string }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [script, '--json', ...args], { cwd: root });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (err += d));
    const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
    child.on('error', fail);
    child.on('close', (code) => {
      clearTimeout(timer);
      done({ code, out: out || err });
    });
  });
}

const DOCUMENTED = ['inline-over-64k', 'header-over-64k'];

beforeAll(async () => {
  if (!existsSync(join(root, 'dist/cli.js'))) {
    const build = await runProcess('npm', ['run', 'build'], { timeoutMs: 120_000 });
    if (build.code !== 0) throw new Error(`npm run build failed:\n${build.stdout}${build.stderr}`);
  }
}, 150_000);

describe('differential protocol fuzzing (scripts/fuzz-protocol.mjs)', () => {
  it('2,000 cases, seed 1, --multiplex 1 and 0: byte-identical to redis-server', async () => {
    const { code, out } = await fuzz(['--cases', '2000', '--seed', '1']);
    const s = JSON.parse(out) as Summary;
    expect(s.first, 'the first differences, minimized').toEqual([]);
    expect(s.mismatches).toBe(0);
    expect(s.parserMismatches).toBe(0);
    expect(code).toBe(0); // also: semcache answered PING throughout, RSS within bound
    expect(s.cases).toBe(2000);
    expect(s.modes).toEqual([1, 0]);
    expect(s.legs).toBe(4000);
    // Only the documented differences, and few: the rest are byte-identical.
    for (const id of Object.keys(s.exceptions)) {
      expect(DOCUMENTED).toContain(id.replace(/^parser:/, ''));
    }
    expect(s.matches).toBeGreaterThan(s.legs * 0.97);
  }, 90_000);

  it('the harness catches a proxy that mangles reply bytes', async () => {
    const fixture = join(root, 'test/fixtures/mangling-proxy.mjs');
    const { code, out } = await fuzz(['--cases', '300', '--semcache-cli', fixture, '--show', '1']);
    const s = JSON.parse(out) as Summary;
    expect(code).toBe(1);
    expect(s.mismatches).toBeGreaterThan(0);
    expect(s.first).toHaveLength(1);
  }, 60_000);
});
