/*
 * The syntax line of a command, from its ArgDoc table, the way redis.io
 * writes them: `[...]` optional, `<a | b>` a required choice, `[a | b]` an
 * optional one, `x [x ...]` multiple, TOKEN before a value. The same table
 * drives the option parser (options.ts) and COMMAND DOCS, and a test checks
 * every line against docs/commands.md, so the three cannot drift apart.
 */
import type { ArgDoc, CommandSpec } from './types.js';

/** One argument, without the brackets of its own optionality. */
function bare(arg: ArgDoc): string {
  switch (arg.type) {
    case 'pure-token':
      return arg.token!;
    case 'oneof': {
      const inner = (arg.arguments ?? []).map(render).join(' | ');
      return arg.optional ? inner : `<${inner}>`;
    }
    case 'block': {
      const inner = (arg.arguments ?? []).map(render).join(' ');
      return arg.token === undefined ? inner : `${arg.token} ${inner}`;
    }
    default:
      return arg.token === undefined ? arg.name : `${arg.token} ${arg.name}`;
  }
}

function render(arg: ArgDoc): string {
  let s = bare(arg);
  if (arg.multiple) s = `${s} [${s} ...]`;
  return arg.optional ? `[${s}]` : s;
}

/**
 * The command's syntax lines: one, or one per subcommand when its only
 * argument is a required choice of subcommands (SEMNS SET ... | GET ...).
 */
export function syntaxLines(spec: CommandSpec): string[] {
  const name = spec.name.toUpperCase();
  const [only] = spec.arguments;
  if (spec.arguments.length === 1 && only!.type === 'oneof' && only!.name === 'subcommand') {
    return (only!.arguments ?? []).map((sub) => `${name} ${bare(sub)}`);
  }
  return [[name, ...spec.arguments.map(render)].join(' ')];
}
