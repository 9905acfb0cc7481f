// Builds a BERT encoder (the architecture of sentence-transformers/all-MiniLM-L6-v2
// as exported to ONNX for transformers.js) with seeded random weights.
//
// Inputs input_ids, attention_mask, token_type_ids: int64 [batch_size, sequence_length].
// Output last_hidden_state: float [batch_size, sequence_length, hidden].

import {
  DataType,
  float32Bytes,
  graph,
  int64Bytes,
  model,
  node,
  tensor,
  valueInfo,
} from './onnx-proto.mjs';
import { fillNormal, mulberry32 } from './prng.mjs';

export const GENERATOR_VERSION = 1;
export const OPSET = 17; // LayerNormalization is an ONNX op since opset 17
export const IR_VERSION = 8; // the IR version of opset 17

/** Shapes of the presets; vocab and positions fit the all-MiniLM-L6-v2 tokenizer. */
export const PRESETS = Object.freeze({
  tiny: { layers: 2, hidden: 32, heads: 2, ffn: 64, vocab: 30522, maxPositions: 512, typeVocab: 2 },
  minilm: {
    layers: 6,
    hidden: 384,
    heads: 12,
    ffn: 1536,
    vocab: 30522,
    maxPositions: 512,
    typeVocab: 2,
  },
});

const FLOAT32_MIN = -3.4028234663852886e38;

/**
 * @param {{layers:number, hidden:number, heads:number, ffn:number, vocab:number,
 *   maxPositions:number, typeVocab:number, seed:number, layerNormEps?:number}} shape
 * @returns {{ model: import('./onnx-proto.mjs').Message, parameters: number }}
 */
