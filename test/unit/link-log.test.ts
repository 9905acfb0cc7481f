/*
 * What the log says about upstream connections (src/upstream/link-log.ts):
 * each loss and recovery once, with its cause; repeated failed attempts and
 * mass losses of clients' own connections counted, not logged one by one.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createLogger } from '../../src/log.js';
import { ClientLinkLog, LinkLog } from '../../src/upstream/link-log.js';

let lines: string[];
const logger = () =>
  createLogger('debug', (l) => {
    // Drop the pid and time stamp: "<pid>:P dd Mon yyyy hh:mm:ss.mmm <mark> msg".
    lines.push(l.replace(/^\d+:P \d\d \w{3} \d{4} [\d:.]+ /, '').trimEnd());
  });
const A = '127.0.0.1:6379';

beforeEach(() => {
  lines = [];
});

describe('LinkLog', () => {
  it('a loss, failed attempts counted, the recovery', () => {
    const log = new LinkLog(logger(), 'shared upstream connection 1');
    log.up(A); // the first connect is not news
    log.down(A, 'read ECONNRESET', true);
    log.down(A, 'connect ECONNREFUSED', false);
    log.down(A, 'connect ECONNREFUSED', false);
    log.up(A);
    log.down(A, 'connection closed by upstream', true);
    log.up(A);
    expect(lines).toEqual([
      `# shared upstream connection 1: connection to upstream ${A} lost (read ECONNRESET)`,
      `* shared upstream connection 1: connected to upstream ${A} again after 2 failed attempt(s)`,
      `# shared upstream connection 1: connection to upstream ${A} lost (connection closed by upstream)`,
      `* shared upstream connection 1: connected to upstream ${A} again`,
    ]);
  });

  it('unreachable from the start: logged once, however many attempts', () => {
    const log = new LinkLog(logger(), 'semcache connection');
    for (let i = 0; i < 5; i++) log.down(A, 'connect ECONNREFUSED', false);
    log.up(A);
    expect(lines).toEqual([
      `# semcache connection: upstream ${A} unreachable (connect ECONNREFUSED)`,
      `* semcache connection: connected to upstream ${A} again after 5 failed attempt(s)`,
    ]);
  });

  it('explain() replaces the cause of the next loss only', () => {
    const log = new LinkLog(logger(), 'shared');
    log.explain('closed after a protocol error');
    log.down(A, 'connection closed by upstream', true);
    log.down(A, 'connection closed by upstream', true);
    expect(lines).toEqual([
      `# shared: connection to upstream ${A} lost (closed after a protocol error)`,
      `# shared: connection to upstream ${A} lost (connection closed by upstream)`,
    ]);
  });
});

describe('ClientLinkLog', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('a mass loss: the first in full, the rest summed up per interval, then the recovery', () => {
    const log = new ClientLinkLog(logger(), 1000);
    for (let id = 1; id <= 50; id++) log.forClient(id).down(A, 'read ECONNRESET', true);
    expect(lines).toEqual([`# client 1: connection to upstream ${A} lost (read ECONNRESET)`]);
    vi.advanceTimersByTime(1000);
    expect(lines.slice(1)).toEqual([
      '# 49 more client upstream connection(s) lost in the last 1 s',
    ]);
    // Still failing: counted in the next interval, not logged one by one.
    for (let id = 51; id <= 60; id++) log.forClient(id).down(A, 'connect ECONNREFUSED', false);
    log.forClient(61).up(A);
    log.forClient(62).up(A);
    vi.advanceTimersByTime(1000);
    expect(lines.slice(2)).toEqual([
      '# 10 more client upstream connection(s) lost, 2 client(s) connected to upstream again in the last 1 s',
    ]);
    // Quiet again: the next loss is logged in full, the recovery once.
    vi.advanceTimersByTime(5000);
    log.forClient(70).down(A, 'connection closed by upstream', true);
    vi.advanceTimersByTime(1000);
    log.forClient(71).up(A);
    log.forClient(72).up(A);
    expect(lines.slice(3)).toEqual([
      `# client 70: connection to upstream ${A} lost (connection closed by upstream)`,
      `* client 71: connected to upstream ${A} again`,
    ]);
    log.close();
  });

  it('clients connecting again within the interval of a loss: summed up as info', () => {
    const log = new ClientLinkLog(logger(), 1000);
    log.forClient(1).down(A, 'connection closed by upstream', true);
    log.forClient(2).up(A);
    vi.advanceTimersByTime(1000);
    expect(lines).toEqual([
      `# client 1: connection to upstream ${A} lost (connection closed by upstream)`,
      '* 1 client(s) connected to upstream again in the last 1 s',
    ]);
    // The recovery was reported: the next client connecting is not news.
    log.forClient(3).up(A);
    vi.advanceTimersByTime(5000);
    expect(lines).toHaveLength(2);
    log.close();
  });

  it('clients connecting when nothing was lost are not news', () => {
    const log = new ClientLinkLog(logger(), 1000);
    for (let id = 1; id <= 5; id++) log.forClient(id).up(A);
    vi.advanceTimersByTime(5000);
    expect(lines).toEqual([]);
  });
});
