import { test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { CodedError } from '@detector-worker/shared/errors';
import { computeLetterbox, computeStretch, hwcToChw, hwcToChwPlaced, toSourceBox, toSourcePoint } from './letterbox.js';
import type { Box } from './types.js';

function near(actual: readonly number[], expected: readonly number[], tol = 1e-6): void {
  assert.equal(actual.length, expected.length);
  actual.forEach((v, i) => assert.ok(Math.abs(v - expected[i]!) <= tol, `index ${i}: ${v} vs ${expected[i]} (±${tol}) in [${actual.join(', ')}]`));
}

test('letterbox: portrait bus photo into 640x640 pads left and right equally', () => {
  const info = computeLetterbox(810, 1080, 640, 640);
  assert.equal(info.scaleX, 640 / 1080);
  assert.equal(info.scaleY, info.scaleX);
  assert.equal(info.resizedWidth, 480);
  assert.equal(info.resizedHeight, 640);
  assert.equal(info.padX, 80);
  assert.equal(info.padY, 0);
  assert.equal(info.padRight, 80);
  assert.equal(info.padBottom, 0);
});

test('letterbox: odd padding puts the extra pixel right/bottom (Ultralytics rounding)', () => {
  // 300x200 -> 640: scale 2.1333, height 426.67 -> 427, 213 rows of padding: 106 top, 107 bottom.
  const info = computeLetterbox(300, 200, 640, 640);
  assert.equal(info.resizedWidth, 640);
  assert.equal(info.resizedHeight, 427);
  assert.equal(info.padY, 106);
  assert.equal(info.padBottom, 107);
  // Non-square target, limited by height.
  const wide = computeLetterbox(1280, 823, 640, 384);
  assert.equal(wide.resizedHeight, 384);
  assert.equal(wide.resizedWidth, Math.round(1280 * (384 / 823)));
  assert.equal(wide.padX + wide.resizedWidth + wide.padRight, 640);
  // Extreme strip keeps at least one row.
  const strip = computeLetterbox(10000, 1, 320, 320);
  assert.equal(strip.resizedHeight, 1);
  assert.equal(strip.padY + 1 + strip.padBottom, 320);
});

test('letterbox agrees with sharp fit:contain on resized size and offsets', async () => {
  const cases: Array<[number, number, number, number]> = [
    [300, 200, 640, 640],
    [1280, 823, 640, 640],
    [1640, 590, 320, 320],
    [333, 777, 640, 640],
    [999, 1001, 640, 640],
    [641, 479, 224, 224],
    [37, 101, 640, 384],
    [7, 3, 320, 320],
  ];
  for (const [w, h, dw, dh] of cases) {
    const white = await sharp({ create: { width: w, height: h, channels: 3, background: { r: 255, g: 255, b: 255 } } }).png().toBuffer();
    const { data, info } = await sharp(white)
      .resize(dw, dh, { fit: 'contain', background: { r: 0, g: 0, b: 0 } })
      .removeAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true });
    assert.equal(info.width, dw);
    assert.equal(info.height, dh);
    // Bounding box of the non-black pixels = where sharp put the image.
    let minX = dw, maxX = -1, minY = dh, maxY = -1;
    for (let y = 0; y < dh; y++) {
      for (let x = 0; x < dw; x++) {
        if (data[(y * dw + x) * 3]! > 0) {
          if (x < minX) minX = x;
          if (x > maxX) maxX = x;
          if (y < minY) minY = y;
          if (y > maxY) maxY = y;
        }
      }
    }
    const lb = computeLetterbox(w, h, dw, dh);
    const label = `${w}x${h} -> ${dw}x${dh}`;
    assert.equal(minX, lb.padX, `${label}: left`);
    assert.equal(minY, lb.padY, `${label}: top`);
    assert.equal(maxX - minX + 1, lb.resizedWidth, `${label}: width`);
    assert.equal(maxY - minY + 1, lb.resizedHeight, `${label}: height`);
  }
});

test('stretch scales each axis independently without padding', () => {
  const info = computeStretch(400, 100, 224, 224);
  assert.equal(info.scaleX, 224 / 400);
  assert.equal(info.scaleY, 224 / 100);
  assert.equal(info.padX, 0);
  assert.equal(info.padY, 0);
  near(toSourceBox([0, 0, 224, 224], info), [0, 0, 400, 100]);
  near(toSourceBox([56, 112, 112, 224], info), [100, 50, 200, 100]);
});

