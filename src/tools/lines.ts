/*
 * Lines of a stream, for `semcache import`: each line as a string with its
 * number, read as the stream delivers it. A line longer than the limit is
 * refused as soon as it passes the limit, so a dump without newlines (or a
 * binary file) costs at most the limit in memory, not the whole file.
 * node:readline would buffer such a line whole.
 *
 * A last line without its newline means the stream was cut off: the writer
 * ends every line with one. It is refused, not parsed: a cut that falls
 * right after a closing brace would otherwise read as a whole line.
 */
import { isUtf8 } from 'node:buffer';
import { DumpError } from './dump-format.js';

export async function* readLines(
  input: AsyncIterable<Buffer | string>,
  maxBytes: number,
): AsyncGenerator<{ text: string; line: number }> {
  let parts: Buffer[] = [];
  let size = 0;
  let line = 1;
  for await (const chunk of input) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    let start = 0;
    for (;;) {
      const nl = buf.indexOf(0x0a, start);
      const end = nl === -1 ? buf.length : nl;
      size += end - start;
      if (size > maxBytes) {
        throw new DumpError(line, `line longer than ${maxBytes} bytes (the limit of a dump line)`);
      }
      if (end > start) parts.push(buf.subarray(start, end));
      if (nl === -1) break;
      const bytes = parts.length === 1 ? parts[0]! : Buffer.concat(parts, size);
      if (!isUtf8(bytes)) throw new DumpError(line, 'not UTF-8 text');
      yield { text: bytes.toString('utf8'), line };
      parts = [];
      size = 0;
      line++;
      start = nl + 1;
    }
  }
  if (size > 0) {
    throw new DumpError(line, 'the dump ends in the middle of this line (truncated)');
  }
}
