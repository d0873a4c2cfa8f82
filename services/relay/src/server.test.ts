import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { InferAnswer } from '@detector-worker/shared/contract/infer-api';
import { resultMessage } from './server.js';
import type { GroupResult } from './inference/frame-group.js';

const result = (detection: unknown, sessionAtSend: number | null = null, current: number | null = null): GroupResult => ({
  subscription: { id: 'd;c', displayId: 'd', cameraId: 'c', payload: { subscriptionIdentifier: 'd;c', modelUrl: 'u', modelName: 'M', modelId: 7 }, source: { kind: 'rtsp', url: 'rtsp://x' }, crop: undefined, sessionId: current, group: undefined as never },
  frame: { jpeg: Buffer.alloc(0), capturedAt: new Date('2026-01-02T03:04:05.678Z'), seq: 1 },
  // Deliberately outside the contract: the relay flattens whatever reaches it.
  answer: { modelId: '7', detection: detection as InferAnswer['detection'], result: null, actions: [], timings: { decode: 0, modelWait: 0, preprocess: 0, inference: 0, nodes: {}, actions: 0, total: 0 } },
  sessionAtSend,
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
