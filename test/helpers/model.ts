/*
 * Generated embedding models for tests: BERT-shaped ONNX models with random
 * weights and the real all-MiniLM-L6-v2 tokenizer (scripts/make-model.mjs),
 * generated once into node_modules/.cache/semcache-models/<preset>-<hash>, where
 * <hash> covers the generator's source, so a changed generator regenerates.
 * Safe when several test processes ask at once: each generates into its own
 * temporary directory and renames it into place.
 */

import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const script = join(repoRoot, 'scripts', 'make-model.mjs');
const cacheRoot = join(repoRoot, 'node_modules', '.cache', 'semcache-models');

export type ModelPreset = 'tiny' | 'minilm';

function generatorHash(): string {
  const h = createHash('sha256');
  const modelDir = join(repoRoot, 'scripts', 'model');
  const files = [
    script,
    ...readdirSync(modelDir)
      .filter((f) => f.endsWith('.mjs'))
      .sort()
      .map((f) => join(modelDir, f)),
  ];
  for (const f of files) h.update(readFileSync(f));
  return h.digest('hex').slice(0, 12);
}

const pending = new Map<ModelPreset, Promise<string>>();

async function generate(preset: ModelPreset): Promise<string> {
  const hash = generatorHash();
  const dir = join(cacheRoot, `${preset}-${hash}`);
  // the manifest is written last: its presence means the directory is complete
  if (existsSync(join(dir, 'semcache-model.json'))) return dir;

  // a directory without a manifest was not made here (or by an interrupted run): replace it
  if (existsSync(dir) && !existsSync(join(dir, 'semcache-model.json'))) {
    await rm(dir, { recursive: true, force: true });
  }
  const tmp = `${dir}.tmp-${process.pid}-${Date.now()}`;
  try {
    await execFileAsync(process.execPath, [script, '--out', tmp, '--preset', preset, '--quiet']);
    await rename(tmp, dir).catch((err: unknown) => {
      // another process won the race: use its copy
      if (!existsSync(join(dir, 'semcache-model.json'))) throw err;
    });
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }

  // best effort: drop copies made by older versions of the generator, and
  // temporary directories of runs killed more than an hour ago
  for (const name of readdirSync(cacheRoot)) {
    if (!name.startsWith(`${preset}-`) || name === `${preset}-${hash}`) continue;
    const path = join(cacheRoot, name);
    try {
      if (name.includes('.tmp-') && Date.now() - statSync(path).mtimeMs < 3_600_000) continue;
      await rm(path, { recursive: true, force: true });
    } catch {
      // gone already, or not ours to remove
    }
  }
  return dir;
}

/** The directory of a generated model of `preset` (generated on first use). */
export function ensureModel(preset: ModelPreset): Promise<string> {
  let p = pending.get(preset);
  if (!p) {
    p = generate(preset);
    p.catch(() => pending.delete(preset));
    pending.set(preset, p);
  }
  return p;
}

/** 2 layers, hidden 32, 2 heads, FFN 64, vocab 30522: ~4 MB, loads and runs in milliseconds. */
export function ensureTinyModel(): Promise<string> {
  return ensureModel('tiny');
}

/** The exact shape of all-MiniLM-L6-v2 (6 layers, hidden 384): ~90 MB, real compute cost. */
export function ensureMiniLmModel(): Promise<string> {
  return ensureModel('minilm');
}