export function buildBert(shape) {
  const { layers, hidden: H, heads: A, ffn: F, vocab: V, maxPositions: P, typeVocab: T } = shape;
  const eps = shape.layerNormEps ?? 1e-12;
  for (const [k, v] of Object.entries({ layers, H, A, F, V, P, T })) {
    if (!Number.isInteger(v) || v < (k === 'layers' ? 0 : 1)) throw new Error(`invalid ${k}: ${v}`);
  }
  if (H % A !== 0) throw new Error(`hidden (${H}) must be a multiple of heads (${A})`);
  const D = H / A;
  const next = mulberry32(shape.seed);

  const nodes = [];
  const initializers = [];
  let parameters = 0;

  const add = (op, inputs, outputs, name, attrs) => {
    nodes.push(node(op, inputs, outputs, name, attrs));
    return outputs[0];
  };
  const floatTensor = (name, dims, data) => {
    initializers.push(tensor(name, DataType.FLOAT, dims, float32Bytes(data)));
    return name;
  };
  const weight = (name, dims, std = 0.02) => {
    const n = dims.reduce((a, b) => a * b, 1);
    parameters += n;
    return floatTensor(name, dims, fillNormal(next, new Float32Array(n), std));
  };
  const filled = (name, dims, value) => {
    const n = dims.reduce((a, b) => a * b, 1);
    parameters += n;
    return floatTensor(name, dims, new Float32Array(n).fill(value));
  };
  const scalarF = (name, value) => floatTensor(name, [], new Float32Array([value]));
  const ints = (name, dims, values) => {
    initializers.push(tensor(name, DataType.INT64, dims, int64Bytes(values)));
    return name;
  };
  const layerNorm = (prefix, x, out) => {
    const gamma = filled(`${prefix}.weight`, [H], 1);
    const beta = filled(`${prefix}.bias`, [H], 0);
    return add('LayerNormalization', [x, gamma, beta], [out], `/${prefix}/LayerNormalization`, {
      axis: -1,
      epsilon: { float: eps },
    });
  };
  /** x [.., in] @ W [in, out] + b [out] (W stored transposed relative to PyTorch). */
  const dense = (prefix, x, inDim, outDim) => {
    const w = weight(`${prefix}.weight`, [inDim, outDim]);
    const b = filled(`${prefix}.bias`, [outDim], 0);
    const mm = add('MatMul', [x, w], [`/${prefix}/MatMul_output_0`], `/${prefix}/MatMul`);
    return add('Add', [mm, b], [`/${prefix}/Add_output_0`], `/${prefix}/Add`);
  };

  // ---- constants
  const one = scalarF('const.one', 1);
  const half = scalarF('const.half', 0.5);
  const sqrt2 = scalarF('const.sqrt2', Math.SQRT2);
  const negMin = scalarF('const.float_min', FLOAT32_MIN);
  const scale = scalarF('const.attention_scale', 1 / Math.sqrt(D));
  const i0 = ints('const.i64_0', [], [0]);
  const i1 = ints('const.i64_1', [], [1]);
  const maskAxes = ints('const.mask_axes', [2], [1, 2]);
  const headsShape = ints('const.heads_shape', [4], [0, 0, A, D]);
  const mergeShape = ints('const.merge_shape', [3], [0, 0, H]);

  // ---- embeddings
  const wordEmb = weight('embeddings.word_embeddings.weight', [V, H]);
  const posEmb = weight('embeddings.position_embeddings.weight', [P, H]);
  const typeEmb = weight('embeddings.token_type_embeddings.weight', [T, H]);
  const we = add(
    'Gather',
    [wordEmb, 'input_ids'],
    ['/embeddings/word/Gather_output_0'],
    '/embeddings/word/Gather',
    { axis: 0 },
  );
  const shp = add('Shape', ['input_ids'], ['/embeddings/Shape_output_0'], '/embeddings/Shape');
  const seqLen = add('Gather', [shp, i1], ['/embeddings/seq_len'], '/embeddings/Gather_seq_len', {
    axis: 0,
  });
  const posIds = add('Range', [i0, seqLen, i1], ['/embeddings/position_ids'], '/embeddings/Range');
  const pe = add(
    'Gather',
    [posEmb, posIds],
    ['/embeddings/position/Gather_output_0'],
    '/embeddings/position/Gather',
    { axis: 0 },
  );
  const te = add(
    'Gather',
    [typeEmb, 'token_type_ids'],
    ['/embeddings/token_type/Gather_output_0'],
    '/embeddings/token_type/Gather',
    { axis: 0 },
  );
  const e1 = add('Add', [we, te], ['/embeddings/Add_output_0'], '/embeddings/Add');
  const e2 = add('Add', [e1, pe], ['/embeddings/Add_1_output_0'], '/embeddings/Add_1');
  let x = layerNorm('embeddings.LayerNorm', e2, '/embeddings/LayerNorm/output_0');

  // ---- additive attention mask: 0 where attended, float32 min where padded, [B,1,1,S]
  const m4 = add(
    'Unsqueeze',
    ['attention_mask', maskAxes],
    ['/mask/Unsqueeze_output_0'],
    '/mask/Unsqueeze',
  );
  const mf = add('Cast', [m4], ['/mask/Cast_output_0'], '/mask/Cast', { to: DataType.FLOAT });
  const inv = add('Sub', [one, mf], ['/mask/Sub_output_0'], '/mask/Sub');
  const maskAdd = add('Mul', [inv, negMin], ['/mask/Mul_output_0'], '/mask/Mul');

  // ---- encoder layers
  for (let l = 0; l < layers; l++) {
    const p = `encoder.layer.${l}`;
    const q = dense(`${p}.attention.self.query`, x, H, H);
    const k = dense(`${p}.attention.self.key`, x, H, H);
    const v = dense(`${p}.attention.self.value`, x, H, H);
    const heads = (t, name, perm) => {
      const r = add(
        'Reshape',
        [t, headsShape],
        [`/${p}/attention/self/${name}/Reshape_output_0`],
        `/${p}/attention/self/${name}/Reshape`,
      );
      return add(
        'Transpose',
        [r],
        [`/${p}/attention/self/${name}/Transpose_output_0`],
        `/${p}/attention/self/${name}/Transpose`,
        { perm },
      );
    };
    const qh = heads(q, 'query', [0, 2, 1, 3]); // [B,A,S,D]
    const kt = heads(k, 'key', [0, 2, 3, 1]); // [B,A,D,S]
    const vh = heads(v, 'value', [0, 2, 1, 3]); // [B,A,S,D]
    const s = `/${p}/attention/self`;
    const scores = add('MatMul', [qh, kt], [`${s}/MatMul_output_0`], `${s}/MatMul`);
    const scaled = add('Mul', [scores, scale], [`${s}/Mul_output_0`], `${s}/Mul`);
    const masked = add('Add', [scaled, maskAdd], [`${s}/Add_output_0`], `${s}/Add`);
    const probs = add('Softmax', [masked], [`${s}/Softmax_output_0`], `${s}/Softmax`, { axis: -1 });
    const ctx = add('MatMul', [probs, vh], [`${s}/MatMul_1_output_0`], `${s}/MatMul_1`);
    const ctxT = add('Transpose', [ctx], [`${s}/Transpose_output_0`], `${s}/Transpose`, {
      perm: [0, 2, 1, 3],
    });
    const merged = add('Reshape', [ctxT, mergeShape], [`${s}/Reshape_output_0`], `${s}/Reshape`);

    const attnOut = dense(`${p}.attention.output.dense`, merged, H, H);
    const r1 = add(
      'Add',
      [attnOut, x],
      [`/${p}/attention/output/Add_output_0`],
      `/${p}/attention/output/Add`,
    );
    const h1 = layerNorm(
      `${p}.attention.output.LayerNorm`,
      r1,
      `/${p}/attention/output/LayerNorm/output_0`,
    );

    // FFN with exact GELU: 0.5 * f * (1 + erf(f / sqrt(2)))
    const f = dense(`${p}.intermediate.dense`, h1, H, F);
    const g = `/${p}/intermediate/act`;
    const d = add('Div', [f, sqrt2], [`${g}/Div_output_0`], `${g}/Div`);
    const e = add('Erf', [d], [`${g}/Erf_output_0`], `${g}/Erf`);
    const e1p = add('Add', [e, one], [`${g}/Add_output_0`], `${g}/Add`);
    const fm = add('Mul', [f, e1p], [`${g}/Mul_output_0`], `${g}/Mul`);
    const gelu = add('Mul', [fm, half], [`${g}/Mul_1_output_0`], `${g}/Mul_1`);
    const f2 = dense(`${p}.output.dense`, gelu, F, H);
    const r2 = add('Add', [f2, h1], [`/${p}/output/Add_output_0`], `/${p}/output/Add`);
    x = layerNorm(`${p}.output.LayerNorm`, r2, `/${p}/output/LayerNorm/output_0`);
  }
  add('Identity', [x], ['last_hidden_state'], '/Identity');

  const dims = ['batch_size', 'sequence_length'];
  const g = graph({
    name: 'semcache_generated_bert',
    nodes,
    initializers,
    inputs: [
      valueInfo('input_ids', DataType.INT64, dims),
      valueInfo('attention_mask', DataType.INT64, dims),
      valueInfo('token_type_ids', DataType.INT64, dims),
    ],
    outputs: [valueInfo('last_hidden_state', DataType.FLOAT, [...dims, H])],
  });
  const m = model({
    graph: g,
    irVersion: IR_VERSION,
    opset: OPSET,
    producerName: 'semcache scripts/make-model.mjs',
    producerVersion: String(GENERATOR_VERSION),
    docString:
      `BERT encoder with seeded random weights (not a trained model): layers=${layers} hidden=${H} ` +
      `heads=${A} ffn=${F} vocab=${V} positions=${P} seed=${shape.seed}`,
  });
  return { model: m, parameters };
}
