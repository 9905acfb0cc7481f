#!/usr/bin/env node
// Generates a BERT-architecture ONNX model with seeded random weights, laid out
// like Xenova/all-MiniLM-L6-v2 so that transformers.js loads it as a local
// model for the feature-extraction pipeline (dtype fp32 -> onnx/model.onnx):
//
//   <out>/config.json               sizes rewritten to the generated shape
//   <out>/tokenizer.json, tokenizer_config.json, special_tokens_map.json, vocab.txt
//                                   copied from the real all-MiniLM-L6-v2
//   <out>/onnx/model.onnx           opset 17, weights as float32 raw_data
//   <out>/semcache-model.json       what was generated (written last)
//
// The tokenizer and the compute cost are real; the semantics are not (random
// weights). Same arguments -> byte-identical files.
//
// usage: node scripts/make-model.mjs --out <dir> [--preset tiny|minilm]
//          [--layers N --hidden H --heads A --ffn F --max-positions P] [--seed S]
//          [--tokenizer-dir <dir>] [--quiet]

import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  realpathSync,
  renameSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { buildBert, GENERATOR_VERSION, PRESETS } from './model/bert.mjs';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const DEFAULT_TOKENIZER_DIR = resolve(
  repoRoot,
  '..',
  'shared',
  'models',
  'all-MiniLM-L6-v2',
);
const TOKENIZER_FILES = [
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'vocab.txt',
];
export const MANIFEST = 'semcache-model.json';

function usage(message) {
  if (message) console.error(`make-model: ${message}`);
  console.error(
    'usage: node scripts/make-model.mjs --out <dir> [--preset tiny|minilm] ' +
      '[--layers N --hidden H --heads A --ffn F --max-positions P] [--seed S] [--tokenizer-dir <dir>] [--quiet]',
  );
  process.exit(2);
}

function intArg(values, name) {
  const raw = values[name];
  if (raw === undefined) return undefined;
  if (!/^\d+$/.test(raw)) usage(`--${name} must be a non-negative integer, got ${raw}`);
  return Number(raw);
}

/** Writes the chunks of a Message to `path`, coalescing small chunks. */
function writeMessage(path, msg) {
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  try {
    const pending = [];
    let pendingLen = 0;
    const flush = () => {
      if (pendingLen > 0) writeSync(fd, Buffer.concat(pending, pendingLen));
      pending.length = 0;
      pendingLen = 0;
    };
    for (const c of msg.chunks) {
      if (c.length >= 65536) {
        flush();
        writeSync(fd, c);
      } else {
        pending.push(c);
        pendingLen += c.length;
        if (pendingLen >= 65536) flush();
      }
    }
    flush();
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

/**
 * Generates the model directory. Returns a summary.
 * @param {{out:string, preset?:string, layers?:number, hidden?:number, heads?:number, ffn?:number,
 *   maxPositions?:number, seed?:number, tokenizerDir?:string}} opts
 */
export function makeModel(opts) {
  const presetName = opts.preset ?? 'tiny';
  const preset = PRESETS[presetName];
  if (!preset) throw new Error(`unknown preset ${presetName} (tiny or minilm)`);
  const tokenizerDir = resolve(opts.tokenizerDir ?? DEFAULT_TOKENIZER_DIR);
  const configPath = join(tokenizerDir, 'config.json');
  if (!existsSync(configPath)) {
    throw new Error(
      `no config.json in ${tokenizerDir} (pass --tokenizer-dir <dir of all-MiniLM-L6-v2>)`,
    );
  }
  const baseConfig = JSON.parse(readFileSync(configPath, 'utf8'));
  const shape = {
    layers: opts.layers ?? preset.layers,
    hidden: opts.hidden ?? preset.hidden,
    heads: opts.heads ?? preset.heads,
    ffn: opts.ffn ?? preset.ffn,
    vocab: baseConfig.vocab_size ?? preset.vocab,
    maxPositions: opts.maxPositions ?? preset.maxPositions,
    typeVocab: baseConfig.type_vocab_size ?? preset.typeVocab,
    layerNormEps: baseConfig.layer_norm_eps ?? 1e-12,
    seed: opts.seed ?? 42,
  };

  const out = resolve(opts.out);
  mkdirSync(join(out, 'onnx'), { recursive: true });

  const { model, parameters } = buildBert(shape);
  writeMessage(join(out, 'onnx', 'model.onnx'), model);

  const config = {
    ...baseConfig,
    _name_or_path: `semcache/generated-bert-${presetName}`,
    hidden_size: shape.hidden,
    intermediate_size: shape.ffn,
    num_attention_heads: shape.heads,
    num_hidden_layers: shape.layers,
    max_position_embeddings: shape.maxPositions,
    vocab_size: shape.vocab,
    type_vocab_size: shape.typeVocab,
  };
  writeFileSync(join(out, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
  for (const f of TOKENIZER_FILES) {
    const src = join(tokenizerDir, f);
    if (!existsSync(src)) throw new Error(`missing ${f} in ${tokenizerDir}`);
    if (f === 'tokenizer_config.json') {
      // the tokenizer must not produce sequences longer than the position table
      const tc = JSON.parse(readFileSync(src, 'utf8'));
      tc.model_max_length = Math.min(tc.model_max_length ?? shape.maxPositions, shape.maxPositions);
      writeFileSync(join(out, f), `${JSON.stringify(tc, null, 2)}\n`);
    } else {
      // read + write (not copyFile): the source may be read-only, the copy must stay writable
      writeFileSync(join(out, f), readFileSync(src));
    }
  }

  const summary = {
    generator: 'semcache scripts/make-model.mjs',
    generatorVersion: GENERATOR_VERSION,
    preset: presetName,
    ...shape,
    parameters,
    modelBytes: model.length,
    note: 'random weights: the tokenizer and the compute cost are real, the semantics are not',
  };
  writeFileSync(join(out, MANIFEST), `${JSON.stringify(summary, null, 2)}\n`);
  return { out, ...summary };
}

function main() {
  let parsed;
  try {
    parsed = parseArgs({
      options: {
        out: { type: 'string' },
        preset: { type: 'string' },
        layers: { type: 'string' },
        hidden: { type: 'string' },
        heads: { type: 'string' },
        ffn: { type: 'string' },
        'max-positions': { type: 'string' },
        seed: { type: 'string' },
        'tokenizer-dir': { type: 'string' },
        quiet: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    });
  } catch (err) {
    usage(err.message);
  }
  const v = parsed.values;
  if (v.help) usage();
  if (!v.out) usage('--out is required');
  const started = performance.now();
  try {
    const r = makeModel({
      out: v.out,
      preset: v.preset,
      layers: intArg(v, 'layers'),
      hidden: intArg(v, 'hidden'),
      heads: intArg(v, 'heads'),
      ffn: intArg(v, 'ffn'),
      maxPositions: intArg(v, 'max-positions'),
      seed: intArg(v, 'seed'),
      tokenizerDir: v['tokenizer-dir'],
    });
    if (!v.quiet) {
      const mb = (r.modelBytes / 1e6).toFixed(1);
      const ms = Math.round(performance.now() - started);
      console.log(
        `make-model: ${r.out}/onnx/model.onnx ${mb} MB, ${r.parameters} parameters ` +
          `(layers=${r.layers} hidden=${r.hidden} heads=${r.heads} ffn=${r.ffn} seed=${r.seed}) in ${ms} ms`,
      );
    }
  } catch (err) {
    console.error(`make-model: ${err.message}`);
    process.exit(1);
  }
}

if (
  process.argv[1] &&
  realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url))
) {
  main();
}
