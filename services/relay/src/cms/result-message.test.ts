import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { InferAnswer } from '@detector-worker/shared/contract/infer-api';
import type { GroupResult } from '../infer-link/frame-group.js';
import { resultMessage, type ResultTarget } from './result-message.js';

const result = (detection: unknown, sessionAtSend: string | number | null = null, current: string | number | null = null): GroupResult<ResultTarget> => ({
  subscription: { id: 'd;c', displayId: 'd', sessionId: current, payload: { modelName: 'M', modelId: 7 } },
  frame: { jpeg: Buffer.alloc(0), width: 1, height: 1, capturedAt: new Date('2026-01-02T03:04:05.678Z'), seq: 1 },
  // Deliberately outside the contract in places: the relay flattens whatever reaches it.
  answer: { modelId: '7', detection: detection as InferAnswer['detection'], result: null, actions: [], timings: { decode: 0, modelWait: 0, preprocess: 0, inference: 0, nodes: {}, actions: 0, total: 0 } },
  sessionAtSend,
});

test('results: imageDetection normally, patchSession when the session moved on, nothing without a detection', () => {
  const honda = { carBrand: 'Honda' };
  assert.deepEqual(resultMessage(result(honda, 5, 5)), { type: 'imageDetection', subscriptionIdentifier: 'd;c', timestamp: '2026-01-02T03:04:05.678Z', data: { detection: { carBrand: 'Honda' }, modelId: 7, modelName: 'M' } });
  assert.deepEqual(resultMessage(result(honda, 5, 6)), { type: 'patchSession', sessionId: 5, data: { currentCar: { carBrand: 'Honda' } } });
  assert.deepEqual(resultMessage(result(honda, 5, null))?.type, 'patchSession');
  assert.equal(resultMessage(result(honda, null, 6))?.type, 'imageDetection');
  assert.equal(resultMessage(result(null, 5, 5)), null);
});

test('what reaches the CMS is flat even when infer answers with boxes, objects or NaN', () => {
  const hostile = { class: 'car', confidence: 0.9, bbox: [1, 2, 3, 4], nested: { a: 1 }, nan: Number.NaN, plate: null, ok: true };
  const msg = resultMessage(result(hostile));
  assert.ok(msg?.type === 'imageDetection');
  assert.deepEqual(msg.data.detection, { class: 'car', confidence: 0.9, plate: null, ok: true });
  const patch = resultMessage(result(hostile, 5, 6));
  assert.deepEqual(patch, { type: 'patchSession', sessionId: 5, data: { currentCar: { class: 'car', confidence: 0.9, plate: null, ok: true } } });
  assert.equal(resultMessage(result([1, 2])), null, 'an array is no detection');
});
