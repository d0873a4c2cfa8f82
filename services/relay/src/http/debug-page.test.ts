import { test } from 'node:test';
import assert from 'node:assert/strict';
import Fastify from 'fastify';
import { createLogger } from '@detector-worker/shared/logging';
import { CameraReader } from '../cameras/camera-reader.js';
import type { SubscriptionRegistry } from '../subscriptions/registry.js';
import { frameBoxes, registerDebugPage } from './debug-page.js';

class TestReader extends CameraReader {
  protected open(): void {}
  protected close(): void {}
  frame(n: number): void {
    this.deliver(Buffer.from([n]), { width: 1, height: 1 });
  }
}

test('/debug/state: fps is the camera\'s rate from the first poll, the same for every viewer', async () => {
  const reader = new TestReader({ kind: 'snapshot', url: 'http://cam/x.jpg' }, { reconnectIntervalSec: 1, maxBackoffSec: 1, maxRetries: -1, watchdogMs: 60_000, identicalFrameLimit: 50 }, createLogger('test', { level: 'silent' }), 10);
  reader.start();
  const sub = { id: 'd;c', payload: { modelId: 1, modelName: 'M' }, crop: undefined, sessionId: null, group: { stats: { lastLatencyMs: null, framesSent: 0, framesDropped: 0, errors: {}, detectRequests: 0, visitsStarted: 0 }, tracking: { enabled: undefined, lastTracks: [], summary: () => [] } } };
  const registry = { list: () => [sub], readerOf: () => reader } as unknown as SubscriptionRegistry;
  const app = Fastify();
  registerDebugPage(app, registry);
  try {
    for (let i = 0; i < 6; i++) {
      reader.frame(i);
      await new Promise((r) => setTimeout(r, 100));
    }
    // Two viewers polling back to back (a sampling-per-poll meter showed 0 to both).
    for (let viewer = 0; viewer < 2; viewer++) {
      const state = (await app.inject({ url: '/debug/state' })).json() as { subscriptions: Array<{ fps: number; online: boolean; state: string }> };
      const fps = state.subscriptions[0]!.fps;
      assert.ok(fps >= 5 && fps <= 12, `viewer ${viewer}: fps ${fps} for 10 frames a second`);
      assert.equal(state.subscriptions[0]!.online, true);
      assert.equal(state.subscriptions[0]!.state, 'streaming');
    }
  } finally {
    await reader.stop();
    await app.close();
  }
});

test('debug boxes move from crop pixels to frame pixels', () => {
  assert.deepEqual(frameBoxes({ detections: [{ class: 'car', confidence: 0.5, bbox: [1, 2, 3, 4] }] }, { x: 10, y: 20 }), [{ class: 'car', confidence: 0.5, bbox: [11, 22, 13, 24] }]);
  assert.deepEqual(frameBoxes(null, { x: 0, y: 0 }), []);
});
