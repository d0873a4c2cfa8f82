import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { PipelineNode } from '@detector-worker/shared/pipeline/schema';
import { bestRegions, classificationResult, cropRegionFor, findRegion, isBranchTriggered, missingExpectedClasses, runBranchesInParallel, untriggeredAwaitedBranches } from './tree.js';
import type { Detection } from './types.js';

const det = (cls: string, confidence: number, x = 0): Detection => ({ class: cls, confidence, bbox: [x, 0, x + 10, 10], id: null });
const node = (over: Partial<PipelineNode> = {}): PipelineNode => ({ modelId: 'n', modelFile: 'n.onnx', minConfidence: 0.5, triggerClasses: ['Car'], ...over });

test('bestRegions keeps the highest-confidence box per class', () => {
  const r = bestRegions([det('Car', 0.6, 0), det('Car', 0.9, 50), det('Frontal', 0.7, 5)]);
  assert.deepEqual(Object.keys(r).sort(), ['Car', 'Frontal']);
  assert.equal(r.Car!.confidence, 0.9);
  assert.deepEqual(r.Car!.bbox, [50, 0, 60, 10]);
});

test('findRegion matches exactly first, then case-insensitively', () => {
  const regions = { car: { bbox: [0, 0, 1, 1] as [number, number, number, number], confidence: 0.4 }, Car: { bbox: [0, 0, 2, 2] as [number, number, number, number], confidence: 0.8 } };
  assert.equal(findRegion(regions, 'Car')!.confidence, 0.8);
  assert.equal(findRegion(regions, 'car')!.confidence, 0.4);
  assert.equal(findRegion({ car: regions.car }, 'CAR')!.confidence, 0.4);
  assert.equal(findRegion(regions, 'bus'), undefined);
});

test('a branch is triggered by a trigger class at or above its minConfidence', () => {
  const regions = bestRegions([det('car', 0.6)]);
  assert.equal(isBranchTriggered(node({ triggerClasses: ['car'], minConfidence: 0.6 }), regions), true);
  assert.equal(isBranchTriggered(node({ triggerClasses: ['car'], minConfidence: 0.61 }), regions), false);
  assert.equal(isBranchTriggered(node({ triggerClasses: ['truck', 'Car'], minConfidence: 0.5 }), regions), true);
  assert.equal(isBranchTriggered(node({ triggerClasses: ['truck'] }), regions), false);
});

test('expectedClasses needs at least one present, only with multiClass', () => {
  const regions = bestRegions([det('Car', 0.9)]);
  assert.deepEqual(missingExpectedClasses(node({ multiClass: true, expectedClasses: ['Car', 'Frontal'] }), regions), { satisfied: true, missing: ['Frontal'] });
  assert.equal(missingExpectedClasses(node({ multiClass: true, expectedClasses: ['Frontal'] }), regions).satisfied, false);
  assert.equal(missingExpectedClasses(node({ multiClass: false, expectedClasses: ['Frontal'] }), regions).satisfied, true);
});

test('waitForBranches pre-validation names branches that would not run', () => {
  const brand = node({ modelId: 'brand', triggerClasses: ['Frontal'], minConfidence: 0.85 });
  const body = node({ modelId: 'body', triggerClasses: ['Car'], minConfidence: 0.85 });
  const root = node({
    branches: [brand, body],
    parallelActions: [{ type: 'postgresql_update_combined', table: 't', key_field: 'session_id', key_value: '{session_id}', waitForBranches: ['brand', 'body'], fields: {} }],
  });
  assert.deepEqual(untriggeredAwaitedBranches(root, bestRegions([det('Car', 0.9), det('Frontal', 0.9)])), []);
  assert.deepEqual(untriggeredAwaitedBranches(root, bestRegions([det('Car', 0.9), det('Frontal', 0.5)])), ['brand']);
  assert.deepEqual(untriggeredAwaitedBranches(node(), bestRegions([])), []);
});

test('crop region is cropClass, else the first trigger class', () => {
  const regions = bestRegions([det('Car', 0.9, 0), det('Frontal', 0.8, 40)]);
  assert.deepEqual(cropRegionFor(node({ cropClass: 'Frontal', triggerClasses: ['Car'] }), regions)!.bbox, [40, 0, 50, 10]);
  assert.deepEqual(cropRegionFor(node({ triggerClasses: ['Car'] }), regions)!.bbox, [0, 0, 10, 10]);
  assert.equal(cropRegionFor(node({ cropClass: 'Plate' }), regions), undefined);
});

test('classification aliases follow the node id, and outputField is explicit', () => {
  assert.equal(classificationResult(node({ modelId: 'car_brand_cls_v1' }), 'Honda', 0.9).brand, 'Honda');
  assert.equal(classificationResult(node({ modelId: 'car_bodytype_cls_v1' }), 'Sedan', 0.9).body_type, 'Sedan');
  assert.equal(classificationResult(node({ modelId: 'car_body_cls' }), 'SUV', 0.9).body_type, 'SUV');
  assert.equal(classificationResult(node({ modelId: 'car_color_cls' }), 'red', 0.9).color, 'red');
  const explicit = classificationResult(node({ modelId: 'x', outputField: 'plate_color' }), 'blue', 0.7);
  assert.equal(explicit.plate_color, 'blue');
  assert.equal(explicit.Honda, undefined);
  assert.equal(explicit.blue, 'blue');
  const odd = classificationResult(node({ modelId: 'x' }), 'confidence', 0.7);
  assert.equal(odd.confidence, 0.7);
  assert.equal(odd.id, null);
});

test('branches run in parallel when the node or a triggered branch asks', () => {
  assert.equal(runBranchesInParallel(node(), [node(), node({ parallel: true })]), true);
  assert.equal(runBranchesInParallel(node({ parallel: true }), []), true);
  assert.equal(runBranchesInParallel(node(), [node()]), false);
});

test('focusedDetections: best overlap first, boxes mostly inside kept, others and weak overlaps dropped', async () => {
  const { focusedDetections } = await import('./tree.js');
  const det = (cls: string, bbox: [number, number, number, number], confidence = 0.9) => ({ class: cls, confidence, bbox, id: null });
  const car = det('car', [100, 100, 300, 250]);
  const plate = det('plate', [180, 200, 230, 220]);
  const other = det('car', [320, 100, 500, 250], 0.99);
  assert.deepEqual(focusedDetections([other, plate, car], [105, 98, 298, 255]), [car, plate]);
  assert.deepEqual(focusedDetections([other, car], [0, 0, 20, 20]), []);
});
