/*
 * A namespace and its entries, in memory: what the engine mirrors of Redis
 * (store.ts) for one namespace. An entry is a key, the text indexed for it,
 * its attributes and its exact-match hash; the namespace holds them by id,
 * by exact hash, and in its vector index (made lazily by entries.ts), plus
 * its settings and counters.
 */
import { LatencyStats } from './stats.js';
import { type IndexKind, QUANTS, type Quant, semError, type VectorIndex } from './types.js';

export const DEFAULT_NAMESPACE = 'default';
export const MAX_NAMESPACE_LENGTH = 256;

/**
 * An entry mirrored from Redis. There is one per cached key, a million in a
 * large cache, so it holds what it must and nothing twice: the key as a
 * latin1 string (`name`: its bytes one to one, and the string EntryTable's
 * map is keyed by, not a copy), its Buffer made only when asked for.
 */
export class Entry {
  constructor(
    readonly id: number,
    /** The key's bytes as a latin1 string. */
    readonly name: string,
    readonly ns: Namespace,
    readonly text: string,
    readonly attrs: Record<string, unknown> | undefined,
    readonly attrsJson: string | undefined,
    /** The exact-match hash (hex). */
    readonly exact: string,
    /** The feed id of the record's change this entry mirrors ('' before the feed). */
    readonly ver: string,
  ) {}

  /** The key (a new Buffer on each call). */
  get key(): Buffer {
    return Buffer.from(this.name, 'latin1');
  }
}

export interface Hit {
  entry: Entry;
  score: number;
  value: Buffer | undefined;
  exact: boolean;
}

export class Namespace {
  index: VectorIndex | undefined;
  readonly entries = new Map<number, Entry>();
  readonly exact = new Map<string, Entry>();
  threshold: number | undefined;
  indexKind: IndexKind | 'auto' | undefined;
  quant: Quant | undefined;
  /** Created by SEMNS SET (its settings are kept in Redis): SEMFLUSH keeps it, SEMNS DEL drops it. */
  declared = false;
  hits = 0;
  exactHits = 0;
  misses = 0;
  /** Searches an approximate index answered short of, made exact by a scan (lookups.ts). */
  exactScans = 0;
  readonly lookup = new LatencyStats();
  readonly embedTime = new LatencyStats();
  readonly searchTime = new LatencyStats();
  constructor(readonly name: string) {}
}

/** A name a namespace may have (InvalidInputError if not). */
export function checkNamespaceName(name: string | undefined): void {
  if (name !== undefined && (name.length === 0 || name.length > MAX_NAMESPACE_LENGTH)) {
    throw semError('NAMESPACE_NAME', MAX_NAMESPACE_LENGTH);
  }
}

/** ATTRS: a JSON object, or undefined. */
export function parseAttrs(json: string | undefined): Record<string, unknown> | undefined {
  if (json === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch (err) {
    throw semError('ATTRS_JSON', (err as Error).message);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw semError('ATTRS_NOT_OBJECT');
  }
  return parsed as Record<string, unknown>;
}

/**
 * A namespace's settings as Redis holds them (P ns:<name>), applied to it:
 * on start, and when another instance changed them (feed.ts). Values that
 * are not valid are ignored, as if unset.
 */
export function applySettings(space: Namespace, settings: Record<string, string>): void {
  space.declared = true;
  const threshold = Number(settings.threshold);
  space.threshold =
    settings.threshold !== undefined && threshold >= -1 && threshold <= 1 ? threshold : undefined;
  const kind = settings.index;
  space.indexKind =
    kind === 'flat' || kind === 'hnsw' || kind === 'ivf' || kind === 'auto' ? kind : undefined;
  space.quant = QUANTS.find((q) => q === settings.quant);
}

/** Its settings were deleted (SEMNS DEL, here or on another instance): defaults again. */
export function clearSettings(space: Namespace): void {
  space.declared = false;
  space.threshold = undefined;
  space.indexKind = undefined;
  space.quant = undefined;
}

/** Compares two feed ids ("ms-seq"; '' before any): negative, 0 or positive. */
export function compareVer(a: string, b: string): number {
  if (a === b) return 0;
  if (a === '') return -1;
  if (b === '') return 1;
  const i = a.indexOf('-');
  const j = b.indexOf('-');
  const ms = Number(a.slice(0, i)) - Number(b.slice(0, j));
  return ms !== 0 ? ms : Number(a.slice(i + 1)) - Number(b.slice(j + 1));
}
