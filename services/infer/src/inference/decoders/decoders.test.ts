import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { CodedError } from '@detector-worker/shared/errors';
import { fixture } from '@detector-worker/shared/testing/fixtures';
import { buildConstantOutputModel, buildMeanClassifierModel, buildWeirdOutputModel } from '@detector-worker/shared/testing/onnx-builder';
import { parseUltralyticsNames } from '../class-names.js';
import { decodeClassification, decodeDetections, detectOutputFormat, isProbabilityDistribution, softmax } from './index.js';
import { computeLetterbox, hwcToChw, toSourceBox, toSourcePoint } from '../letterbox.js';
import { readOnnxMetadata } from '../onnx-metadata.js';
import type { Box, OnnxMetadata } from '../types.js';

const unsupported = (e: unknown) => e instanceof CodedError && e.code === 'MODEL_OUTPUT_UNSUPPORTED' && e.statusCode === 422;
const opts = { confThreshold: 0.25, iouThreshold: 0.45 };

function near(actual: readonly number[], expected: readonly number[], tol: number, what = ''): void {
  assert.equal(actual.length, expected.length, what);
  actual.forEach((v, i) => assert.ok(Math.abs(v - expected[i]!) <= tol, `${what} index ${i}: ${v} vs ${expected[i]} (±${tol}) in [${actual.map((x) => x.toFixed(1)).join(', ')}]`));
}

/** A [1, 4+nc, N] YOLOv8 tensor from per-anchor [cx, cy, w, h, ...scores]. */
function yolov8Tensor(anchors: number[][], nc: number): { data: Float32Array; dims: number[] } {
  const n = anchors.length;
  const data = new Float32Array((4 + nc) * n);
  anchors.forEach((a, i) => a.forEach((v, row) => (data[row * n + i] = v)));
  return { data, dims: [1, 4 + nc, n] };
}

function rows(values: number[][]): { data: Float32Array; dims: number[] } {
  return { data: Float32Array.from(values.flat()), dims: [1, values.length, values[0]!.length] };
}

// ---- YOLOv8 -------------------------------------------------------------------------------

test('yolov8: xywh -> xyxy, threshold, per-class NMS, sorted by confidence', () => {
  const { data, dims } = yolov8Tensor(
    [
      [50, 50, 20, 10, 0.9, 0.1, 0.0], // class 0, kept
      [51, 50, 20, 10, 0.8, 0.0, 0.0], // class 0, overlaps the first: suppressed
      [51, 50, 20, 10, 0.1, 0.7, 0.0], // class 1 on the same spot: kept (per-class)
      [200, 200, 10, 10, 0.0, 0.0, 0.3], // class 2, kept
      [300, 300, 10, 10, 0.2, 0.1, 0.24], // below threshold
      [400, 400, 0, 10, 0.0, 0.0, 0.99], // zero width: dropped
    ],
    3,
  );
  const dets = decodeDetections('yolov8', data, dims, opts);
  assert.deepEqual(dets.map((d) => d.classIndex), [0, 1, 2]);
  near(dets.map((d) => d.confidence), [0.9, 0.7, 0.3], 1e-6);
  assert.deepEqual(dets[0]!.box, [40, 45, 60, 55]);
  assert.equal(dets[0]!.keypoints, undefined);
});

test('yolov8: the class filter applies to each anchor best class, before NMS', () => {
  const { data, dims } = yolov8Tensor(
    [
      [50, 50, 20, 10, 0.9, 0.0, 0.0], // class 0 best: removed by the filter
      [51, 50, 20, 10, 0.0, 0.5, 0.0], // class 1, overlapping: survives since class 0 was filtered first
      [80, 80, 10, 10, 0.6, 0.55, 0.0], // best class 0 (0.6): dropped, no fallback to class 1
    ],
    3,
  );
  const dets = decodeDetections('yolov8', data, dims, { ...opts, classFilter: new Set([1]) });
  assert.deepEqual(dets.map((d) => [d.classIndex, Number(d.confidence.toFixed(2))]), [[1, 0.5]]);
  assert.deepEqual(decodeDetections('yolov8', data, dims, { ...opts, classFilter: new Set([]) }), []);
});

