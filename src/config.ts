/*
 * Configuration: one table of options, read from the command line and from the
 * environment (SEMCACHE_<NAME>, e.g. SEMCACHE_PORT), flags winning. The table is
 * also the source of `--help`, so the help text cannot drift from what is parsed.
 */
import type { ConnectionOptions } from 'node:tls';
import { parseArgs } from 'node:util';
import { PROXY_OPTIONS } from './config/proxy-options.js';
import { SEMANTIC_OPTIONS } from './config/semantic-options.js';
import { TLS_OPTIONS } from './config/tls-options.js';
import type { Config, Option } from './config/types.js';

export type { Config, Port } from './config/types.js';

/** Every option, in --help's order: one table, read from flags and the environment. */
export const OPTIONS: readonly Option[] = [...PROXY_OPTIONS, ...TLS_OPTIONS, ...SEMANTIC_OPTIONS];

export class ConfigError extends Error {}

const LEVELS = ['debug', 'info', 'warn', 'error'];

export function envName(flag: string): string {
  return `SEMCACHE_${flag.toUpperCase().replaceAll('-', '_')}`;
}

function convert(opt: Option, raw: string, source: string): Config[keyof Config] {
  if (opt.kind === 'string') return raw;
  if (opt.kind === 'port') {
    if (raw === 'off') return raw;
    if (!/^\d+$/.test(raw)) {
      throw new ConfigError(`${source}: '${raw}' is not a non-negative integer (or off)`);
    }
    const n = Number(raw);
    if (n > 65535) throw new ConfigError(`${source}: port ${n} is out of range`);
    return n;
  }
  if (typeof opt.kind === 'object') {
    if (!opt.kind.oneOf.includes(raw)) {
      throw new ConfigError(`${source}: expected one of ${opt.kind.oneOf.join(', ')}`);
    }
    return raw;
  }
  if (opt.kind === 'float') {
    const f = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(f) || f < -1 || f > 1) {
      throw new ConfigError(`${source}: '${raw}' is not a number between -1 and 1`);
    }
    return f;
  }
  if (opt.kind === 'level') {
    if (!LEVELS.includes(raw))
      throw new ConfigError(`${source}: expected one of ${LEVELS.join(', ')}`);
    return raw;
  }
  if (!/^\d+$/.test(raw))
    throw new ConfigError(`${source}: '${raw}' is not a non-negative integer`);
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < (opt.min ?? 0)) {
    throw new ConfigError(`${source}: '${raw}' is out of range (minimum ${opt.min ?? 0})`);
  }
  if (opt.max !== undefined && n > opt.max) {
    throw new ConfigError(`${source}: '${raw}' is out of range (maximum ${opt.max})`);
  }
  return n;
}

export interface ParsedCli {
  config: Config;
  help: boolean;
  version: boolean;
  /** The values of `extra`'s flags, as given (a subcommand's own options). */
  extra: Record<string, string | boolean | undefined>;
}

/**
 * `extra`: flags of a subcommand (`semcache export --ns NAME`) parsed along
 * with the table's, so the subcommands take every option the server does.
 */
export function parseConfig(
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
  extra: Readonly<Record<string, 'string' | 'boolean'>> = {},
): ParsedCli {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = {
    help: { type: 'boolean', short: 'h' },
    version: { type: 'boolean', short: 'v' },
  };
  for (const opt of OPTIONS) options[opt.flag] = { type: 'string' };
  for (const [flag, type] of Object.entries(extra)) options[flag] = { type };
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args: argv, options, strict: true, allowPositionals: false }));
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
  const config = {} as Record<keyof Config, unknown>;
  for (const opt of OPTIONS) {
    const flagValue = values[opt.flag];
    const envValue = env[envName(opt.flag)];
    if (typeof flagValue === 'string') config[opt.key] = convert(opt, flagValue, `--${opt.flag}`);
    else if (envValue !== undefined && envValue !== '')
      config[opt.key] = convert(opt, envValue, envName(opt.flag));
    else config[opt.key] = opt.def;
  }
  const parsed = config as unknown as Config;
  if (parsed.upstream !== undefined) parseRedisUrl(parsed.upstream);
  checkCombinations(parsed);
  const given: Record<string, string | boolean | undefined> = {};
  for (const flag of Object.keys(extra)) given[flag] = values[flag];
  return {
    config: parsed,
    help: values.help === true,
    version: values.version === true,
    extra: given,
  };
}

export function defaultConfig(overrides: Partial<Config> = {}): Config {
  return { ...parseConfig([], {}).config, ...overrides };
}

