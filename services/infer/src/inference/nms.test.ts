import { test } from 'node:test';
import assert from 'node:assert/strict';
import { iou, nms } from './nms.js';
import type { Box, RawDetection } from './types.js';

const det = (classIndex: number, confidence: number, box: Box): RawDetection => ({ classIndex, confidence, box });

test('iou of identical, disjoint, touching and half-overlapping boxes', () => {
  assert.equal(iou([0, 0, 10, 10], [0, 0, 10, 10]), 1);
  assert.equal(iou([0, 0, 10, 10], [20, 20, 30, 30]), 0);
  assert.equal(iou([0, 0, 10, 10], [10, 0, 20, 10]), 0);
  // Overlap 5x10 = 50, union 150.
  assert.equal(iou([0, 0, 10, 10], [5, 0, 15, 10]), 50 / 150);
  // Degenerate boxes have no IoU rather than NaN.
  assert.equal(iou([0, 0, 0, 0], [0, 0, 0, 0]), 0);
});

test('overlapping boxes of the same class: only the most confident survives', () => {
  const kept = nms([det(2, 0.6, [1, 1, 11, 11]), det(2, 0.9, [0, 0, 10, 10]), det(2, 0.5, [50, 50, 60, 60])], 0.45);
  assert.deepEqual(kept.map((d) => d.confidence), [0.9, 0.5]);
});

test('per-class NMS keeps overlapping boxes of different classes; class-agnostic drops them', () => {
  // The white van of traffic_road: truck 0.47 and car 0.40 on nearly the same box.
  const input = [det(2, 0.4, [510, 368, 641, 525]), det(7, 0.47, [511, 368, 640, 526])];
  const perClass = nms(input, 0.45);
  assert.deepEqual(perClass.map((d) => d.classIndex), [7, 2]);
  const agnostic = nms(input, 0.45, { perClass: false });
  assert.deepEqual(agnostic.map((d) => d.classIndex), [7]);
});

test('IoU equal to the threshold is kept (strictly greater suppresses)', () => {
  // IoU exactly 0.5.
  const kept = nms([det(0, 0.9, [0, 0, 10, 10]), det(0, 0.8, [0, 0, 10, 5])], 0.5);
  assert.equal(kept.length, 2);
});

test('maxDetections caps the result, sorted by confidence; input untouched; NaN dropped', () => {
  const input = Array.from({ length: 10 }, (_, i) => det(0, i / 10, [i * 20, 0, i * 20 + 10, 10]));
  input.push(det(0, Number.NaN, [500, 0, 510, 10]));
  const before = input.map((d) => d.confidence);
  const kept = nms(input, 0.45, { maxDetections: 3 });
  assert.deepEqual(kept.map((d) => d.confidence), [0.9, 0.8, 0.7]);
  assert.deepEqual(input.map((d) => d.confidence), before);
  assert.equal(nms(input, 0.45).length, 10);
  assert.deepEqual(nms([], 0.45), []);
});
