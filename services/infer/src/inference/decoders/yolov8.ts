/**
 * Ultralytics YOLOv8 / YOLO11 detect output `[1, 4+nc, N]`, channels first: rows cx,cy,w,h
 * then nc class scores, already sigmoid, no objectness.
 */
import { nms } from '../nms.js';
import type { DecodeOptions, RawDetection } from '../types.js';
import { layout, shapeText, unsupported, xywhBox } from './shape.js';
import type { DetectionDecoder } from './registry.js';

/** Scratch buffers reused across frames (a worker thread decodes one output at a time). */
let bestScore = new Float32Array(0);
let bestClass = new Int32Array(0);

function scratch(n: number): void {
  if (bestScore.length < n) {
    bestScore = new Float32Array(n);
    bestClass = new Int32Array(n);
  }
}

/**
 * YOLOv8: each anchor's best class over all classes, then threshold and class filter (the
 * filter comes after the argmax, as Ultralytics' `classes=` does: an anchor whose best class
 * is filtered out is dropped, it does not fall back to a weaker allowed class).
 */
function decodeYolov8(data: Float32Array, channels: number, anchors: number, opts: DecodeOptions): RawDetection[] {
  const nc = channels - 4;
  if (nc < 1) return [];
  const threshold = opts.confThreshold;
  const filter = opts.classFilter ?? null;
  if (filter && filter.size > 0 && filter.size * 4 < nc) return decodeYolov8Filtered(data, nc, anchors, threshold, filter);
  scratch(anchors);
  const score = bestScore;
  const cls = bestClass;
  // Row by row: each class row is contiguous, so the scan reads memory in order.
  const row4 = 4 * anchors;
  for (let a = 0; a < anchors; a++) {
    score[a] = data[row4 + a]!;
    cls[a] = 0;
  }
  for (let c = 1; c < nc; c++) {
    const base = (4 + c) * anchors;
    for (let a = 0; a < anchors; a++) {
      const v = data[base + a]!;
      if (v > score[a]!) {
        score[a] = v;
        cls[a] = c;
      }
    }
  }
  const out: RawDetection[] = [];
  for (let a = 0; a < anchors; a++) {
    const s = score[a]!;
    if (!(s >= threshold)) continue;
    const c = cls[a]!;
    if (filter && !filter.has(c)) continue;
    const box = xywhBox(data[a]!, data[anchors + a]!, data[2 * anchors + a]!, data[3 * anchors + a]!);
    if (box) out.push({ classIndex: c, confidence: s, box });
  }
  return out;
}

/**
 * Same result as the full scan when only a few classes are wanted (car/truck/bus of 80): an
 * anchor can only survive if one of the wanted rows reaches the threshold, so those rows are
 * scanned first and the full argmax runs only for the few anchors that pass.
 */
function decodeYolov8Filtered(data: Float32Array, nc: number, anchors: number, threshold: number, filter: ReadonlySet<number>): RawDetection[] {
  scratch(anchors);
  const score = bestScore;
  score.fill(-Infinity, 0, anchors);
  for (const c of filter) {
    if (c < 0 || c >= nc) continue;
    const base = (4 + c) * anchors;
    for (let a = 0; a < anchors; a++) {
      const v = data[base + a]!;
      if (v > score[a]!) score[a] = v;
    }
  }
  const out: RawDetection[] = [];
  for (let a = 0; a < anchors; a++) {
    if (!(score[a]! >= threshold)) continue;
    let best = data[4 * anchors + a]!;
    let c = 0;
    for (let k = 1; k < nc; k++) {
      const v = data[(4 + k) * anchors + a]!;
      if (v > best) {
        best = v;
        c = k;
      }
    }
    if (!filter.has(c)) continue;
    const box = xywhBox(data[a]!, data[anchors + a]!, data[2 * anchors + a]!, data[3 * anchors + a]!);
    if (box) out.push({ classIndex: c, confidence: best, box });
  }
  return out;
}

export const yolov8: DetectionDecoder = {
  format: 'yolov8',
  decode(data, dims, opts, maxDetections) {
    const [channels, anchors] = layout('yolov8', data, dims);
    if (channels < 5) throw unsupported(`yolov8 output ${shapeText(dims)} has fewer than 5 channels (4 box + classes)`, dims);
    return nms(decodeYolov8(data, channels, anchors, opts), opts.iouThreshold, { maxDetections });
  },
};
