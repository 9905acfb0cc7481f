/* The shape of semcache's configuration, and of one option in its table. */
export type Port = number | 'off';

export interface Config {
  port: Port;
  bind: string;
  /** redis[s]://[[user]:password@]host:port[/db]; undefined = start an embedded redis-server. */
  upstream: string | undefined;
  upstreamPasswordFile: string | undefined;
  protectedMode: 'yes' | 'no';
  tlsPort: Port;
  tlsCertFile: string | undefined;
  tlsKeyFile: string | undefined;
  tlsCaCertFile: string | undefined;
  tlsAuthClients: 'yes' | 'no' | 'optional';
  tlsHandshakeTimeout: number;
  upstreamTlsCaCertFile: string | undefined;
  upstreamTlsCertFile: string | undefined;
  upstreamTlsKeyFile: string | undefined;
  upstreamTlsServerName: string | undefined;
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
  quant: 'fp32' | 'q8';
  prefix: string;
  efSearch: number;
  nprobe: number;
  hnswExtend: 'on' | 'off';
  embedBatch: number;
  embedWait: number;
  embedCache: number;
  embedThreads: number;
  sweepInterval: number;
  feedMaxlen: number;
  keyspaceEvents: 'auto' | 'off';
  snapshots: 'redis' | 'off';
  snapshotMinEntries: number;
  maxTextBytes: number;
}

export type Kind = 'int' | 'port' | 'string' | 'level' | 'float' | { oneOf: string[] };

export interface Option {
  key: keyof Config;
  flag: string;
  kind: Kind;
  def: Config[keyof Config];
  help: string;
  min?: number;
  max?: number;
}