test('yolov8: maxDetections and NaN scores', () => {
  const anchors = Array.from({ length: 50 }, (_, i) => [i * 30 + 10, 10, 10, 10, 0.3 + i / 100]);
  anchors.push([5, 5, 5, 5, Number.NaN]);
  const { data, dims } = yolov8Tensor(anchors, 1);
  const dets = decodeDetections('yolov8', data, dims, { ...opts, maxDetections: 5 });
  assert.equal(dets.length, 5);
  near([dets[0]!.confidence], [0.79], 1e-6);
  assert.equal(decodeDetections('yolov8', data, dims, opts).length, 50);
});

test('decoders refuse tensors smaller than their shape', () => {
  assert.throws(() => decodeDetections('yolov8', new Float32Array(10), [1, 84, 8400], opts), unsupported);
  assert.throws(() => decodeDetections('yolov5', new Float32Array(10), [1, 100, 10], opts), unsupported);
  assert.throws(() => decodeDetections('yolov5', new Float32Array(10), [10], opts), unsupported);
  assert.throws(() => decodeDetections('classify', new Float32Array(10), [1, 10], opts), unsupported);
});

// ---- YOLOv5 -------------------------------------------------------------------------------

test('yolov5: score = obj × class, threshold on the product', () => {
  const { data, dims } = rows([
    [100, 100, 40, 20, 0.9, 0.1, 0.8], // 0.72 class 1
    [102, 100, 40, 20, 0.8, 0.1, 0.7], // 0.56 class 1, overlapping: suppressed
    [300, 300, 10, 10, 0.5, 0.4, 0.3], // 0.2: below
    [300, 300, 10, 10, 0.2, 1.0, 1.0], // obj below threshold
    [500, 100, 10, 20, 0.6, 0.9, 0.1], // 0.54 class 0
  ]);
  const dets = decodeDetections('yolov5', data, dims, opts);
  assert.deepEqual(dets.map((d) => d.classIndex), [1, 0]);
  near(dets.map((d) => d.confidence), [0.72, 0.54], 1e-6);
  assert.deepEqual(dets[0]!.box, [80, 90, 120, 110]);
  // Same rows when numClasses matches the columns: no landmarks.
  assert.equal(decodeDetections('yolov5', data, dims, { ...opts, numClasses: 2 })[0]!.keypoints, undefined);
  assert.deepEqual(decodeDetections('yolov5', data, dims, { ...opts, classFilter: new Set([0]) }).map((d) => d.classIndex), [0]);
});

test('yolov5 landmark variant: 8 corner values between obj and 2 classes', () => {
  // HyperLPR layout: cx,cy,w,h,obj, x1,y1..x4,y4, p_single, p_double.
  const plate = [160, 200, 60, 20, 0.9, 130, 190, 190, 190, 190, 210, 130, 210, 0.2, 0.8];
  const weak = [50, 50, 60, 20, 0.1, 20, 40, 80, 40, 80, 60, 20, 60, 0.9, 0.1];
  const { data, dims } = rows([plate, weak]);
  const dets = decodeDetections('yolov5', data, dims, { ...opts, numClasses: 2 });
  assert.equal(dets.length, 1);
  assert.equal(dets[0]!.classIndex, 1);
  near([dets[0]!.confidence], [0.72], 1e-6);
  assert.deepEqual(dets[0]!.box, [130, 190, 190, 210]);
  assert.deepEqual(dets[0]!.keypoints, [
    [130, 190],
    [190, 190],
    [190, 210],
    [130, 210],
  ]);
  // A plain decode would read the corners as class scores; a class count that leaves an odd
  // number of middle columns is refused rather than guessed.
  assert.throws(() => decodeDetections('yolov5', data, dims, { ...opts, numClasses: 3 }), unsupported);
  assert.throws(() => decodeDetections('yolov5', data, dims, { ...opts, numClasses: 11 }), unsupported);
});

// ---- end2end --------------------------------------------------------------------------------

test('end2end: rows as they are above the threshold, class filter applies', () => {
  const { data, dims } = rows([
    [10, 10, 50, 50, 0.3, 2],
    [12, 12, 52, 52, 0.9, 2], // overlapping, but NMS already ran inside the model
    [0, 0, 5, 5, 0.1, 0],
    [0, 0, 5, 5, 0.8, 7],
    [0, 0, 0, 0, 0.0, 0], // padding rows
  ]);
  const dets = decodeDetections('end2end', data, dims, opts);
  assert.deepEqual(dets.map((d) => [d.classIndex, Number(d.confidence.toFixed(2))]), [[2, 0.9], [7, 0.8], [2, 0.3]]);
  assert.deepEqual(dets[0]!.box, [12, 12, 52, 52]);
  assert.deepEqual(decodeDetections('end2end', data, dims, { ...opts, classFilter: new Set([7]) }).map((d) => d.classIndex), [7]);
});

