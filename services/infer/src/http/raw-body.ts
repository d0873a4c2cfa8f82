/**
 * The size of a raw RGB body (application/x-rgb24) comes from the query, and both are hostile:
 * a missing or malformed size is the caller's mistake (400), a size over the pixel limit is
 * refused like a JPEG header claiming one (413), and a body whose length disagrees with its
 * size is not an image (422, the same code as a truncated JPEG; images/frame-image.ts checks
 * it). The route checks a declared Content-Length before the body is read, and the body once it is.
 */
import { RAW_RGB_CONTENT_TYPE, type RawImageSize } from '@detector-worker/shared/contract/infer-api';
import { coded } from '../error-codes.js';
import type { RawRgb } from '../images/frame-image.js';

/**
 * More significant digits than this name a side no pixel limit allows (MAX_IMAGE_PIXELS is
 * an integer, far below 10^18): refused as too large without trusting Number() on them.
 */
const MAX_DIGITS = 9;

function side(name: 'width' | 'height', value: unknown): number {
  if (value === undefined || value === '') throw coded('BAD_REQUEST', `${name} is required with an ${RAW_RGB_CONTENT_TYPE} body: its size in pixels`);
  // A repeated parameter arrives as an array: one size only.
  if (typeof value !== 'string' || !/^\d+$/.test(value)) throw coded('BAD_REQUEST', `${name} must be a whole number of pixels`);
  const digits = value.replace(/^0+/, '');
  if (!digits) throw coded('BAD_REQUEST', `${name} must be at least 1`);
  if (digits.length > MAX_DIGITS) throw coded('IMAGE_TOO_LARGE', `${name} ${value.slice(0, 24)}${value.length > 24 ? '…' : ''} is over the pixel limit`);
  return Number(digits);
}

/** The declared size of a raw body, within the pixel limit. */
export function rawImageSize(query: Readonly<Record<string, unknown>>, maxPixels: number): RawImageSize {
  const width = side('width', query.width);
  const height = side('height', query.height);
  if (width * height > maxPixels) throw coded('IMAGE_TOO_LARGE', `raw image is ${width}x${height}, over the limit of ${maxPixels} pixels`);
  return { width, height };
}

/**
 * The route's raw image: an empty body first (as for every type), then its declared size;
 * FrameImage.openRaw checks the length against it.
 */
export function rawImage(body: Buffer, query: Readonly<Record<string, unknown>>, maxPixels: number): RawRgb {
  if (!body.length) throw coded('IMAGE_EMPTY', 'request body is empty: send the image bytes');
  return { data: body, ...rawImageSize(query, maxPixels) };
}