test('toSourceBox inverts the letterbox mapping and clamps to the image', () => {
  const info = computeLetterbox(810, 1080, 640, 640);
  const src: Box = [36, 230, 798, 778];
  const s = info.scaleX;
  const tensorBox: Box = [src[0] * s + info.padX, src[1] * s + info.padY, src[2] * s + info.padX, src[3] * s + info.padY];
  near(toSourceBox(tensorBox, info), src, 1e-9);
  // A box reaching into the grey padding is cut at the image border.
  near(toSourceBox([0, -10, 700, 650], info), [0, 0, 810, 1080]);
  near(toSourcePoint([80, 0], info), [0, 0]);
  near(toSourcePoint([320, 320], info), [405, 540], 1e-9);
  near(toSourcePoint([Number.NaN, 1e9], info), [0, 1080]);
  // Round trip over a letterbox with vertical padding.
  const wide = computeLetterbox(1024, 576, 640, 640);
  const pt: [number, number] = [500, 300];
  const t: [number, number] = [pt[0] * wide.scaleX + wide.padX, pt[1] * wide.scaleY + wide.padY];
  near(toSourcePoint(t, wide), pt, 1e-9);
});

test('letterbox rejects sizes that are not positive integers', () => {
  assert.throws(() => computeLetterbox(0, 10, 640, 640), (e: unknown) => e instanceof CodedError && e.code === 'IMAGE_INVALID');
  assert.throws(() => computeLetterbox(10, 10, 640, Number.NaN), (e: unknown) => e instanceof CodedError && e.code === 'MODEL_INPUT_UNSUPPORTED');
  assert.throws(() => computeStretch(1.5, 10, 640, 640), (e: unknown) => e instanceof CodedError && e.code === 'IMAGE_INVALID');
});

// A 2x2 image: red, green / blue, white.
const tiny = Uint8Array.from([255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255]);

test('hwcToChw: planar RGB /255', () => {
  const out = hwcToChw(tiny, 2, 2, { channelOrder: 'rgb' });
  near(Array.from(out), [1, 0, 0, 1, 0, 1, 0, 1, 0, 0, 1, 1]);
});

test('hwcToChw: BGR plane order', () => {
  const out = hwcToChw(tiny, 2, 2, { channelOrder: 'bgr' });
  near(Array.from(out), [0, 0, 1, 1, 0, 1, 0, 1, 1, 0, 0, 1]);
});

test('hwcToChw: mean/std per model channel, output buffer reused', () => {
  const mean: [number, number, number] = [0.485, 0.456, 0.406];
  const std: [number, number, number] = [0.229, 0.224, 0.225];
  const buffer = new Float32Array(12);
  const out = hwcToChw(tiny, 2, 2, { channelOrder: 'rgb', mean, std }, buffer);
  assert.equal(out, buffer);
  const expected = [1, 0, 0, 1, 0, 1, 0, 1, 0, 0, 1, 1].map((v, i) => {
    const c = Math.floor(i / 4);
    return (v - mean[c]!) / std[c]!;
  });
  near(Array.from(out), expected, 1e-5);
  // BGR: the stats follow the model's channel order, so plane 0 (blue) uses mean[0].
  const bgr = hwcToChw(tiny, 2, 2, { channelOrder: 'bgr', mean, std });
  near([bgr[0]!, bgr[2]!], [(0 - mean[0]) / std[0], (1 - mean[0]) / std[0]], 1e-5);
});

test('hwcToChw: larger buffer gives a view of the right length; short inputs are refused', () => {
  const big = new Float32Array(100).fill(7);
  const out = hwcToChw(tiny, 2, 2, { channelOrder: 'rgb' }, big);
  assert.equal(out.length, 12);
  assert.equal(out.buffer, big.buffer);
  assert.equal(big[12], 7);
  assert.throws(() => hwcToChw(tiny, 3, 2, { channelOrder: 'rgb' }), (e: unknown) => e instanceof CodedError && e.code === 'PREPROCESS_MISMATCH');
  assert.throws(() => hwcToChw(tiny, 2, 2, { channelOrder: 'rgb' }, new Float32Array(11)), /11 floats/);
  // Buffer input (what sharp returns) works the same.
  near(Array.from(hwcToChw(Buffer.from(tiny), 2, 2, { channelOrder: 'rgb' })), [1, 0, 0, 1, 0, 1, 0, 1, 0, 0, 1, 1]);
});

