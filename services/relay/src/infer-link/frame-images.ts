/**
 * The images a frame group sends, cut from a camera frame with sharp. A full run gets the crop
 * at full resolution (branches crop it again, actions may save it). A detect-stage request
 * gets the crop shrunk to what the detector's input needs: infer would letterbox it down to
 * that size anyway, so the extra pixels only cost JPEG decoding there, and shrinking here is
 * cheap (libjpeg decodes at 1/2, 1/4 or 1/8 scale directly). The frame's size comes with it
 * (the camera reader read it from the JPEG header), so nothing here reads a header again. Boxes that come back are mapped
 * to crop pixels with the returned scale. A motion thumbnail is a tiny greyscale crop.
 * Detect images travel as raw RGB by default (DETECT_FRAMES): the relay decodes the frame
 * anyway to shrink it, and a JPEG would only make infer decode it again.
 *
 * A frame with a preview (an RTSP camera's frame scaled down by ffmpeg, cameras/preview.ts)
 * gives its motion thumbnail and, when the preview holds at least the pixels the detector
 * needs of the crop, its detect image without decoding the JPEG at all.
 */
import sharp, { type Sharp } from 'sharp';
import type { RawImageSize } from '@detector-worker/shared/contract/infer-api';
import type { CropBox } from '@detector-worker/shared/protocol/messages';
import type { Preview } from '../cameras/preview.js';
import { clampCrop, type Rect } from './crop.js';
import { greyThumbnail, shrinkRgb } from './shrink.js';

/**
 * How detect-stage images travel (DETECT_FRAMES): `raw` RGB pixels, which infer feeds its
 * detector without decoding, or `jpeg`, about 14x fewer bytes for links where bandwidth counts.
 */
export type DetectFrames = 'raw' | 'jpeg';

export interface DetectImage {
  /** What to send: JPEG bytes, or raw interleaved RGB when `raw` is set. */
  body: Buffer;
  /** Set when `body` is raw RGB (application/x-rgb24) of this size. */
  raw?: RawImageSize;
  /** The crop in camera pixels: zone and boxes live in its pixels. */
  cropWidth: number;
  cropHeight: number;
  /** Crop pixels per image pixel, per axis (1 when not shrunk). */
  scaleX: number;
  scaleY: number;
}

/** A camera picture with its pixel size (a Frame: the reader read the size from its header). */
export interface SizedJpeg {
  jpeg: Buffer;
  width: number;
  height: number;
  /** The same picture scaled down, when the camera reader made one. */
  preview?: Preview;
}

function cropRect(frame: SizedJpeg, crop: CropBox | undefined): Rect | null {
  const { width, height } = frame;
  return crop ? clampCrop(crop, width, height) : width > 1 && height > 1 ? { left: 0, top: 0, width, height } : null;
}

/** The crop of a JPEG frame as a JPEG; undefined when the crop lies outside the frame. */
export async function cropJpeg(frame: SizedJpeg, crop: CropBox, quality: number): Promise<Buffer | undefined> {
  const rect = cropRect(frame, crop);
  if (!rect) return undefined;
  return sharp(frame.jpeg).extract(rect).jpeg({ quality }).toBuffer();
}

/**
 * The detect-stage image: the crop (or the whole frame), shrunk to fit within `fit` (the
 * detector's input) when it is larger; the frame as it is when nothing needs doing. With
 * `frames` = `raw` and a known `fit`, the pixels themselves: the fit bounds their size, so
 * until infer has told it (its first answer) the frame goes as JPEG (a 4K frame raw is 25 MB).
 */
export async function detectImage(
  frame: SizedJpeg,
  crop: CropBox | undefined,
  fit: { width: number; height: number } | undefined,
  quality: number,
  frames: DetectFrames = 'jpeg',
): Promise<DetectImage | undefined> {
  const { jpeg, width: fw, height: fh } = frame;
  const rect = cropRect(frame, crop);
  if (!rect) return undefined;
  const raw = frames === 'raw' && fit !== undefined;
  const s = fit ? Math.min(1, fit.width / rect.width, fit.height / rect.height) : 1;
  const geometry = { cropWidth: rect.width, cropHeight: rect.height };
  const small = fit && frame.preview ? fromPreview(frame, frame.preview, rect, s) : undefined;
  if (small) {
    // Shrunk in JS (shrink.ts); a preview that already has the size is the image itself, no copy.
    const pixels = small.whole ? small.preview.rgb : shrinkRgb(small.preview, small.cut, small.width, small.height);
    const size = { width: small.width, height: small.height };
    const out = raw ? { body: pixels, raw: size } : { body: await sharp(pixels, { raw: { ...size, channels: 3 } }).jpeg({ quality }).toBuffer() };
    return { ...out, ...geometry, scaleX: rect.width / small.width, scaleY: rect.height / small.height };
  }
  if (s >= 1) {
    const whole = rect.width === fw && rect.height === fh;
    if (whole && !raw) return { body: jpeg, ...geometry, scaleX: 1, scaleY: 1 };
    const out = await encoded(whole ? sharp(jpeg) : sharp(jpeg).extract(rect), raw, quality);
    return { ...out, ...geometry, scaleX: 1, scaleY: 1 };
  }
  // Shrink the whole frame first (decoded at a reduced scale), then cut the crop from it.
  const { shrunk, cut } = scaled(rect, fw, fh, s);
  const out = await encoded(sharp(jpeg).resize(shrunk.width, shrunk.height, { fit: 'fill', kernel: 'linear' }).extract(cut), raw, quality);
  return { ...out, ...geometry, scaleX: rect.width / cut.width, scaleY: rect.height / cut.height };
}

