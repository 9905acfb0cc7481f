// Printing for scripts/fuzz-protocol.mjs: a case and both answers (hex and escaped text,
// long ones cut), and the run's summary.
import { EXCEPTIONS, protocolError } from './exchange.mjs';

export const roundRss = (r) =>
  Object.fromEntries(Object.entries(r).map(([k, v]) => [k, Math.round(v)]));
const show = (buf, max = 300) => {
  const s = JSON.stringify(buf.subarray(0, max).toString('latin1'));
  return buf.length > max ? `${s}... (${buf.length} bytes)` : s;
};
const hex = (buf, max = 200) =>
  buf.subarray(0, max).toString('hex') + (buf.length > max ? `... (${buf.length} bytes)` : '');

export function describe(m) {
  const k = m.min ?? m.kase;
  return {
    where: m.where,
    case: m.kase.n,
    minimized: m.min !== undefined,
    inputHex: hex(k.input),
    input: show(k.input),
    writesAt: k.cuts,
    redis: {
      closed: (m.min?.redis ?? m.redis).closed,
      reply: show((m.min?.redis ?? m.redis).bytes),
    },
    semcache: { closed: (m.min?.got ?? m.got).closed, reply: show((m.min?.got ?? m.got).bytes) },
  };
}

export function report(m) {
  console.log(JSON.stringify(describe(m), null, 2));
  const e = protocolError(m.redis.replies.at(-1));
  if (e !== undefined) console.log(`redis protocol error: ${e}`);
}

export function printSummary(s, o) {
  const ex =
    Object.entries(s.exceptions)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ') || 'none';
  console.log(
    `\nfuzz-protocol: seed ${s.seed}, ${s.cases} cases, --multiplex ${s.modes.join(' and ')}, concurrency ${o.concurrency}`,
  );
  console.log(`legs compared: ${s.legs}, identical: ${s.matches}`);
  console.log(`documented exceptions: ${ex}`);
  for (const [id, text] of Object.entries(EXCEPTIONS)) console.log(`  ${id}: ${text}`);
  console.log(`legs reset by TCP 3 times, compared as far as both got: ${s.inconclusive}`);
  console.log(
    `mismatches: ${s.mismatches} (semcache vs redis-server), ${s.parserMismatches} (in-process parser vs redis-server)`,
  );
  for (const [mode, r] of Object.entries(s.rssMb)) {
    console.log(`semcache RSS ${mode}: start ${r.start} MB, peak ${r.peak} MB, end ${r.end} MB`);
  }
  console.log(`duration: ${s.seconds} s`);
  for (const [i, m] of [...s.first, ...s.excepted].entries()) {
    console.log(`\n#${i + 1} ${m.where}, case ${m.case}${m.minimized ? ' (minimized)' : ''}`);
    console.log(
      `  input hex: ${m.inputHex}\n  input:     ${m.input}\n  writes at: ${JSON.stringify(m.writesAt)}`,
    );
    console.log(`  redis:     ${m.redis.reply} ${m.redis.closed ? 'then closed' : 'open'}`);
    console.log(`  semcache:  ${m.semcache.reply} ${m.semcache.closed ? 'then closed' : 'open'}`);
  }
}