test('hwcToChwPlaced writes the image at its place and pads the rest', () => {
  // 2x1 image (red, blue) placed at row 1 of a 2x3 tensor, pad 0.
  const rgb = new Uint8Array([255, 0, 0, 0, 0, 255]);
  const out = hwcToChwPlaced(rgb, 2, 1, { tensorWidth: 2, tensorHeight: 3, left: 0, top: 1, padValue: 0 }, { channelOrder: 'rgb' });
  assert.deepEqual(Array.from(out.subarray(0, 6)), [0, 0, 1, 0, 0, 0]);
  assert.deepEqual(Array.from(out.subarray(12, 18)), [0, 0, 0, 1, 0, 0]);
  // Same image placed at column 1 of a 3x1 tensor with pad 255, BGR order.
  const bgr = hwcToChwPlaced(rgb, 2, 1, { tensorWidth: 3, tensorHeight: 1, left: 1, top: 0, padValue: 255 }, { channelOrder: 'bgr' }, new Float32Array(9));
  assert.deepEqual(Array.from(bgr), [1, 0, 1, 1, 0, 0, 1, 1, 0]);
  assert.throws(() => hwcToChwPlaced(rgb, 2, 1, { tensorWidth: 2, tensorHeight: 1, left: 1, top: 0, padValue: 0 }, { channelOrder: 'rgb' }), /does not fit/);
});

/** The plain per-pixel definition the fast loops must match bit for bit. */
function referencePlaced(rgb: Uint8Array, w: number, h: number, p: { tensorWidth: number; tensorHeight: number; left: number; top: number; padValue: number }, order: 'rgb' | 'bgr', mean = [0, 0, 0], std = [1, 1, 1]): Float32Array {
  const plane = p.tensorWidth * p.tensorHeight;
  const out = new Float32Array(plane * 3);
  const value = (k: number, byte: number) => (byte / 255 - mean[k]!) / std[k]!;
  for (let k = 0; k < 3; k++) out.fill(value(k, p.padValue), k * plane, (k + 1) * plane);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const s = (y * w + x) * 3;
      const d = (p.top + y) * p.tensorWidth + p.left + x;
      for (let k = 0; k < 3; k++) out[k * plane + d] = value(k, rgb[s + (order === 'bgr' ? 2 - k : k)]!);
    }
  }
  return out;
}

test('hwcToChwPlaced and hwcToChw match the per-pixel definition bit for bit (widths, offsets, orders, stats)', () => {
  let seed = 11;
  const byte = () => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24;
  const cases: Array<[number, number, number, number, number, number]> = [
    // w, h, tensor w, tensor h, left, top
    [640, 360, 640, 640, 0, 140],
    [480, 640, 640, 640, 80, 0],
    [13, 7, 13, 20, 0, 6],
    [13, 7, 16, 9, 3, 1],
    [5, 1, 5, 1, 0, 0],
    [3, 3, 8, 8, 2, 2],
  ];
  for (const [w, h, tw, th, left, top] of cases) {
    for (const shift of [0, 1, 3]) {
      // A pixel buffer that does not start on a word boundary takes the byte-wise path.
      const backing = new Uint8Array(w * h * 3 + shift);
      for (let i = 0; i < backing.length; i++) backing[i] = byte();
      const rgb = backing.subarray(shift);
      for (const [order, mean, std] of [['rgb', undefined, undefined], ['bgr', [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]]] as const) {
        const norm = { channelOrder: order, ...(mean ? { mean, std } : {}) } as const;
        const place = { tensorWidth: tw, tensorHeight: th, left, top, padValue: 114 };
        const label = `${w}x${h} at ${left},${top} in ${tw}x${th}, shift ${shift}, ${order}`;
        const expected = referencePlaced(rgb, w, h, place, order, mean ? [...mean] : undefined, std ? [...std] : undefined);
        assert.deepEqual(hwcToChwPlaced(rgb, w, h, place, norm), expected, label);
        if (left === 0 && top === 0 && tw === w && th === h) assert.deepEqual(hwcToChw(rgb, w, h, norm), expected, label);
      }
    }
  }
});

test('hwcToChwPlaced with padReady writes only the image and keeps the pad already there', () => {
  const place = { tensorWidth: 8, tensorHeight: 8, left: 0, top: 2, padValue: 114 };
  const first = Uint8Array.from({ length: 8 * 4 * 3 }, (_, i) => i & 255);
  const second = Uint8Array.from({ length: 8 * 4 * 3 }, (_, i) => (i * 7) & 255);
  const buffer = new Float32Array(8 * 8 * 3);
  hwcToChwPlaced(first, 8, 4, place, { channelOrder: 'rgb' }, buffer);
  const again = hwcToChwPlaced(second, 8, 4, place, { channelOrder: 'rgb' }, buffer, { padReady: true });
  assert.deepEqual(again, hwcToChwPlaced(second, 8, 4, place, { channelOrder: 'rgb' }));
  // The pad really was skipped: a poisoned pad value survives a padReady call.
  buffer[0] = -1;
  hwcToChwPlaced(second, 8, 4, place, { channelOrder: 'rgb' }, buffer, { padReady: true });
  assert.equal(buffer[0], -1);
  hwcToChwPlaced(second, 8, 4, place, { channelOrder: 'rgb' }, buffer);
  assert.equal(buffer[0], Math.fround(114 / 255));
});
