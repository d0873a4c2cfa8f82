import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clampCrop, cropKey, cropOf } from './crop.js';

test('crops are clamped to the frame; one entirely outside is degenerate', () => {
  assert.deepEqual(clampCrop({ cropX1: 100, cropY1: 200, cropX2: 300, cropY2: 400 }, 1920, 1080), { left: 100, top: 200, width: 200, height: 200 });
  assert.deepEqual(clampCrop({ cropX1: 1800, cropY1: 1000, cropX2: 2500, cropY2: 2000 }, 1920, 1080), { left: 1800, top: 1000, width: 120, height: 80 });
  assert.equal(clampCrop({ cropX1: 2000, cropY1: 0, cropX2: 2100, cropY2: 10 }, 1920, 1080), null);
  assert.equal(cropOf({ cropX1: 1 }), undefined);
  assert.equal(cropKey(undefined), 'full');
});
