/*
 * Argument parsing for our commands, with Redis's own error texts for the
 * cases Redis has (integers, floats, syntax) and the bad token named in ours.
 */
// The texts live with every other error text semcache sends (src/errors.ts).
import { ArgErr } from '../errors.js';

export { ArgErr };

export class CommandError extends Error {}

/** Walks the arguments after the fixed ones: options are case-insensitive tokens. */
export class ArgReader {
  private i: number;

  constructor(
    private readonly args: Buffer[],
    start: number,
  ) {
    this.i = start;
  }

  get done(): boolean {
    return this.i >= this.args.length;
  }

  /** The next token, upper-cased, consumed. */
  option(): string {
    return this.args[this.i++]!.toString('latin1').toUpperCase();
  }

  /** The raw previous token, for error messages. */
  get last(): string {
    return this.args[this.i - 1]?.toString() ?? '';
  }

  buffer(option: string): Buffer {
    const v = this.args[this.i++];
    if (v === undefined) throw new CommandError(ArgErr.missing(option));
    return v;
  }

  string(option: string): string {
    return this.buffer(option).toString();
  }

  integer(option: string, min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER): number {
    const text = this.string(option);
    const n = parseInteger(text);
    if (n === undefined) throw new CommandError(ArgErr.notInteger);
    if (n < min || n > max) throw new CommandError(ArgErr.range(option, min, max));
    return n;
  }

  float(option: string, min: number, max: number): number {
    const n = parseFloatStrict(this.string(option));
    if (n === undefined) throw new CommandError(ArgErr.notFloat);
    if (n < min || n > max) throw new CommandError(ArgErr.range(option, min, max));
    return n;
  }
}

/** Redis string2ll: optional '-', digits, no leading zeros or spaces, within the safe range. */
export function parseInteger(text: string): number | undefined {
  if (!/^-?(0|[1-9]\d{0,15})$/.test(text)) return undefined;
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** Like Redis's strtod checks: a whole finite number, no spaces. */
export function parseFloatStrict(text: string): number | undefined {
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text)) return undefined;
  const n = Number(text);
  return Number.isFinite(n) ? n : undefined;
}
