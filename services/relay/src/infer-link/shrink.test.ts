import { test } from 'node:test';
import assert from 'node:assert/strict';
import { greyThumbnail, shrinkRgb, type RgbImage } from './shrink.js';

/** A width × height image whose pixel (x, y) is `pixel(x, y)`. */
function image(width: number, height: number, pixel: (x: number, y: number) => [number, number, number]): RgbImage {
  const rgb = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) rgb.set(pixel(x, y), (y * width + x) * 3);
  return { width, height, rgb };
}

test('shrinking averages the source pixels each output pixel covers', () => {
  const src = image(4, 2, (x, y) => [x * 10, y * 100, 7]);
  const whole = { left: 0, top: 0, width: 4, height: 2 };
  // 2x2 blocks: x 0-1 and 2-3, both rows.
  assert.deepEqual([...shrinkRgb(src, whole, 2, 1)], [5, 50, 7, 25, 50, 7]);
  assert.deepEqual([...shrinkRgb(src, whole, 4, 2)], [...src.rgb], 'same size: the pixels themselves');
  // Three columns into two: footprints [0, 1) and [1, 3) (never empty, never overlapping).
  assert.deepEqual([...shrinkRgb(src, { left: 1, top: 1, width: 3, height: 1 }, 2, 1)], [10, 100, 7, 25, 100, 7]);
  assert.throws(() => shrinkRgb(src, whole, 5, 1), /enlarges/);
});

test('the cut is taken from where it lies in the image', () => {
  const src = image(8, 8, (x, y) => (x >= 4 && y >= 4 ? [200, 200, 200] : [0, 0, 0]));
  assert.deepEqual([...shrinkRgb(src, { left: 4, top: 4, width: 4, height: 4 }, 1, 1)], [200, 200, 200]);
  assert.deepEqual([...shrinkRgb(src, { left: 2, top: 2, width: 4, height: 4 }, 1, 1)], [50, 50, 50]);
});

test('greyscale thumbnails are the luma of the box means', () => {
  const src = image(6, 4, (x) => (x < 3 ? [255, 0, 0] : [0, 0, 255]));
  const thumb = greyThumbnail(src, { left: 0, top: 0, width: 6, height: 4 }, 2, 2);
  assert.deepEqual([...thumb], [77, 29, 77, 29]);
  assert.deepEqual([...greyThumbnail(image(2, 2, () => [255, 255, 255]), { left: 0, top: 0, width: 2, height: 2 }, 1, 1)], [255]);
});
