// Running one unit of Redis's test suite (test/redis-suite/, vendored) against a server given
// by port, with Redis's own runner (tests/test_helper.tcl, what ./runtest runs), and reading
// each test's outcome from its output.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { ROOT } from '../../bench/lib.mjs';

const SUITE = path.join(ROOT, 'test', 'redis-suite');

/**
 * Run one unit against host:port; resolves the runtest output. `baseport`: the runner listens
 * for its test client on the first free port of the 32 below it (default 21111 - 32), so runs
 * side by side need ports of their own.
 */
export function runtest(unit, port, baseport, extra, timeoutS) {
  return new Promise((resolve, reject) => {
    const args = ['tests/test_helper.tcl', '--host', '127.0.0.1', '--port', String(port)];
    args.push('--baseport', String(baseport), '--single', unit, '--timeout', '120', ...extra);
    const child = spawn('tclsh8.6', args, { cwd: SUITE, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => {
      out += `\n[exception]: redis-suite: ${unit} still running after ${timeoutS} s, killed\n`;
      child.kill('SIGKILL');
    }, timeoutS * 1000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

// [ok]: name (3 ms) | [err]: name in tests/unit/x.tcl | [skip]: name | [ignore]: name: reason
const LINE = /^\[(ok|err|skip|ignore|exception)\]: (.*)$/;

/** Map each test name to its outcome; an [exception] ends the unit (later tests: not run). */
export function parseOutcomes(out) {
  const tests = new Map();
  let exception = null;
  const lines = out.replace(/\x1b\[[0-9;]*m/g, '').split('\n');
  for (let i = 0; i < lines.length; i++) {
    const m = LINE.exec(lines[i]);
    if (!m) continue;
    const [, kind, rest] = m;
    if (kind === 'exception') {
      exception = [rest, ...lines.slice(i + 1, i + 4)].join(' | ');
      continue;
    }
    let name = rest;
    if (kind === 'ok') name = rest.replace(/ \(\d+ ms\)$/, '');
    else if (kind === 'err') name = rest.replace(/ in tests\/\S+$/, '');
    else if (kind === 'ignore') name = rest.replace(/: [^:]*$/, '');
    const detail = kind === 'err' ? (lines[i + 1] ?? '').trim() : '';
    // A name can repeat inside a unit (loops over encodings): number the repeats.
    let key = name;
    for (let n = 2; tests.has(key); n++) key = `${name} #${n}`;
    tests.set(key, { kind, detail });
  }
  return { tests, exception };
}
