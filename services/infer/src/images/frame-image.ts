/**
 * One request's image. The encoded bytes are decoded at most twice: the root node reads a
 * reduced-size decode straight from the JPEG (libjpeg shrink-on-load, the cheap path when a
 * 1080p frame goes into a 640 detector), and crops for branches and actions read one lazily
 * decoded full-resolution copy. A raw RGB body (application/x-rgb24) is never decoded: when it
 * already has the size a node's input needs, its bytes go to the tensor builder as they are.
 */
import sharp, { type Metadata, type Sharp } from 'sharp';
import { CodedError } from '@detector-worker/shared/errors';
import { computeLetterbox, computeStretch } from '../inference/letterbox.js';
import type { Box, LetterboxInfo } from '../inference/types.js';
import type { Placement } from '../inference/letterbox.js';
import type { ActionImage, CropOptions } from '../pipeline/ports.js';
import { expandQuad, isUsableQuad, quadSize, warpQuad, type Point } from '../inference/homography.js';
import { coded } from '../error-codes.js';
import { readJpegHeader } from './jpeg-header.js';

export type ResizeMode = 'letterbox' | 'stretch' | 'center-crop';

export interface FitTarget {
  width: number;
  height: number;
  resize: ResizeMode;
  padValue: number;
}

export interface FittedPixels {
  /** Interleaved RGB, width*height*3 bytes. */
  pixels: Buffer;
  width: number;
  height: number;
  /** Letterbox: where these pixels sit in the model input; the tensor builder pads. */
  placement?: Placement;
  /** Maps model-input pixels back to source-image pixels (source = the crop when one was taken). */
  info: LetterboxInfo;
}

/** Decoded pixels: interleaved RGB, width*height*3 bytes, rows without padding. */
export interface RawRgb {
  data: Buffer;
  width: number;
  height: number;
}

const SUPPORTED = new Set(['jpeg', 'png', 'webp']);
/** ImageNet convention: resize the shorter side to 256 for a 224 crop. */
const CENTER_CROP_RATIO = 256 / 224;

function imageError(err: unknown): CodedError {
  if (err instanceof CodedError) return err;
  const message = err instanceof Error ? err.message : String(err);
  if (/pixel limit/i.test(message)) return coded('IMAGE_TOO_LARGE', `image exceeds the pixel limit: ${message}`);
  return coded('IMAGE_INVALID', `image could not be decoded: ${message}`);
}

/** A raw RGB body (or its declared Content-Length) must hold exactly width*height*3 bytes: other lengths would shear rows. */
export function checkRawLength(length: number, size: { width: number; height: number }): void {
  const expected = size.width * size.height * 3;
  if (length !== expected) throw coded('IMAGE_INVALID', `a raw RGB body of ${size.width}x${size.height} is ${expected} bytes, not ${length}`);
}

function checkPixels(width: number, height: number, maxPixels: number): void {
  if (width * height > maxPixels) throw coded('IMAGE_TOO_LARGE', `image is ${width}x${height}, over the limit of ${maxPixels} pixels`);
}

export class FrameImage implements ActionImage {
  private full: Promise<RawRgb> | undefined;
  /** Pixels held from the start (raw bodies, crops): readable without awaiting or sharp. */
  private decoded: RawRgb | undefined;

  private constructor(
    private readonly encoded: Buffer,
    readonly width: number,
    readonly height: number,
    readonly format: string,
    private readonly maxPixels: number,
    /** Plain 3-channel sRGB (the usual camera JPEG): no alpha or colourspace step needed. */
    private readonly plainRgb = false,
  ) {}

  /** Reads the header only; pixels are decoded when a node needs them. */
  static async open(encoded: Buffer, maxPixels: number): Promise<FrameImage> {
    if (!encoded.length) throw coded('IMAGE_EMPTY', 'request body is empty: send the image bytes');
    // The usual camera frame: a 3-component JPEG whose header the JS walk understands, read
    // without a libvips round trip. libvips calls such a JPEG 3-band sRGB, so it is plain RGB
    // like in the metadata path below. Greyscale, CMYK, PNG, WebP and odd JPEGs ask sharp.
    const jpeg = readJpegHeader(encoded);
    if (jpeg && jpeg.components === 3) {
      checkPixels(jpeg.width, jpeg.height, maxPixels);
      return new FrameImage(encoded, jpeg.width, jpeg.height, 'jpeg', maxPixels, true);
    }
    let meta: Metadata;
    try {
      meta = await sharp(encoded, { limitInputPixels: maxPixels }).metadata();
    } catch (err) {
      throw imageError(err);
    }
    if (!meta.format || !SUPPORTED.has(meta.format)) throw coded('IMAGE_UNSUPPORTED', `image format ${meta.format ?? 'unknown'} is not supported (jpeg, png, webp)`);
    const width = meta.width ?? 0;
    const height = meta.height ?? 0;
    if (!width || !height) throw coded('IMAGE_INVALID', 'image has no size');
    checkPixels(width, height, maxPixels);
    return new FrameImage(encoded, width, height, meta.format, maxPixels, meta.channels === 3 && meta.space === 'srgb' && !meta.hasAlpha);
  }

