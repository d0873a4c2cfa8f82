/**
 * Shrinking raw RGB pixels in plain JS, for images cut from a frame's preview (a small RGB copy
 * of the frame, cameras/preview.ts). Each output pixel is the mean of the source pixels its
 * footprint covers (a box filter, what swscale's `area` and libvips' reduce approximate), so
 * nothing aliases when shrinking. On a 640×360 preview this is a fraction of a millisecond,
 * where a sharp pipeline costs 3-7 ms of set-up and threads for the same small image.
 * Pure: tested without images on disk.
 */
import type { Rect } from './crop.js';

/** Raw interleaved RGB (3 bytes a pixel), row by row. */
export interface RgbImage {
  width: number;
  height: number;
  rgb: Buffer;
}

/** Per output column (or row): the first source index and one past the last, within the cut. */
function footprints(from: number, length: number, out: number): Int32Array {
  const spans = new Int32Array(out * 2);
  for (let i = 0; i < out; i++) {
    const a = from + Math.floor((i * length) / out);
    const b = from + Math.max(Math.floor(((i + 1) * length) / out), Math.floor((i * length) / out) + 1);
    spans[2 * i] = a;
    spans[2 * i + 1] = Math.min(b, from + length);
  }
  return spans;
}

/** The `cut` of `src` shrunk (box filter) to width × height RGB; width and height at most the cut's. */
export function shrinkRgb(src: RgbImage, cut: Rect, width: number, height: number): Buffer {
  if (width > cut.width || height > cut.height) throw new Error(`shrinkRgb enlarges: ${cut.width}x${cut.height} -> ${width}x${height}`);
  const out = Buffer.allocUnsafe(width * height * 3);
  const xs = footprints(0, cut.width, width);
  const ys = footprints(cut.top, cut.height, height);
  // Shrinking, the footprints partition the cut: each source column adds to one output column.
  const column = new Int32Array(cut.width);
  for (let x = 0; x < width; x++) column.fill(3 * x, xs[2 * x]!, xs[2 * x + 1]!);
  const sums = new Uint32Array(width * 3);
  const inverse = new Float64Array(width);
  const data = src.rgb;
  const stride = src.width * 3;
  let o = 0;
  for (let y = 0; y < height; y++) {
    const y0 = ys[2 * y]!;
    const y1 = ys[2 * y + 1]!;
    sums.fill(0);
    for (let sy = y0; sy < y1; sy++) {
      let p = sy * stride + cut.left * 3;
      for (let sx = 0; sx < cut.width; sx++, p += 3) {
        const c = column[sx]!;
        sums[c]! += data[p]!;
        sums[c + 1]! += data[p + 1]!;
        sums[c + 2]! += data[p + 2]!;
      }
    }
    const rows = y1 - y0;
    for (let x = 0; x < width; x++) inverse[x] = 1 / (rows * (xs[2 * x + 1]! - xs[2 * x]!));
    for (let x = 0, c = 0; x < width; x++, c += 3) {
      const k = inverse[x]!;
      out[o++] = sums[c]! * k + 0.5;
      out[o++] = sums[c + 1]! * k + 0.5;
      out[o++] = sums[c + 2]! * k + 0.5;
    }
  }
  return out;
}

/** The `cut` of `src` as a width × height greyscale thumbnail (BT.601 luma of the box means). */
export function greyThumbnail(src: RgbImage, cut: Rect, width: number, height: number): Uint8Array {
  const rgb = shrinkRgb(src, cut, width, height);
  const out = new Uint8Array(width * height);
  for (let i = 0, p = 0; i < out.length; i++, p += 3) out[i] = (rgb[p]! * 77 + rgb[p + 1]! * 150 + rgb[p + 2]! * 29 + 128) >> 8;
  return out;
}
