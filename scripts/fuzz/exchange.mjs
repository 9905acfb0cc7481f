// Sending one case to a server and telling whether two answers are the same, for
// scripts/fuzz-protocol.mjs.
//
// How the end of an answer is found without a sentinel (a trailing PING would be swallowed by
// an unfinished command):
//   - redis-server: after the input the client waits for as many replies as the in-process
//     parser expects (or a close), then half-closes: Redis answers every complete command it
//     read, then sees EOF and closes. (Half-closing at once would cut a reply over 64 KB short:
//     Redis frees a client at EOF with the rest of its output unsent.) Redis closes by itself
//     only after a protocol error, so "Redis closed" is read off its last reply.
//   - semcache: it gets no half-close (Node would end the socket at once, dropping replies still
//     on their way from upstream). We wait until it sent as many bytes as Redis did (or closed, or
//     diverged), then `graceMs` more for anything extra or a close, then half-close.
// The writes are separated by a turn of the event loop; that makes separate reads likely, not
// certain, on either server.
//
// A server that closes after a protocol error while request bytes are still unread on its side
// makes the kernel send RST instead of FIN, and the client may lose the reply (it sees EPIPE or
// ECONNRESET). That is TCP, not the protocol: such a run is marked `reset`, retried by the
// caller, and compared only as far as both got (compare()).
import { connect } from 'node:net';
import { ReplyFramer } from '../../dist/resp/reply-framer.js';

class Conn {
  chunks = [];
  len = 0;
  closed = false;
  diverged = false;
  reset = false;
  waiters = [];

  replies = 0;
  framer = new ReplyFramer();

  constructor(sock, expected) {
    this.sock = sock;
    sock.on('data', (d) => {
      this.count(d);
      if (expected && !this.diverged) {
        const want = expected.subarray(this.len, this.len + d.length);
        this.diverged = want.length < d.length || !want.equals(d);
      }
      this.chunks.push(d);
      this.len += d.length;
      this.wake();
    });
    sock.on('close', () => {
      this.closed = true;
      this.wake();
    });
    sock.on('error', () => {
      this.reset = true; // EPIPE, ECONNRESET: see the model above
    });
  }

  static open(port, expected) {
    return new Promise((resolve, reject) => {
      const sock = connect({ host: '127.0.0.1', port, noDelay: true });
      sock.once('connect', () => resolve(new Conn(sock, expected)));
      sock.once('error', reject);
    });
  }

  /** Counts complete replies as they come (until the bytes stop being RESP). */
  count(d) {
    try {
      for (let at = 0, end; at < d.length && (end = this.framer.next(d, at)) >= 0; at = end) {
        this.replies++;
      }
    } catch {
      this.framer = { next: () => -1 };
    }
  }

