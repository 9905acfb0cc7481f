// A minimal protobuf encoder for the part of onnx.proto a generated model needs
// (ModelProto, GraphProto, NodeProto, AttributeProto, TensorProto,
// ValueInfoProto, TypeProto, TensorShapeProto, OperatorSetIdProto).
//
// Field numbers are those of onnx/onnx.proto (stable since IR version 3).
// Messages are built as lists of Buffer chunks with a known total length, so a
// 90 MB model is written without copying its weights into one big buffer.

import { endianness } from 'node:os';

const WIRE_VARINT = 0;
const WIRE_FIXED32 = 5;
const WIRE_LEN = 2;

/** TensorProto.DataType values. */
export const DataType = Object.freeze({ FLOAT: 1, INT32: 6, INT64: 7 });

/** AttributeProto.AttributeType values. */
const AttrType = Object.freeze({ FLOAT: 1, INT: 2, STRING: 3, INTS: 7 });

/** Encodes a non-negative or negative integer (int64 two's complement) as a varint. */
export function varint(value) {
  let v = BigInt.asUintN(64, BigInt(value));
  const bytes = [];
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v !== 0n) byte |= 0x80;
    bytes.push(byte);
  } while (v !== 0n);
  return Buffer.from(bytes);
}

/** A protobuf message under construction: chunks in order and their total length. */
export class Message {
  constructor() {
    /** @type {Buffer[]} */
    this.chunks = [];
    this.length = 0;
  }

  #push(buf) {
    this.chunks.push(buf);
    this.length += buf.length;
    return this;
  }

  #tag(field, wire) {
    return this.#push(varint((field << 3) | wire));
  }

  int(field, value) {
    return this.#tag(field, WIRE_VARINT).#push(varint(value));
  }

  float(field, value) {
    const b = Buffer.alloc(4);
    b.writeFloatLE(value, 0);
    return this.#tag(field, WIRE_FIXED32).#push(b);
  }

  bytes(field, buf) {
    return this.#tag(field, WIRE_LEN).#push(varint(buf.length)).#push(buf);
  }

  string(field, text) {
    return this.bytes(field, Buffer.from(text, 'utf8'));
  }

  /** Embeds `msg` as a length-delimited field without copying its chunks. */
  message(field, msg) {
    this.#tag(field, WIRE_LEN).#push(varint(msg.length));
    for (const c of msg.chunks) this.#push(c);
    return this;
  }

  /** Packed repeated int64. */
  packedInts(field, values) {
    return this.bytes(field, Buffer.concat(values.map((v) => varint(v))));
  }
}

// ---------------------------------------------------------------- messages

/** Little-endian bytes of a Float32Array (copied and swapped on big-endian hosts). */
export function float32Bytes(data) {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return endianness() === 'LE' ? buf : Buffer.from(buf).swap32();
}

/** Little-endian bytes of int64 values. */
export function int64Bytes(values) {
  const buf = Buffer.alloc(values.length * 8);
  values.forEach((v, i) => {
    buf.writeBigInt64LE(BigInt(v), i * 8);
  });
  return buf;
}

/** TensorProto with raw_data (field 9). */
export function tensor(name, dataType, dims, rawData) {
  const m = new Message();
  for (const d of dims) m.int(1, d); // dims (unpacked is valid for a repeated int64)
  m.int(2, dataType); // data_type
  m.string(8, name); // name
  m.bytes(9, rawData); // raw_data
  return m;
}

/** AttributeProto. `value` is a number (int unless kind 'float'), a string, or a number[] (ints). */
export function attribute(name, value, kind) {
  const m = new Message().string(1, name);
  if (kind === 'float') {
    m.int(20, AttrType.FLOAT).float(2, value);
  } else if (typeof value === 'number') {
    m.int(20, AttrType.INT).int(3, value);
  } else if (typeof value === 'string') {
    m.int(20, AttrType.STRING).string(4, value);
  } else if (Array.isArray(value)) {
    m.int(20, AttrType.INTS);
    for (const v of value) m.int(8, v); // ints
  } else {
    throw new Error(`unsupported attribute ${name}`);
  }
  return m;
}

/**
 * NodeProto. `attrs` maps names to numbers, strings, number[], or
 * `{ float: x }` for a float attribute.
 */
export function node(opType, inputs, outputs, name, attrs = {}) {
  const m = new Message();
  for (const i of inputs) m.string(1, i);
  for (const o of outputs) m.string(2, o);
  m.string(3, name);
  m.string(4, opType);
  for (const [k, v] of Object.entries(attrs)) {
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
      m.message(5, attribute(k, v.float, 'float'));
    } else {
      m.message(5, attribute(k, v));
    }
  }
  return m;
}

/** ValueInfoProto of a tensor; dims are numbers or symbolic names. */
export function valueInfo(name, elemType, dims) {
  const shape = new Message();
  for (const d of dims) {
    const dim = new Message();
    if (typeof d === 'number') dim.int(1, d);
    else dim.string(2, d);
    shape.message(1, dim);
  }
  const tensorType = new Message().int(1, elemType).message(2, shape);
  const type = new Message().message(1, tensorType);
  return new Message().string(1, name).message(2, type);
}

/** GraphProto. */
export function graph({ name, nodes, initializers, inputs, outputs }) {
  const m = new Message();
  for (const n of nodes) m.message(1, n);
  m.string(2, name);
  for (const t of initializers) m.message(5, t);
  for (const i of inputs) m.message(11, i);
  for (const o of outputs) m.message(12, o);
  return m;
}

/** ModelProto. */
export function model({ graph: g, irVersion, opset, producerName, producerVersion, docString }) {
  const m = new Message();
  m.int(1, irVersion);
  m.string(2, producerName);
  m.string(3, producerVersion);
  if (docString) m.string(6, docString);
  m.message(7, g);
  m.message(8, new Message().string(1, '').int(2, opset));
  return m;
}