/** A pipeline's output as JPEG, or as raw 3-channel sRGB (a greyscale or CMYK camera too). */
async function encoded(pipeline: Sharp, raw: boolean, quality: number): Promise<Pick<DetectImage, 'body' | 'raw'>> {
  if (!raw) return { body: await pipeline.jpeg({ quality }).toBuffer() };
  const { data, info } = await pipeline.removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  if (info.channels !== 3) throw new Error(`raw detect image has ${info.channels} channels, not 3`);
  return { body: data, raw: { width: info.width, height: info.height } };
}

/**
 * The detect image from the preview: the crop's part of it, shrunk to `s` of the crop's camera
 * pixels; undefined when the preview has fewer pixels there than that (the JPEG is cut then).
 */
function fromPreview(frame: SizedJpeg, preview: Preview, rect: Rect, s: number) {
  const cut = previewRect(frame, preview, rect);
  const width = Math.max(1, Math.round(rect.width * s));
  const height = Math.max(1, Math.round(rect.height * s));
  if (width > cut.width || height > cut.height) return undefined;
  const whole = width === preview.width && height === preview.height;
  return { preview, cut, width, height, whole };
}

/** The crop rectangle in preview pixels (at least 1 pixel, inside it). */
function previewRect(frame: SizedJpeg, preview: Preview, rect: Rect): Rect {
  const sx = preview.width / frame.width;
  const sy = preview.height / frame.height;
  const left = Math.min(preview.width - 1, Math.round(rect.left * sx));
  const top = Math.min(preview.height - 1, Math.round(rect.top * sy));
  const width = Math.max(1, Math.min(preview.width - left, Math.round(rect.width * sx)));
  const height = Math.max(1, Math.min(preview.height - top, Math.round(rect.height * sy)));
  return { left, top, width, height };
}

/** A frame of fw × fh shrunk by s, and the crop rectangle in the shrunk frame (at least 1 pixel, inside it). */
function scaled(rect: Rect, fw: number, fh: number, s: number): { shrunk: { width: number; height: number }; cut: Rect } {
  const sw = Math.max(1, Math.round(fw * s));
  const sh = Math.max(1, Math.round(fh * s));
  const left = Math.min(sw - 1, Math.round(rect.left * s));
  const top = Math.min(sh - 1, Math.round(rect.top * s));
  const width = Math.max(1, Math.min(sw - left, Math.round(rect.width * s)));
  const height = Math.max(1, Math.min(sh - top, Math.round(rect.height * s)));
  return { shrunk: { width: sw, height: sh }, cut: { left, top, width, height } };
}

/** Thumbnail size for motion: enough to see a car move, a few thousand bytes to compare. */
export const MOTION_THUMB = { width: 64, height: 36 } as const;

/** A tiny greyscale thumbnail of the crop, for the motion check (raw bytes, row by row). */
export async function motionThumbnail(frame: SizedJpeg, crop: CropBox | undefined): Promise<Uint8Array | undefined> {
  const { jpeg, width: fw, height: fh } = frame;
  const rect = cropRect(frame, crop);
  if (!rect) return undefined;
  if (frame.preview) {
    const cut = previewRect(frame, frame.preview, rect);
    if (cut.width >= MOTION_THUMB.width && cut.height >= MOTION_THUMB.height) return greyThumbnail(frame.preview, cut, MOTION_THUMB.width, MOTION_THUMB.height);
  }
  // Shrink first so libjpeg decodes at 1/8 scale, then cut the crop: a few hundred microseconds.
  const { shrunk, cut } = scaled(rect, fw, fh, Math.min(1, (4 * MOTION_THUMB.width) / rect.width));
  // One resize per sharp pipeline: shrink and cut first, then scale the cut to the thumbnail.
  const grey = await sharp(jpeg).resize(shrunk.width, shrunk.height, { fit: 'fill', kernel: 'nearest' }).extract(cut).greyscale().raw().toBuffer({ resolveWithObject: true });
  const data = await sharp(grey.data, { raw: { width: grey.info.width, height: grey.info.height, channels: grey.info.channels } })
    .resize(MOTION_THUMB.width, MOTION_THUMB.height, { fit: 'fill' })
    .extractChannel(0)
    .raw()
    .toBuffer();
  return new Uint8Array(data.buffer, data.byteOffset, data.length);
}