  /** Builds an image from raw RGB pixels (crops that become a branch's whole input). */
  static fromRaw(data: Buffer, width: number, height: number): FrameImage {
    const img = new FrameImage(Buffer.alloc(0), width, height, 'raw', width * height);
    img.decoded = { data, width, height };
    img.full = Promise.resolve(img.decoded);
    return img;
  }

  /**
   * A request's raw RGB body with the size the caller declared: checked like a JPEG header
   * (pixel limit first), then used as it is, without a copy. A body of another length is
   * refused rather than guessed at: rows would shear.
   */
  static openRaw(raw: RawRgb, maxPixels: number): FrameImage {
    const { data, width, height } = raw;
    if (!data.length) throw coded('IMAGE_EMPTY', 'request body is empty: send the image bytes');
    if (!Number.isSafeInteger(width) || !Number.isSafeInteger(height) || width < 1 || height < 1) throw coded('BAD_REQUEST', 'width and height must be positive integers');
    checkPixels(width, height, maxPixels);
    checkRawLength(data.length, raw);
    return FrameImage.fromRaw(data, width, height);
  }

  /** Decodes to 3-channel sRGB whatever came in (greyscale, CMYK, alpha). */
  private decoder(): Sharp {
    const s = sharp(this.encoded, { limitInputPixels: this.maxPixels, failOn: 'truncated', sequentialRead: true });
    return this.plainRgb ? s : s.removeAlpha().toColourspace('srgb');
  }

  /** Full-resolution RGB, decoded once per request. */
  fullPixels(): Promise<RawRgb> {
    this.full ??= this.decoder()
      .raw()
      .toBuffer({ resolveWithObject: true })
      .then(({ data, info }) => ({ data, width: info.width, height: info.height }))
      .catch((err: unknown) => {
        throw imageError(err);
      });
    return this.full;
  }

  /** A sharp pipeline over the whole image or a box of it (boxes read the full decode). */
  private async source(box: Box | undefined, preferFull = false): Promise<{ pipeline: Sharp; width: number; height: number }> {
    // A frame already decoded in full (crop branches) is not decoded again for a whole-frame save.
    if (!box && !preferFull && !this.full && this.format !== 'raw') return { pipeline: this.decoder(), width: this.width, height: this.height };
    const full = await this.fullPixels();
    const pipeline = sharp(full.data, { raw: { width: full.width, height: full.height, channels: 3 } });
    if (!box) return { pipeline, width: full.width, height: full.height };
    const r = clampBox(box, full.width, full.height);
    if (!r) throw coded('CROP_EMPTY', `crop box ${JSON.stringify(box)} has no area inside ${full.width}x${full.height}`);
    return { pipeline: pipeline.extract(r), width: r.width, height: r.height };
  }

  /**
   * Pixels for a model input of the given size. The returned info maps tensor pixels back
   * to image pixels. `preferFullDecode` reads the full-resolution decode (shared with later
   * crops) instead of a shrunk one.
   */
  async fitted(target: FitTarget, options: { preferFullDecode?: boolean } = {}): Promise<FittedPixels> {
    try {
      const plan = fitPlan(this.width, this.height, target);
      const mapping = { info: plan.info, ...(plan.placement ? { placement: plan.placement } : {}) };
      // Pixels already in memory at exactly the input size (a raw body): no sharp call, no copy.
      if (this.decoded && !plan.resize && !plan.extract) return { pixels: this.decoded.data, width: this.width, height: this.height, ...mapping };
      let { pipeline } = await this.source(undefined, options.preferFullDecode);
      if (plan.resize) pipeline = pipeline.resize(plan.resize.width, plan.resize.height, { fit: 'fill' });
      // extract() after resize() crops the resized image.
      if (plan.extract) pipeline = pipeline.extract(plan.extract);
      const { data: pixels, info: out } = await pipeline.raw().toBuffer({ resolveWithObject: true });
      return { pixels, width: out.width, height: out.height, ...mapping };
    } catch (err) {
      throw imageError(err);
    }
  }

