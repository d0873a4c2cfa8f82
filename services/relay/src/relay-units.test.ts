import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clampCrop, cropKey, cropOf } from './subscriptions/crop.js';
import { frameBoxes } from './http/debug-page.js';
import { resultMessage } from './server.js';
import type { GroupResult } from './inference/frame-group.js';
import type { InferAnswer } from './inference/infer-client.js';
import { loadRelayConfig } from './config.js';

test('crops are clamped to the frame; one entirely outside is degenerate', () => {
  assert.deepEqual(clampCrop({ cropX1: 100, cropY1: 200, cropX2: 300, cropY2: 400 }, 1920, 1080), { left: 100, top: 200, width: 200, height: 200 });
  assert.deepEqual(clampCrop({ cropX1: 1800, cropY1: 1000, cropX2: 2500, cropY2: 2000 }, 1920, 1080), { left: 1800, top: 1000, width: 120, height: 80 });
  assert.equal(clampCrop({ cropX1: 2000, cropY1: 0, cropX2: 2100, cropY2: 10 }, 1920, 1080), null);
  assert.equal(cropOf({ cropX1: 1 }), undefined);
  assert.equal(cropKey(undefined), 'full');
});

const result = (sessionAtSend: string | number | null, current: string | number | null, detection: InferAnswer['detection'] = { carBrand: 'Honda' }): GroupResult => ({
  subscription: { id: 'd;c', displayId: 'd', cameraId: 'c', payload: { subscriptionIdentifier: 'd;c', modelUrl: 'u', modelName: 'M', modelId: 7 }, source: { kind: 'rtsp', url: 'rtsp://x' }, crop: undefined, sessionId: current, group: undefined as never },
  frame: { jpeg: Buffer.alloc(0), capturedAt: new Date('2026-01-02T03:04:05.678Z'), seq: 1 },
  answer: { modelId: '7', detection, result: null, actions: [], timings: { decode: 0, modelWait: 0, preprocess: 0, inference: 0, nodes: {}, actions: 0, total: 0 } },
  sessionAtSend,
});

test('results: imageDetection normally, patchSession when the session moved on, nothing without a detection', () => {
  assert.deepEqual(resultMessage(result(5, 5)), { type: 'imageDetection', subscriptionIdentifier: 'd;c', timestamp: '2026-01-02T03:04:05.678Z', data: { detection: { carBrand: 'Honda' }, modelId: 7, modelName: 'M' } });
  assert.deepEqual(resultMessage(result(5, 6)), { type: 'patchSession', sessionId: 5, data: { currentCar: { carBrand: 'Honda' } } });
  assert.deepEqual(resultMessage(result(5, null))?.type, 'patchSession');
  assert.equal(resultMessage(result(null, 6))?.type, 'imageDetection');
  assert.equal(resultMessage(result(5, 5, null)), null);
});

test('debug boxes move from crop pixels to frame pixels', () => {
  assert.deepEqual(frameBoxes({ detections: [{ class: 'car', confidence: 0.5, bbox: [1, 2, 3, 4] }] }, { x: 10, y: 20 }), [{ class: 'car', confidence: 0.5, bbox: [11, 22, 13, 24] }]);
  assert.deepEqual(frameBoxes(null, { x: 0, y: 0 }), []);
});

test('config: original config.json keys and env, env wins, bad values name the variable', async () => {
  const { writeFileSync, mkdtempSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { tmpdir } = await import('node:os');
  const file = join(mkdtempSync(join(tmpdir(), 'relay-config-')), 'config.json');
  writeFileSync(file, JSON.stringify({ poll_interval_ms: 100, max_streams: 5, target_fps: 2, reconnect_interval_sec: 5, max_retries: -1 }));
  const c = loadRelayConfig({ RELAY_CONFIG: file, MAX_STREAMS: '9' });
  assert.equal(c.maxStreams, 9);
  assert.equal(c.targetFps, 2);
  assert.equal(c.maxRetries, -1);
  assert.equal(c.port, 8000);
  assert.throws(() => loadRelayConfig({ RELAY_PORT: 'eighty' }), /RELAY_PORT/);
  assert.throws(() => loadRelayConfig({ INFER_URL: 'ftp://x' }), /INFER_URL/);
  assert.throws(() => loadRelayConfig({ RELAY_CONFIG: '/nonexistent/config.json' }), /RELAY_CONFIG/);
  writeFileSync(file, JSON.stringify({ max_streams: 'many', target_fps: 2 }));
  assert.throws(() => loadRelayConfig({ RELAY_CONFIG: file }), /max_streams in RELAY_CONFIG=.*"many" is invalid/);
  assert.equal(loadRelayConfig({ RELAY_CONFIG: file, MAX_STREAMS: '3' }).maxStreams, 3, 'the environment overrides a bad file value');
  assert.throws(() => loadRelayConfig({ RELAY_CONFIG: file, MAX_STREAMS: 'x' }), /MAX_STREAMS="x" is invalid/);
});
