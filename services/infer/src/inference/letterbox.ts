/**
 * Geometry of fitting an image into a model input (letterbox / stretch), mapping model
 * boxes back to the source image, and the HWC uint8 -> CHW float32 tensor conversion.
 *
 * The letterbox matches Ultralytics (`LetterBox`): one scale for both axes, the resized size
 * rounded, the padding split around the image with the odd pixel on the right/bottom. sharp's
 * `resize(..., { fit: 'contain' })` lands on the same pixels (checked in the tests), so either
 * can produce the tensor while this module's numbers map boxes back.
 */
import type { Box, LetterboxGeometry, LetterboxInfo } from './types.js';
import { coded } from '../error-codes.js';

function checkSize(width: number, height: number, what: 'source' | 'destination'): void {
  const ok = Number.isSafeInteger(width) && Number.isSafeInteger(height) && width > 0 && height > 0;
  if (ok) return;
  if (what === 'source') throw coded('IMAGE_INVALID', `image size ${width}x${height} is not a positive integer size`);
  throw coded('MODEL_INPUT_UNSUPPORTED', `model input size ${width}x${height} is not a positive integer size`);
}

/** Scale to fit inside dst keeping the aspect ratio, centred, padded (Ultralytics letterbox). */
export function computeLetterbox(srcW: number, srcH: number, dstW: number, dstH: number): LetterboxGeometry {
  checkSize(srcW, srcH, 'source');
  checkSize(dstW, dstH, 'destination');
  const scale = Math.min(dstW / srcW, dstH / srcH);
  // Clamp to [1, dst]: a 3000x1 strip must not vanish, and rounding must never overshoot.
  const resizedWidth = Math.min(dstW, Math.max(1, Math.round(srcW * scale)));
  const resizedHeight = Math.min(dstH, Math.max(1, Math.round(srcH * scale)));
  // Ultralytics: left = round(dw - 0.1) with dw = (dst - resized) / 2, i.e. floor of the half.
  const padX = Math.floor((dstW - resizedWidth) / 2);
  const padY = Math.floor((dstH - resizedHeight) / 2);
  return {
    srcWidth: srcW,
    srcHeight: srcH,
    dstWidth: dstW,
    dstHeight: dstH,
    scaleX: scale,
    scaleY: scale,
    padX,
    padY,
    resizedWidth,
    resizedHeight,
    padRight: dstW - resizedWidth - padX,
    padBottom: dstH - resizedHeight - padY,
  };
}

/** Independent scales per axis, no padding (classifiers fed a plain resize). */
export function computeStretch(srcW: number, srcH: number, dstW: number, dstH: number): LetterboxGeometry {
  checkSize(srcW, srcH, 'source');
  checkSize(dstW, dstH, 'destination');
  return {
    srcWidth: srcW,
    srcHeight: srcH,
    dstWidth: dstW,
    dstHeight: dstH,
    scaleX: dstW / srcW,
    scaleY: dstH / srcH,
    padX: 0,
    padY: 0,
    resizedWidth: dstW,
    resizedHeight: dstH,
    padRight: 0,
    padBottom: 0,
  };
}

function clamp(v: number, lo: number, hi: number): number {
  // NaN from a hostile model output collapses to the low edge instead of travelling on.
  if (!(v > lo)) return lo;
  return v < hi ? v : hi;
}

/** A point in tensor pixels -> source pixels, clamped to the source image. */
export function toSourcePoint(point: readonly [number, number], info: LetterboxInfo): [number, number] {
  return [
    clamp((point[0] - info.padX) / info.scaleX, 0, info.srcWidth),
    clamp((point[1] - info.padY) / info.scaleY, 0, info.srcHeight),
  ];
}

/** A box [x1,y1,x2,y2] in tensor pixels -> source pixels, clamped to the source image. */
export function toSourceBox(box: Box, info: LetterboxInfo): Box {
  return [
    clamp((box[0] - info.padX) / info.scaleX, 0, info.srcWidth),
    clamp((box[1] - info.padY) / info.scaleY, 0, info.srcHeight),
    clamp((box[2] - info.padX) / info.scaleX, 0, info.srcWidth),
    clamp((box[3] - info.padY) / info.scaleY, 0, info.srcHeight),
  ];
}

