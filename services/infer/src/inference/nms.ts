/**
 * Greedy non-maximum suppression, as Ultralytics / torchvision do it: highest confidence
 * first, a box is dropped when its IoU with a kept box is above the threshold.
 */
import type { Box, RawDetection } from './types.js';

/** Intersection over union of two [x1,y1,x2,y2] boxes; 0 when they do not overlap or have no area. */
export function iou(a: Readonly<Box>, b: Readonly<Box>): number {
  const iw = Math.min(a[2], b[2]) - Math.max(a[0], b[0]);
  if (!(iw > 0)) return 0;
  const ih = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
  if (!(ih > 0)) return 0;
  const inter = iw * ih;
  const union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
  return union > 0 ? inter / union : 0;
}

export interface NmsOptions {
  /**
   * Suppress only within a class (default). Class-agnostic NMS would merge e.g. a van that
   * the model scores both as truck and as car into one box; the original kept both.
   */
  perClass?: boolean;
  maxDetections?: number;
}

/** Returns the kept detections sorted by confidence, highest first. The input is not modified. */
export function nms(dets: readonly RawDetection[], iouThreshold: number, options: NmsOptions = {}): RawDetection[] {
  const perClass = options.perClass ?? true;
  const maxDetections = options.maxDetections ?? 300;
  if (maxDetections <= 0 || dets.length === 0) return [];
  // NaN confidences would make the sort order undefined; such detections are meaningless anyway.
  const sorted = dets.filter((d) => !Number.isNaN(d.confidence)).sort((x, y) => y.confidence - x.confidence);
  const kept: RawDetection[] = [];
  // Kept boxes grouped by class so a candidate only meets boxes it may be suppressed by.
  const byClass = new Map<number, RawDetection[]>();
  for (const d of sorted) {
    const group = perClass ? d.classIndex : 0;
    let rivals = byClass.get(group);
    if (!rivals) {
      rivals = [];
      byClass.set(group, rivals);
    }
    let suppressed = false;
    for (const k of rivals) {
      if (iou(d.box, k.box) > iouThreshold) {
        suppressed = true;
        break;
      }
    }
    if (suppressed) continue;
    rivals.push(d);
    kept.push(d);
    if (kept.length >= maxDetections) break;
  }
  return kept;
}
