import { test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { createLogger } from '@detector-worker/shared/logging';
import type { Frame } from '../cameras/frame.js';
import { checkJpeg } from '../cameras/jpeg-check.js';
import { FrameGroup, type GroupMember, type GroupResult } from './frame-group.js';
import { MAX_RETRY_AFTER_MS, parseRetryAfter, type InferAnswer, type InferClient, type InferOutcome, type InferRequest } from './infer-client.js';

const quiet = createLogger('test', { level: 'silent' });

/** An infer client whose answers the test releases one by one. */
function controlledClient() {
  const calls: Array<{ jpeg: Buffer; req: InferRequest; answer: (o: InferOutcome) => void }> = [];
  const client = {
    infer: (jpeg: Buffer, req: InferRequest) => new Promise<InferOutcome>((answer) => calls.push({ jpeg, req, answer })),
  } as unknown as InferClient;
  return { client, calls };
}

const ok = (detection: InferAnswer['detection'] = { carBrand: 'Honda' }): InferOutcome => ({ ok: true, answer: { modelId: '7', detection, result: null, actions: [], timings: { decode: 0, modelWait: 0, preprocess: 0, inference: 0, nodes: {}, actions: 0, total: 0 } }, latencyMs: 5 });
/** A frame as a reader delivers it: its size from the JPEG header (0 for the byte stubs of per-frame tests). */
const frame = (seq: number, jpeg: Buffer = Buffer.from([0xff, 0xd8, seq, 0xff, 0xd9])): Frame => {
  const header = checkJpeg(jpeg);
  return { jpeg, width: header.ok ? header.width : 0, height: header.ok ? header.height : 0, capturedAt: new Date(Date.UTC(2026, 0, 1, 0, 0, seq)), seq };
};
/** A member as the group sees one; the session is mutable like a subscription's. */
const member = (id: string, sessionId: string | number | null = null): { -readonly [K in keyof GroupMember]: GroupMember[K] } => ({ id, displayId: id.split(';')[0]!, sessionId });
const settle = () => new Promise((r) => setImmediate(r));
/** A group whose pipeline is known not to track: one request per frame, the answer fanned out. */
function perFrame<M extends GroupMember>(group: FrameGroup<M>): FrameGroup<M> {
  group.tracking.enabled = false;
  return group;
}

test('one request in flight; a newer frame replaces the waiting one; nothing queues', async () => {
  const { client, calls } = controlledClient();
  const results: GroupResult[] = [];
  const group = perFrame(new FrameGroup('k', '7', 'http://m', undefined, { client, logger: quiet, jpegQuality: 80, onResult: (r) => results.push(r) }));
  group.add(member('d;c'));
  group.onFrame(frame(1));
  await settle();
  for (const seq of [2, 3, 4, 5]) group.onFrame(frame(seq));
  await settle();
  assert.equal(calls.length, 1, 'still one request in flight');
  assert.equal(group.stats.framesDropped, 3, 'frames 2-4 were replaced, not queued');
  calls[0]!.answer(ok());
  await settle();
  await settle();
  assert.equal(calls.length, 2);
  assert.equal(calls[1]!.jpeg[2], 5, 'the newest frame goes next');
  calls[1]!.answer(ok(null));
  await settle();
  assert.equal(results.length, 2);
  assert.equal(results[0]!.frame.seq, 1);
  group.close();
});

test('one request for displays sharing the group; the answer fans out with each display\'s session at send time', async () => {
  const { client, calls } = controlledClient();
  const results: GroupResult[] = [];
  const group = perFrame(new FrameGroup('k', '7', 'http://m', undefined, { client, logger: quiet, jpegQuality: 80, onResult: (r) => results.push(r) }));
  const a = member('display-a;cam', 11);
  const b = member('display-b;cam', null);
  group.add(a);
  group.add(b);
  group.onFrame(frame(1));
  await settle();
  assert.equal(calls.length, 1);
  assert.deepEqual(
    { ...calls[0]!.req, requestId: 'x' },
    { modelId: '7', modelUrl: 'http://m', subscriptionIdentifier: 'display-a;cam', displayId: 'display-a', sessionId: '11', requestId: 'x', capturedAt: '2026-01-01T00:00:01.000Z' },
  );
  a.sessionId = 12; // the session moves on while the request is out
  calls[0]!.answer(ok());
  await settle();
  assert.deepEqual(results.map((r) => [r.subscription.id, r.sessionAtSend]), [['display-a;cam', 11], ['display-b;cam', null]]);
  group.close();
});

test('an error backs the group off for Retry-After; it resumes with the newest frame', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 1_000_000 });
  const { client, calls } = controlledClient();
  const group = perFrame(new FrameGroup('k', '7', 'http://m', undefined, { client, logger: quiet, jpegQuality: 80, onResult: () => undefined }));
  group.add(member('d;c'));
  group.onFrame(frame(1));
  await settle();
  calls[0]!.answer({ ok: false, code: 'BUSY', status: 429, message: 'busy', retryAfterMs: 2000, latencyMs: 1 });
  await settle();
  group.onFrame(frame(2));
  group.onFrame(frame(3));
  await settle();
  assert.equal(calls.length, 1, 'no request during the back-off');
  assert.deepEqual(group.stats.errors, { BUSY: 1 });
  t.mock.timers.tick(1999);
  await settle();
  assert.equal(calls.length, 1);
  t.mock.timers.tick(1);
  await settle();
  assert.equal(calls.length, 2);
  assert.equal(calls[1]!.jpeg[2], 3);
  calls[1]!.answer(ok());
  await settle();
  group.close();
});

