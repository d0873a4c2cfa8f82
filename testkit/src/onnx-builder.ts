/**
 * Test-time builder of tiny ONNX models (a protobuf writer for the few ONNX messages a
 * model needs), so tests can exercise decoders, metadata, unsupported outputs and corrupt
 * models without binary fixtures or Python.
 *
 * Field numbers follow onnx.proto (ModelProto, GraphProto, NodeProto, AttributeProto,
 * ValueInfoProto, TypeProto, TensorShapeProto, TensorProto, OperatorSetIdProto,
 * StringStringEntryProto).
 */

/** ONNX TensorProto.DataType values for the element types the builder writes. */
const DATA_TYPES = { float32: 1, uint8: 2, int8: 3, int32: 6, int64: 7, bool: 9 } as const;
export type ElemType = keyof typeof DATA_TYPES;

export interface ValueSpec {
  name: string;
  /** Concrete sizes, or strings for symbolic dimensions (e.g. 'batch'). */
  dims: ReadonlyArray<number | string>;
  /** Default float32. */
  type?: ElemType;
}

export interface TensorSpec {
  name?: string;
  dims: readonly number[];
  /** float32 values (default type). */
  floats?: ArrayLike<number>;
  /** int64 values (e.g. Reshape shapes, ReduceSum axes). */
  int64s?: ArrayLike<number | bigint>;
  /** int32 values. */
  int32s?: ArrayLike<number>;
}

/**
 * Node attribute: a plain number is an INT, a plain number[] is INTS (the common cases:
 * axes, keepdims); the tagged forms cover the rest.
 */
export type AttributeValue =
  | number
  | number[]
  | { i: number }
  | { f: number }
  | { s: string }
  | { ints: number[] }
  | { floats: number[] }
  | { t: TensorSpec };

export interface NodeSpec {
  op: string;
  inputs: string[];
  outputs: string[];
  name?: string;
  domain?: string;
  attributes?: Record<string, AttributeValue>;
}

export interface ModelSpec {
  inputs: ValueSpec[];
  outputs: ValueSpec[];
  nodes: NodeSpec[];
  initializers?: (TensorSpec & { name: string })[];
  metadata?: Record<string, string>;
  /** Default opset 13 (ReduceSum takes axes as an input, ReduceMean still as an attribute). */
  opset?: number;
  /** Default: the IR version that introduced `opset`. */
  irVersion?: number;
  producerName?: string;
  graphName?: string;
}

// ---- protobuf writer --------------------------------------------------------------------

const WIRE_VARINT = 0;
const WIRE_LEN = 2;
const WIRE_FIXED32 = 5;
const encoder = new TextEncoder();

/** Append-only byte buffer with the protobuf primitives. */
class ProtoWriter {
  private chunks: Uint8Array[] = [];
  private scratch: number[] = [];
  private length = 0;

  private flushScratch(): void {
    if (this.scratch.length === 0) return;
    this.chunks.push(Uint8Array.from(this.scratch));
    this.length += this.scratch.length;
    this.scratch = [];
  }

  private raw(bytes: Uint8Array): void {
    this.flushScratch();
    this.chunks.push(bytes);
    this.length += bytes.length;
  }

  /** Unsigned varint, or a negative int64 in ten-byte two's complement. */
  private varint(value: number | bigint): void {
    let v = BigInt(value);
    if (v < 0n) v += 1n << 64n;
    do {
      let byte = Number(v & 0x7fn);
      v >>= 7n;
      if (v > 0n) byte |= 0x80;
      this.scratch.push(byte);
    } while (v > 0n);
  }

  private tag(field: number, wire: number): void {
    this.varint(field * 8 + wire);
  }

  int(field: number, value: number | bigint): this {
    this.tag(field, WIRE_VARINT);
    this.varint(value);
    return this;
  }

  float(field: number, value: number): this {
    this.tag(field, WIRE_FIXED32);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    this.raw(b);
    return this;
  }

