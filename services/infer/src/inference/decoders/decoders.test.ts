import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CodedError } from '@detector-worker/shared/errors';
import { decodeClassification, decodeDetections, detectOutputFormat, isProbabilityDistribution, softmax } from './index.js';
import type { OnnxMetadata } from '../types.js';

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
