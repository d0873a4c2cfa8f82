import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pixelThumbnail } from './pixel-thumbnail.js';

/** A w × h RGB frame whose pixel (x, y) is grey level f(x, y). */
function frame(w: number, h: number, f: (x: number, y: number) => number): Uint8Array {
  const rgb = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) rgb.fill(f(x, y), (y * w + x) * 3, (y * w + x) * 3 + 3);
  return rgb;
}

test('pixel thumbnails: cell averages of luma, inside the rectangle only', () => {
  const rgb = frame(100, 50, (x) => (x < 50 ? 0 : 200));
  assert.deepEqual([...pixelThumbnail(rgb, 100, { left: 0, top: 0, width: 100, height: 50 }, 4, 2)], [0, 0, 200, 200, 0, 0, 200, 200]);
  // The right half alone is uniformly bright; a rectangle never reads outside itself.
  assert.ok(pixelThumbnail(rgb, 100, { left: 50, top: 10, width: 50, height: 40 }, 8, 4).every((v) => v === 200));
  // Colour goes through BT.601 luma: pure green is brighter than pure blue.
  const green = new Uint8Array([0, 255, 0]);
  const blue = new Uint8Array([0, 0, 255]);
  const one = { left: 0, top: 0, width: 1, height: 1 };
  assert.ok(pixelThumbnail(green, 1, one, 1, 1)[0]! > pixelThumbnail(blue, 1, one, 1, 1)[0]!);
  // A rectangle smaller than the thumbnail repeats its pixels instead of reading past them.
  assert.deepEqual([...pixelThumbnail(frame(2, 2, (x, y) => 10 * (x + 2 * y)), 2, { left: 0, top: 0, width: 2, height: 2 }, 4, 4)], [0, 0, 10, 10, 0, 0, 10, 10, 20, 20, 30, 30, 20, 20, 30, 30]);
});