  bytes(field: number, value: Uint8Array): this {
    this.tag(field, WIRE_LEN);
    this.varint(value.length);
    this.raw(value);
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, encoder.encode(value));
  }

  message(field: number, build: (w: ProtoWriter) => void): this {
    const w = new ProtoWriter();
    build(w);
    return this.bytes(field, w.finish());
  }

  finish(): Uint8Array {
    this.flushScratch();
    const out = new Uint8Array(this.length);
    let offset = 0;
    for (const c of this.chunks) {
      out.set(c, offset);
      offset += c.length;
    }
    return out;
  }
}

// ---- ONNX messages ----------------------------------------------------------------------

function tensorBytes(spec: TensorSpec): { dataType: number; raw: Uint8Array } {
  const count = spec.dims.reduce((a, b) => a * b, 1);
  const check = (n: number, what: string) => {
    if (n !== count) throw new Error(`tensor ${spec.name ?? '(unnamed)'}: ${n} ${what} values for dims [${spec.dims.join(', ')}] (${count} needed)`);
  };
  if (spec.int64s) {
    check(spec.int64s.length, 'int64');
    const raw = new Uint8Array(count * 8);
    const view = new DataView(raw.buffer);
    for (let i = 0; i < count; i++) view.setBigInt64(i * 8, BigInt(spec.int64s[i]!), true);
    return { dataType: DATA_TYPES.int64, raw };
  }
  if (spec.int32s) {
    check(spec.int32s.length, 'int32');
    const raw = new Uint8Array(count * 4);
    const view = new DataView(raw.buffer);
    for (let i = 0; i < count; i++) view.setInt32(i * 4, spec.int32s[i]!, true);
    return { dataType: DATA_TYPES.int32, raw };
  }
  const floats = spec.floats ?? [];
  check(floats.length, 'float');
  const raw = new Uint8Array(count * 4);
  const view = new DataView(raw.buffer);
  for (let i = 0; i < count; i++) view.setFloat32(i * 4, floats[i]!, true);
  return { dataType: DATA_TYPES.float32, raw };
}

/** TensorProto: 1 dims, 2 data_type, 8 name, 9 raw_data (little-endian). */
function writeTensor(w: ProtoWriter, spec: TensorSpec): void {
  const { dataType, raw } = tensorBytes(spec);
  for (const d of spec.dims) w.int(1, d);
  w.int(2, dataType);
  if (spec.name) w.string(8, spec.name);
  w.bytes(9, raw);
}

/** ValueInfoProto: 1 name, 2 type { 1 tensor_type { 1 elem_type, 2 shape { 1 dim { 1 value | 2 param } } } }. */
function writeValueInfo(w: ProtoWriter, spec: ValueSpec): void {
  w.string(1, spec.name);
  w.message(2, (type) =>
    type.message(1, (tensor) => {
      tensor.int(1, DATA_TYPES[spec.type ?? 'float32']);
      tensor.message(2, (shape) => {
        for (const d of spec.dims) {
          shape.message(1, (dim) => {
            if (typeof d === 'number') dim.int(1, d);
            else dim.string(2, d);
          });
        }
      });
    }),
  );
}

/** AttributeProto: 1 name, 20 type, 2 f, 3 i, 4 s, 5 t, 7 floats, 8 ints. */
function writeAttribute(w: ProtoWriter, name: string, value: AttributeValue): void {
  w.string(1, name);
  if (typeof value === 'number' || (typeof value === 'object' && 'i' in value)) {
    w.int(20, 2).int(3, typeof value === 'number' ? value : value.i);
  } else if (Array.isArray(value) || 'ints' in value) {
    w.int(20, 7);
    for (const v of Array.isArray(value) ? value : value.ints) w.int(8, v);
  } else if ('f' in value) {
    w.int(20, 1).float(2, value.f);
  } else if ('s' in value) {
    w.int(20, 3).string(4, value.s);
  } else if ('floats' in value) {
    w.int(20, 6);
    for (const v of value.floats) w.float(7, v);
  } else {
    w.int(20, 4).message(5, (t) => writeTensor(t, value.t));
  }
}

