import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { CodedError } from '@detector-worker/shared/errors';
import { rawImage, rawImageSize } from './raw-body.js';

const code = (fn: () => unknown): string => {
  try {
    fn();
  } catch (err) {
    return `${(err as CodedError).statusCode} ${(err as CodedError).code}`;
  }
  return 'accepted';
};

test('a raw size comes from whole-number width and height within the pixel limit', () => {
  assert.deepEqual(rawImageSize({ width: '640', height: '360' }, 1_000_000), { width: 640, height: 360 });
  assert.deepEqual(rawImageSize({ width: '0640', height: '360' }, 1_000_000), { width: 640, height: 360 });
  for (const width of [undefined, '', 'abc', '64.0', '-64', '0x40', '6e2', ' 64', ['64', '64'], 64]) assert.equal(code(() => rawImageSize({ width, height: '1' }, 1e6)), '400 BAD_REQUEST', String(width));
  assert.equal(code(() => rawImageSize({ width: '0', height: '1' }, 1e6)), '400 BAD_REQUEST');
  assert.equal(code(() => rawImageSize({ width: '000', height: '1' }, 1e6)), '400 BAD_REQUEST');
  assert.equal(code(() => rawImageSize({ width: '1001', height: '1000' }, 1e6)), '413 IMAGE_TOO_LARGE');
  assert.equal(code(() => rawImageSize({ width: '9'.repeat(400), height: '1' }, 1e6)), '413 IMAGE_TOO_LARGE');
  assert.equal(code(() => rawImageSize({ width: '1', height: '9'.repeat(10) }, Number.MAX_SAFE_INTEGER)), '413 IMAGE_TOO_LARGE');
});

test('a raw body: an empty one is IMAGE_EMPTY before its size is asked; the body is not copied', () => {
  assert.equal(code(() => rawImage(Buffer.alloc(0), {}, 100)), '400 IMAGE_EMPTY');
  assert.equal(code(() => rawImage(Buffer.alloc(12), { height: '2' }, 100)), '400 BAD_REQUEST');
  const body = Buffer.alloc(12);
  assert.equal(rawImage(body, { width: '2', height: '2' }, 100).data, body, 'no copy');
});
