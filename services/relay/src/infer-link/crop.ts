/** Crop rectangles of frame groups: from a subscribe payload, as a group key, clamped to a frame (pure). */
import type { CropBox } from '@detector-worker/shared/protocol/messages';

export interface Rect {
  left: number;
  top: number;
  width: number;
  height: number;
}

/** The crop clamped to a frame; null when nothing of it lies inside (degenerate). */
export function clampCrop(crop: CropBox, frameWidth: number, frameHeight: number): Rect | null {
  const x1 = Math.max(0, Math.min(frameWidth, crop.cropX1));
  const y1 = Math.max(0, Math.min(frameHeight, crop.cropY1));
  const x2 = Math.max(0, Math.min(frameWidth, crop.cropX2));
  const y2 = Math.max(0, Math.min(frameHeight, crop.cropY2));
  if (x2 - x1 < 2 || y2 - y1 < 2) return null;
  return { left: x1, top: y1, width: x2 - x1, height: y2 - y1 };
}

export function cropOf(p: Partial<CropBox>): CropBox | undefined {
  if (p.cropX1 === undefined || p.cropY1 === undefined || p.cropX2 === undefined || p.cropY2 === undefined) return undefined;
  return { cropX1: p.cropX1, cropY1: p.cropY1, cropX2: p.cropX2, cropY2: p.cropY2 };
}

export function cropKey(crop: CropBox | undefined): string {
  return crop ? `${crop.cropX1},${crop.cropY1},${crop.cropX2},${crop.cropY2}` : 'full';
}
