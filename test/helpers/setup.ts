/*
 * Runs before every test file (vitest.config.ts setupFiles). Client reads
 * share one buffer that the next read overwrites (src/util/read-buffer.ts):
 * every test poisons it after each read, so a view kept past its read shows
 * up as wrong bytes in the comparisons with redis-server, every time, not as
 * a rare corruption under load.
 */
import { poisonReads } from '../../src/util/read-buffer.js';

poisonReads(0xa5);
