export type { CommandContext, CommandSpec } from './commands/types.js';
export { type Config, defaultConfig, parseConfig } from './config.js';
export { SemcacheServer, type ServerOptions } from './server.js';