// ---- classification ------------------------------------------------------------------------

test('softmax is stable and sums to one', () => {
  const p = softmax([1000, 1001, 1002]);
  near(Array.from(p), [0.09003057, 0.24472847, 0.66524096], 1e-6);
  const out = new Float32Array(3);
  assert.equal(softmax(new Float32Array([0, 0, 0]), out), out);
  near(Array.from(out), [1 / 3, 1 / 3, 1 / 3], 1e-6);
});

test('classification: logits get softmax in auto mode, probabilities do not', () => {
  const logits = new Float32Array([1, 3, -2]);
  const a = decodeClassification(logits, 'auto');
  assert.equal(a.classIndex, 1);
  near([a.confidence], [Math.exp(3) / (Math.exp(1) + Math.exp(3) + Math.exp(-2))], 1e-6);
  near([Array.from(a.probabilities).reduce((x, y) => x + y, 0)], [1], 1e-6);

  const probs = new Float32Array([0.1, 0.2, 0.7]);
  const b = decodeClassification(probs, 'auto');
  assert.equal(b.classIndex, 2);
  near([b.confidence], [0.7], 1e-6);
  assert.equal(b.probabilities, probs);

  // Forced either way.
  near([decodeClassification(probs, true).confidence], [Math.exp(0.7) / (Math.exp(0.1) + Math.exp(0.2) + Math.exp(0.7))], 1e-6);
  near([decodeClassification(logits, false).confidence], [3], 1e-6);
  // Values in [0,1] that do not sum to 1 are not a distribution.
  assert.equal(isProbabilityDistribution([0.9, 0.9]), false);
  assert.equal(isProbabilityDistribution([0.5, 0.5]), true);

  assert.throws(() => decodeClassification(new Float32Array(0), 'auto'), unsupported);
  assert.throws(() => decodeClassification(new Float32Array([Number.NaN, Number.NaN]), false), unsupported);
});

// ---- format detection ------------------------------------------------------------------------

const coco = `{${Array.from({ length: 80 }, (_, i) => `${i}: 'c${i}'`).join(', ')}}`;

test('format detection from shapes and metadata', () => {
  const detect: OnnxMetadata = { task: 'detect', names: coco };
  assert.equal(detectOutputFormat([1, 84, 8400], detect), 'yolov8');
  assert.equal(detectOutputFormat([1, 84, 2100], {}), 'yolov8');
  assert.equal(detectOutputFormat([1, 25200, 85], {}), 'yolov5');
  assert.equal(detectOutputFormat([1, 25200, 85], {}, { numClasses: 80 }), 'yolov5');
  assert.equal(detectOutputFormat([1, 6300, 15], {}, { numClasses: 2 }), 'yolov5');
  assert.equal(detectOutputFormat([1, 300, 6], {}), 'end2end');
  assert.equal(detectOutputFormat([1, 300, 6], { task: 'detect', names: coco, end2end: 'True' }), 'end2end');
  assert.equal(detectOutputFormat([1, 'num_dets', 6], {}), 'end2end');
  // One class: [N, 6] reads as YOLOv5 unless the metadata says NMS is inside.
  assert.equal(detectOutputFormat([1, 300, 6], {}, { numClasses: 1 }), 'yolov5');
  assert.equal(detectOutputFormat([1, 300, 6], { args: "{'batch': 1, 'nms': True}" }, { numClasses: 1 }), 'end2end');
  assert.equal(detectOutputFormat([1, 8], { task: 'classify' }), 'classify');
  assert.equal(detectOutputFormat(['batch_size', 1000], {}), 'classify');
  assert.equal(detectOutputFormat([1, 1000, 1, 1], {}), 'classify');
  assert.equal(detectOutputFormat([1, 3], {}, { task: 'classify' }), 'classify');
  // Overrides are honoured when the shape allows them.
  assert.equal(detectOutputFormat([1, 84, 8400], {}, { override: 'yolov8' }), 'yolov8');
  assert.equal(detectOutputFormat([1, 25200, 6], {}, { override: 'yolov5', numClasses: 1 }), 'yolov5');
});