  /**
   * A box of this image as an image of its own: a branch's input (its boxes are relative to
   * it). `margin` widens the box on each side; usable `corners` are warped to a flat
   * rectangle instead (unusable ones, e.g. crossed, fall back to the widened box).
   */
  async crop(box: Box, options: CropOptions = {}): Promise<FrameImage> {
    const margin = options.margin && options.margin > 0 ? Math.min(options.margin, 1) : 0;
    try {
      if (options.corners && isUsableQuad(options.corners)) {
        const warped = await this.warpedCrop(options.corners, margin);
        if (warped) return warped;
      }
      const mx = (box[2] - box[0]) * margin;
      const my = (box[3] - box[1]) * margin;
      const { pipeline } = await this.source(margin ? [box[0] - mx, box[1] - my, box[2] + mx, box[3] + my] : box);
      const { data, info } = await pipeline.raw().toBuffer({ resolveWithObject: true });
      return FrameImage.fromRaw(data, info.width, info.height);
    } catch (err) {
      throw imageError(err);
    }
  }

  /** The quad (widened by `margin`) warped to a rectangle of its own size, from the full decode. */
  private async warpedCrop(corners: ReadonlyArray<readonly [number, number]>, margin: number): Promise<FrameImage | null> {
    const full = await this.fullPixels();
    const quad: Point[] = margin ? expandQuad(corners, margin) : corners.map((p) => [p[0], p[1]] as const);
    // A quad wholly outside the frame reads edge pixels only: refuse it like an empty crop.
    const xs = quad.map((p) => p[0]);
    const ys = quad.map((p) => p[1]);
    if (Math.max(...xs) <= 0 || Math.max(...ys) <= 0 || Math.min(...xs) >= full.width || Math.min(...ys) >= full.height) {
      throw coded('CROP_EMPTY', `crop corners ${JSON.stringify(corners)} lie outside ${full.width}x${full.height}`);
    }
    const { width, height } = quadSize(quad);
    const pixels = warpQuad(full.data, full.width, full.height, 3, quad, width, height);
    return pixels ? FrameImage.fromRaw(Buffer.from(pixels.buffer, pixels.byteOffset, pixels.byteLength), width, height) : null;
  }

  /** ActionImage: the whole image or a box of it, encoded. */
  async encode(box: Box | undefined, format: 'jpeg' | 'png', quality: number): Promise<Buffer> {
    try {
      const { pipeline } = await this.source(box);
      return await (format === 'png' ? pipeline.png() : pipeline.jpeg({ quality })).toBuffer();
    } catch (err) {
      throw imageError(err);
    }
  }
}

/**
 * How a w × h image becomes a model input: the mapping back to image pixels, where a letterboxed
 * image sits in the tensor (the tensor builder pads: no padded copy), and the resize and crop
 * sharp must do; none when the image already has the size (a frame the relay shrank to it).
 */
function fitPlan(w: number, h: number, target: FitTarget): { info: LetterboxInfo; placement?: Placement; resize?: { width: number; height: number }; extract?: { left: number; top: number; width: number; height: number } } {
  const { width: tw, height: th } = target;
  if (target.resize === 'letterbox') {
    const g = computeLetterbox(w, h, tw, th);
    const placement: Placement = { tensorWidth: tw, tensorHeight: th, left: g.padX, top: g.padY, padValue: target.padValue };
    return { info: g, placement, ...(g.resizedWidth !== w || g.resizedHeight !== h ? { resize: { width: g.resizedWidth, height: g.resizedHeight } } : {}) };
  }
  if (target.resize === 'stretch') return { info: computeStretch(w, h, tw, th), ...(tw !== w || th !== h ? { resize: { width: tw, height: th } } : {}) };
  // Center crop (ImageNet): the short side to 256/224 of the input, then the middle.
  const scale = (Math.max(tw, th) * CENTER_CROP_RATIO) / Math.min(w, h);
  const rw = Math.max(tw, Math.round(w * scale));
  const rh = Math.max(th, Math.round(h * scale));
  const left = Math.floor((rw - tw) / 2);
  const top = Math.floor((rh - th) / 2);
  return {
    info: { srcWidth: w, srcHeight: h, dstWidth: tw, dstHeight: th, scaleX: rw / w, scaleY: rh / h, padX: -left, padY: -top },
    resize: { width: rw, height: rh },
    extract: { left, top, width: tw, height: th },
  };
}

/** Integer pixel rectangle of a box inside the image, or null when it has no area there. */
export function clampBox(box: Box, width: number, height: number): { left: number; top: number; width: number; height: number } | null {
  const x1 = Math.max(0, Math.min(width, Math.floor(box[0])));
  const y1 = Math.max(0, Math.min(height, Math.floor(box[1])));
  const x2 = Math.max(0, Math.min(width, Math.ceil(box[2])));
  const y2 = Math.max(0, Math.min(height, Math.ceil(box[3])));
  if (x2 - x1 < 1 || y2 - y1 < 1) return null;
  return { left: x1, top: y1, width: x2 - x1, height: y2 - y1 };
}
