/*
 * The change feed's stream as an instance reads it (feed.ts): its newest
 * id, and the events after a position, read by a script that checks in the
 * same atomic step that nothing after that position was lost.
 *
 * A position is the id of the last event applied, or '0-0' when the stream
 * was empty or missing when the instance took its place. Trimming removes
 * the oldest events only, so when the last applied event is still in the
 * stream nothing after it was removed. From '0-0', the events are complete
 * when nothing was ever removed from the stream (XINFO STREAM's
 * max-deleted-entry-id, Redis 7.0 and later; before 7.0 the instance
 * resyncs once instead). Taking a position writes nothing: an instance that
 * starts, or resyncs after a FLUSHALL, leaves Redis as it found it.
 */
import type { RedisClient, RedisValue } from '../upstream/redis-client.js';
import { ScriptRunner } from './scripts.js';

export interface FeedEvent {
  id: string;
  op: string;
  key: Buffer | undefined;
  ns: string | undefined;
  origin: string;
}

/**
 * The events after position ARGV[1], at most ARGV[2], and the newest id;
 * nil when some after it may have been removed (see above).
 */
const READ_SCRIPT = `
local last = ARGV[1]
if last == '0-0' then
  if redis.call('EXISTS', KEYS[1]) == 0 then return {'0-0', {}} end
  local info = redis.pcall('XINFO', 'STREAM', KEYS[1])
  local deleted = false
  if type(info) == 'table' and not info.err then
    for i = 1, #info - 1, 2 do
      if info[i] == 'max-deleted-entry-id' then deleted = info[i + 1] end
    end
  end
  if deleted ~= '0-0' then return false end
elseif #redis.call('XRANGE', KEYS[1], last, last) == 0 then
  return false
end
local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)[1]
return {newest and newest[1] or '0-0', redis.call('XRANGE', KEYS[1], '(' .. last, '+', 'COUNT', ARGV[2])}
`;

/** The stream as the feed reads it (on the feed's own connection). */
export class FeedStream {
  private readonly scripts: ScriptRunner;

  constructor(
    private readonly redis: RedisClient,
    readonly key: string,
  ) {
    this.scripts = new ScriptRunner(redis);
  }

  /** The newest event's id: '0-0' when the stream is empty or missing. */
  async newestId(): Promise<string> {
    const r = await this.redis.call('XREVRANGE', this.key, '+', '-', 'COUNT', 1);
    const first = Array.isArray(r) ? r[0] : undefined;
    return Array.isArray(first) ? String(first[0]) : '0-0';
  }

  /** Up to `count` events after `last`, checked (READ_SCRIPT); undefined when some were lost. */
  async after(
    last: string,
    count: number,
  ): Promise<{ newest: string; events: FeedEvent[] } | undefined> {
    const r = await this.scripts.run(READ_SCRIPT, [this.key], [last, count]);
    if (!Array.isArray(r)) return undefined;
    return { newest: String(r[0]), events: parseEntries(r[1]!) };
  }
}

/** The ms part of a stream id. */
export function idMs(id: string): number {
  return Number(id.slice(0, id.indexOf('-')));
}

/** XRANGE's reply as events. */
export function parseEntries(reply: RedisValue): FeedEvent[] {
  if (!Array.isArray(reply)) return [];
  const out: FeedEvent[] = [];
  for (const item of reply) {
    if (!Array.isArray(item) || !Array.isArray(item[1])) continue;
    const fields = item[1];
    const e: FeedEvent = {
      id: String(item[0]),
      op: '',
      key: undefined,
      ns: undefined,
      origin: '',
    };
    for (let i = 0; i + 1 < fields.length; i += 2) {
      const f = String(fields[i]);
      const v = fields[i + 1];
      if (f === 'op') e.op = String(v);
      else if (f === 'key' && Buffer.isBuffer(v)) e.key = v;
      else if (f === 'ns') e.ns = String(v);
      else if (f === 'o') e.origin = String(v);
    }
    out.push(e);
  }
  return out;
}