test('format detection refuses what no decoder fits, naming the shape', () => {
  const cases: Array<[readonly (number | string)[], OnnxMetadata, Parameters<typeof detectOutputFormat>[2]]> = [
    [[1, 7, 7, 7], {}, {}],
    [[1, 7, 7, 7], { task: 'detect' }, {}],
    [[1, 84, 8400], { task: 'classify' }, {}],
    [[1, 84, 8400], { task: 'detect' }, { numClasses: 3 }],
    [[1, 1000], { task: 'detect' }, {}],
    [[1, 56, 8400], { task: 'pose', names: "{0: 'person'}" }, {}],
    [[1, 84, 8400], {}, { override: 'classify' }],
    [[1, 84, 8400], {}, { override: 'yolov8', numClasses: 2 }],
    [[1, 6300, 15], {}, { override: 'yolov5', numClasses: 3 }],
    [[], {}, {}],
  ];
  for (const [dims, meta, o] of cases) {
    assert.throws(() => detectOutputFormat(dims, meta, o), unsupported, `${JSON.stringify(dims)} ${JSON.stringify(meta)} ${JSON.stringify(o)}`);
  }
  assert.throws(() => detectOutputFormat([1, 7, 7, 7], {}), /\[1, 7, 7, 7\]/);
  assert.throws(() => detectOutputFormat([1, 56, 8400], { task: 'pose' }), /task "pose"/);
});

const FIXTURE_MODELS: Array<{ file: string; numClasses?: number; expected: string }> = [
  { file: 'yolov8n_fp32.onnx', expected: 'yolov8' },
  { file: 'yolov8n_int8.onnx', expected: 'yolov8' },
  { file: 'yolo11n_int8_320.onnx', expected: 'yolov8' },
  { file: 'mobilenetv2-12-int8.onnx', numClasses: 1000, expected: 'classify' },
  { file: 'plate_det_y5fu_320.onnx', numClasses: 2, expected: 'yolov5' },
  { file: 'plate_color_cls_96.onnx', numClasses: 3, expected: 'classify' },
  { file: 'car_color_cls.onnx', expected: 'classify' },
];

test('format detection on every fixture model (shape from onnxruntime, metadata from the file)', async (t) => {
  for (const m of FIXTURE_MODELS) {
    const path = fixture(t, `models/${m.file}`);
    if (!path) return;
    const bytes = await readFile(path);
    const meta = readOnnxMetadata(bytes);
    const session = await ort.InferenceSession.create(bytes, { logSeverityLevel: 3, intraOpNumThreads: 1 });
    try {
      const out = session.outputMetadata[0];
      assert.ok(out?.isTensor, m.file);
      const format = detectOutputFormat(out.shape, meta, m.numClasses !== undefined ? { numClasses: m.numClasses } : {});
      assert.equal(format, m.expected, `${m.file} ${JSON.stringify(out.shape)}`);
    } finally {
      await session.release();
    }
  }
});

// ---- built models through onnxruntime --------------------------------------------------------

test('a built constant "detector" runs in onnxruntime and decodes with names from its metadata', async () => {
  const n = 32;
  const nc = 3;
  const values = new Float32Array((4 + nc) * n);
  const put = (a: number, cx: number, cy: number, w: number, h: number, cls: number, score: number) => {
    [cx, cy, w, h].forEach((v, r) => (values[r * n + a] = v));
    values[(4 + cls) * n + a] = score;
  };
  put(0, 16, 16, 8, 8, 2, 0.9);
  put(1, 17, 16, 8, 8, 2, 0.6);
  put(5, 8, 8, 4, 4, 0, 0.5);
  const model = buildConstantOutputModel({ inputDims: [1, 3, 32, 32], outputDims: [1, 4 + nc, n], values, metadata: { task: 'detect', names: "{0: 'person', 1: 'bicycle', 2: 'car'}", imgsz: '[32, 32]' } });
  const meta = readOnnxMetadata(model);
  const names = parseUltralyticsNames(meta.names!);
  const session = await ort.InferenceSession.create(model, { logSeverityLevel: 3, intraOpNumThreads: 1 });
  try {
    const shape = session.outputMetadata[0]!.isTensor ? session.outputMetadata[0]!.shape : [];
    const format = detectOutputFormat(shape, meta);
    assert.equal(format, 'yolov8');
    const out = (await session.run({ images: new ort.Tensor('float32', new Float32Array(3 * 32 * 32), [1, 3, 32, 32]) })).output0!;
    const dets = decodeDetections(format, out.data as Float32Array, out.dims, { ...opts, numClasses: names.length });
    assert.deepEqual(dets.map((d) => names[d.classIndex]), ['car', 'person']);
    assert.deepEqual(dets[0]!.box, [12, 12, 20, 20]);
  } finally {
    await session.release();
  }
});

