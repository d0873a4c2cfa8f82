import { test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { createLogger } from '@detector-worker/shared/logging';
import type { Frame } from '../cameras/frame.js';
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
const frame = (seq: number, jpeg = Buffer.from([0xff, 0xd8, seq, 0xff, 0xd9])): Frame => ({ jpeg, capturedAt: new Date(Date.UTC(2026, 0, 1, 0, 0, seq)), seq });
/** A member as the group sees one; the session is mutable like a subscription's. */
const member = (id: string, sessionId: string | number | null = null): { -readonly [K in keyof GroupMember]: GroupMember[K] } => ({ id, displayId: id.split(';')[0]!, sessionId });
const settle = () => new Promise((r) => setImmediate(r));

test('one request in flight; a newer frame replaces the waiting one; nothing queues', async () => {
  const { client, calls } = controlledClient();
  const results: GroupResult[] = [];
  const group = new FrameGroup('k', '7', 'http://m', undefined, { client, logger: quiet, jpegQuality: 80, onResult: (r) => results.push(r) });
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
  const group = new FrameGroup('k', '7', 'http://m', undefined, { client, logger: quiet, jpegQuality: 80, onResult: (r) => results.push(r) });
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
  const group = new FrameGroup('k', '7', 'http://m', undefined, { client, logger: quiet, jpegQuality: 80, onResult: () => undefined });
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