test('the crop is cut from the frame before sending; a crop outside the frame sends nothing', async () => {
  const jpeg = await sharp({ create: { width: 320, height: 240, channels: 3, background: '#336699' } }).jpeg().toBuffer();
  const { client, calls } = controlledClient();
  const inside = new FrameGroup('k', '7', 'http://m', { cropX1: 10, cropY1: 20, cropX2: 110, cropY2: 300 }, { client, logger: quiet, jpegQuality: 80, onResult: () => undefined });
  inside.add(member('d;c'));
  inside.onFrame(frame(1, jpeg));
  for (let i = 0; i < 100 && calls.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
  const meta = await sharp(calls[0]!.jpeg).metadata();
  assert.deepEqual([meta.width, meta.height], [100, 220], 'clamped to the frame');
  calls[0]!.answer(ok());
  inside.close();

  const outside = new FrameGroup('k2', '7', 'http://m', { cropX1: 400, cropY1: 0, cropX2: 500, cropY2: 100 }, { client, logger: quiet, jpegQuality: 80, onResult: () => undefined });
  outside.add(member('d;c'));
  outside.onFrame(frame(1, jpeg));
  for (let i = 0; i < 100 && !outside.stats.errors.CROP_OUTSIDE_FRAME; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(outside.stats.errors.CROP_OUTSIDE_FRAME, 1);
  assert.equal(calls.length, 1);
  outside.close();
});

test('Retry-After: seconds or an HTTP date, capped; answers must carry a flat detection or null', () => {
  assert.equal(parseRetryAfter('2'), 2000);
  assert.equal(parseRetryAfter('0.5'), 500);
  assert.equal(parseRetryAfter(new Date(10_000).toUTCString(), 4_000), 6000);
  assert.equal(parseRetryAfter(new Date(0).toUTCString(), 4_000), 0, 'a date in the past: no wait');
  assert.equal(parseRetryAfter('99999999'), MAX_RETRY_AFTER_MS);
  assert.equal(parseRetryAfter('soon'), undefined);
  assert.equal(parseRetryAfter(undefined), undefined);
});

/** Answers every request at once: detections for the detect stage, a flat detection for full runs. */
function autoClient(detect: () => unknown, full: (req: InferRequest) => InferAnswer['detection'], tracking: InferAnswer['tracking'] = undefined) {
  const requests: InferRequest[] = [];
  const client = {
    infer: async (_jpeg: Buffer, req: InferRequest): Promise<InferOutcome> => {
      requests.push(req);
      const base = ok(null);
      if (!base.ok) throw new Error('unreachable');
      const answer: InferAnswer = req.stage === 'detect' ? { ...base.answer, result: detect(), ...(tracking ? { tracking } : {}) } : { ...base.answer, detection: full(req) };
      return { ok: true, answer, latencyMs: 1 };
    },
  } as unknown as InferClient;
  return { client, requests };
}

test('tracking off in the pipeline: the first frame is probed, then sent again whole; one event per frame', async () => {
  const { client, requests } = autoClient(() => null, () => ({ class: 'car', confidence: 0.9 }), { enabled: false });
  const results: GroupResult[] = [];
  const group = new FrameGroup('k', '7', 'http://m', undefined, { client, logger: quiet, jpegQuality: 80, onResult: (r) => results.push(r) });
  group.add(member('d;c'));
  const jpeg = await sharp({ create: { width: 64, height: 48, channels: 3, background: '#808080' } }).jpeg().toBuffer();
  group.onFrame(frame(1, jpeg));
  for (let i = 0; i < 50 && results.length < 1; i++) await new Promise((r) => setTimeout(r, 5));
  group.onFrame(frame(2, jpeg));
  for (let i = 0; i < 50 && results.length < 2; i++) await new Promise((r) => setTimeout(r, 5));
  assert.deepEqual(requests.map((r) => r.stage ?? 'full'), ['detect', 'full', 'full']);
  assert.deepEqual(results.map((r) => r.frame.seq), [1, 2]);
  group.close();
});

test('visits: detect-stage frames, one focused full run keyed by the visit, one event per member', async () => {
  const box = [60, 50, 220, 170];
  const { client, requests } = autoClient(
    () => ({ detections: [{ class: 'car', confidence: 0.9, bbox: box }] }),
    () => ({ class: 'car', confidence: 0.9, carColor: 'gray', carColorConfidence: 0.8 }),
  );
  const results: GroupResult[] = [];
  const group = new FrameGroup('k', '7', 'http://m', undefined, { client, logger: quiet, jpegQuality: 80, onResult: (r) => results.push(r) });
  group.add(member('display-a;cam', 5));
  group.add(member('display-b;cam', null));
  const jpeg = await sharp({ create: { width: 320, height: 240, channels: 3, background: '#808080' } }).jpeg().toBuffer();
  for (let seq = 1; seq <= 8; seq++) {
    group.onFrame(frame(seq, jpeg));
    for (let i = 0; i < 40 && (group.stats.detectRequests < seq || group.tracking.queued > 0); i++) await new Promise((r) => setTimeout(r, 5));
  }
  const full = requests.filter((r) => r.stage === 'full');
  assert.equal(full.length, 1, JSON.stringify(requests.map((r) => r.stage)));
  assert.match(full[0]!.requestId, /^v-[0-9a-f]{8}-1$/);
  assert.deepEqual(full[0]!.focus, box);
  assert.deepEqual(results.map((r) => [r.subscription.id, r.answer.detection?.carColor, r.patch ?? false]), [['display-a;cam', 'gray', false], ['display-b;cam', 'gray', false]]);
  assert.equal(group.stats.visitsStarted, 1);
  assert.equal(group.stats.visitEvents, 1);
  assert.equal(group.tracking.summary()[0]?.eventSent, true);
  group.close();
  assert.equal(group.stats.visitsEnded, 1);
});

/** An empty forecourt and the same with a car, and a feeder that waits until the group has dealt with each frame. */
async function quietScene(group: FrameGroup) {
  const empty = await sharp({ create: { width: 640, height: 360, channels: 3, background: '#505050' } }).jpeg().toBuffer();
  const withCar = await sharp(empty).composite([{ input: { create: { width: 200, height: 120, channels: 3, background: '#f0f0f0' } }, left: 100, top: 150 }]).jpeg().toBuffer();
  const feed = async (seq: number, jpeg: Buffer) => {
    const before = group.stats.detectRequests + group.stats.framesIdle;
    group.onFrame(frame(seq, jpeg));
    for (let i = 0; i < 60 && group.stats.detectRequests + group.stats.framesIdle === before; i++) await new Promise((r) => setTimeout(r, 5));
  };
  return { empty, withCar, feed };
}

test('idle gating: a quiet scene sends a detect frame every idle interval; motion brings full rate back at once', async () => {
  const { client, requests } = autoClient(() => ({ detections: [] }), () => null);
  const group = new FrameGroup('k', '7', 'http://m', undefined, { client, logger: quiet, jpegQuality: 80, onResult: () => undefined, idleIntervalMs: 3000 });
  group.add(member('d;c'));
  const { empty, withCar, feed } = await quietScene(group);
  for (let seq = 1; seq <= 10; seq++) await feed(seq, empty);
  assert.equal(requests.length, 4, 'frames 1 (probe), 2 (first thumbnail), 5 and 8 (idle rate)');
  assert.equal(group.stats.framesIdle, 6);
  await feed(11, withCar);
  assert.equal(requests.length, 5, 'motion: sent at once');
  await feed(12, empty);
  assert.equal(requests.length, 6, 'the frames right after motion go at the full rate, unchecked');
  await feed(14, empty);
  assert.equal(requests.length, 6, '2 s later, with nothing tracked and nothing moving, quiet again');
  group.close();
});

test('a scene quiet for 4 s slows its camera; motion makes it fast again at once', async () => {
  const { client } = autoClient(() => ({ detections: [] }), () => null);
  const group = new FrameGroup('k', '7', 'http://m', undefined, { client, logger: quiet, jpegQuality: 80, onResult: () => undefined, idleIntervalMs: 3000 });
  const calls: boolean[] = [];
  group.onCameraSlow = (slow) => calls.push(slow);
  group.add(member('d;c'));
  const { empty, withCar, feed } = await quietScene(group);
  for (let seq = 1; seq <= 4; seq++) await feed(seq, empty);
  assert.deepEqual(calls, [], 'not yet: quiet for less than 4 s');
  for (let seq = 5; seq <= 10; seq++) await feed(seq, empty);
  assert.deepEqual(calls, [true]);
  // The car arrives: its first frame is checked for motion (and would go at the idle rate anyway).
  await feed(11, withCar);
  await feed(12, withCar);
  await feed(12, withCar);
  assert.deepEqual(calls, [true, false]);
  group.close();
});

test('a parked car (its event sent, nothing moving) is gated like an empty scene, keeps its visit, and its camera stays fast', async () => {
  let seen = true;
  const { client, requests } = autoClient(
    () => ({ detections: seen ? [{ class: 'car', confidence: 0.9, bbox: [100, 150, 300, 270] }] : [] }),
    () => ({ class: 'car', confidence: 0.9, carColor: 'white', carColorConfidence: 0.8 }),
  );
  const results: GroupResult[] = [];
  const group = new FrameGroup('k', '7', 'http://m', undefined, { client, logger: quiet, jpegQuality: 80, onResult: (r) => results.push(r), idleIntervalMs: 3000 });
  const calls: boolean[] = [];
  group.onCameraSlow = (slow) => calls.push(slow);
  group.add(member('d;c'));
  const { withCar, feed } = await quietScene(group);
  const detects = () => requests.filter((r) => r.stage === 'detect').length;
  let seq = 0;
  while (results.length === 0 && seq < 10) await feed(++seq, withCar);
  assert.equal(results.length, 1, 'the visit\'s event');
  assert.equal(detects(), seq, 'every frame a detect request until the event');

  // Parked: one frame a second for 12 s, a detect request per idle interval (3 s) keeps the track.
  const parkedFrom = detects();
  for (let i = 0; i < 12; i++) await feed(++seq, withCar);
  const parkedDetects = detects() - parkedFrom;
  assert.ok(parkedDetects >= 3 && parkedDetects <= 5, `${parkedDetects} detect requests in 12 s parked`);
  assert.ok(group.tracking.parked);

  // The detector misses the parked car once: the next frame goes at once, not an idle interval later.
  seen = false;
  while (group.tracking.parked) await feed(++seq, withCar);
  seen = true;
  const missedAt = detects();
  await feed(++seq, withCar);
  assert.equal(detects(), missedAt + 1, 'a missed parked car brings the full rate back');
  assert.ok(group.tracking.parked, 'parked again once it is seen');

  assert.deepEqual(calls, [], 'the camera is never slowed while a car is parked');
  assert.deepEqual([group.stats.visitsStarted, group.stats.visitEvents, group.stats.visitsEnded], [1, 1, 0], 'one visit, one event');
  group.close();
});