test('a built weird-output model is refused with MODEL_OUTPUT_UNSUPPORTED', async () => {
  const model = buildWeirdOutputModel({ metadata: { task: 'detect' } });
  const session = await ort.InferenceSession.create(model, { logSeverityLevel: 3 });
  try {
    const out = session.outputMetadata[0]!;
    assert.ok(out.isTensor);
    assert.throws(() => detectOutputFormat(out.shape, readOnnxMetadata(model)), unsupported);
  } finally {
    await session.release();
  }
});

test('a built logits classifier decodes with auto softmax', async () => {
  const model = buildMeanClassifierModel({ size: 4, weights: [[4, 0, 0], [0, 4, 0], [0, 0, 4]] });
  const session = await ort.InferenceSession.create(model, { logSeverityLevel: 3 });
  try {
    const pixels = new Uint8Array(4 * 4 * 3);
    for (let i = 0; i < 16; i++) pixels[i * 3 + 2] = 255; // pure blue
    const input = hwcToChw(pixels, 4, 4, { channelOrder: 'rgb' });
    const out = (await session.run({ images: new ort.Tensor('float32', input, [1, 3, 4, 4]) })).output0!;
    assert.equal(detectOutputFormat(out.dims, {}), 'classify');
    const c = decodeClassification(out.data as Float32Array, 'auto');
    assert.equal(c.classIndex, 2);
    near([c.confidence], [Math.exp(4) / (Math.exp(4) + 2)], 1e-5);
  } finally {
    await session.release();
  }
});

// ---- real models on real photos ----------------------------------------------------------------

async function letterboxed(path: string, size: number, pad: number) {
  const meta = await sharp(path).metadata();
  const { data, info } = await sharp(path)
    .resize(size, size, { fit: 'contain', background: { r: pad, g: pad, b: pad } })
    .removeAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  assert.equal(info.channels, 3);
  return { data, letterbox: computeLetterbox(meta.width!, meta.height!, size, size) };
}

test('yolov8n_fp32 on bus.jpg: bus and at least 3 persons where PROVENANCE says', async (t) => {
  const modelPath = fixture(t, 'models/yolov8n_fp32.onnx');
  const imagePath = fixture(t, 'images/bus.jpg');
  if (!modelPath || !imagePath) return;
  const bytes = await readFile(modelPath);
  const meta = readOnnxMetadata(bytes);
  const names = parseUltralyticsNames(meta.names!);
  const { data, letterbox } = await letterboxed(imagePath, 640, 114);
  // Grey padding columns where computeLetterbox says they are (80 px left, bus is portrait).
  assert.equal(letterbox.padX, 80);
  assert.deepEqual([data[0], data[1], data[2]], [114, 114, 114]);
  const session = await ort.InferenceSession.create(bytes, { logSeverityLevel: 3 });
  try {
    const shape = session.outputMetadata[0]!.isTensor ? session.outputMetadata[0]!.shape : [];
    const format = detectOutputFormat(shape, meta);
    const input = hwcToChw(data, 640, 640, { channelOrder: 'rgb' });
    const out = (await session.run({ images: new ort.Tensor('float32', input, [1, 3, 640, 640]) })).output0!;
    const dets = decodeDetections(format, out.data as Float32Array, out.dims, { confThreshold: 0.25, iouThreshold: 0.45, numClasses: names.length });
    const mapped = dets.map((d) => ({ name: names[d.classIndex]!, confidence: d.confidence, box: toSourceBox(d.box, letterbox) }));
    const bus = mapped.find((d) => d.name === 'bus');
    assert.ok(bus, `no bus in ${JSON.stringify(mapped.map((d) => d.name))}`);
    assert.ok(bus.confidence > 0.7);
    near(bus.box, [36, 230, 798, 778], 15, 'bus box');
    const persons = mapped.filter((d) => d.name === 'person' && d.confidence >= 0.5);
    assert.ok(persons.length >= 3, `persons: ${persons.length}`);
    for (const p of mapped) for (const v of p.box) assert.ok(v >= 0 && v <= 1080);

    // Class filter: persons only.
    const onlyPersons = decodeDetections(format, out.data as Float32Array, out.dims, { ...opts, classFilter: new Set([names.indexOf('person')]) });
    assert.ok(onlyPersons.length >= 3 && onlyPersons.every((d) => names[d.classIndex] === 'person'));
  } finally {
    await session.release();
  }
});

