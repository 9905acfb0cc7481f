#!/usr/bin/env node
/*
 * Command-line entry point: parse options, start the server, and shut down
 * cleanly on SIGINT/SIGTERM (a second signal exits at once). The `export`
 * and `import` subcommands are admin tools of their own (src/tools/main.ts).
 */
import { readFileSync } from 'node:fs';
import { ConfigError, helpText, parseConfig } from './config.js';
import { createLogger } from './log.js';
import { SemcacheServer } from './server.js';

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  return String(pkg.version);
}

async function main(): Promise<void> {
  const [sub, ...rest] = process.argv.slice(2);
  if (sub === 'export' || sub === 'import') {
    const { runTool } = await import('./tools/main.js');
    process.exitCode = await runTool(sub, rest);
    return;
  }
  let parsed: ReturnType<typeof parseConfig>;
  try {
    parsed = parseConfig(process.argv.slice(2));
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`semcache: ${err.message}\nTry 'semcache --help'.\n`);
    process.exit(2);
  }
  if (parsed.help) {
    process.stdout.write(helpText());
    return;
  }
  if (parsed.version) {
    process.stdout.write(`semcache ${version()}\n`);
    return;
  }
  const logger = createLogger(parsed.config.logLevel);
  let server: SemcacheServer;
  try {
    server = await SemcacheServer.start({ config: parsed.config, logger });
  } catch (err) {
    logger.error(`cannot start: ${(err as Error).message}`);
    process.exit(1);
  }
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      logger.warn(`${signal} again: exiting now`);
      server.abort();
      process.exit(1);
    }
    stopping = true;
    logger.info(`${signal} received, shutting down`);
    server.close().then(
      () => {
        logger.info('bye');
        process.exit(0);
      },
      (err: Error) => {
        logger.error(`shutdown failed: ${err.message}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  // However the process ends (a crash included), the embedded redis-server
  // must not outlive it: 'exit' handlers run synchronously, and so does kill().
  process.on('exit', () => server.abort());
}

await main();