  wake() {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  async write(input, cuts) {
    let prev = 0;
    for (const c of [...cuts, input.length]) {
      if (this.closed) return;
      this.sock.write(input.subarray(prev, c));
      prev = c;
      if (c < input.length) await new Promise((r) => setImmediate(r));
    }
  }

  /** Until pred() holds or ms pass. */
  async until(pred, ms) {
    const deadline = Date.now() + ms;
    while (!pred() && Date.now() < deadline) {
      await new Promise((resolve) => {
        const t = setTimeout(resolve, deadline - Date.now());
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  get bytes() {
    return Buffer.concat(this.chunks, this.len);
  }
}

/** redis-server's answer: every byte until it closed after our half-close (see the model). */
export async function redisLeg(port, { input, cuts }, expectReplies, timeoutMs) {
  const c = await Conn.open(port);
  await c.write(input, cuts);
  await c.until(() => c.closed || c.replies >= expectReplies, timeoutMs);
  c.sock.end();
  await c.until(() => c.closed, timeoutMs);
  c.sock.destroy();
  if (!c.closed) throw new Error(`redis-server kept the connection open for ${timeoutMs} ms`);
  const bytes = c.bytes;
  const replies = splitReplies(bytes);
  return {
    bytes,
    replies,
    closed: protocolError(replies.at(-1)) !== undefined || c.reset,
    reset: c.reset,
  };
}

/** semcache's answer, given Redis's: { bytes, replies, closed } (closed: by itself). */
export async function semcacheLeg(port, { input, cuts }, redis, { timeoutMs, graceMs }) {
  const c = await Conn.open(port, redis.bytes);
  await c.write(input, cuts);
  if (redis.closed) await c.until(() => c.closed, timeoutMs);
  else {
    await c.until(() => c.closed || c.diverged || c.len >= redis.bytes.length, timeoutMs);
    // After a protocol error of its own semcache must close: give it as long as Redis gets.
    const own = protocolError(splitReplies(c.bytes).at(-1)) !== undefined;
    await c.until(() => c.closed, own ? timeoutMs : graceMs);
  }
  const closed = c.closed;
  if (!closed) {
    c.sock.end();
    await c.until(() => c.closed, timeoutMs);
    c.sock.destroy();
  }
  const bytes = c.bytes;
  return { bytes, replies: splitReplies(bytes), closed: closed || c.reset, reset: c.reset };
}

/** Complete top-level replies; an unfinished tail, if any, as a last element. */
export function splitReplies(bytes) {
  const framer = new ReplyFramer();
  const out = [];
  let pos = 0;
  try {
    while (pos < bytes.length) {
      const end = framer.next(bytes, pos);
      if (end < 0) break;
      out.push(bytes.subarray(pos, end));
      pos = end;
    }
  } catch {
    /* not RESP: the rest goes as one piece */
  }
  if (pos < bytes.length) out.push(bytes.subarray(pos));
  return out;
}

const PREFIX = '-ERR Protocol error: ';

/** The message of a protocol error reply, else undefined. */
export function protocolError(reply) {
  if (reply === undefined) return undefined;
  const s = reply.toString('latin1');
  return s.startsWith(PREFIX) && s.endsWith('\r\n') ? s.slice(PREFIX.length, -2) : undefined;
}

export const same = (a, b) => a.closed === b.closed && a.bytes.equals(b.bytes);

/**
 * 'same'; 'reset' when a side was reset but what it got is a prefix of the other's answer and
 * both closed; else 'differ'.
 */
export function compare(a, b) {
  if (!a.reset && !b.reset) return same(a, b) ? 'same' : 'differ';
  const [short, long] = a.bytes.length <= b.bytes.length ? [a, b] : [b, a];
  const prefix = long.bytes.subarray(0, short.bytes.length).equals(short.bytes);
  return prefix && a.closed && b.closed && (short.reset || long.reset) ? 'reset' : 'differ';
}

// ---- Documented differences (docs/protocol.md, "Requests") ----

/** The differences docs/protocol.md documents; documentedException() recognizes them. */
export const EXCEPTIONS = {
  'inline-over-64k':
    'an inline line over 64 KB is always refused; Redis runs it when its newline came in the read that crossed 64 KB',
  'header-over-64k':
    "a */$ line over 64 KB: 'too big ... count string' or an invalid length depending on where reads end (Redis's and ours differ)",
};

/** Whether `input` has a run of more than `n` bytes free of `byte` (a line that long). */
function hasRunWithout(input, byte, n = 65536) {
  let from = 0;
  for (;;) {
    const i = input.indexOf(byte, from);
    if ((i < 0 ? input.length : i) - from > n) return true;
    if (i < 0) return false;
    from = i + 1;
  }
}

const MBULK = ['too big mbulk count string', 'invalid multibulk length'];
const BULK = ['too big bulk count string', 'invalid bulk length'];

/**
 * Which documented difference explains a disagreement between two answers (each a list of
 * replies and whether the server closed), or undefined. Both must agree on every reply before
 * the point where they part.
 */
export function documentedException(input, a, b) {
  let k = 0;
  while (k < a.replies.length && k < b.replies.length && a.replies[k].equals(b.replies[k])) k++;
  const ta = a.replies.slice(k);
  const tb = b.replies.slice(k);
  if (ta.length > 1 && tb.length > 1) return undefined;
  const ea = ta.length === 1 ? protocolError(ta[0]) : undefined;
  const eb = tb.length === 1 ? protocolError(tb[0]) : undefined;
  // semcache refuses every inline line over 64 KB; Redis runs one whose newline came in the
  // read that took it over the limit.
  const tooBigInline = 'too big inline request';
  if ((ea === tooBigInline) !== (eb === tooBigInline) && hasRunWithout(input, 10)) {
    const [refused, ran] = ea === tooBigInline ? [a, tb] : [b, ta];
    if (refused.closed && (ran.length === 0 || protocolError(ran[0]) !== tooBigInline)) {
      return 'inline-over-64k';
    }
  }
  // A `*`/`$` line over 64 KB: "too big" if a read ended before its '\r', else parsed (an
  // invalid length, or the '$' check), or still waiting for the byte after '\r'.
  if (ea === eb) return undefined;
  const kinds = [ea, eb].filter((e) => e !== undefined);
  const tooBig = kinds.some((e) => e === MBULK[0] || e === BULK[0]);
  const family = (e) =>
    MBULK.includes(e) ? 'm' : BULK.includes(e) || e.startsWith("expected '$'") ? 'b' : 'x';
  const fams = new Set(kinds.map(family));
  if (tooBig && fams.size === 1 && !fams.has('x') && (ta.length === 0 || ea !== undefined)) {
    if ((tb.length === 0 || eb !== undefined) && hasRunWithout(input, 13)) return 'header-over-64k';
  }
  return undefined;
}