test('yolov8n_fp32 on traffic_road: per-class NMS keeps the white van as truck and as car', async (t) => {
  const modelPath = fixture(t, 'models/yolov8n_fp32.onnx');
  const imagePath = fixture(t, 'images/traffic_road_1024x576.jpg');
  if (!modelPath || !imagePath) return;
  const bytes = await readFile(modelPath);
  const names = parseUltralyticsNames(readOnnxMetadata(bytes).names!);
  const { data, letterbox } = await letterboxed(imagePath, 640, 114);
  const session = await ort.InferenceSession.create(bytes, { logSeverityLevel: 3 });
  try {
    const input = hwcToChw(data, 640, 640, { channelOrder: 'rgb' });
    const out = (await session.run({ images: new ort.Tensor('float32', input, [1, 3, 640, 640]) })).output0!;
    const dets = decodeDetections('yolov8', out.data as Float32Array, out.dims, opts).map((d) => ({ name: names[d.classIndex]!, box: toSourceBox(d.box, letterbox) }));
    const count = (name: string) => dets.filter((d) => d.name === name).length;
    assert.ok(count('car') >= 13 && count('car') <= 17, `cars: ${count('car')}`);
    assert.equal(count('bus'), 1);
    const van: Box = [511, 368, 640, 526];
    const at = (name: string) => dets.some((d) => d.name === name && d.box.every((v, i) => Math.abs(v - van[i]!) <= 15));
    assert.ok(at('truck') && at('car'), 'the van is both a truck and a car');
  } finally {
    await session.release();
  }
});

test('plate detector on parking_plate_1080p.jpg: plate box and four corners', async (t) => {
  const modelPath = fixture(t, 'models/plate_det_y5fu_320.onnx');
  const imagePath = fixture(t, 'images/parking_plate_1080p.jpg');
  if (!modelPath || !imagePath) return;
  const bytes = await readFile(modelPath);
  const { data, letterbox } = await letterboxed(imagePath, 320, 0);
  const session = await ort.InferenceSession.create(bytes, { logSeverityLevel: 3 });
  try {
    const shape = session.outputMetadata[0]!.isTensor ? session.outputMetadata[0]!.shape : [];
    const format = detectOutputFormat(shape, readOnnxMetadata(bytes), { numClasses: 2 });
    assert.equal(format, 'yolov5');
    const input = hwcToChw(data, 320, 320, { channelOrder: 'rgb' });
    const out = (await session.run({ input: new ort.Tensor('float32', input, [1, 3, 320, 320]) })).output!;
    const dets = decodeDetections(format, out.data as Float32Array, out.dims, { confThreshold: 0.25, iouThreshold: 0.5, numClasses: 2 });
    assert.ok(dets.length >= 1);
    const best = dets[0]!;
    assert.equal(best.classIndex, 0, 'single-line plate');
    assert.ok(best.confidence > 0.6);
    const box: Box = toSourceBox(best.box, letterbox);
    near(box, [1748, 743, 1876, 855], 15, 'plate box');
    const corners = best.keypoints!.map((p) => toSourcePoint(p, letterbox));
    near(corners.flat(), [1754, 789, 1876, 740, 1873, 808, 1752, 858], 15, 'plate corners');
  } finally {
    await session.release();
  }
});

test('YOLOv8 with a small class filter: the fast path gives exactly what the full argmax scan gives', () => {
  const nc = 80;
  const anchors = 500;
  let seed = 7;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  const data = new Float32Array((4 + nc) * anchors);
  for (let a = 0; a < anchors; a++) {
    data[a] = rand() * 600;
    data[anchors + a] = rand() * 600;
    data[2 * anchors + a] = 5 + rand() * 60;
    data[3 * anchors + a] = 5 + rand() * 60;
  }
  for (let i = 4 * anchors; i < data.length; i++) data[i] = rand() ** 6;
  const filter = new Set([2, 5, 7]);
  const fast = decodeDetections('yolov8', data, [1, 4 + nc, anchors], { confThreshold: 0.3, iouThreshold: 1, classFilter: filter, maxDetections: 100000 });
  // A filter of more than a quarter of the classes takes the full scan; reference: no filter, then keep the wanted classes.
  const full = decodeDetections('yolov8', data, [1, 4 + nc, anchors], { confThreshold: 0.3, iouThreshold: 1, maxDetections: 100000 }).filter((d) => filter.has(d.classIndex));
  assert.ok(full.length > 0);
  assert.deepEqual(fast, full);
});
