import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { createLogger } from '@detector-worker/shared/logging';
import type { SubscribePayload } from '@detector-worker/shared/protocol/messages';
import type { CameraHub } from '../cameras/camera-hub.js';
import type { CameraSource } from '../cameras/frame.js';
import type { InferClient } from '../infer-link/infer-client.js';
import { FrameGroups } from '../infer-link/frame-groups.js';
import { SubscriptionRegistry, type Subscription } from './registry.js';

const quiet = createLogger('test', { level: 'silent' });

/** Counts readers as the real hub would (one per source URL), without opening anything. */
class FakeHub {
  readonly readers = new Map<string, { reader: EventEmitter & { stats: { online: boolean } }; users: Map<string, number> }>();
  acquire(source: CameraSource, user: string, rate: number) {
    let e = this.readers.get(source.url);
    if (!e) {
      e = { reader: Object.assign(new EventEmitter(), { stats: { online: true } }), users: new Map() };
      this.readers.set(source.url, e);
    }
    e.users.set(user, rate);
    return e.reader;
  }
  release(source: CameraSource, user: string) {
    const e = this.readers.get(source.url);
    e?.users.delete(user);
    if (e && e.users.size === 0) this.readers.delete(source.url);
  }
}

function setup(maxStreams = 10) {
  const hub = new FakeHub();
  const client = { infer: async () => ({ ok: false, code: 'X', status: 0, message: '', latencyMs: 0 }) } as unknown as InferClient;
  const groups = new FrameGroups<Subscription>(hub as unknown as CameraHub, { client, logger: quiet, jpegQuality: 80, onResult: () => undefined }, { targetFps: 2 });
  const registry = new SubscriptionRegistry(groups, { maxStreams }, quiet);
  return { hub, registry };
}

const payload = (id: string, extra: Partial<SubscribePayload> = {}): SubscribePayload => ({ subscriptionIdentifier: id, rtspUrl: 'rtsp://cam/1', modelUrl: 'http://m/a.mpta', modelName: 'A', modelId: 1, ...extra });

test('subscribe is idempotent; a changed payload is applied in place; cameras are shared by URL', () => {
  const { hub, registry } = setup();
  assert.deepEqual(registry.subscribe(payload('d1;cam')), { status: 'added' });
  assert.deepEqual(registry.subscribe(payload('d1;cam')), { status: 'unchanged' });
  assert.deepEqual(registry.subscribe(payload('d2;cam')), { status: 'added' });
  assert.equal(hub.readers.size, 1, 'one reader for two displays on one camera');
  assert.equal(registry.groupCount(), 1, 'same camera, crop and model: one group');
  assert.equal(registry.get('d1;cam')!.group, registry.get('d2;cam')!.group);

  // A crop splits the group but not the camera.
  assert.deepEqual(registry.subscribe(payload('d2;cam', { cropX1: 0, cropY1: 0, cropX2: 100, cropY2: 100 })), { status: 'updated' });
  assert.equal(registry.groupCount(), 2);
  assert.equal(hub.readers.size, 1);
  assert.deepEqual(registry.get('d2;cam')!.crop, { cropX1: 0, cropY1: 0, cropX2: 100, cropY2: 100 });

  // A new URL moves the subscription to another reader; the old one stays for d1.
  registry.subscribe(payload('d2;cam', { rtspUrl: 'rtsp://cam/2' }));
  assert.equal(hub.readers.size, 2);
  assert.equal(registry.list().length, 2);

  assert.equal(registry.unsubscribe('d1;cam'), true);
  assert.equal(registry.unsubscribe('d1;cam'), false, 'unknown now');
  assert.deepEqual([...hub.readers.keys()], ['rtsp://cam/2'], 'the last user of a camera releases it');
  registry.clear();
  assert.equal(hub.readers.size, 0);
  assert.equal(registry.groupCount(), 0);
});

test('max_streams refuses new subscriptions but still lets existing ones change', () => {
  const { registry } = setup(2);
  registry.subscribe(payload('d1;a'));
  registry.subscribe(payload('d2;a'));
  const refused = registry.subscribe(payload('d3;a'));
  assert.equal(refused.status, 'refused');
  assert.match((refused as { reason: string }).reason, /max_streams \(2\)/);
  assert.equal((refused as { code: string }).code, 'max_streams');
  assert.deepEqual(registry.refused, { bad_identifier: 0, max_streams: 1 }, 'counted for the metrics');
  assert.equal(registry.subscribe(payload('no-separator')).status, 'refused');
  assert.equal(registry.refused.bad_identifier, 1);
  assert.equal(registry.subscribe(payload('d2;a', { modelId: 2 })).status, 'updated');
  registry.unsubscribe('d1;a');
  assert.equal(registry.subscribe(payload('d3;a')).status, 'added');
});

test('setSessionId matches "display;" as a prefix, clears with null, and is kept for later subscriptions', () => {
  const { registry } = setup();
  registry.subscribe(payload('display-1;cam-a'));
  registry.subscribe(payload('display-1;cam-b', { rtspUrl: 'rtsp://cam/2' }));
  registry.subscribe(payload('display-10;cam-a'));
  assert.equal(registry.setSessionId('display-1', 42), 2);
  assert.equal(registry.get('display-1;cam-a')!.sessionId, 42);
  assert.equal(registry.get('display-1;cam-b')!.sessionId, 42);
  assert.equal(registry.get('display-10;cam-a')!.sessionId, null, 'display-10 is another display');

  // An update keeps the session; a subscription added later for the display gets it.
  registry.subscribe(payload('display-1;cam-a', { modelId: 9 }));
  assert.equal(registry.get('display-1;cam-a')!.sessionId, 42);
  registry.subscribe(payload('display-1;cam-c', { rtspUrl: 'rtsp://cam/3' }));
  assert.equal(registry.get('display-1;cam-c')!.sessionId, 42);

  assert.equal(registry.setSessionId('display-1', null), 3);
  assert.ok(registry.list().every((s) => s.sessionId === null));
  registry.subscribe(payload('display-1;cam-d', { rtspUrl: 'rtsp://cam/4' }));
  assert.equal(registry.get('display-1;cam-d')!.sessionId, null);

  assert.equal(registry.setSessionId('display-2', 'abc'), 0, 'no subscription yet');
  registry.subscribe(payload('display-2;cam-a'));
  assert.equal(registry.get('display-2;cam-a')!.sessionId, 'abc');
});