/** NodeProto: 1 input, 2 output, 3 name, 4 op_type, 5 attribute, 7 domain. */
function writeNode(w: ProtoWriter, node: NodeSpec, index: number): void {
  for (const i of node.inputs) w.string(1, i);
  for (const o of node.outputs) w.string(2, o);
  w.string(3, node.name ?? `${node.op.toLowerCase()}_${index}`);
  w.string(4, node.op);
  for (const [name, value] of Object.entries(node.attributes ?? {})) w.message(5, (a) => writeAttribute(a, name, value));
  if (node.domain) w.string(7, node.domain);
}

function irVersionFor(opset: number): number {
  if (opset <= 8) return 3;
  if (opset <= 10) return 5;
  if (opset <= 11) return 6;
  if (opset <= 13) return 7;
  if (opset <= 18) return 8;
  if (opset <= 20) return 9;
  return 10;
}

/**
 * Serialises a ModelProto: 1 ir_version, 2 producer_name, 7 graph, 8 opset_import,
 * 14 metadata_props. GraphProto: 1 node, 2 name, 5 initializer, 11 input, 12 output.
 */
export function buildOnnxModel(spec: ModelSpec): Uint8Array {
  const opset = spec.opset ?? 13;
  const w = new ProtoWriter();
  w.int(1, spec.irVersion ?? irVersionFor(opset));
  w.string(2, spec.producerName ?? 'detector-worker-onnx-builder');
  w.message(7, (g) => {
    spec.nodes.forEach((n, i) => g.message(1, (nw) => writeNode(nw, n, i)));
    g.string(2, spec.graphName ?? 'test_graph');
    for (const init of spec.initializers ?? []) g.message(5, (t) => writeTensor(t, init));
    for (const input of spec.inputs) g.message(11, (v) => writeValueInfo(v, input));
    for (const output of spec.outputs) g.message(12, (v) => writeValueInfo(v, output));
  });
  w.message(8, (o) => o.string(1, '').int(2, opset));
  for (const [key, value] of Object.entries(spec.metadata ?? {})) w.message(14, (e) => e.string(1, key).string(2, value));
  return w.finish();
}

// ---- convenience models -----------------------------------------------------------------

export interface ConstantOutputSpec {
  inputName?: string;
  inputDims?: ReadonlyArray<number | string>;
  outputName?: string;
  outputDims: readonly number[];
  values: ArrayLike<number>;
  metadata?: Record<string, string>;
}

/**
 * A model whose output is always `values` (shape `outputDims`) whatever the input, e.g. a
 * fake detector tensor [1,84,N]. The input still flows into the graph (output = values +
 * 0 × sum(input)) so runtimes keep it as a real input; feed finite numbers.
 */
export function buildConstantOutputModel(spec: ConstantOutputSpec): Uint8Array {
  const inputName = spec.inputName ?? 'images';
  const outputName = spec.outputName ?? 'output0';
  return buildOnnxModel({
    inputs: [{ name: inputName, dims: spec.inputDims ?? [1, 3, 32, 32] }],
    outputs: [{ name: outputName, dims: spec.outputDims }],
    initializers: [
      { name: 'constant_values', dims: spec.outputDims, floats: spec.values },
      { name: 'zero', dims: [], floats: [0] },
    ],
    nodes: [
      // No axes input + keepdims=0: reduce everything to a scalar, which broadcasts to any shape.
      { op: 'ReduceSum', inputs: [inputName], outputs: ['input_sum'], attributes: { keepdims: 0 } },
      { op: 'Mul', inputs: ['input_sum', 'zero'], outputs: ['input_zero'] },
      { op: 'Add', inputs: ['constant_values', 'input_zero'], outputs: [outputName] },
    ],
    ...(spec.metadata ? { metadata: spec.metadata } : {}),
  });
}

