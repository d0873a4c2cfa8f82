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
 */
import sharp, { type Sharp } from 'sharp';
import type { RawImageSize } from '@detector-worker/shared/contract/infer-api';
import type { CropBox } from '@detector-worker/shared/protocol/messages';
import { clampCrop, type Rect } from './crop.js';

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