export interface ChwOptions {
  /** Order of the planes the model expects; the input pixels are always RGB. */
  channelOrder: 'rgb' | 'bgr';
  /** Per model channel (in `channelOrder`), applied after /255: (x/255 - mean) / std. */
  mean?: readonly [number, number, number];
  std?: readonly [number, number, number];
}

/**
 * Interleaved RGB uint8 (HWC) -> planar float32 (CHW). Runs once per frame on up to 640x640
 * pixels, so the per-value arithmetic is folded into a 256-entry table per channel and the
 * loop only does lookups. `out` is reused when given (its first 3*w*h values are written).
 */
export function hwcToChw(
  rgb: Uint8Array,
  width: number,
  height: number,
  opts: ChwOptions,
  out?: Float32Array,
): Float32Array {
  if (!Number.isSafeInteger(width) || !Number.isSafeInteger(height) || width <= 0 || height <= 0) {
    throw coded('PREPROCESS_MISMATCH', `tensor size ${width}x${height} is not a positive integer size`);
  }
  const plane = width * height;
  const count = plane * 3;
  if (rgb.length < count) {
    throw coded('PREPROCESS_MISMATCH', `pixel buffer holds ${rgb.length} bytes, ${width}x${height} RGB needs ${count}`);
  }
  if (out && out.length < count) {
    throw coded('PREPROCESS_MISMATCH', `output buffer holds ${out.length} floats, ${count} are needed`);
  }
  const dst = out ?? new Float32Array(count);
  const t = byteTables(opts);
  convertPixels(rgb, 0, plane, planes(wordsOf(dst), plane, 0, plane, t.planeOf), t.tables);
  return dst.length === count ? dst : dst.subarray(0, count);
}

/** Per model channel, the float each byte value becomes: row k = model channel k. */
function channelTable(opts: ChwOptions): Float32Array {
  const mean = opts.mean ?? [0, 0, 0];
  const std = opts.std ?? [1, 1, 1];
  const lut = new Float32Array(768);
  for (let k = 0; k < 3; k++) {
    const m = mean[k] ?? 0;
    const s = std[k] ?? 1;
    if (!Number.isFinite(m) || !Number.isFinite(s) || s === 0) {
      throw coded('PREPROCESS_MISMATCH', `mean/std of channel ${k} must be finite and std non-zero`);
    }
    for (let v = 0; v < 256; v++) lut[k * 256 + v] = (v / 255 - m) / s;
  }
  return lut;
}

/**
 * The tables as float32 bit patterns, indexed by source byte (R, G, B), with the model plane
 * each byte feeds. Copying words instead of floats keeps the loop free of float conversions
 * and writes the very same bits.
 */
function byteTables(opts: ChwOptions): { lut: Float32Array; tables: [Uint32Array, Uint32Array, Uint32Array]; planeOf: [number, number, number] } {
  const lut = channelTable(opts);
  const bits = new Uint32Array(lut.buffer);
  const planeOf: [number, number, number] = opts.channelOrder === 'bgr' ? [2, 1, 0] : [0, 1, 2];
  const row = (k: number) => bits.subarray(planeOf[k]! * 256, planeOf[k]! * 256 + 256);
  return { lut, tables: [row(0), row(1), row(2)], planeOf };
}

/** Word views of the three planes of `words` from element `at` on, `count` long, in source byte order (R, G, B). */
function planes(words: Uint32Array, plane: number, at: number, count: number, planeOf: readonly number[]): [Uint32Array, Uint32Array, Uint32Array] {
  const view = (k: number) => words.subarray(planeOf[k]! * plane + at, planeOf[k]! * plane + at + count);
  return [view(0), view(1), view(2)];
}

function wordsOf(dst: Float32Array): Uint32Array {
  return new Uint32Array(dst.buffer, dst.byteOffset, dst.length);
}

/** Reading four pixels as three little-endian words needs the machine to be little-endian. */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * `count` pixels from byte `src` of `rgb` to index 0.. of the three destination views. Four
 * pixels (12 bytes) are read as three 32-bit words when the bytes are word-aligned: a quarter
 * of the loads and bounds checks of a byte-by-byte loop (about 25 % faster here).
 */
