#!/usr/bin/env node
import { EventEmitter } from 'node:events';
// bench/hot-path.mjs — semcache's own JavaScript per forwarded request, without sockets.
//
// What it measures: the pass-through path of one GET through semcache's code, with the
// kernel and Node's socket machinery taken out: C clients' reads (one GET each) go through
// ClientConnection (parse, route, dispatch, the shared connection's batch), the batch is
// "written", and one upstream read holding every reply goes back through SharedUpstream
// and SharedLink to each client's (fake) socket. Nanoseconds per request, for each build
// given, alternated over several trials (min and median), so that two builds can be
// compared in one run on a busy machine. This is the part of a request's CPU that our
// code controls; bench/proxy.mjs measures the whole.
//
// It drives private members (ClientConnection.onClientData, SharedUpstream's open, flush
// and onData) as the sockets would: when those change, this script has to follow.
//
// Usage: node bench/hot-path.mjs [DIST ...] [--clients C] [--trials T] [--rounds R]
//   DIST: a build's dist directory (default: dist); several: compared side by side.
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ROOT } from './lib.mjs';

const { values: opt, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    clients: { type: 'string', default: '50' },
    trials: { type: 'string', default: '5' },
    rounds: { type: 'string', default: '40000' },
  },
});
const builds = (positionals.length > 0 ? positionals : ['dist']).map((d) => path.resolve(d));
const C = Number(opt.clients);
const ROUNDS = Number(opt.rounds);

/** A socket that takes every write at once, as the kernel does for small replies. */
class FakeSocket extends EventEmitter {
  writableLength = 0;
  write() {
    return true;
  }
  cork() {}
  uncork() {}
  pause() {}
  resume() {}
  setNoDelay() {}
  end() {}
  destroy() {}
}

async function load(dist) {
  const { ClientConnection } = await import(`${dist}/proxy/connection.js`);
  const { Router } = await import(`${dist}/router.js`);
  const { commandTable } = await import(`${dist}/commands/types.js`);
  const { SharedUpstream } = await import(`${dist}/upstream/shared-upstream.js`);
  const router = new Router(commandTable([]));
  const target = { host: '127.0.0.1', port: 1, connectTimeout: 1000 };
  const shared = new SharedUpstream(target);
  shared.open = () => ({ write() {}, destroy() {} }); // the batch goes nowhere
  const logger = { debug() {}, info() {}, warn() {}, error() {} };
  const conns = Array.from({ length: C }, (_, id) => {
    const socket = new FakeSocket();
    const conn = new ClientConnection(socket, {
      id,
      router,
      upstream: target,
      shared,
      maxPending: 10000,
      maxRequestSize: 512 * 1024 * 1024,
      auth: { required: false },
      storageDb: 0,
      limits: undefined,
      logger,
      onClose() {},
    });
    return conn;
  });
  // A fresh buffer per read, as Node's 'data' events give it (fake sockets have no handle).
  const request = Buffer.from('*2\r\n$3\r\nGET\r\n$16\r\nkey:__rand_int__\r\n');
  const replies = Buffer.concat([
    Buffer.from('+RESET\r\n'),
    ...conns.map(() => Buffer.from('$3\r\nxxx\r\n')),
  ]);
  return () => {
    for (const conn of conns) conn.onClientData(Buffer.from(request));
    shared.flush();
    shared.onData(Buffer.from(replies));
  };
}

const rounds = await Promise.all(builds.map(load));
for (const round of rounds) for (let i = 0; i < 5000; i++) round(); // warm up, let V8 optimize
const ns = builds.map(() => []);
for (let t = 0; t < Number(opt.trials); t++) {
  rounds.forEach((round, b) => {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < ROUNDS; i++) round();
    ns[b].push(Number(process.hrtime.bigint() - t0) / (ROUNDS * C));
  });
}
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
console.log(`${C} clients, one GET each per round, ${ROUNDS} rounds x ${opt.trials} trials`);
builds.forEach((b, i) => {
  const name = path.relative(ROOT, b) || b;
  console.log(
    `${name.padEnd(30)} ns per request: min ${Math.min(...ns[i]).toFixed(0)}, median ${median(ns[i]).toFixed(0)}`,
  );
});
