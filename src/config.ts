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
  upstreamMaxBulkLen: number;
  shutdownTimeout: number;
  dataDir: string;
  redisServer: string;
  logLevel: 'debug' | 'info' | 'warn' | 'error';
  embedder: 'transformers' | 'openai' | 'hash';
  model: string;
  modelDir: string | undefined;
  cacheDir: string;
  dtype: string;
  embedUrl: string | undefined;
  embedModel: string;
  embedKeyEnv: string;
  threshold: number;
  index: 'flat' | 'hnsw' | 'ivf' | 'auto';
  prefix: string;
  efSearch: number;
  nprobe: number;
  embedBatch: number;
  embedWait: number;
  embedCache: number;
  embedThreads: number;
  sweepInterval: number;
}

type Kind = 'int' | 'string' | 'level' | 'float' | { oneOf: string[] };

interface Option {
  key: keyof Config;
  flag: string;
  kind: Kind;
  def: Config[keyof Config];
  help: string;
  min?: number;
  max?: number;
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
    key: 'upstreamMaxBulkLen',
    flag: 'upstream-max-bulk-len',
    kind: 'int',
    def: 0,
    min: 0,
    help: "the upstream's proto-max-bulk-len where CONFIG GET cannot read it (0: unknown, a request with a bulk over 512 KB then gets a connection of its own; docs/protocol.md)",
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
  {
    key: 'embedder',
    flag: 'embedder',
    kind: { oneOf: ['transformers', 'openai', 'hash'] },
    def: 'transformers',
    help: 'transformers (local model), openai (HTTP endpoint) or hash (lexical, offline)',
  },
  {
    key: 'model',
    flag: 'model',
    kind: 'string',
    def: 'Xenova/all-MiniLM-L6-v2',
    help: 'transformers.js model id (downloaded on first use)',
  },
  {
    key: 'modelDir',
    flag: 'model-dir',
    kind: 'string',
    def: undefined,
    help: 'local model directory for offline use (config.json, tokenizer.json, onnx/)',
  },
  {
    key: 'cacheDir',
    flag: 'cache-dir',
    kind: 'string',
    def: '.semcache-models',
    help: 'where downloaded models are kept',
  },
  {
    key: 'dtype',
    flag: 'dtype',
    kind: { oneOf: ['fp32', 'fp16', 'q8', 'int8', 'uint8', 'q4'] },
    def: 'fp32',
    help: 'model weights to load (quantized ones are smaller and faster)',
  },
  {
    key: 'embedUrl',
    flag: 'embed-url',
    kind: 'string',
    def: undefined,
    help: 'OpenAI-compatible embeddings API base URL, e.g. http://host:8000/v1',
  },
  {
    key: 'embedModel',
    flag: 'embed-model',
    kind: 'string',
    def: 'text-embedding-3-small',
    help: 'model name sent to --embed-url',
  },
  {
    key: 'embedKeyEnv',
    flag: 'embed-key-env',
    kind: 'string',
    def: 'OPENAI_API_KEY',
    help: 'environment variable holding the API key for --embed-url',
  },
  {
    key: 'threshold',
    flag: 'threshold',
    kind: 'float',
    def: 0.9,
    help: 'default minimum cosine similarity for a SEMGET hit, in [-1, 1]',
  },
  {
    key: 'index',
    flag: 'index',
    kind: { oneOf: ['auto', 'flat', 'hnsw', 'ivf'] },
    def: 'auto',
    help: 'vector index: flat (exact), hnsw (approximate, fastest search), ivf (approximate, fastest to build) or auto (flat, then hnsw past 2048 entries)',
  },
  {
    key: 'efSearch',
    flag: 'ef-search',
    kind: 'int',
    def: 64,
    min: 1,
    max: 100_000,
    help: 'HNSW: candidates searched per lookup (higher: better recall, slower; docs/index.md)',
  },
  {
    key: 'nprobe',
    flag: 'nprobe',
    kind: 'int',
    def: 16,
    min: 1,
    max: 65_536,
    help: 'IVF: inverted lists searched per lookup (higher: better recall, slower)',
  },
  {
    key: 'prefix',
    flag: 'prefix',
    kind: 'string',
    def: 'semcache:',
    help: 'prefix of the keys semcache keeps in Redis (docs/storage.md)',
  },
  {
    key: 'embedBatch',
    flag: 'embed-batch',
    kind: 'int',
    def: 32,
    min: 1,
    help: 'largest micro-batch of texts per model call (1 = no batching)',
  },
  {
    key: 'embedWait',
    flag: 'embed-wait',
    kind: 'int',
    def: 0,
    min: 0,
    help: 'milliseconds a text may wait for others to share a model call (0: only those read in the same event-loop turn, plus what queues while the model runs)',
  },
  {
    key: 'embedCache',
    flag: 'embed-cache',
    kind: 'int',
    def: 10000,
    min: 0,
    help: 'texts whose embeddings are kept in memory (LRU)',
  },
  {
    key: 'embedThreads',
    flag: 'embed-threads',
    kind: 'int',
    def: 0,
    min: 0,
    help: 'onnxruntime threads per model call (0: one per core)',
  },
  {
    key: 'sweepInterval',
    flag: 'sweep-interval',
    kind: 'int',
    def: 60000,
    min: 0,
    help: 'milliseconds between sweeps for entries whose key is gone (0: never)',
  },
];

export class ConfigError extends Error {}

const LEVELS = ['debug', 'info', 'warn', 'error'];

export function envName(flag: string): string {
  return `SEMCACHE_${flag.toUpperCase().replaceAll('-', '_')}`;
}

function convert(opt: Option, raw: string, source: string): Config[keyof Config] {
  if (opt.kind === 'string') return raw;
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
