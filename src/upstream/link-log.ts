/*
 * What the log says about connections to the backing Redis. Each loss and each
 * recovery is logged once, with its cause, and never floods:
 *
 *   LinkLog        one long-lived connection (a shared connection, semcache's
 *                  own connection): every loss (or, if it never came up, the
 *                  first failed attempt) and the recovery, with the number of
 *                  attempts that failed meanwhile, which are only counted.
 *   ClientLinkLog  the clients' own connections, which die together when
 *                  Redis does: the first loss of an interval is logged in
 *                  full, the rest are counted and summed up once per
 *                  interval, with how many clients connected again.
 *
 * Connections semcache closes itself (a client left) are not losses and are
 * never reported here (see Upstream).
 */
import type { Logger } from '../log.js';

/** Told of each connect and each loss of one connection. */
export interface LinkMonitor {
  up(address: string): void;
  /** `wasUp` false: the connection never came up (refused, timed out). */
  down(address: string, cause: string, wasUp: boolean): void;
}

export class LinkLog implements LinkMonitor {
  private state: 'new' | 'up' | 'down' = 'new';
  private failedAttempts = 0;
  private reason: string | undefined;

  constructor(
    private readonly logger: Logger,
    private readonly name: string,
  ) {}

  /** The next loss has a better explanation than the socket's. */
  explain(reason: string): void {
    this.reason = reason;
  }

  up(address: string): void {
    if (this.state === 'down') {
      const after =
        this.failedAttempts > 0 ? ` after ${this.failedAttempts} failed attempt(s)` : '';
      this.logger.info(`${this.name}: connected to upstream ${address} again${after}`);
    }
    this.state = 'up';
    this.failedAttempts = 0;
  }

  down(address: string, cause: string, wasUp: boolean): void {
    const why = this.reason ?? cause;
    this.reason = undefined;
    if (wasUp) {
      this.logger.warn(`${this.name}: connection to upstream ${address} lost (${why})`);
    } else {
      if (this.state !== 'down') {
        this.logger.warn(`${this.name}: upstream ${address} unreachable (${why})`);
      }
      this.failedAttempts++;
    }
    this.state = 'down';
  }
}

/** Interval over which losses of clients' own connections are summed up. */
export const CLIENT_LOG_INTERVAL_MS = 10_000;

export class ClientLinkLog {
  private window: NodeJS.Timeout | undefined;
  private unlogged = 0;
  private recovered = 0;
  /** A loss was reported and no client has connected since. */
  private troubled = false;

  constructor(
    private readonly logger: Logger,
    private readonly intervalMs = CLIENT_LOG_INTERVAL_MS,
  ) {}

  forClient(id: number): LinkMonitor {
    return {
      up: (address) => this.up(id, address),
      down: (address, cause, wasUp) => this.down(id, address, cause, wasUp),
    };
  }

  private down(id: number, address: string, cause: string, wasUp: boolean): void {
    this.troubled = true;
    if (this.window !== undefined) {
      this.unlogged++;
      return;
    }
    const what = wasUp
      ? `connection to upstream ${address} lost`
      : `upstream ${address} unreachable`;
    this.logger.warn(`client ${id}: ${what} (${cause})`);
    this.openWindow();
  }

  private up(id: number, address: string): void {
    if (!this.troubled) return;
    if (this.window !== undefined) {
      this.recovered++;
      return;
    }
    this.troubled = false;
    this.logger.info(`client ${id}: connected to upstream ${address} again`);
  }

  private openWindow(): void {
    this.window = setTimeout(this.summarize, this.intervalMs);
    this.window.unref();
  }

  private readonly summarize = (): void => {
    this.window = undefined;
    if (this.unlogged === 0 && this.recovered === 0) return;
    const parts: string[] = [];
    if (this.unlogged > 0) parts.push(`${this.unlogged} more client upstream connection(s) lost`);
    if (this.recovered > 0) parts.push(`${this.recovered} client(s) connected to upstream again`);
    const line = `${parts.join(', ')} in the last ${this.intervalMs / 1000} s`;
    if (this.unlogged > 0) this.logger.warn(line);
    else this.logger.info(line);
    if (this.recovered > 0 && this.unlogged === 0) this.troubled = false;
    const more = this.unlogged > 0;
    this.unlogged = 0;
    this.recovered = 0;
    // Losses go on: keep summing them up rather than log the next one in full.
    if (more) this.openWindow();
  };

  close(): void {
    if (this.window !== undefined) clearTimeout(this.window);
    this.window = undefined;
  }
}
