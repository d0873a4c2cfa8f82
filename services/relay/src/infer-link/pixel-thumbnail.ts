/**
 * A small greyscale thumbnail of a rectangle of an RGB frame, for the motion check, by
 * sampling: each thumbnail pixel averages the luma of a few points spread over its cell.
 * Sampling a 1080p frame this way reads about 37 000 pixels (well under a millisecond)
 * where a resampling filter would read all two million; motion needs changes the size of a
 * car, which any sample of the cell sees.
 */
import type { Rect } from './crop.js';

/** Sample points per cell side (4 × 4 per thumbnail pixel at most). */
const SAMPLES = 4;

export function pixelThumbnail(rgb: Uint8Array, frameWidth: number, rect: Rect, width: number, height: number): Uint8Array {
  const out = new Uint8Array(width * height);
  const cellW = rect.width / width;
  const cellH = rect.height / height;
  const nx = Math.max(1, Math.min(SAMPLES, Math.floor(cellW)));
  const ny = Math.max(1, Math.min(SAMPLES, Math.floor(cellH)));
  const xs = new Int32Array(width * nx);
  for (let tx = 0; tx < width; tx++) {
    for (let i = 0; i < nx; i++) xs[tx * nx + i] = rect.left + Math.min(rect.width - 1, Math.floor((tx + (i + 0.5) / nx) * cellW));
  }
  for (let ty = 0; ty < height; ty++) {
    for (let tx = 0; tx < width; tx++) {
      let sum = 0;
      for (let j = 0; j < ny; j++) {
        const y = rect.top + Math.min(rect.height - 1, Math.floor((ty + (j + 0.5) / ny) * cellH));
        const row = y * frameWidth;
        for (let i = 0; i < nx; i++) {
          const p = (row + xs[tx * nx + i]!) * 3;
          // BT.601 luma in integers (weights sum to 256).
          sum += (rgb[p]! * 77 + rgb[p + 1]! * 150 + rgb[p + 2]! * 29) >> 8;
        }
      }
      out[ty * width + tx] = Math.round(sum / (nx * ny));
    }
  }
  return out;
}
