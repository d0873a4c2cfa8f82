/**
 * Output decoders against onnxruntime: the fixture models' real output shapes, models built
 * by the testkit, and real photos through the fixture detectors. The pure decoder tests sit
 * beside the code (services/infer/src/inference/decoders/decoders.test.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { CodedError } from '@detector-worker/shared/errors';
import { fixture } from '@detector-worker/testkit/fixtures';
import { buildConstantOutputModel, buildMeanClassifierModel, buildWeirdOutputModel } from '@detector-worker/testkit/onnx-builder';
import { parseUltralyticsNames } from '@detector-worker/infer/inference/class-names';
import { decodeClassification, decodeDetections, detectOutputFormat } from '@detector-worker/infer/inference/decoders/index';
import { computeLetterbox, hwcToChw, toSourceBox, toSourcePoint } from '@detector-worker/infer/inference/letterbox';
import { readOnnxMetadata } from '@detector-worker/infer/inference/onnx-metadata';
import type { Box } from '@detector-worker/infer/inference/types';

const opts = { confThreshold: 0.25, iouThreshold: 0.45 };
const unsupported = (e: unknown) => e instanceof CodedError && e.code === 'MODEL_OUTPUT_UNSUPPORTED' && e.statusCode === 422;

function near(actual: readonly number[], expected: readonly number[], tol: number, what = ''): void {
  assert.equal(actual.length, expected.length, what);
  actual.forEach((v, i) => assert.ok(Math.abs(v - expected[i]!) <= tol, `${what} index ${i}: ${v} vs ${expected[i]} (±${tol}) in [${actual.map((x) => x.toFixed(1)).join(', ')}]`));
}

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