function convertPixels(rgb: Uint8Array, src: number, count: number, d: [Uint32Array, Uint32Array, Uint32Array], t: [Uint32Array, Uint32Array, Uint32Array]): void {
  const [d0, d1, d2] = d;
  const [t0, t1, t2] = t;
  let i = 0;
  const byteAt = rgb.byteOffset + src;
  if (LITTLE_ENDIAN && byteAt % 4 === 0 && count >= 4) {
    const quads = count >> 2;
    const w = new Uint32Array(rgb.buffer, byteAt, quads * 3);
    for (let q = 0, k = 0; q < quads; q++, k += 3, i += 4) {
      const a = w[k]!;
      const b = w[k + 1]!;
      const c = w[k + 2]!;
      d0[i] = t0[a & 255]!;
      d1[i] = t1[(a >>> 8) & 255]!;
      d2[i] = t2[(a >>> 16) & 255]!;
      d0[i + 1] = t0[a >>> 24]!;
      d1[i + 1] = t1[b & 255]!;
      d2[i + 1] = t2[(b >>> 8) & 255]!;
      d0[i + 2] = t0[(b >>> 16) & 255]!;
      d1[i + 2] = t1[b >>> 24]!;
      d2[i + 2] = t2[c & 255]!;
      d0[i + 3] = t0[(c >>> 8) & 255]!;
      d1[i + 3] = t1[(c >>> 16) & 255]!;
      d2[i + 3] = t2[c >>> 24]!;
    }
  }
  for (let j = src + i * 3; i < count; i++, j += 3) {
    d0[i] = t0[rgb[j]!]!;
    d1[i] = t1[rgb[j + 1]!]!;
    d2[i] = t2[rgb[j + 2]!]!;
  }
}

/** Where a resized image sits inside a larger letterboxed tensor. */
export interface Placement {
  tensorWidth: number;
  tensorHeight: number;
  left: number;
  top: number;
  padValue: number;
}

export interface PlacedOptions {
  /**
   * The caller vouches that every value of `out` outside the image already holds this pad
   * (its last call wrote the same placement and normalisation into it): the pad is not
   * written again. For a 640x360 frame in 640x640 that is 44 % of the tensor.
   */
  padReady?: boolean;
}

/**
 * Letterbox while building the tensor: the resized image is written at (left, top) of a
 * tensorWidth x tensorHeight CHW tensor and the rest is the pad value. Cheaper than padding
 * the pixels first (one pass over fewer pixels, no padded RGB copy).
 */
export function hwcToChwPlaced(rgb: Uint8Array, width: number, height: number, place: Placement, opts: ChwOptions, out?: Float32Array, options: PlacedOptions = {}): Float32Array {
  const { tensorWidth: tw, tensorHeight: th, left, top } = place;
  if (![width, height, tw, th, left, top].every((v) => Number.isSafeInteger(v) && v >= 0) || width < 1 || height < 1 || left + width > tw || top + height > th) {
    throw coded('PREPROCESS_MISMATCH', `a ${width}x${height} image does not fit at (${left},${top}) in ${tw}x${th}`);
  }
  if (rgb.length < width * height * 3) throw coded('PREPROCESS_MISMATCH', `pixel buffer holds ${rgb.length} bytes, ${width}x${height} RGB needs ${width * height * 3}`);
  const plane = tw * th;
  const count = plane * 3;
  if (out && out.length < count) throw coded('PREPROCESS_MISMATCH', `output buffer holds ${out.length} floats, ${count} are needed`);
  const t = byteTables(opts);
  const dst = out ?? new Float32Array(count);
  const fullWidth = left === 0 && width === tw;
  if (!(options.padReady && out)) {
    const pad = Math.max(0, Math.min(255, Math.round(place.padValue)));
    for (let k = 0; k < 3; k++) {
      const v = t.lut[k * 256 + pad]!;
      if (fullWidth) {
        // Only the bands above and below the image need the pad value.
        dst.fill(v, k * plane, k * plane + top * tw);
        dst.fill(v, k * plane + (top + height) * tw, (k + 1) * plane);
      } else dst.fill(v, k * plane, (k + 1) * plane);
    }
  }
  const words = wordsOf(dst);
  if (fullWidth) {
    // Full-width rows are contiguous in every plane: one run over the whole image.
    convertPixels(rgb, 0, width * height, planes(words, plane, top * tw, width * height, t.planeOf), t.tables);
  } else {
    for (let y = 0; y < height; y++) convertPixels(rgb, y * width * 3, width, planes(words, plane, (top + y) * tw + left, width, t.planeOf), t.tables);
  }
  return dst.length === count ? dst : dst.subarray(0, count);
}