export interface RedisAddress {
  host: string;
  port: number;
  username: string | undefined;
  password: string | undefined;
  db: number;
  /** rediss://: connect with TLS using these options (CA, client certificate, name checked). */
  tls?: ConnectionOptions | undefined;
}

/** redis[s]://[[user]:password@]host[:port][/db] (also bare host:port). */
export function parseRedisUrl(url: string): RedisAddress {
  const text = url.includes('://') ? url : `redis://${url}`;
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new ConfigError(`--upstream: '${url}' is not a redis:// URL`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') {
    throw new ConfigError(`--upstream: only redis:// and rediss:// are supported`);
  }
  const port = u.port === '' ? 6379 : Number(u.port);
  const dbText = u.pathname.replace(/^\//, '');
  const db = dbText === '' ? 0 : Number(dbText);
  if (!Number.isInteger(db) || db < 0)
    throw new ConfigError(`--upstream: bad database '${dbText}'`);
  return {
    host: u.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1',
    port,
    username: u.username === '' ? undefined : decodeURIComponent(u.username),
    password: u.password === '' ? undefined : decodeURIComponent(u.password),
    db,
    // The options proper (CA, certificates, name) come from the --upstream-tls-* files.
    ...(u.protocol === 'rediss:' ? { tls: {} } : {}),
  };
}

/**
 * Options that only make sense together. Redis's own rules for the TLS port
 * (src/tls.c): a certificate and key, and a CA unless client certificates
 * are off. --upstream-tls-* without rediss:// would silently connect in
 * plain text to a server the user meant to verify, so it is an error.
 */
function checkCombinations(c: Config): void {
  if (c.port === 'off' && c.tlsPort === 'off') {
    throw new ConfigError('--port off needs a --tls-port: semcache would listen on nothing');
  }
  if (c.port !== 'off' && c.port !== 0 && c.port === c.tlsPort) {
    throw new ConfigError(`--port and --tls-port are both ${c.port}`);
  }
  if (c.tlsPort !== 'off') {
    if (c.tlsCertFile === undefined || c.tlsKeyFile === undefined) {
      throw new ConfigError('--tls-port needs --tls-cert-file and --tls-key-file');
    }
    if (c.tlsAuthClients !== 'no' && c.tlsCaCertFile === undefined) {
      throw new ConfigError(
        `--tls-auth-clients ${c.tlsAuthClients} needs --tls-ca-cert-file (or --tls-auth-clients no)`,
      );
    }
  }
  const upstreamTls = [
    ['upstream-tls-ca-cert-file', c.upstreamTlsCaCertFile],
    ['upstream-tls-cert-file', c.upstreamTlsCertFile],
    ['upstream-tls-key-file', c.upstreamTlsKeyFile],
    ['upstream-tls-server-name', c.upstreamTlsServerName],
  ] as const;
  const tlsUpstream = c.upstream !== undefined && parseRedisUrl(c.upstream).tls !== undefined;
  for (const [flag, value] of upstreamTls) {
    if (value !== undefined && !tlsUpstream) {
      throw new ConfigError(`--${flag} needs a rediss:// --upstream`);
    }
  }
  if ((c.upstreamTlsCertFile === undefined) !== (c.upstreamTlsKeyFile === undefined)) {
    throw new ConfigError('--upstream-tls-cert-file and --upstream-tls-key-file go together');
  }
}

export function helpText(): string {
  const lines = [
    'Usage: semcache [options]',
    '       semcache export --ns <name> [options] > dump   (docs/storage.md#export-and-import)',
    '       semcache import [--ns <name>] [options] < dump',
    '',
    'A semantic cache that speaks the Redis protocol. Every option can also be set',
    'through the environment variable shown; a flag wins over the environment.',
    '',
  ];
  for (const opt of OPTIONS) {
    const def = opt.def === undefined ? '' : ` (default: ${opt.def})`;
    const flag = `  --${opt.flag} <value>`;
    // A flag too long for the column gets its text on the next line, not run into it.
    if (flag.length >= 30) lines.push(flag, `${' '.repeat(30)}${opt.help}${def}`);
    else lines.push(`${flag.padEnd(30)}${opt.help}${def}`);
    lines.push(`${' '.repeat(30)}env ${envName(opt.flag)}`);
  }
  lines.push(`${`  -h, --help`.padEnd(30)}show this help`);
  lines.push(`${`  -v, --version`.padEnd(30)}print the version`);
  return `${lines.join('\n')}\n`;
}
