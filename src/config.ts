/*
 * Configuration: one table of options, read from the command line and from the
 * environment (SEMCACHE_<NAME>, e.g. SEMCACHE_PORT), flags winning. The table is
 * also the source of `--help`, so the help text cannot drift from what is parsed.
 */
import { parseArgs } from 'node:util';

export interface Config {
  port: number;
  bind: string;
  /** redis://[[user]:password@]host:port[/db]; undefined = start an embedded redis-server. */
  upstream: string | undefined;
  connectTimeout: number;
  maxClients: number;
  multiplex: number;
  maxPending: number;
  maxRequestSize: number;
  shutdownTimeout: number;
  dataDir: string;
  redisServer: string;
  logLevel: 'debug' | 'info' | 'warn' | 'error';
}

type Kind = 'int' | 'string' | 'level';

interface Option {
  key: keyof Config;
  flag: string;
  kind: Kind;
  def: Config[keyof Config];
  help: string;
  min?: number;
}

export const OPTIONS: readonly Option[] = [
  { key: 'port', flag: 'port', kind: 'int', def: 6380, min: 0, help: 'TCP port to listen on' },
  { key: 'bind', flag: 'bind', kind: 'string', def: '127.0.0.1', help: 'address to listen on' },
  {
    key: 'upstream',
    flag: 'upstream',
    kind: 'string',
    def: undefined,
    help: 'backing Redis, redis://host:port; without it an embedded redis-server is started',
  },
  {
    key: 'connectTimeout',
    flag: 'connect-timeout',
    kind: 'int',
    def: 2000,
    min: 1,
    help: 'milliseconds to wait for the upstream connection before answering -ERR',
  },
  {
    key: 'maxClients',
    flag: 'max-clients',
    kind: 'int',
    def: 10000,
    min: 1,
    help: 'maximum simultaneous client connections (like Redis maxclients)',
  },
  {
    key: 'multiplex',
    flag: 'multiplex',
    kind: 'int',
    def: 1,
    min: 0,
    help: 'shared upstream connections for stateless commands (0: one connection per client only)',
  },
  {
    key: 'maxPending',
    flag: 'max-pending',
    kind: 'int',
    def: 10000,
    min: 1,
    help: 'per client: commands awaiting their reply before semcache stops reading that client',
  },
  {
    key: 'maxRequestSize',
    flag: 'max-request-size',
    kind: 'int',
    def: 512 * 1024 * 1024,
    min: 1,
    help: 'largest bulk argument in bytes (like Redis proto-max-bulk-len)',
  },
  {
    key: 'shutdownTimeout',
    flag: 'shutdown-timeout',
    kind: 'int',
    def: 5000,
    min: 0,
    help: 'milliseconds in-flight replies get to finish on SIGINT/SIGTERM',
  },
  {
    key: 'dataDir',
    flag: 'data-dir',
    kind: 'string',
    def: '.semcache-data',
    help: 'data directory of the embedded redis-server (no --upstream)',
  },
  {
    key: 'redisServer',
    flag: 'redis-server',
    kind: 'string',
    def: 'redis-server',
    help: 'redis-server executable for the embedded server',
  },
  {
    key: 'logLevel',
    flag: 'log-level',
    kind: 'level',
    def: 'info',
    help: 'debug, info, warn or error',
  },
];

export class ConfigError extends Error {}

const LEVELS = ['debug', 'info', 'warn', 'error'];

export function envName(flag: string): string {
  return `SEMCACHE_${flag.toUpperCase().replaceAll('-', '_')}`;
}

function convert(opt: Option, raw: string, source: string): Config[keyof Config] {
  if (opt.kind === 'string') return raw;
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
  if (opt.key === 'port' && n > 65535)
    throw new ConfigError(`${source}: port ${n} is out of range`);
  return n;
}

export interface ParsedCli {
  config: Config;
  help: boolean;
  version: boolean;
}

export function parseConfig(argv: string[], env: NodeJS.ProcessEnv = process.env): ParsedCli {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = {
    help: { type: 'boolean', short: 'h' },
    version: { type: 'boolean', short: 'v' },
  };
  for (const opt of OPTIONS) options[opt.flag] = { type: 'string' };
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
  return { config: parsed, help: values.help === true, version: values.version === true };
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
}

/** redis://[[user]:password@]host[:port][/db] (also bare host:port). */
export function parseRedisUrl(url: string): RedisAddress {
  const text = url.includes('://') ? url : `redis://${url}`;
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new ConfigError(`--upstream: '${url}' is not a redis:// URL`);
  }
  if (u.protocol !== 'redis:') throw new ConfigError(`--upstream: only redis:// is supported`);
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
  };
}

export function helpText(): string {
  const lines = [
    'Usage: semcache [options]',
    '',
    'A semantic cache that speaks the Redis protocol. Every option can also be set',
    'through the environment variable shown; a flag wins over the environment.',
    '',
  ];
  for (const opt of OPTIONS) {
    const def = opt.def === undefined ? '' : ` (default: ${opt.def})`;
    lines.push(`${`  --${opt.flag} <value>`.padEnd(30)}${opt.help}${def}`);
    lines.push(`${' '.repeat(30)}env ${envName(opt.flag)}`);
  }
  lines.push(`${`  -h, --help`.padEnd(30)}show this help`);
  lines.push(`${`  -v, --version`.padEnd(30)}print the version`);
  return `${lines.join('\n')}\n`;
}