/**
 * A YOLOv8-style detector ([1, 6, anchors]: cx, cy, w, h, score class 0, score class 1) that
 * always finds one 20×20 box of class 0 at (32, 32) with confidence 0.9, whatever the image.
 */
export function buildOneBoxDetector(options: { inputSize?: number; anchors?: number; names?: readonly [string, string] } = {}): Uint8Array {
  const n = options.anchors ?? 2;
  const size = options.inputSize ?? 64;
  const values = new Float32Array(6 * n);
  values.set([32], 0);
  values.set([32], n);
  values.set([20], 2 * n);
  values.set([20], 3 * n);
  values.set([0.9], 4 * n);
  const [a, b] = options.names ?? ['car', 'other'];
  return buildConstantOutputModel({ inputDims: [1, 3, size, size], outputDims: [1, 6, n], values, metadata: { task: 'detect', names: `{0: '${a}', 1: '${b}'}` } });
}

/** An output shape no decoder understands ([1,7,7,7]), for MODEL_OUTPUT_UNSUPPORTED tests. */
export function buildWeirdOutputModel(options: { inputDims?: number[]; metadata?: Record<string, string> } = {}): Uint8Array {
  const outputDims = [1, 7, 7, 7];
  return buildConstantOutputModel({
    inputDims: options.inputDims ?? [1, 3, 32, 32],
    outputDims,
    values: new Float32Array(7 * 7 * 7),
    ...(options.metadata ? { metadata: options.metadata } : {}),
  });
}

export interface MeanClassifierSpec {
  inputName?: string;
  outputName?: string;
  /** Square input size (default 32). */
  size?: number;
  /**
   * [3][classes] weights: logit_k = sum_c mean(channel c) × weights[c][k]. Default: 3 classes,
   * class k = channel k, so a pure red / green / blue image picks class 0 / 1 / 2.
   */
  weights?: number[][];
  /** End the graph with Softmax (probabilities, like Ultralytics classifiers) or leave logits. */
  softmax?: boolean;
  metadata?: Record<string, string>;
}

/** A real classifier graph: per-channel mean -> MatMul -> (Softmax): Input[1,3,S,S] -> [1,classes]. */
export function buildMeanClassifierModel(spec: MeanClassifierSpec = {}): Uint8Array {
  const inputName = spec.inputName ?? 'images';
  const outputName = spec.outputName ?? 'output0';
  const size = spec.size ?? 32;
  const weights = spec.weights ?? [
    [1, 0, 0],
    [0, 1, 0],
    [0, 0, 1],
  ];
  const classes = weights[0]?.length ?? 0;
  if (weights.length !== 3 || classes === 0 || weights.some((row) => row.length !== classes)) {
    throw new Error('weights must be 3 rows (R,G,B) of the same non-zero length');
  }
  const logits = spec.softmax ? 'logits' : outputName;
  const nodes: NodeSpec[] = [
    { op: 'ReduceMean', inputs: [inputName], outputs: ['channel_means'], attributes: { axes: [2, 3], keepdims: 0 } },
    { op: 'MatMul', inputs: ['channel_means', 'weights'], outputs: [logits] },
  ];
  if (spec.softmax) nodes.push({ op: 'Softmax', inputs: [logits], outputs: [outputName], attributes: { axis: -1 } });
  return buildOnnxModel({
    inputs: [{ name: inputName, dims: [1, 3, size, size] }],
    outputs: [{ name: outputName, dims: [1, classes] }],
    initializers: [{ name: 'weights', dims: [3, classes], floats: weights.flat() }],
    nodes,
    ...(spec.metadata ? { metadata: spec.metadata } : {}),
  });
}
