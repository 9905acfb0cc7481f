/*
 * The `semcache export` and `semcache import` subcommands: admin tools that
 * talk to the backing Redis directly, with semcache's own options and
 * credentials (--upstream, --upstream-password-file, --upstream-tls-*,
 * --prefix; parsed by config.ts, resolved by resolve.ts as the server does),
 * and, for import, the configured embedder (create.ts), loaded as the server
 * loads it. No server is started and no running one is needed.
 *
 * Exit codes: 0 done; 2 a usage error (unknown option, no --ns, no
 * --upstream); 1 a failure (Redis unreachable or refusing, a dump that
 * cannot be read, the model not loadable). The summary and every error go
 * to stderr; stdout carries only the dump.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { type Config, ConfigError, parseConfig } from '../config.js';
import { createLogger } from '../log.js';
import { createEmbedder } from '../semantic/create.js';
import { SemanticStore } from '../semantic/store.js';
import { RedisClient } from '../upstream/redis-client.js';
import { resolveUpstream } from '../upstream/resolve.js';
import { DumpError, validNamespace } from './dump-format.js';
import { exportNamespace, UnknownNamespace } from './export.js';
import { ImportFailure, importDump } from './import.js';

type Tool = 'export' | 'import';

const FLAGS = {
  export: { ns: 'string' },
  import: { ns: 'string', check: 'boolean' },
} as const;

const USAGE: Record<Tool, string> = {
  export: `Usage: semcache export --ns <name> [options] > dump

Writes one namespace (texts, vectors, attributes, values, TTLs, settings) to
stdout as JSON lines (docs/storage.md#export-and-import). Reads the backing
Redis directly with semcache's own credentials: --upstream (required),
--upstream-password-file, --upstream-tls-*, --prefix, --connect-timeout,
as 'semcache --help' describes them.
`,
  import: `Usage: semcache import [--ns <name>] [--check] [options] < dump

Merges a dump from stdin into a namespace (default: the dump's own). Entries
at the same key are replaced; a new namespace gets the dump's settings, an
existing one keeps its own. Entries of another model are embedded again with
the configured embedder (--embedder, --model, ...). --check reads and checks
the whole dump and writes nothing. Connects like export: --upstream
(required), --upstream-password-file, --upstream-tls-*, --prefix.
`,
};

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
  return String(pkg.version);
}

class UsageError extends Error {}

/** Run a subcommand; resolves with its exit code. */
export async function runTool(tool: Tool, argv: string[]): Promise<number> {
  const say = (line: string) => process.stderr.write(`semcache ${tool}: ${line}\n`);
  let config: Config;
  let ns: string | undefined;
  let check = false;
  try {
    const parsed = parseConfig(argv, process.env, FLAGS[tool]);
    if (parsed.help) {
      process.stdout.write(USAGE[tool]);
      return 0;
    }
    config = parsed.config;
    ns = parsed.extra.ns as string | undefined;
    check = parsed.extra.check === true;
    if (ns !== undefined && !validNamespace(ns))
      throw new UsageError(`--ns: '${ns}' is not a namespace name`);
    if (tool === 'export' && ns === undefined) throw new UsageError('--ns <name> is required');
    if (config.upstream === undefined && !check) {
      throw new UsageError(
        "--upstream is required: the Redis semcache stores in (with an embedded redis-server, its port is in semcache's log)",
      );
    }
  } catch (err) {
    if (!(err instanceof ConfigError || err instanceof UsageError)) throw err;
    say(err.message);
    process.stderr.write(`Try 'semcache ${tool} --help'.\n`);
    return 2;
  }
  const logger = createLogger(config.logLevel);
  let redis: RedisClient | undefined;
  let embedder: ReturnType<typeof createEmbedder> | undefined;
  const connect = async () => {
    const { address } = await resolveUpstream(config, logger);
    redis = new RedisClient({ ...address, connectTimeout: config.connectTimeout });
    await redis.call('PING');
    // Its writes are events of the change feed, as any instance's: running instances see them.
    const origin = `${tool}-${randomBytes(4).toString('hex')}`;
    const feed = { origin, maxlen: config.feedMaxlen };
    return { redis, store: new SemanticStore(redis, config.prefix, feed) };
  };
  try {
    if (tool === 'export') {
      const { redis: r, store } = await connect();
      const n = await exportNamespace({
        store,
        redis: r,
        ns: ns!,
        out: process.stdout,
        version: version(),
        warn: (m) => say(m),
      });
      const notes = [
        ...(n.gone > 0 ? [`${n.gone} left out: value gone since the scan`] : []),
        ...(n.tooLarge > 0 ? [`${n.tooLarge} left out: too large`] : []),
      ];
      say(
        `exported ${n.entries} entries of namespace ${ns}${notes.length > 0 ? ` (${notes.join(', ')})` : ''}`,
      );
      // An incomplete dump must not pass for a whole one in a script.
      return n.tooLarge > 0 ? 1 : 0;
    }
    const n = await importDump({
      input: process.stdin,
      ns,
      maxTextBytes: config.maxTextBytes,
      target: check
        ? undefined
        : async () => {
            const { redis: r, store } = await connect();
            embedder = createEmbedder(config);
            await embedder.load();
            return { store, redis: r, embedder, embedBatch: config.embedBatch };
          },
    });
    if (check) {
      say(
        `dump ok: ${n.entries} entries of namespace ${n.header.ns}, model ${n.header.model ?? '(none)'}`,
      );
      return 0;
    }
    const settings =
      n.settings === 'written'
        ? `; namespace ${n.ns} created with the dump's settings`
        : n.settings === 'kept'
          ? `; namespace ${n.ns} existed, its settings kept`
          : '';
    const skipped = n.skipped > 0 ? `, ${n.skipped} skipped: key changed or expired meanwhile` : '';
    say(
      `imported ${n.entries} entries (${n.reembedded} re-embedded, ${n.replaced} replaced${skipped}) into namespace ${n.ns}${settings}`,
    );
    return 0;
  } catch (err) {
    if (
      err instanceof UnknownNamespace ||
      err instanceof DumpError ||
      err instanceof ImportFailure
    ) {
      say(err.message);
    } else say(`failed: ${(err as Error).message}`);
    return 1;
  } finally {
    (redis as RedisClient | undefined)?.close();
    await embedder?.close?.();
  }
}
