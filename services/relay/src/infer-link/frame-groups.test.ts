import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { createLogger } from '@detector-worker/shared/logging';
import type { CameraSource } from '../cameras/frame.js';
import type { FrameGroup, GroupMember } from './frame-group.js';
import { cameraRate, FrameGroups, groupKey, type CameraSupply, type GroupSpec } from './frame-groups.js';
import type { InferClient } from './infer-client.js';

const quiet = createLogger('test', { level: 'silent' });

/** Hands out one emitter per camera URL and records who holds it. */
function fakeCameras() {
  const held = new Map<string, { reader: EventEmitter; users: Set<string> }>();
  const supply = {
    acquire(source: CameraSource, user: string) {
      const e = held.get(source.url) ?? { reader: new EventEmitter(), users: new Set<string>() };
      held.set(source.url, e);
      e.users.add(user);
      return e.reader;
    },
    release(source: CameraSource, user: string) {
      const e = held.get(source.url);
      e?.users.delete(user);
      if (e?.users.size === 0) held.delete(source.url);
    },
  } as unknown as CameraSupply;
  return { held, supply };
}

const spec = (extra: Partial<GroupSpec> = {}): GroupSpec => ({ source: { kind: 'rtsp', url: 'rtsp://cam/1' }, crop: undefined, modelId: 1, modelUrl: 'http://m/a.mpta', ...extra });
interface Member extends GroupMember {
  group: FrameGroup<Member>;
}
const member = (id: string) => (group: FrameGroup<Member>): Member => ({ id, displayId: id.split(';')[0]!, sessionId: null, group });

test('frame groups: one per camera, crop and model; members join knowing their group; the last one out releases the camera', () => {
  const { held, supply } = fakeCameras();
  const client = { infer: async () => ({ ok: false, code: 'X', status: 0, message: '', latencyMs: 0 }) } as unknown as InferClient;
  const groups = new FrameGroups<Member>(supply, { client, logger: quiet, jpegQuality: 80, onResult: () => undefined }, { targetFps: 2 });
  const a = groups.join(spec(), member('a;c'));
  const b = groups.join(spec(), member('b;c'));
  const cropped = groups.join(spec({ crop: { cropX1: 0, cropY1: 0, cropX2: 10, cropY2: 10 } }), member('c;c'));
  assert.equal(a.group, b.group);
  assert.notEqual(a.group, cropped.group);
  assert.equal(groups.size, 2);
  assert.deepEqual([...held.get('rtsp://cam/1')!.users].sort(), [groupKey(spec()), groupKey(spec({ crop: { cropX1: 0, cropY1: 0, cropX2: 10, cropY2: 10 } }))].sort());
  const aGroup = a.group;
  assert.equal(groups.readerOf(aGroup), held.get('rtsp://cam/1')!.reader);
  groups.leave('a;c', aGroup);
  assert.equal(groups.size, 2, 'b is still in it');
  groups.leave('b;c', aGroup);
  assert.equal(groups.size, 1);
  assert.equal(groups.readerOf(aGroup), undefined, 'closed with its last member');
  assert.equal(held.get('rtsp://cam/1')!.reader.listenerCount('frame'), 1, "the closed group's frame listener is gone");
  groups.leave('c;c', cropped.group);
  assert.equal(held.size, 0, 'the camera is released with the last group');
});

test('RTSP rate: target_fps, capped by poll_interval_ms; snapshots follow their interval', () => {
  const rtsp: CameraSource = { kind: 'rtsp', url: 'rtsp://x' };
  assert.equal(cameraRate(rtsp, { targetFps: 2 }), 2);
  assert.equal(cameraRate(rtsp, { targetFps: 2, pollIntervalMs: 1000 }), 1);
  assert.equal(cameraRate(rtsp, { targetFps: 2, pollIntervalMs: 100 }), 2);
  assert.equal(cameraRate({ kind: 'snapshot', url: 'http://x', intervalMs: 250 }, { targetFps: 2 }), 4);
  assert.equal(cameraRate({ kind: 'snapshot', url: 'http://x' }, { targetFps: 2 }), 0.2, 'the protocol default: every 5 s');
});
